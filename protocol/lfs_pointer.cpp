#include "protocol/lfs_pointer.hpp"

#include <algorithm>
#include <bitset>
#include <charconv>

// The grammar is the spec's (docs/spec.md of git-lfs), taken literally:
// every line is `key value\n`, one space, keys of [a-z0-9.-] in strictly
// ascending order after `version`, UTF-8 only. Where the spec leaves a
// value's form open, only the form git-lfs writes is accepted: lower-case
// hex, `size` in plain decimal without sign or leading zeros. Two
// deviations git-lfs's own reader also takes are accepted, so that no
// object a checkout would fetch is left out of a migration: a missing
// final newline and CRLF line ends. Keys the spec allows but this
// reader does not need are accepted and skipped, as the spec asks tools to
// preserve them rather than reject them.

namespace ferry::protocol {

namespace {

constexpr std::string_view current_version = "https://git-lfs.github.com/spec/v1";
constexpr std::string_view prerelease_version = "https://hawser.github.com/spec/v1";
constexpr std::string_view oid_prefix = "sha256:";
constexpr size_t sha256_hex_digits = 64;
constexpr std::string_view extension_prefix = "ext-";

bool is_key_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
}

bool is_valid_key(std::string_view key) {
  if (key.empty())
    return false;
  for (char c : key) {
    if (!is_key_char(c))
      return false;
  }
  return true;
}

bool is_lower_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

/// The hex digits of `sha256:<64 lower-case hex>`, or nullopt.
std::optional<std::string_view> sha256_digits(std::string_view value) {
  if (value.substr(0, oid_prefix.size()) != oid_prefix)
    return std::nullopt;
  std::string_view digits = value.substr(oid_prefix.size());
  if (digits.size() != sha256_hex_digits)
    return std::nullopt;
  for (char c : digits) {
    if (!is_lower_hex(c))
      return std::nullopt;
  }
  return digits;
}

/// A size as git-lfs writes it (`%d` of a non-negative int64), or nullopt.
std::optional<int64_t> canonical_size(std::string_view value) {
  if (value.empty() || (value.size() > 1 && value.front() == '0'))
    return std::nullopt;
  for (char c : value) {
    if (c < '0' || c > '9')
      return std::nullopt;
  }
  int64_t size = 0;
  auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), size);
  if (error != std::errc{} || end != value.data() + value.size())
    return std::nullopt;
  return size;
}

/// The priority (0-9) of an extension key `ext-<digit>-<name>`, or -1.
int extension_priority(std::string_view key) {
  std::string_view rest = key.substr(extension_prefix.size());
  if (rest.size() < 3 || rest[0] < '0' || rest[0] > '9' || rest[1] != '-')
    return -1;
  return rest[0] - '0';
}

/// Well-formed UTF-8: no stray continuation bytes, no overlong forms, no
/// surrogates, nothing above U+10FFFF.
bool is_utf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    auto lead = static_cast<unsigned char>(text[i]);
    if (lead < 0x80) {
      ++i;
      continue;
    }
    // Length, payload bits of the lead byte, smallest code of that length.
    size_t length = 4;
    uint32_t code = lead & 0x07u;
    uint32_t smallest = 0x10000;
    if ((lead & 0xE0) == 0xC0) {
      length = 2;
      code = lead & 0x1Fu;
      smallest = 0x80;
    } else if ((lead & 0xF0) == 0xE0) {
      length = 3;
      code = lead & 0x0Fu;
      smallest = 0x800;
    } else if ((lead & 0xF8) != 0xF0) {
      return false;
    }
    if (text.size() - i < length)
      return false;
    for (size_t k = 1; k < length; ++k) {
      auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0) != 0x80)
        return false;
      code = (code << 6) | (next & 0x3F);
    }
    if (code < smallest || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF))
      return false;
    i += length;
  }
  return true;
}

} // namespace

std::optional<lfs_pointer> parse_lfs_pointer(std::string_view text) {
  if (text.empty() || text.size() > max_pointer_bytes || !is_utf8(text))
    return std::nullopt;

  std::optional<std::string_view> oid;
  std::optional<int64_t> size;
  std::bitset<10> priorities_seen;
  bool first_line = true;
  std::string_view previous_key;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = std::min(text.find('\n', start), text.size());
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    if (!line.empty() && line.back() == '\r')
      line.remove_suffix(1);

    size_t space = line.find(' ');
    if (space == std::string_view::npos)
      return std::nullopt;
    std::string_view key = line.substr(0, space);
    std::string_view value = line.substr(space + 1);
    // One space only, and no CR inside a value.
    if (!is_valid_key(key) || value.find('\r') != std::string_view::npos ||
        (!value.empty() && value.front() == ' '))
      return std::nullopt;

    if (first_line) {
      if (key != "version" || (value != current_version && value != prerelease_version))
        return std::nullopt;
      first_line = false;
      continue;
    }
    // `version` stands outside the order: the others ascend after it.
    if (key <= previous_key || key == "version")
      return std::nullopt;
    if (key == "oid") {
      oid = sha256_digits(value);
      if (!oid)
        return std::nullopt;
    } else if (key == "size") {
      size = canonical_size(value);
      if (!size)
        return std::nullopt;
    } else if (key.substr(0, extension_prefix.size()) == extension_prefix) {
      // An extension names the object before it ran; a malformed one, or
      // two at one priority, would make the pointer impossible to smudge.
      int priority = extension_priority(key);
      if (priority < 0 || priorities_seen.test(static_cast<size_t>(priority)) ||
          !sha256_digits(value))
        return std::nullopt;
      priorities_seen.set(static_cast<size_t>(priority));
    }
    previous_key = key;
  }
  if (!oid || !size)
    return std::nullopt;
  return lfs_pointer{std::string(*oid), *size};
}

} // namespace ferry::protocol
