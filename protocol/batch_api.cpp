#include "protocol/batch_api.hpp"

#include <limits>
#include <utility>

#include <nlohmann/json.hpp>

#include "protocol/parsing.hpp"
#include "protocol/transfer_protocol.hpp"

namespace ferry::protocol {

namespace {

using json = nlohmann::json;
using sys_clock = std::chrono::system_clock;
using rep = sys_clock::duration::rep;

// Longest piece of server input quoted inside a validation message.
constexpr size_t max_quote = 80;
// Longest URL scheme named in a message about a rejected href.
constexpr size_t max_scheme = 16;
// Longest server-provided text shown to the user.
constexpr size_t max_message = 200;
// git-lfs declares expires_in as a 32-bit signed number of seconds.
constexpr int64_t max_expires_in = 2147483647;
// Go's zero time.Time (0001-01-01T00:00:00Z) in seconds since 1970; Go
// servers send it for "no expiry".
constexpr int64_t go_zero_time = -62135596800;

// Printable ASCII only, whitespace runs collapsed to one space, trimmed and
// cut to `limit` characters (the "..." included), so server text cannot
// drive the terminal or flood the output.
std::string clean(std::string_view text, size_t limit) {
  std::string out;
  bool pending_space = false;
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte <= 0x20) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space)
      out += ' ';
    pending_space = false;
    out += byte >= 0x7f ? '?' : c;
    if (out.size() > limit)
      break;
  }
  if (out.size() > limit) {
    out.resize(limit >= 3 ? limit - 3 : 0);
    while (!out.empty() && out.back() == ' ')
      out.pop_back();
    out += "...";
  }
  return out;
}

std::string quote(std::string_view text) { return "'" + clean(text, max_quote) + "'"; }

// Absent and null both mean "not given" for optional fields.
const json* find_optional(const json& object, const char* key) {
  const json* value = find_member(object, key);
  return value == nullptr || value->is_null() ? nullptr : value;
}

sys_clock::duration to_duration_saturating(std::chrono::seconds value) {
  constexpr auto max_seconds =
    std::chrono::duration_cast<std::chrono::seconds>(sys_clock::duration::max()).count();
  if (value.count() > max_seconds)
    return sys_clock::duration::max();
  if (value.count() < -max_seconds)
    return sys_clock::duration::min();
  return std::chrono::duration_cast<sys_clock::duration>(value);
}

sys_clock::time_point add_saturating(sys_clock::time_point at, std::chrono::seconds offset) {
  rep sum = 0;
  const rep ticks = to_duration_saturating(offset).count();
  if (__builtin_add_overflow(at.time_since_epoch().count(), ticks, &sum)) {
    return ticks > 0 ? sys_clock::time_point::max() : sys_clock::time_point::min();
  }
  return sys_clock::time_point{sys_clock::duration{sum}};
}

// An RFC 3339 instant as seconds since 1970 plus nanoseconds.
struct instant {
  int64_t seconds = 0;
  int64_t nanos = 0;
};

bool read_digits(std::string_view text, size_t at, size_t count, int& out) {
  if (text.size() < at + count)
    return false;
  out = 0;
  for (size_t i = at; i < at + count; ++i) {
    if (text[i] < '0' || text[i] > '9')
      return false;
    out = out * 10 + (text[i] - '0');
  }
  return true;
}

