#pragma once

// How one log line and one trace line look, as plain functions: no I/O, no
// logger. actors/logging.hpp plugs them into spdlog.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ferry {

/// ferry.log's line format (ferry.logFormat).
enum class log_format {
  /// logfmt-like: `time=.. level=info pid=123 cid=.. oid=.. msg="upload: done"`.
  text,
  /// One JSON object per line, the same fields.
  json,
};

/// "text" or "json"; std::nullopt for anything else.
std::optional<log_format> parse_log_format(std::string_view name);

/// The fields of a line about one object transfer; empty ones are left out.
struct log_fields {
  std::string_view oid;
  /// The transfer's correlation id (transfer_record::cid).
  std::string_view cid;
};

struct log_entry {
  std::chrono::system_clock::time_point time;
  std::string_view level; ///< "info", "warning", ...
  int64_t pid = 0;
  log_fields fields;
  std::string_view message;
};

/// One line, without the newline: fields in the order time (UTC, milliseconds),
/// level, pid, cid, oid, msg. Whatever the fields hold (a hostile peer's oid
/// or error text), the result is exactly one line whose fields cannot be
/// forged: text values with spaces, quotes, '=' or control characters are
/// quoted and escaped (\", \\, \n, \r, \t, \u00XX); JSON is dumped with
/// invalid UTF-8 replaced by U+FFFD.
std::string format_log_line(log_format format, const log_entry& entry);

/// A trace line as git-lfs writes its own (`GIT_TRACE`), without the newline:
/// `15:04:05.123456 trace ferry: <message> oid=.. cid=..` in local time. The
/// message's control characters are escaped as in format_log_line, so it
/// stays one line.
std::string format_trace_line(std::chrono::system_clock::time_point time, const log_fields& fields,
                              std::string_view message);

/// Where GIT_TRACE sends trace lines, read as git reads it: unset, "", "0"
/// or "false" (any case) is off; "true" (any case) or a single digit 1-9
/// is stderr (git-lfs puts its agent's stderr into its own trace); an
/// absolute path is that file, appended to. Other values are off (git warns
/// about them itself).
struct git_trace_target {
  enum class kind { off, stderr_stream, file };
  kind where = kind::off;
  std::string path; ///< for kind::file
};

git_trace_target parse_git_trace(const char* value);

} // namespace ferry
