#pragma once

// Running a helper program once: a request on its stdin, its stdout and
// stderr collected, a deadline, and no process left behind.

#include "protocol/status.hpp"

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace ferry {

/// How to run a child process.
struct child_options {
  /// The program and its arguments. A program name without '/' is looked up
  /// in the PATH of `environment` (not Ferry's own).
  std::vector<std::string> argv;
  /// The child's whole environment, as NAME=value entries.
  std::vector<std::string> environment;
  /// Written to the child's stdin, which is then closed.
  std::string input;
  /// The whole run may take this long; then the child's process group is
  /// killed (SIGKILL) and the result says timed_out.
  std::chrono::milliseconds timeout{60000};
  /// stdout beyond this many bytes is dropped and output_truncated is set.
  size_t max_output = size_t{64} << 20;
  /// stderr beyond this many bytes is dropped.
  size_t max_diagnostics = size_t{64} << 10;
};

/// How a child process ended and what it wrote.
struct child_result {
  /// The exit status when it exited by itself, else -1.
  int exit_code = -1;
  /// The signal that ended it, else 0 (SIGKILL after a timeout).
  int signal = 0;
  bool timed_out = false;
  bool output_truncated = false;
  std::string output;
  std::string diagnostics;
};

/// Runs a child to its end and collects what it wrote.
///
/// The child gets a process group of its own and is killed (SIGKILL) if
/// Ferry dies first (PR_SET_PDEATHSIG: tied to the calling thread, which is
/// blocked here for the whole run). When the child ends, or on timeout,
/// its whole process group is killed, so no helper it started outlives it.
/// It inherits no descriptors but its three pipes. Writing to a child that
/// has closed its stdin is no error, and never raises SIGPIPE in Ferry.
///
/// Errors only when the child cannot be started: errc::not_found when the
/// program does not exist (the message names it and the PATH searched),
/// errc::permission_denied when it is a directory or another non-file, or
/// not executable, errc::io_error for anything else (pipes, fork).
result<child_result> run_child(const child_options& options);

/// Splits a command line into words, as a shell would without expanding
/// anything: blanks separate words; '...' keeps everything literally;
/// "..." keeps everything but `\"` and `\\`; a backslash outside quotes
/// keeps the next character. An unclosed quote or a trailing backslash is
/// errc::config_error; so is a line with no words.
result<std::vector<std::string>> split_command_line(const std::string& line);

} // namespace ferry
