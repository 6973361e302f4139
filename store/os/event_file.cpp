#include "store/os/event_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace ferry {

result<std::shared_ptr<event_file>> event_file::open(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    return from_errno(errno, "cannot open the events file " + path.string());
  return std::shared_ptr<event_file>{new event_file{path, fd_guard{fd}}};
}

status event_file::append(const std::string& line) {
  std::string out = line + "\n";
  ssize_t n = 0;
  do {
    n = ::write(fd_.get(), out.data(), out.size());
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(out.size()))
    return status::success();
  int error = n < 0 ? errno : EIO;
  if (failed_.exchange(true))
    return status::success();
  return from_errno(error, "cannot write to the events file " + path_.string());
}

} // namespace ferry