// date-time = full-date "T" full-time (RFC 3339 section 5.6).
std::optional<instant> parse_instant(std::string_view text) {
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (text.size() < 20 || !read_digits(text, 0, 4, year) || text[4] != '-' ||
      !read_digits(text, 5, 2, month) || text[7] != '-' || !read_digits(text, 8, 2, day) ||
      (text[10] != 'T' && text[10] != 't') || !read_digits(text, 11, 2, hour) || text[13] != ':' ||
      !read_digits(text, 14, 2, minute) || text[16] != ':' || !read_digits(text, 17, 2, second)) {
    return std::nullopt;
  }
  if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) || hour > 23 ||
      minute > 59 || second > 60) {
    return std::nullopt;
  }
  size_t at = 19;
  int64_t nanos = 0;
  if (text[at] == '.') {
    ++at;
    const size_t first_digit = at;
    int64_t scale = 100000000;
    while (at < text.size() && text[at] >= '0' && text[at] <= '9') {
      // Digits past nanoseconds cannot change a system_clock time point.
      nanos += (text[at] - '0') * scale;
      scale /= 10;
      ++at;
    }
    if (at == first_digit)
      return std::nullopt;
  }
  if (at >= text.size())
    return std::nullopt;
  int64_t offset = 0;
  if (text[at] == 'Z' || text[at] == 'z') {
    ++at;
  } else if (text[at] == '+' || text[at] == '-') {
    int offset_hour = 0, offset_minute = 0;
    if (!read_digits(text, at + 1, 2, offset_hour) || text.size() < at + 6 || text[at + 3] != ':' ||
        !read_digits(text, at + 4, 2, offset_minute) || offset_hour > 23 || offset_minute > 59) {
      return std::nullopt;
    }
    offset = (offset_hour * 3600 + offset_minute * 60) * (text[at] == '-' ? -1 : 1);
    at += 6;
  } else {
    return std::nullopt;
  }
  if (at != text.size())
    return std::nullopt;
  // A leap second (:60) simply adds up to the first second of the next minute.
  const int64_t seconds =
    days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset;
  return instant{seconds, nanos};
}

sys_clock::time_point to_time_point(const instant& at) {
  constexpr auto max_seconds =
    std::chrono::duration_cast<std::chrono::seconds>(sys_clock::duration::max()).count();
  // One second of headroom keeps the nanoseconds from overflowing.
  if (at.seconds >= max_seconds)
    return sys_clock::time_point::max();
  if (at.seconds <= -max_seconds)
    return sys_clock::time_point::min();
  return sys_clock::time_point{
    std::chrono::duration_cast<sys_clock::duration>(std::chrono::seconds{at.seconds}) +
    std::chrono::duration_cast<sys_clock::duration>(std::chrono::nanoseconds{at.nanos})};
}

bool is_http_url(std::string_view href) {
  size_t authority = 0;
  if (equals_ci(href.substr(0, 8), "https://")) {
    authority = 8;
  } else if (equals_ci(href.substr(0, 7), "http://")) {
    authority = 7;
  } else {
    return false;
  }
  // A host must follow the scheme.
  return authority < href.size() && href[authority] != '/' && href[authority] != '?' &&
         href[authority] != '#';
}

