#include "store/inventory_sources.hpp"

#include "protocol/lfs_pointer.hpp"
#include "protocol/line_splitter.hpp"
#include "protocol/parsing.hpp"
#include "store/os/child_process.hpp"
#include "store/os/file_io.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

extern char** environ;

// read_repo_pointers runs a pipeline of three git processes:
//
//   rev-list --objects --all ──pipe──> cat-file --batch-check ──> Ferry
//   Ferry ──small blob oids──> cat-file --batch ──> Ferry
//
// rev-list feeds the size check directly; Ferry reads the check's answers,
// passes the oids of small blobs on to `cat-file --batch` and parses what
// that prints, all in one poll loop. The loop stops reading the check's
// answers while its queue of oids for `--batch` is full, so every buffer has
// a fixed cap and memory does not grow with the repository. Nothing is
// staged on disk. Should Ferry die, the processes are killed with it
// (child_process).

namespace ferry {

namespace fs = std::filesystem;

namespace {

constexpr size_t read_chunk = size_t{64} << 10;
// Oids waiting to be written to `cat-file --batch`; reading the size check's
// answers pauses above this.
constexpr size_t max_request_backlog = size_t{64} << 10;
// Each git's stderr is kept up to this much, for the error message.
constexpr size_t max_diagnostics = size_t{16} << 10;
// "<oid> <type> <size>" from cat-file; far longer means it is not cat-file.
constexpr size_t max_header_line = 256;
// A line of an inventory file: an oid, a size, some blanks.
constexpr size_t max_inventory_line = 1024;
constexpr size_t sha256_hex_digits = 64;

// Variables that would make git open another repository than `-C` names.
constexpr const char* repository_variables[] = {"GIT_DIR",
                                                "GIT_WORK_TREE",
                                                "GIT_COMMON_DIR",
                                                "GIT_INDEX_FILE",
                                                "GIT_NAMESPACE",
                                                "GIT_OBJECT_DIRECTORY",
                                                "GIT_ALTERNATE_OBJECT_DIRECTORIES"};

/// `<oid> <size>` with blanks between; the oid in either case (reported in
/// lower case), the size a non-negative decimal.
std::optional<object_info> parse_inventory_line(std::string_view text) {
  size_t blank = text.find_first_of(" \t");
  if (blank != sha256_hex_digits)
    return std::nullopt;
  object_info object;
  for (char c : text.substr(0, blank)) {
    if (!std::isxdigit(static_cast<unsigned char>(c)))
      return std::nullopt;
    object.oid.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  std::string_view size_text = protocol::trim_ows(text.substr(blank));
  bool digits_only = !size_text.empty() && std::all_of(size_text.begin(), size_text.end(),
                                                       [](char c) { return c >= '0' && c <= '9'; });
  if (!digits_only)
    return std::nullopt;
  auto [end, error] =
    std::from_chars(size_text.data(), size_text.data() + size_text.size(), object.size);
  if (error != std::errc{} || end != size_text.data() + size_text.size())
    return std::nullopt;
  return object;
}

/// A line for an error message: at most 80 characters, control bytes as '?'.
std::string quoted_excerpt(std::string_view text) {
  constexpr size_t max_excerpt = 80;
  std::string excerpt = "'";
  for (char c : text.substr(0, max_excerpt))
    excerpt += static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? '?' : c;
  excerpt += text.size() > max_excerpt ? "'..." : "'";
  return excerpt;
}

/// Ferry's environment without the repository variables, and with replace
/// refs off: with them on, git would walk a replacement's history instead
/// of the original's and miss the pointers only the original holds (the
/// replacements themselves are still reached through refs/replace).
std::vector<std::string> git_environment() {
  std::vector<std::string> entries;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    std::string_view text = *entry;
    std::string_view name = text.substr(0, text.find('='));
    bool dropped = name == "GIT_NO_REPLACE_OBJECTS" ||
                   std::any_of(std::begin(repository_variables), std::end(repository_variables),
                               [&](const char* variable) { return name == variable; });
    if (!dropped)
      entries.emplace_back(text);
  }
  entries.emplace_back("GIT_NO_REPLACE_OBJECTS=1");
  return entries;
}

/// Reads once from a readable descriptor; 0 at end of data (or on an error,
/// which for a pipe from a child means the same: nothing more comes).
size_t read_some(int fd, char* buffer, size_t capacity) {
  ssize_t got;
  do {
    got = ::read(fd, buffer, capacity);
  } while (got < 0 && errno == EINTR);
  return got > 0 ? static_cast<size_t>(got) : 0;
}

/// One git process of the pipeline. Killed and reaped on destruction if
/// still running, so no path out of read_repo_pointers leaves one behind.
class git_process {
public:
  explicit git_process(std::string command) : command_(std::move(command)) {}

