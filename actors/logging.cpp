#include "actors/logging.hpp"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <mutex>
#include <unistd.h>

namespace ferry {

namespace {

thread_local const log_fields* current_fields = nullptr;

log_fields fields_of_this_line() {
  return current_fields != nullptr ? *current_fields : log_fields{};
}

std::string_view payload(const spdlog::details::log_msg& msg) {
  return {msg.payload.data(), msg.payload.size()};
}

/// Formats each line with format_log_line().
class line_formatter final : public spdlog::formatter {
public:
  explicit line_formatter(log_format format) : format_(format) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    auto level = spdlog::level::to_string_view(msg.level);
    log_entry entry;
    entry.time = msg.time;
    entry.level = {level.data(), level.size()};
    entry.pid = pid_;
    entry.fields = fields_of_this_line();
    entry.message = payload(msg);
    std::string line = format_log_line(format_, entry);
    line += '\n';
    dest.append(line.data(), line.data() + line.size());
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<line_formatter>(format_);
  }

private:
  log_format format_;
  int64_t pid_ = ::getpid();
};

/// Writes git-lfs-style trace lines (format_trace_line()) to a descriptor,
/// each with one write(): a trace file that git and git-lfs append to as
/// well gets whole lines.
class trace_sink final : public spdlog::sinks::base_sink<std::mutex> {
public:
  trace_sink(int fd, bool owned) : fd_(fd), owned_(owned) {}
  ~trace_sink() override {
    if (owned_)
      ::close(fd_);
  }
  trace_sink(const trace_sink&) = delete;
  trace_sink& operator=(const trace_sink&) = delete;

protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    std::string line = format_trace_line(msg.time, fields_of_this_line(), payload(msg)) + "\n";
    const char* next = line.data();
    size_t left = line.size();
    // A trace that cannot be written is dropped: it must not stop a transfer.
    while (left > 0) {
      ssize_t written = ::write(fd_, next, left);
      if (written < 0 && errno == EINTR)
        continue;
      if (written <= 0)
        return;
      next += written;
      left -= static_cast<size_t>(written);
    }
  }
  void flush_() override {}

private:
  int fd_;
  bool owned_;
};

std::shared_ptr<spdlog::logger> make_default() {
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  sink->set_level(spdlog::level::warn);
  auto logger = std::make_shared<spdlog::logger>("ferry", sink);
  logger->set_level(spdlog::level::info);
  logger->set_formatter(std::make_unique<line_formatter>(log_format::text));
  return logger;
}

std::shared_ptr<spdlog::logger>& instance() {
  static auto logger = make_default();
  return logger;
}

} // namespace

namespace detail {

scoped_log_fields::scoped_log_fields(const log_fields& fields) : previous_(current_fields) {
  current_fields = &fields;
}

scoped_log_fields::~scoped_log_fields() { current_fields = previous_; }

} // namespace detail

std::shared_ptr<spdlog::logger> log() { return instance(); }

std::string configure_logging(const logging_options& options) {
  auto parsed = spdlog::level::from_str(options.level);
  std::vector<spdlog::sink_ptr> sinks;
  std::string trace_problem;
  std::shared_ptr<trace_sink> trace;
  using trace_kind = git_trace_target::kind;
  if (options.trace.where == trace_kind::stderr_stream) {
    trace = std::make_shared<trace_sink>(STDERR_FILENO, false);
  } else if (options.trace.where == trace_kind::file) {
    int fd = ::open(options.trace.path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
    if (fd >= 0)
      trace = std::make_shared<trace_sink>(fd, true);
    else
      trace_problem = "cannot open the GIT_TRACE file " + options.trace.path + ": " +
                      std::strerror(errno) + "; tracing is off";
  }
  auto err = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  err->set_level(std::max(parsed, spdlog::level::warn));
  sinks.push_back(err);
  if (trace) {
    trace->set_level(spdlog::level::debug);
    sinks.push_back(trace);
  }
  if (!options.file.empty()) {
    try {
      std::filesystem::create_directories(options.file.parent_path());
      auto rotating =
        std::make_shared<spdlog::sinks::rotating_file_sink_mt>(options.file.string(), 5 << 20, 3);
      rotating->set_level(parsed);
      sinks.push_back(rotating);
    } catch (const std::exception& e) {
      return "cannot open log file " + options.file.string() + ": " + e.what();
    }
  }
  auto logger = std::make_shared<spdlog::logger>("ferry", sinks.begin(), sinks.end());
  logger->set_level(trace ? std::min(parsed, spdlog::level::debug) : parsed);
  logger->set_formatter(std::make_unique<line_formatter>(options.format));
  logger->flush_on(spdlog::level::info);
  instance() = logger;
  if (!trace_problem.empty())
    logger->warn("{}", trace_problem);
  return {};
}

} // namespace ferry