// How a rejected href is named in a message: its scheme only, since the rest
// may carry credentials (user:secret@) or a presigned token.
std::string describe_scheme(std::string_view href) {
  const size_t end = href.find("://");
  const std::string_view scheme = href.substr(0, end);
  // RFC 3986: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
  bool valid = end != std::string_view::npos && end > 0 && end <= max_scheme;
  for (size_t i = 0; valid && i < scheme.size(); ++i) {
    const char c = scheme[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    valid = alpha || (i > 0 && ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.'));
  }
  return valid ? "scheme " + quote(scheme) : std::string{"no recognisable scheme"};
}

batch_action decode_action(const json& value, const std::string& where, const std::string& field,
                           sys_clock::time_point received_at) {
  if (!value.is_object())
    throw field_error{where + ": field '" + field + "' must be an object"};
  batch_action action;

  const json* href = find_member(value, "href");
  if (href == nullptr || !href->is_string() || href->get_ref<const std::string&>().empty()) {
    throw field_error{where + ": field '" + field + ".href' must be a non-empty string"};
  }
  const auto& url = href->get_ref<const std::string&>();
  if (!is_http_url(url)) {
    throw field_error{where + ": field '" + field +
                      ".href' must be an http:// or https:// URL, got " + describe_scheme(url)};
  }
  for (char c : url) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte <= 0x20 || byte == 0x7f) {
      throw field_error{where + ": field '" + field +
                        ".href' contains whitespace or a control character"};
    }
  }
  action.href = url;

  // git-lfs names the header map "header" (singular).
  if (const json* headers = find_optional(value, "header")) {
    if (!headers->is_object()) {
      throw field_error{where + ": field '" + field + ".header' must be an object"};
    }
    for (const auto& [name, header_value] : headers->items()) {
      if (!is_http_token(name)) {
        throw field_error{where + ": field '" + field + ".header' has an invalid header name " +
                          quote(name)};
      }
      if (!header_value.is_string()) {
        throw field_error{where + ": header '" + name + "' in '" + field +
                          ".header' must be a string"};
      }
      const auto& text = header_value.get_ref<const std::string&>();
      if (!is_safe_header_value(text)) {
        throw field_error{where + ": header '" + name + "' in '" + field +
                          ".header' contains a line break or control character"};
      }
      action.headers.emplace(name, text);
    }
  }

  // Both expiry fields are validated even though expires_in wins, so a
  // broken server is noticed whichever field it fills.
  std::optional<sys_clock::time_point> from_expires_at;
  if (const json* expires_at = find_optional(value, "expires_at")) {
    if (!expires_at->is_string()) {
      throw field_error{where + ": field '" + field + ".expires_at' must be an RFC 3339 string"};
    }
    const auto& text = expires_at->get_ref<const std::string&>();
    const auto parsed = parse_instant(text);
    if (!parsed) {
      throw field_error{where + ": field '" + field +
                        ".expires_at' is not an RFC 3339 time: " + quote(text)};
    }
    if (parsed->seconds != go_zero_time || parsed->nanos != 0) {
      from_expires_at = to_time_point(*parsed);
    }
  }
  std::optional<sys_clock::time_point> from_expires_in;
  if (const json* expires_in = find_optional(value, "expires_in")) {
    const auto seconds = as_int64(*expires_in);
    if (!seconds || *seconds < -max_expires_in || *seconds > max_expires_in) {
      throw field_error{where + ": field '" + field +
                        ".expires_in' must be an integer between -2147483647 and 2147483647"};
    }
    // git-lfs reads 0 as "not given" (Go's zero value), so it does not win.
    if (*seconds != 0)
      from_expires_in = add_saturating(received_at, std::chrono::seconds{*seconds});
  }
  action.expires_at = from_expires_in ? from_expires_in : from_expires_at;
  return action;
}

batch_object_error decode_object_error(const json& value, const std::string& where) {
  if (!value.is_object())
    throw field_error{where + ": field 'error' must be an object"};
  batch_object_error error;
  const json* code = find_member(value, "code");
  const auto number = code == nullptr ? std::nullopt : as_int64(*code);
  if (!number || *number < std::numeric_limits<int>::min() ||
      *number > std::numeric_limits<int>::max()) {
    throw field_error{where + ": field 'error.code' must be an integer"};
  }
  error.code = static_cast<int>(*number);
  if (const json* message = find_optional(value, "message")) {
    if (!message->is_string())
      throw field_error{where + ": field 'error.message' must be a string"};
    error.message = message->get<std::string>();
  }
  return error;
}

batch_object_result decode_object(const json& value, size_t index,
                                  sys_clock::time_point received_at) {
  std::string where = "object " + std::to_string(index);
  if (!value.is_object())
    throw field_error{where + ": must be a JSON object"};
  batch_object_result result;

  const json* oid = find_member(value, "oid");
  if (oid == nullptr)
    throw field_error{where + ": missing field 'oid'"};
  if (!oid->is_string())
    throw field_error{where + ": field 'oid' must be a string"};
  const auto& oid_text = oid->get_ref<const std::string&>();
  if (!is_valid_oid(oid_text)) {
    throw field_error{where + ": field 'oid' must be 64 lower-case hex characters, got " +
                      quote(oid_text)};
  }
  result.oid = oid_text;
  // From here on, messages name the object by its oid as well.
  where += " (" + result.oid + ")";

  const json* size = find_member(value, "size");
  if (size == nullptr)
    throw field_error{where + ": missing field 'size'"};
  const auto size_value = as_int64(*size);
  if (!size_value || *size_value < 0) {
    throw field_error{where + ": field 'size' must be a non-negative integer"};
  }
  result.size = *size_value;

  if (const json* authenticated = find_optional(value, "authenticated");
      authenticated != nullptr && !authenticated->is_boolean()) {
    throw field_error{where + ": field 'authenticated' must be a boolean"};
  }

  if (const json* actions = find_optional(value, "actions")) {
    if (!actions->is_object())
      throw field_error{where + ": field 'actions' must be an object"};
    const std::pair<const char*, std::optional<batch_action>*> slots[] = {
      {"download", &result.download}, {"upload", &result.upload}, {"verify", &result.verify}};
    for (const auto& [name, slot] : slots) {
      if (const json* action = find_optional(*actions, name)) {
        *slot = decode_action(*action, where, std::string{"actions."} + name, received_at);
      }
    }
  }

  if (const json* error = find_optional(value, "error")) {
    result.error = decode_object_error(*error, where);
  }
  return result;
}