  /// Starts `git -C <repo> <command> <options...>` with `input` as stdin
  /// (-1: at its end, as /dev/null) and `output` as stdout, without a shell.
  status start(const fs::path& repo, const std::vector<std::string>& options, int input, int output,
               const std::vector<std::string>& environment);

  /// Its stderr, open until it is read to the end.
  fd_guard& diagnostics() { return process_.diagnostics(); }
  void read_diagnostics(std::vector<char>& buffer) {
    bool truncated = false;
    read_capped(process_.diagnostics(), buffer, diagnostics_text_, max_diagnostics, truncated);
  }

  void kill() const { process_.kill(); }
  void reap() {
    if (process_.running())
      ended_ = process_.wait();
  }

  /// How it ended: errc::config_error with its stderr when it failed.
  status outcome(const fs::path& repo) const;
  bool exited_with_message() const { return ended_.exit_code > 0 && !message().empty(); }

private:
  /// What it wrote to stderr, without the blank space around it.
  std::string message() const {
    size_t begin = diagnostics_text_.find_first_not_of(" \t\r\n");
    if (begin == std::string::npos)
      return {};
    return diagnostics_text_.substr(begin,
                                    diagnostics_text_.find_last_not_of(" \t\r\n") + 1 - begin);
  }

  std::string command_;
  child_process process_;
  std::string diagnostics_text_;
  child_exit ended_{0, 0};
};

status git_process::start(const fs::path& repo, const std::vector<std::string>& options, int input,
                          int output, const std::vector<std::string>& environment) {
  child_launch launch;
  launch.argv = {"git", "-C", repo.string(), command_};
  launch.argv.insert(launch.argv.end(), options.begin(), options.end());
  launch.environment = environment;
  launch.stdio[0] = input;
  launch.stdio[1] = output;
  // Like every git Ferry runs, it stays in Ferry's process group.
  launch.own_process_group = false;
  auto started = child_process::start(launch);
  if (!started)
    return {errc::config_error, started.error().message() + " (git " + command_ + ")"};
  process_ = std::move(*started);
  // Nothing to say on stdin.
  process_.input().reset();
  return status::success();
}

status git_process::outcome(const fs::path& repo) const {
  std::string what = "git " + command_ + " in " + repo.string();
  if (!ended_.known())
    return {errc::io_error, "cannot tell how " + what + " ended"};
  if (ended_.exit_code == 0)
    return status::success();
  std::string message = this->message();
  if (message.empty() && ended_.signal != 0)
    message = "killed by signal " + std::to_string(ended_.signal);
  else if (message.empty())
    message = "exited with code " + std::to_string(ended_.exit_code);
  return {errc::config_error, what + " failed: " + message};
}

/// Takes `cat-file --batch-check` answers ("<oid> <type> <size>") and
/// queues the oids of blobs small enough to be pointers.
class size_filter {
public:
  size_filter() : lines_(max_header_line) {}

