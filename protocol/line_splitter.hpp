#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::protocol {

/// Splits a byte stream into lines with a length cap, so one hostile line
/// cannot exhaust memory. Pure: the caller feeds bytes it read.
class line_splitter {
public:
  struct line {
    /// The line without its '\n' (and without a trailing '\r'); empty when
    /// `too_long`.
    std::string text;
    /// The line exceeded the cap; its bytes were dropped up to its '\n'.
    bool too_long = false;
  };

  explicit line_splitter(size_t max_line_bytes) : max_(max_line_bytes) {}

  /// Consumes bytes and returns every line they complete.
  std::vector<line> feed(std::string_view bytes);

  /// At end of input: a last line without '\n', if any.
  std::vector<line> finish();

  size_t max_line_bytes() const { return max_; }

private:
  size_t max_;
  std::string partial_;
  bool discarding_ = false;
};

} // namespace ferry::protocol