batch_response decode_root(const json& root, sys_clock::time_point received_at) {
  batch_response response;
  // Checked first: a server hashing with another algorithm sends oids that
  // would otherwise fail with a far less helpful message.
  if (const json* hash_algo = find_optional(root, "hash_algo")) {
    if (!hash_algo->is_string())
      throw field_error{"field 'hash_algo' must be a string"};
    const auto& name = hash_algo->get_ref<const std::string&>();
    if (name != "sha256") {
      throw field_error{"server uses hash algorithm " + quote(name) + "; ferry supports sha256"};
    }
  }

  response.transfer = "basic";
  if (const json* transfer = find_optional(root, "transfer")) {
    if (!transfer->is_string())
      throw field_error{"field 'transfer' must be a string"};
    // An empty name is what Go servers send for "not chosen".
    if (!transfer->get_ref<const std::string&>().empty()) {
      response.transfer = transfer->get<std::string>();
    }
  }

  const json* objects = find_member(root, "objects");
  if (objects == nullptr)
    throw field_error{"missing field 'objects'"};
  if (!objects->is_array())
    throw field_error{"field 'objects' must be an array"};
  response.objects.reserve(objects->size());
  for (size_t i = 0; i < objects->size(); ++i) {
    response.objects.push_back(decode_object((*objects)[i], i, received_at));
  }
  return response;
}

bool looks_like_html(std::string_view body) {
  const size_t first = body.find_first_not_of(" \t\r\n");
  return first != std::string_view::npos && body[first] == '<';
}

// Proxies answer with HTML error pages; their text is what a user needs.
std::string strip_tags(std::string_view body) {
  std::string out;
  bool in_tag = false;
  for (char c : body) {
    if (c == '<') {
      in_tag = true;
      out += ' ';
    } else if (c == '>' && in_tag) {
      in_tag = false;
    } else if (!in_tag) {
      out += c;
    }
  }
  return out;
}

} // namespace

std::string encode_batch_request(const batch_request& request) {
  try {
    nlohmann::ordered_json body;
    body["operation"] = request.op == batch_operation::download ? "download" : "upload";
    if (!request.transfers.empty())
      body["transfers"] = request.transfers;
    if (request.ref && !request.ref->empty())
      body["ref"]["name"] = *request.ref;
    auto objects = nlohmann::ordered_json::array();
    for (const auto& object : request.objects) {
      nlohmann::ordered_json entry;
      entry["oid"] = object.oid;
      entry["size"] = object.size;
      objects.push_back(std::move(entry));
    }
    body["objects"] = std::move(objects);
    body["hash_algo"] = "sha256";
    return dump(body);
  } catch (const nlohmann::ordered_json::exception&) {
    // Unreachable with the replace error handler; kept so nothing escapes.
    return {};
  }
}

