#include "protocol/line_splitter.hpp"

namespace ferry::protocol {

namespace {

// A line of exactly the cap may still carry a '\r' before its '\n', so the
// buffer holds at most one byte more than the cap.
bool within_cap(size_t size, size_t max) { return size <= max + 1; }

} // namespace

std::vector<line_splitter::line> line_splitter::feed(std::string_view bytes) {
  std::vector<line> lines;
  while (!bytes.empty()) {
    const size_t newline = bytes.find('\n');
    const std::string_view chunk = bytes.substr(0, newline);
    if (!discarding_) {
      if (within_cap(partial_.size() + chunk.size(), max_)) {
        partial_.append(chunk);
      } else {
        // Drop the long line now rather than buffering it up to its '\n'.
        partial_.clear();
        partial_.shrink_to_fit();
        discarding_ = true;
      }
    }
    if (newline == std::string_view::npos)
      break;
    bytes.remove_prefix(newline + 1);
    if (!partial_.empty() && partial_.back() == '\r')
      partial_.pop_back();
    if (discarding_ || partial_.size() > max_) {
      lines.push_back({std::string{}, true});
    } else {
      lines.push_back({std::move(partial_), false});
    }
    partial_.clear();
    discarding_ = false;
  }
  return lines;
}

std::vector<line_splitter::line> line_splitter::finish() {
  std::vector<line> lines;
  if (!partial_.empty() && partial_.back() == '\r')
    partial_.pop_back();
  if (discarding_ || partial_.size() > max_) {
    lines.push_back({std::string{}, true});
  } else if (!partial_.empty()) {
    lines.push_back({std::move(partial_), false});
  }
  partial_.clear();
  discarding_ = false;
  return lines;
}

} // namespace ferry::protocol
