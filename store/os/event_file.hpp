#pragma once

// The file Ferry's event stream is appended to (`ferry.eventsFile`).

#include "protocol/status.hpp"
#include "store/os/file_io.hpp"

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>

namespace ferry {

/// Appends lines to a file opened with O_APPEND, each line in one write(),
/// so that several threads, or several agents sharing the file, never
/// interleave within a line. Safe to use from any thread.
class event_file {
public:
  /// Creates the file (readable by the user alone) or appends to it.
  static result<std::shared_ptr<event_file>> open(const std::filesystem::path& path);

  /// Appends `line` and a newline. The first failure is returned; later
  /// ones return success, so a full disk is reported once, not per event.
  status append(const std::string& line);

  const std::filesystem::path& path() const { return path_; }

private:
  event_file(std::filesystem::path path, fd_guard fd)
      : path_(std::move(path)), fd_(std::move(fd)) {}

  std::filesystem::path path_;
  fd_guard fd_;
  std::atomic<bool> failed_{false};
};

} // namespace ferry
