// Fuzzes protocol::line_splitter (protocol/line_splitter.hpp), which cuts
// Ferry's stdin (and inventory files) into lines with a length cap.
// Input: byte 0 is the cap (0-255), byte 1 seeds how the rest is cut into
// feed() calls; the rest is the stream. Promises checked:
// - no line is longer than the cap, none holds '\n', and a too_long line is
//   empty;
// - the lines are exactly those of a plain reference split (on '\n', one
//   trailing '\r' dropped, longer than the cap = too_long, a last line
//   without '\n' only from finish() and only when not empty);
// - so the result does not depend on how the bytes arrive: one feed() of
//   everything and many small ones give the same lines.

#include "fuzz_check.hpp"

#include "protocol/line_splitter.hpp"

#include <string>
#include <vector>

namespace {

using ferry::protocol::line_splitter;
using line = line_splitter::line;

std::vector<line> reference(std::string_view stream, size_t cap) {
  std::vector<line> lines;
  auto add = [&](std::string_view text) {
    if (!text.empty() && text.back() == '\r')
      text.remove_suffix(1);
    if (text.size() > cap)
      lines.push_back({std::string{}, true});
    else
      lines.push_back({std::string{text}, false});
  };
  size_t start = 0;
  for (size_t newline; (newline = stream.find('\n', start)) != std::string_view::npos;
       start = newline + 1)
    add(stream.substr(start, newline - start));
  std::string_view last = stream.substr(start);
  if (!last.empty() && last != "\r")
    add(last);
  return lines;
}

void check_lines(const std::vector<line>& lines, size_t cap) {
  for (const auto& each : lines) {
    FUZZ_CHECK(each.text.size() <= cap);
    FUZZ_CHECK(each.text.find('\n') == std::string::npos);
    if (each.too_long)
      FUZZ_CHECK(each.text.empty());
  }
}

bool same(const std::vector<line>& a, const std::vector<line>& b) {
  if (a.size() != b.size())
    return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].text != b[i].text || a[i].too_long != b[i].too_long)
      return false;
  return true;
}

void append(std::vector<line>& to, std::vector<line> more) {
  for (auto& each : more)
    to.push_back(std::move(each));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input = ferry::fuzz::as_text(data, size);
  const size_t cap = ferry::fuzz::take_byte(input);
  uint32_t state = ferry::fuzz::take_byte(input) * 2654435761u + 1;
  const std::string_view stream = input;

  line_splitter whole(cap);
  FUZZ_CHECK(whole.max_line_bytes() == cap);
  std::vector<line> at_once = whole.feed(stream);
  check_lines(at_once, cap);
  append(at_once, whole.finish());

  line_splitter pieces(cap);
  std::vector<line> piecewise;
  while (!input.empty()) {
    // Pieces of 0 to 2 * cap + 3 bytes: around the cap is where it matters.
    state = state * 1103515245u + 12345u;
    const size_t length = std::min<size_t>((state >> 8) % (2 * cap + 4), input.size());
    auto lines = pieces.feed(input.substr(0, length));
    check_lines(lines, cap);
    append(piecewise, std::move(lines));
    input.remove_prefix(length);
  }
  auto rest = pieces.finish();
  check_lines(rest, cap);
  append(piecewise, std::move(rest));
  // After finish() the splitter starts afresh.
  FUZZ_CHECK(pieces.finish().empty());

  const auto expected = reference(stream, cap);
  FUZZ_CHECK(same(at_once, expected));
  FUZZ_CHECK(same(piecewise, expected));
  return 0;
}
