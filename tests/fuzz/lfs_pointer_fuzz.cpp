// Fuzzes parse_lfs_pointer (protocol/lfs_pointer.hpp): the whole input is a
// blob from a repository, which may or may not be a Git LFS pointer.
// Promises checked, besides "never throws":
// - only texts of at most max_pointer_bytes that start with a known version
//   line parse, and what they give is a valid oid and a non-negative size,
//   both literally present as `oid sha256:<oid>` and `size <size>` lines;
// - the canonical pointer git-lfs would write for that oid and size parses
//   to the same;
// - the two deviations accepted on purpose do not change the result: a
//   missing final newline, and CRLF line ends.

#include "fuzz_check.hpp"

#include "protocol/lfs_pointer.hpp"
#include "protocol/transfer_protocol.hpp"

#include <string>

namespace {

using namespace ferry::protocol;

bool same(const std::optional<lfs_pointer>& a, const std::optional<lfs_pointer>& b) {
  if (a.has_value() != b.has_value())
    return false;
  return !a || (a->oid == b->oid && a->size == b->size);
}

// True when one of the lines (without "\n" or "\r\n") is `line`.
bool has_line(std::string_view text, std::string_view line) {
  while (!text.empty()) {
    std::string_view each = text.substr(0, text.find('\n'));
    text.remove_prefix(std::min(text.size(), each.size() + 1));
    if (!each.empty() && each.back() == '\r')
      each.remove_suffix(1);
    if (each == line)
      return true;
  }
  return false;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = ferry::fuzz::as_text(data, size);
  const auto pointer = parse_lfs_pointer(text);

  if (pointer) {
    FUZZ_CHECK(text.size() <= max_pointer_bytes);
    FUZZ_CHECK(text.rfind("version https://git-lfs.github.com/spec/v1", 0) == 0 ||
               text.rfind("version https://hawser.github.com/spec/v1", 0) == 0);
    FUZZ_CHECK(is_valid_oid(pointer->oid));
    FUZZ_CHECK(pointer->size >= 0);
    FUZZ_CHECK(has_line(text, "oid sha256:" + pointer->oid));
    FUZZ_CHECK(has_line(text, "size " + std::to_string(pointer->size)));

    const std::string canonical =
      "version https://git-lfs.github.com/spec/v1\noid sha256:" + pointer->oid + "\nsize " +
      std::to_string(pointer->size) + "\n";
    FUZZ_CHECK(same(parse_lfs_pointer(canonical), pointer));
  }

  // Without the final newline, and with CRLF line ends: the same answer.
  if (!text.empty() && text.back() == '\n' && (text.size() < 2 || text[text.size() - 2] != '\n'))
    FUZZ_CHECK(same(parse_lfs_pointer(text.substr(0, text.size() - 1)), pointer));
  if (text.find('\r') == std::string_view::npos) {
    std::string crlf;
    for (char c : text)
      crlf += c == '\n' ? std::string{"\r\n"} : std::string{c};
    if (crlf.size() <= max_pointer_bytes)
      FUZZ_CHECK(same(parse_lfs_pointer(crlf), pointer));
  }
  return 0;
}