  status feed(std::string_view bytes, std::string& requests) {
    for (const auto& line : lines_.feed(bytes)) {
      if (auto st = take(line, requests); !st)
        return st;
    }
    return status::success();
  }
  status finish(std::string& requests) {
    for (const auto& line : lines_.finish()) {
      if (auto st = take(line, requests); !st)
        return st;
    }
    return status::success();
  }

private:
  static status take(const protocol::line_splitter::line& line, std::string& requests) {
    std::string_view text = line.text;
    size_t first = text.find(' ');
    size_t second = text.rfind(' ');
    if (line.too_long || first == std::string_view::npos)
      return {errc::internal, "unexpected answer from git cat-file --batch-check"};
    // "<oid> missing": pruned since rev-list saw it, so no longer reachable.
    if (first == second)
      return status::success();
    std::string_view type = text.substr(first + 1, second - first - 1);
    std::string_view size_text = text.substr(second + 1);
    uint64_t size = 0;
    auto [end, error] =
      std::from_chars(size_text.data(), size_text.data() + size_text.size(), size);
    if (error != std::errc{} || end != size_text.data() + size_text.size())
      return {errc::internal, "unexpected answer from git cat-file --batch-check: " + line.text};
    if (type == "blob" && size <= protocol::max_pointer_bytes) {
      requests.append(text.substr(0, first));
      requests.push_back('\n');
    }
    return status::success();
  }

  protocol::line_splitter lines_;
};

/// Parses `cat-file --batch` output ("<oid> <type> <size>\n<content>\n"
/// per object) and hands every pointer among the contents to `visit`.
class pointer_reader {
public:
  explicit pointer_reader(const std::function<bool(const object_info&)>& visit) : visit_(visit) {}

  /// Consumes bytes; sets `stopped` when visit asked to stop.
  status feed(std::string_view bytes, bool& stopped) {
    while (!bytes.empty() && !stopped) {
      if (content_left_ < 0) {
        size_t newline = bytes.find('\n');
        header_.append(bytes.substr(0, newline));
        if (header_.size() > max_header_line)
          return {errc::internal, "unexpected answer from git cat-file --batch"};
        if (newline == std::string_view::npos)
          return status::success();
        bytes.remove_prefix(newline + 1);
        if (auto st = start_object(); !st)
          return st;
        continue;
      }
      // The content, then the newline cat-file puts after it.
      auto taken = static_cast<size_t>(std::min<int64_t>(content_left_, bytes.size()));
      if (content_.size() < protocol::max_pointer_bytes + 1)
        content_.append(bytes.substr(0, taken));
      bytes.remove_prefix(taken);
      content_left_ -= static_cast<int64_t>(taken);
      if (content_left_ == 0)
        stopped = !finish_object();
    }
    return status::success();
  }

  /// True when the output ended between objects.
  bool complete() const { return content_left_ < 0 && header_.empty(); }

private:
  status start_object() {
    std::string header = std::exchange(header_, {});
    size_t last = header.rfind(' ');
    // "<oid> missing": pruned since the size check saw it.
    if (last == std::string::npos || header.compare(last + 1, std::string::npos, "missing") == 0)
      return status::success();
    int64_t size = -1;
    auto [end, error] =
      std::from_chars(header.data() + last + 1, header.data() + header.size(), size);
    if (error != std::errc{} || end != header.data() + header.size() || size < 0)
      return {errc::internal, "unexpected answer from git cat-file --batch: " + header};
    content_.clear();
    content_left_ = size + 1;
    return status::success();
  }

  bool finish_object() {
    content_left_ = -1;
    if (content_.empty() || content_.back() != '\n')
      return true;
    content_.pop_back();
    auto pointer = protocol::parse_lfs_pointer(content_);
    if (!pointer)
      return true;
    return visit_(object_info{std::move(pointer->oid), pointer->size});
  }

