#pragma once

#include "protocol/log_line.hpp"

#include <spdlog/logger.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <utility>

namespace ferry {

/// The process-wide logger. Logs go to stderr and, once configured, a log
/// file; never to stdout, which carries the transfer protocol. Lines about
/// one object transfer go through log_event(), which adds its oid and cid.
std::shared_ptr<spdlog::logger> log();

/// What configure_logging() sets up.
struct logging_options {
  std::string level = "info";
  /// Empty: stderr only.
  std::filesystem::path file;
  log_format format = log_format::text;
  /// GIT_TRACE (parse_git_trace()): when on, every line at debug level or
  /// worse also goes there as a git-lfs-style trace line.
  git_trace_target trace;
};

/// Sends warnings and worse to stderr and everything at `level` or worse to
/// `file` (rotated at 5 MiB, 3 files kept), in the options' format (see
/// format_log_line()), and with a trace, everything at debug or worse there
/// too (format_trace_line()). Returns an error message, empty on success; a
/// trace file that cannot be opened is a warning, not an error (git does the
/// same).
std::string configure_logging(const logging_options& options);

/// A logger that writes only `options.file` (rotated as configure_logging()
/// rotates it), in its format, at its level; null after saying why in
/// `problem`. The daemon writes each repository's own log with one.
std::shared_ptr<spdlog::logger> file_logger(const logging_options& options, std::string& problem);

/// A line logged with log_event(), as a tap gets it. The fields are also
/// this thread's (another logger called from the tap writes them too).
struct object_line {
  std::chrono::system_clock::time_point time;
  spdlog::level::level_enum level;
  log_fields fields;
  std::string_view message;
};

/// While the returned handle lives, each line logged with log_event() about
/// `oid` at `level` or worse also goes to `tap`, on the thread that logs it:
/// the daemon gives each agent the lines about its own objects (its
/// repository's log, its git-lfs trace). The process's logger lets such
/// lines through meanwhile, whatever its own level.
std::shared_ptr<void> tap_object_lines(std::string oid, spdlog::level::level_enum level,
                                       std::function<void(const object_line&)> tap);

namespace detail {

/// Makes `fields` the fields of the lines logged on this thread while it
/// lives. spdlog formats a line synchronously, on the thread that logs it,
/// so the formatter finds them there.
class scoped_log_fields {
public:
  explicit scoped_log_fields(const log_fields& fields);
  ~scoped_log_fields();
  scoped_log_fields(const scoped_log_fields&) = delete;
  scoped_log_fields& operator=(const scoped_log_fields&) = delete;

private:
  const log_fields* previous_;
};

} // namespace detail

/// Logs one line about an object transfer: its oid and correlation id go
/// into fields of their own (`cid=.. oid=..`), not into the message.
template <class... Args>
void log_event(spdlog::level::level_enum level, const log_fields& fields,
               spdlog::format_string_t<Args...> format, Args&&... args) {
  auto logger = log();
  if (!logger->should_log(level))
    return;
  detail::scoped_log_fields scope{fields};
  logger->log(level, format, std::forward<Args>(args)...);
}

} // namespace ferry