std::variant<batch_response, std::string> decode_batch_response(std::string_view body,
                                                                sys_clock::time_point received_at) {
  const std::string prefix = "invalid batch response: ";
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos)
    return prefix + "empty body";
  // The JSON parser treats NUL as end of input and would ignore what follows.
  if (const size_t at = body.find('\0'); at != std::string_view::npos) {
    return prefix + "body contains a NUL byte (at byte " + std::to_string(at) + ")";
  }
  if (nests_too_deep(body)) {
    return prefix + "JSON nests deeper than " + std::to_string(max_json_nesting) + " levels";
  }
  json root;
  try {
    root = json::parse(body);
  } catch (const json::parse_error& e) {
    // e.what() may quote an arbitrarily long token; quote the body ourselves.
    return prefix + "not valid JSON (syntax error at byte " + std::to_string(e.byte) +
           "): " + quote(body);
  } catch (const json::exception&) {
    return prefix + "not valid JSON: " + quote(body);
  }
  if (!root.is_object())
    return prefix + "body must be a JSON object, got " + quote(body);
  try {
    return decode_root(root, received_at);
  } catch (field_error& e) {
    return prefix + e.message;
  } catch (const json::exception& e) {
    return prefix + "could not be decoded: " + e.what();
  }
}

bool action_expires_soon(const batch_action& action, sys_clock::time_point now,
                         std::chrono::seconds margin) {
  if (!action.expires_at)
    return false;
  // Whole seconds plus a non-negative remainder, so that the difference of
  // two extreme time points cannot overflow: for a whole-second margin,
  // expires_at - now < margin exactly when floor(expires_at - now) < margin.
  static_assert(sys_clock::period::num == 1, "system_clock ticks are fractions of a second");
  constexpr rep ticks_per_second = sys_clock::period::den;
  const auto split = [](sys_clock::time_point at) {
    const rep ticks = at.time_since_epoch().count();
    rep whole = ticks / ticks_per_second;
    rep rest = ticks % ticks_per_second;
    if (rest < 0) {
      --whole;
      rest += ticks_per_second;
    }
    return std::pair<rep, rep>{whole, rest};
  };
  const auto [expiry_seconds, expiry_rest] = split(*action.expires_at);
  const auto [now_seconds, now_rest] = split(now);
  const int64_t whole =
    static_cast<int64_t>(expiry_seconds - now_seconds) - (expiry_rest < now_rest ? 1 : 0);
  return whole < margin.count();
}

std::optional<sys_clock::time_point> parse_rfc3339(std::string_view text) {
  const auto parsed = parse_instant(text);
  if (!parsed)
    return std::nullopt;
  return to_time_point(*parsed);
}

std::string decode_error_message(std::string_view body) {
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    return "(empty response body)";
  }
  if (body.find('\0') == std::string_view::npos && !nests_too_deep(body)) {
    try {
      const json root = json::parse(body);
      const json* message = root.is_object() ? find_member(root, "message") : nullptr;
      if (message != nullptr && message->is_string()) {
        std::string out = clean(message->get_ref<const std::string&>(), max_message);
        if (!out.empty()) {
          if (const json* id = find_member(root, "request_id"); id != nullptr && id->is_string()) {
            const std::string text = clean(id->get_ref<const std::string&>(), max_quote);
            if (!text.empty())
              out += " (request id " + text + ")";
          }
          if (const json* url = find_member(root, "documentation_url");
              url != nullptr && url->is_string()) {
            const std::string text = clean(url->get_ref<const std::string&>(), max_message);
            if (!text.empty())
              out += "; see " + text;
          }
          return out;
        }
      }
    } catch (const json::exception&) {
      // Not JSON: fall through to quoting the body.
    }
  }
  std::string out =
    clean(looks_like_html(body) ? strip_tags(body) : std::string{body}, max_message);
  return out.empty() ? "(response body has no printable text)" : out;
}

std::string batch_object_error_message(const batch_object_error& error) {
  std::string text;
  switch (error.code) {
    case 404:
      text = "object not found on the server";
      break;
    case 409:
      text = "hash algorithm disagreement with the server";
      break;
    case 410:
      text = "object removed by its owner";
      break;
    case 422:
      text = "server rejected the object as invalid";
      break;
    default:
      text = error.code >= 500 ? "server failed to handle the object" : "server refused the object";
      break;
  }
  text += " (error " + std::to_string(error.code) + ")";
  const std::string message = clean(error.message, max_message);
  if (!message.empty())
    text += ": " + message;
  return text;
}

} // namespace ferry::protocol