  const std::function<bool(const object_info&)>& visit_;
  std::string header_;
  std::string content_;
  // Bytes of the current object still to come (content and its newline);
  // -1 while a header is being read.
  int64_t content_left_ = -1;
};

/// Writes what it can of `requests` (from `sent` on) without blocking;
/// false when `--batch` no longer reads.
bool send_requests(int fd, const std::string& requests, size_t& sent) {
  ssize_t n =
    ::send(fd, requests.data() + sent, requests.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
  if (n > 0)
    sent += static_cast<size_t>(n);
  return n >= 0 || errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK;
}

/// The three git processes, the descriptors between them and Ferry, and
/// what sits in between: the oid queue and the two parsers.
class pointer_pipeline {
public:
  pointer_pipeline(const fs::path& repo, const std::function<bool(const object_info&)>& visit)
      : repo_(repo), reader_(visit), buffer_(read_chunk) {}

  status start();
  /// Feeds and reads git until it is done or visit asks to stop; then no
  /// git process is left.
  status run();

private:
  void read_sizes(status& step);
  void write_requests();
  void read_contents(status& step);
  void stop_all() {
    for (auto* process : processes_)
      process->kill();
  }
  /// The first failure among the processes, preferring one that said why:
  /// when one git fails, the others often just see their pipe close.
  status outcome() const;

  const fs::path& repo_;
  git_process listing_{"rev-list"};
  git_process sizes_{"cat-file"};
  git_process contents_{"cat-file"};
  git_process* const processes_[3] = {&listing_, &sizes_, &contents_};
  fd_guard sizes_read_;    ///< `--batch-check` answers
  fd_guard requests_;      ///< oids for `--batch`
  fd_guard contents_read_; ///< `--batch` output
  size_filter filter_;
  pointer_reader reader_;
  /// Oids for `--batch`, written up to `sent_`.
  std::string backlog_;
  size_t sent_ = 0;
  bool stopped_ = false;
  std::vector<char> buffer_;
};

status pointer_pipeline::start() {
  auto environment = git_environment();
  fd_guard listing_read, listing_write, sizes_write, contents_write;
  if (auto made = make_pipe(listing_read, listing_write, "run git"); !made)
    return made;
  if (auto made = make_pipe(sizes_read_, sizes_write, "run git"); !made)
    return made;
  if (auto made = make_pipe(contents_read_, contents_write, "run git"); !made)
    return made;
  // A socket for the requests, so writing after `--batch` died is EPIPE
  // (MSG_NOSIGNAL), never a SIGPIPE in Ferry.
  int ends[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) != 0)
    return from_errno(errno, "cannot run git: socketpair");
  requests_.reset(ends[0]);
  fd_guard requests_read(ends[1]);

  if (auto st = listing_.start(repo_, {"--objects", "--all", "--no-object-names"}, -1,
                               listing_write.get(), environment);
      !st)
    return st;
  const std::string size_format = "--batch-check=%(objectname) %(objecttype) %(objectsize)";
  if (auto st = sizes_.start(repo_, {size_format, "--buffer"}, listing_read.get(),
                             sizes_write.get(), environment);
      !st)
    return st;
  return contents_.start(repo_, {"--batch", "--buffer"}, requests_read.get(), contents_write.get(),
                         environment);
}

void pointer_pipeline::read_sizes(status& step) {
  size_t got = read_some(sizes_read_.get(), buffer_.data(), buffer_.size());
  if (got > 0) {
    step = filter_.feed({buffer_.data(), got}, backlog_);
    return;
  }
  sizes_read_.reset();
  step = filter_.finish(backlog_);
}

void pointer_pipeline::write_requests() {
  if (!send_requests(requests_.get(), backlog_, sent_)) {
    // `--batch` is gone; its exit status will say why.
    requests_.reset();
  }
}

void pointer_pipeline::read_contents(status& step) {
  size_t got = read_some(contents_read_.get(), buffer_.data(), buffer_.size());
  if (got > 0)
    step = reader_.feed({buffer_.data(), got}, stopped_);
  else
    contents_read_.reset();
}

status pointer_pipeline::run() {
  while (!stopped_) {
    poll_list<6> polled;
    // Backpressure: no more answers are taken while the queue is full.
    int sizes_at =
      polled.add(backlog_.size() - sent_ < max_request_backlog ? sizes_read_.get() : -1, POLLIN);
    int requests_at = polled.add(sent_ < backlog_.size() ? requests_.get() : -1, POLLOUT);
    int contents_at = polled.add(contents_read_.get(), POLLIN);
    int diagnostics_at[3];
    for (size_t i = 0; i < 3; ++i)
      diagnostics_at[i] = polled.add(processes_[i]->diagnostics().get(), POLLIN);
    if (polled.size() == 0)
      break;
    if (::poll(polled.data(), polled.size(), -1) < 0) {
      if (errno == EINTR)
        continue;
      status failed = from_errno(errno, "cannot read git's output: poll");
      stop_all();
      return failed;
    }

    status step;
    if (polled.ready(sizes_at))
      read_sizes(step);
    if (polled.ready(requests_at))
      write_requests();
    if (sent_ == backlog_.size() || requests_.get() < 0) {
      backlog_.clear();
      sent_ = 0;
    } else if (sent_ > max_request_backlog) {
      backlog_.erase(0, sent_);
      sent_ = 0;
    }
    // All oids written: `--batch` may finish.
    if (sizes_read_.get() < 0 && backlog_.empty())
      requests_.reset();
    if (step && polled.ready(contents_at))
      read_contents(step);
    for (size_t i = 0; i < 3; ++i) {
      if (polled.ready(diagnostics_at[i]))
        processes_[i]->read_diagnostics(buffer_);
    }
    if (!step) {
      stop_all();
      return step;
    }
  }

  if (stopped_) {
    stop_all();
    return status::success();
  }
  for (auto* process : processes_)
    process->reap();
  if (auto failed = outcome(); !failed)
    return failed;
  if (!reader_.complete())
    return {errc::internal, "git cat-file --batch in " + repo_.string() + " ended mid-object"};
  return status::success();
}

status pointer_pipeline::outcome() const {
  for (const auto* process : processes_) {
    if (process->exited_with_message())
      return process->outcome(repo_);
  }
  for (const auto* process : processes_) {
    if (auto st = process->outcome(repo_); !st)
      return st;
  }
  return status::success();
}

} // namespace

status read_repo_pointers(const fs::path& repo,
                          const std::function<bool(const object_info&)>& visit) {
  // `git -C ""` would quietly use the current directory.
  if (repo.empty())
    return {errc::config_error, "no repository given to read LFS pointers from"};
  pointer_pipeline pipeline(repo, visit);
  if (auto started = pipeline.start(); !started)
    return started;
  return pipeline.run();
}

status read_inventory_file(const fs::path& file,
                           const std::function<bool(const object_info&)>& visit) {
  int opened;
  do {
    opened = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  } while (opened < 0 && errno == EINTR);
  if (opened < 0)
    return from_errno(errno, "cannot open inventory file " + file.string());
  fd_guard fd(opened);

  protocol::line_splitter lines(max_inventory_line);
  std::vector<char> buffer(read_chunk);
  size_t line_number = 0;
  bool at_end = false;
  while (!at_end) {
    ssize_t got = ::read(fd.get(), buffer.data(), buffer.size());
    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0)
      return from_errno(errno, "cannot read inventory file " + file.string());
    at_end = got == 0;
    auto complete = at_end ? lines.finish() : lines.feed({buffer.data(), static_cast<size_t>(got)});
    for (const auto& line : complete) {
      ++line_number;
      // The splitter has taken off the line end, CRLF included.
      std::string_view text = protocol::trim_ows(line.text);
      if (!line.too_long && (text.empty() || text.front() == '#'))
        continue;
      auto object = line.too_long ? std::nullopt : parse_inventory_line(text);
      if (!object) {
        std::string found =
          line.too_long ? "a line longer than " + std::to_string(max_inventory_line) + " bytes"
                        : quoted_excerpt(text);
        // The file the user named is wrong: a usage error, not one to retry.
        return {errc::config_error, "inventory file " + file.string() + " line " +
                                      std::to_string(line_number) +
                                      ": expected '<sha256 oid> <size>', found " + found};
      }
      if (!visit(*object))
        return status::success();
    }
  }
  return status::success();
}

} // namespace ferry
