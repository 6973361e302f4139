#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "protocol/lfs_pointer.hpp"

using namespace ferry::protocol;

namespace {

const std::string oid_hex = "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393";
const std::string other_hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const std::string version_line = "version https://git-lfs.github.com/spec/v1\n";
const std::string oid_line = "oid sha256:" + oid_hex + "\n";

/// The pointer git-lfs writes for `oid_hex` and `size`.
std::string canonical(const std::string& size = "12345") {
  return version_line + oid_line + "size " + size + "\n";
}

} // namespace

TEST_CASE("parse_lfs_pointer reads the pointers the spec allows") {
  const std::vector<std::pair<const char*, std::string>> accepted = {
    {"as git-lfs writes it", canonical()},
    {"the pre-release version URL",
     "version https://hawser.github.com/spec/v1\n" + oid_line + "size 12345\n"},
    {"extensions in priority order", version_line + "ext-0-foo sha256:" + other_hex +
                                       "\next-1-bar sha256:" + oid_hex + "\n" + oid_line +
                                       "size 12345\n"},
    {"an unknown key between version and oid",
     version_line + "custom.key-1 any value\n" + oid_line + "size 12345\n"},
    {"an unknown key after size", canonical() + "zeta x\n"},
    {"an unknown key with UTF-8 in its value", canonical() + "zeta \xc3\xa9t\xc3\xa9\n"},
    // git-lfs's own reader takes these too, so their objects are real.
    {"no newline after the last line", canonical().substr(0, canonical().size() - 1)},
    {"CRLF line ends",
     "version https://git-lfs.github.com/spec/v1\r\noid sha256:" + oid_hex + "\r\nsize 12345\r\n"},
  };
  for (const auto& [what, text] : accepted) {
    INFO(what);
    auto pointer = parse_lfs_pointer(text);
    REQUIRE(pointer);
    CHECK(pointer->oid == oid_hex);
    CHECK(pointer->size == 12345);
  }
}

TEST_CASE("parse_lfs_pointer reads the whole size range") {
  auto empty_object = parse_lfs_pointer(canonical("0"));
  REQUIRE(empty_object);
  CHECK(empty_object->size == 0);

  auto largest = parse_lfs_pointer(canonical("9223372036854775807"));
  REQUIRE(largest);
  CHECK(largest->size == std::numeric_limits<int64_t>::max());
}

TEST_CASE("parse_lfs_pointer takes max_pointer_bytes and not one more") {
  std::string padded = canonical() + "zeta ";
  // Pad the last value so the text is exactly max_pointer_bytes long.
  padded += std::string(max_pointer_bytes - padded.size() - 1, 'x') + "\n";
  REQUIRE(padded.size() == max_pointer_bytes);
  CHECK(parse_lfs_pointer(padded));

  std::string one_more = padded;
  one_more.insert(one_more.size() - 1, "x");
  CHECK_FALSE(parse_lfs_pointer(one_more));
}

TEST_CASE("parse_lfs_pointer rejects what is not a pointer") {
  const std::string good = canonical();
  const std::vector<std::pair<const char*, std::string>> rejected = {
    {"empty text", ""},
    {"a regular small file", "hello world\n"},
    {"a blank line at the end", good + "\n"},
    {"a blank line in the middle", version_line + "\n" + oid_line + "size 12345\n"},
    {"a byte-order mark", "\xef\xbb\xbf" + good},
    {"an unknown version",
     "version https://git-lfs.github.com/spec/v2\n" + oid_line + "size 12345\n"},
    {"the alpha version URL", "version http://git-media.io/v/2\n" + oid_line + "size 12345\n"},
    {"a version differing in case",
     "version https://Git-LFS.github.com/spec/v1\n" + oid_line + "size 12345\n"},
    {"version not first", oid_line + version_line + "size 12345\n"},
    {"version twice", version_line + oid_line + "size 12345\n" + version_line},
    {"keys out of order", version_line + "size 12345\n" + oid_line},
    {"a key twice", version_line + oid_line + oid_line + "size 12345\n"},
    {"no oid", version_line + "size 12345\n"},
    {"no size", version_line + oid_line},
    {"two spaces after a key", version_line + "oid  sha256:" + oid_hex + "\nsize 12345\n"},
    {"a tab after a key", version_line + "oid\tsha256:" + oid_hex + "\nsize 12345\n"},
    {"a key without value", version_line + oid_line + "size 12345\nzeta\n"},
    {"an upper-case key", version_line + oid_line + "size 12345\nZeta x\n"},
    {"another hash algorithm", version_line + "oid sha512:" + oid_hex + "\nsize 12345\n"},
    {"no hash algorithm", version_line + "oid " + oid_hex + "\nsize 12345\n"},
    {"upper-case hex", version_line + "oid sha256:4D7A214614AB2935C943F9E0FF69D22EADBB8F32B125"
                                      "8DAAA5E2CA24D17E2393\nsize 12345\n"},
    {"63 hex digits", version_line + "oid sha256:" + oid_hex.substr(1) + "\nsize 12345\n"},
    {"65 hex digits", version_line + "oid sha256:" + oid_hex + "0\nsize 12345\n"},
    {"a non-hex digit", version_line + "oid sha256:" + oid_hex.substr(1) + "g\nsize 12345\n"},
    {"a negative size", canonical("-1")},
    {"a size with a plus sign", canonical("+12345")},
    {"a size with leading zeros", canonical("012345")},
    {"a size past int64", canonical("9223372036854775808")},
    {"a size in hex", canonical("0x10")},
    {"a size with a fraction", canonical("12.5")},
    {"an empty size", canonical("")},
    {"a size with a trailing blank", canonical("12345 ")},
    {"an extension with a letter for priority",
     version_line + "ext-a-foo sha256:" + other_hex + "\n" + oid_line + "size 12345\n"},
    {"an extension with a two-digit priority",
     version_line + "ext-10-foo sha256:" + other_hex + "\n" + oid_line + "size 12345\n"},
    {"an extension without a name",
     version_line + "ext-0- sha256:" + other_hex + "\n" + oid_line + "size 12345\n"},
    {"an extension without an oid", version_line + "ext-0-foo x\n" + oid_line + "size 12345\n"},
    {"two extensions at one priority", version_line + "ext-0-bar sha256:" + other_hex +
                                         "\next-0-foo sha256:" + oid_hex + "\n" + oid_line +
                                         "size 12345\n"},
    {"invalid UTF-8", canonical() + "zeta \xc3\n"},
    {"an overlong UTF-8 form", canonical() + "zeta \xc0\xaf\n"},
    {"a UTF-16 surrogate in UTF-8", canonical() + "zeta \xed\xa0\x80\n"},
  };
  for (const auto& [what, text] : rejected) {
    INFO(what);
    CHECK_FALSE(parse_lfs_pointer(text));
  }
}

TEST_CASE("parse_lfs_pointer reads text with NUL bytes without overrunning it") {
  std::string with_nul = canonical();
  with_nul.insert(with_nul.begin() + 3, '\0');
  CHECK_FALSE(parse_lfs_pointer(with_nul));
  // The view's length is what counts, not a terminator.
  std::string longer = canonical() + "trailing bytes";
  CHECK(parse_lfs_pointer(std::string_view(longer).substr(0, canonical().size())));
}
