#include "protocol/resp.hpp"

#include <optional>

namespace ferry::protocol {

std::string resp_command(const std::vector<std::string>& args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (const auto& arg : args) {
    out += "$" + std::to_string(arg.size()) + "\r\n";
    out += arg;
    out += "\r\n";
  }
  return out;
}

namespace {

using outcome = resp_decoded::outcome;

/// Reads replies from a buffer; `at` moves past what was read.
struct reader {
  std::string_view buffer;
  size_t at = 0;
  std::string problem;

  /// The line from `at` up to CRLF (moved past it); nullopt when the
  /// buffer ends first. A lone CR or LF inside the line is malformed.
  std::optional<std::string_view> line(bool& bad) {
    auto end = buffer.find("\r\n", at);
    if (end == std::string_view::npos) {
      // An LF without its CR can never become a line.
      if (buffer.find('\n', at) != std::string_view::npos) {
        bad = true;
        problem = "a line ends in LF without CR";
      }
      return std::nullopt;
    }
    auto text = buffer.substr(at, end - at);
    if (text.find_first_of("\r\n") != std::string_view::npos) {
      bad = true;
      problem = "a line holds a lone CR or LF";
      return std::nullopt;
    }
    at = end + 2;
    return text;
  }

  /// A signed decimal of at most 18 digits.
  static std::optional<int64_t> number(std::string_view text) {
    bool negative = !text.empty() && text[0] == '-';
    if (negative)
      text.remove_prefix(1);
    if (text.empty() || text.size() > 18)
      return std::nullopt;
    int64_t value = 0;
    for (char c : text) {
      if (c < '0' || c > '9')
        return std::nullopt;
      value = value * 10 + (c - '0');
    }
    return negative ? -value : value;
  }

  outcome fail(std::string why) {
    problem = std::move(why);
    return outcome::malformed;
  }

  outcome read(resp_value& out, int depth) {
    if (depth > resp_max_depth)
      return fail("arrays nested deeper than " + std::to_string(resp_max_depth));
    if (at >= buffer.size())
      return outcome::incomplete;
    char type = buffer[at++];
    bool bad = false;
    auto text = line(bad);
    if (bad)
      return outcome::malformed;
    if (!text)
      return outcome::incomplete;
    switch (type) {
      case '+':
        out.type = resp_value::kind::simple;
        out.text = std::string{*text};
        return outcome::complete;
      case '-':
        out.type = resp_value::kind::error;
        out.text = std::string{*text};
        return outcome::complete;
      case ':': {
        auto value = number(*text);
        if (!value)
          return fail("integer reply '" + std::string{text->substr(0, 32)} + "' is not a number");
        out.type = resp_value::kind::integer;
        out.integer = *value;
        return outcome::complete;
      }
      case '$': {
        auto size = number(*text);
        if (!size || *size < -1 || *size > resp_max_bulk)
          return fail("bulk length '" + std::string{text->substr(0, 32)} + "' is not valid");
        if (*size == -1) {
          out.type = resp_value::kind::null;
          return outcome::complete;
        }
        auto length = static_cast<size_t>(*size);
        if (buffer.size() - at < length + 2)
          return outcome::incomplete;
        if (buffer.substr(at + length, 2) != "\r\n")
          return fail("bulk string of " + std::to_string(length) + " bytes does not end in CRLF");
        out.type = resp_value::kind::bulk;
        out.text = std::string{buffer.substr(at, length)};
        at += length + 2;
        return outcome::complete;
      }
      case '*': {
        auto count = number(*text);
        if (!count || *count < -1 || *count > resp_max_items)
          return fail("array length '" + std::string{text->substr(0, 32)} + "' is not valid");
        if (*count == -1) {
          out.type = resp_value::kind::null;
          return outcome::complete;
        }
        out.type = resp_value::kind::array;
        for (int64_t i = 0; i < *count; ++i) {
          resp_value item;
          auto got = read(item, depth + 1);
          if (got != outcome::complete)
            return got;
          out.items.push_back(std::move(item));
        }
        return outcome::complete;
      }
      default:
        return fail("reply starts with '" + std::string(1, type) + "', not a RESP2 type");
    }
  }
};

} // namespace

resp_decoded resp_decode(std::string_view buffer) {
  reader in;
  in.buffer = buffer;
  resp_decoded decoded;
  decoded.result = in.read(decoded.value, 0);
  if (decoded.result == outcome::complete)
    decoded.consumed = in.at;
  else
    decoded.value = {};
  if (decoded.result == outcome::malformed)
    decoded.problem = in.problem;
  return decoded;
}

} // namespace ferry::protocol
