#pragma once

// Running a helper program once: a request on its stdin, its stdout and
// stderr collected, a deadline, and no process left behind.

#include "protocol/status.hpp"
#include "store/os/file_io.hpp"

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace ferry {

/// How to start a child process (child_process::start).
struct child_launch {
  /// Marks a standard descriptor of the child as a new pipe to Ferry.
  static constexpr int pipe = -1;

  /// The program and its arguments. A program name without '/' is looked up
  /// in the PATH of `environment` (not Ferry's own).
  std::vector<std::string> argv;
  /// The child's whole environment, as NAME=value entries.
  std::vector<std::string> environment;
  /// The directory the child starts in; empty: Ferry's current directory.
  std::filesystem::path directory;
  /// The child's stdin, stdout and stderr, in that order: each a descriptor
  /// of Ferry's that the child gets a copy of (Ferry still closes its own),
  /// or `pipe` for a new pipe whose other end the child_process holds.
  int stdio[3] = {pipe, pipe, pipe};
  /// A process group of its own, which kill() ends as a whole, so no helper
  /// the child started outlives it. Without one the child stays in Ferry's
  /// group, where the terminal still reaches it (a credential helper may
  /// prompt there) and helpers it leaves behind (a credential cache daemon)
  /// live on; kill() then ends the child alone.
  bool own_process_group = true;
};

/// How a child ended: the exit status when it exited by itself, else -1;
/// the signal that ended it, else 0. Both unset when it cannot be told.
struct child_exit {
  int exit_code = -1;
  int signal = 0;
  bool known() const { return exit_code >= 0 || signal != 0; }
};

/// A started child process. It is killed (SIGKILL) if Ferry dies first
/// (PR_SET_PDEATHSIG: tied to the thread that started it, which must
/// outlive it). It inherits no descriptors but its three standard ones, no
/// blocked signals, SIGPIPE and SIGINT at their defaults, and the user's
/// umask rather than Ferry's private one. Destroying one still running
/// kills and reaps it, so no path out of the caller leaves it behind.
class child_process {
public:
  /// Starts the child and waits until it has run its program. Errors only
  /// when it cannot be started: errc::not_found when the program does not
  /// exist (the message names it and the PATH searched) or the directory
  /// does not, errc::permission_denied when the program is a directory or
  /// another non-file, or not executable, errc::io_error for anything else
  /// (pipes, fork). Messages start "cannot run '<program>'".
  static result<child_process> start(const child_launch& launch);

  child_process() = default;
  child_process(child_process&& other) noexcept;
  child_process& operator=(child_process&& other) noexcept;
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;
  ~child_process();

  /// Ferry's ends of the pipes to the child's stdin, stdout and stderr:
  /// non-blocking and closed on exec; -1 for a descriptor not made a pipe.
  /// The caller reads, writes and closes them as it needs.
  fd_guard& input() { return input_; }
  fd_guard& output() { return output_; }
  fd_guard& diagnostics() { return diagnostics_; }

  /// A descriptor readable once the child has exited (a pidfd); -1 when
  /// the kernel has none, and has_exited() must be asked from time to time.
  int exit_watch() const { return exit_watch_.get(); }

  /// Whether the child has ended, without reaping it: until wait() its pid,
  /// and so its process group id, cannot be reused, which keeps kill() safe.
  bool has_exited() const;

  /// Sends SIGKILL to the child's process group, or to the child alone
  /// when it has none of its own. Does nothing once the child is reaped.
  void kill() const;

  /// Waits for the child to end and reaps it; after that it is gone.
  child_exit wait();

  /// Whether the child is started and not yet reaped.
  bool running() const { return pid_ > 0; }

private:
  pid_t pid_ = -1;
  bool own_group_ = true;
  fd_guard input_;
  fd_guard output_;
  fd_guard diagnostics_;
  fd_guard exit_watch_;
};

/// Reads what the non-blocking `pipe` has (once) and appends it to `into`;
/// closes `pipe` at its end. Bytes that would take `into` beyond `limit`
/// are read and dropped (so the child never blocks on a full pipe), and set
/// `truncated`. `buffer` is scratch space, its size the most read at once.
void read_capped(fd_guard& pipe, std::vector<char>& buffer, std::string& into, size_t limit,
                 bool& truncated);

/// `variables` as a child's environment entries (NAME=value).
std::vector<std::string> environment_entries(const std::map<std::string, std::string>& variables);

/// How to run a child process (run_child).
struct child_options {
  /// The program and its arguments. A program name without '/' is looked up
  /// in the PATH of `environment` (not Ferry's own).
  std::vector<std::string> argv;
  /// The child's whole environment, as NAME=value entries.
  std::vector<std::string> environment;
  /// Written to the child's stdin, which is then closed.
  std::string input;
  /// The directory the child starts in; empty: Ferry's current directory.
  std::filesystem::path directory;
  /// As child_launch::own_process_group.
  bool own_process_group = true;
  /// The whole run may take this long; then the child (its process group,
  /// when it has one) is killed (SIGKILL) and the result says timed_out.
  /// no_timeout: it may take as long as it takes.
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

/// child_options::timeout for a run without a deadline.
constexpr std::chrono::milliseconds no_timeout = std::chrono::milliseconds::max();

/// Runs a child (a child_process with three pipes) to its end and collects
/// what it wrote; the calling thread is blocked here for the whole run.
///
/// When the child ends, or on timeout, it is killed with its process group
/// (when it has one of its own), so no helper it started outlives it.
/// Writing to a child that has closed its stdin is no error, and never
/// raises SIGPIPE in Ferry. Errors only when the child cannot be started,
/// as child_process::start.
result<child_result> run_child(const child_options& options);

/// Splits a command line into words, as a shell would without expanding
/// anything: blanks separate words; '...' keeps everything literally;
/// "..." keeps everything but `\"` and `\\`; a backslash outside quotes
/// keeps the next character. An unclosed quote or a trailing backslash is
/// errc::config_error; so is a line with no words.
result<std::vector<std::string>> split_command_line(const std::string& line);

} // namespace ferry
