#include "actors/logging.hpp"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <mutex>
#include <unistd.h>
#include <vector>

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

/// `file`, rotated at 5 MiB with 3 files kept (at most 20 MiB); null after
/// saying why in `problem`.
spdlog::sink_ptr rotating_sink(const std::filesystem::path& file, std::string& problem) {
  try {
    std::filesystem::create_directories(file.parent_path());
    return std::make_shared<spdlog::sinks::rotating_file_sink_mt>(file.string(), 5 << 20, 3);
  } catch (const std::exception& e) {
    problem = "cannot open log file " + file.string() + ": " + e.what();
    return nullptr;
  }
}

/// The taps of tap_object_lines(), by oid.
struct tap_registry {
  struct tap {
    spdlog::level::level_enum level;
    std::function<void(const object_line&)> call;
  };
  std::mutex mutex;
  /// Looked up by a line's oid as it is (std::less<>): the sink sees every
  /// line about an object, so it builds no string for it.
  std::multimap<std::string, std::shared_ptr<tap>, std::less<>> taps;
  /// The level configure_logging() gave the logger.
  spdlog::level::level_enum configured = spdlog::level::info;
};

tap_registry& registry() {
  static tap_registry taps;
  return taps;
}

/// The logger's level: its own, or a tap's if that is lower. Called with
/// the registry locked.
spdlog::level::level_enum effective_level(const tap_registry& taps) {
  auto level = taps.configured;
  for (const auto& [oid, each] : taps.taps)
    level = std::min(level, each->level);
  return level;
}

/// Whether this thread is running a tap: what a tap logs itself (a
/// connection that broke, say) goes to no tap, or it could call itself.
thread_local bool in_tap = false;

/// Hands each line about an object to that object's taps.
class tap_sink final : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    auto fields = fields_of_this_line();
    if (fields.oid.empty() || in_tap)
      return;
    std::vector<std::shared_ptr<tap_registry::tap>> found;
    {
      auto& taps = registry();
      std::lock_guard lock{taps.mutex};
      auto [first, last] = taps.taps.equal_range(fields.oid);
      for (auto it = first; it != last; ++it)
        if (msg.level >= it->second->level)
          found.push_back(it->second);
    }
    in_tap = true;
    for (auto& tap : found)
      tap->call({msg.time, msg.level, fields, payload(msg)});
    in_tap = false;
  }
  void flush_() override {}
};

std::shared_ptr<spdlog::logger> make_default() {
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  sink->set_level(spdlog::level::warn);
  std::vector<spdlog::sink_ptr> sinks{sink, std::make_shared<tap_sink>()};
  auto logger = std::make_shared<spdlog::logger>("ferry", sinks.begin(), sinks.end());
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
    std::string problem;
    auto rotating = rotating_sink(options.file, problem);
    if (!rotating)
      return problem;
    rotating->set_level(parsed);
    sinks.push_back(rotating);
  }
  sinks.push_back(std::make_shared<tap_sink>());
  auto logger = std::make_shared<spdlog::logger>("ferry", sinks.begin(), sinks.end());
  logger->set_formatter(std::make_unique<line_formatter>(options.format));
  logger->flush_on(spdlog::level::info);
  {
    auto& taps = registry();
    std::lock_guard lock{taps.mutex};
    taps.configured = trace ? std::min(parsed, spdlog::level::debug) : parsed;
    logger->set_level(effective_level(taps));
  }
  instance() = logger;
  if (!trace_problem.empty())
    logger->warn("{}", trace_problem);
  return {};
}

std::shared_ptr<spdlog::logger> file_logger(const logging_options& options, std::string& problem) {
  auto rotating = rotating_sink(options.file, problem);
  if (!rotating)
    return nullptr;
  auto logger = std::make_shared<spdlog::logger>("ferry", std::move(rotating));
  logger->set_level(spdlog::level::from_str(options.level));
  logger->set_formatter(std::make_unique<line_formatter>(options.format));
  logger->flush_on(spdlog::level::info);
  return logger;
}

std::shared_ptr<void> tap_object_lines(std::string oid, spdlog::level::level_enum level,
                                       std::function<void(const object_line&)> tap) {
  auto added = std::make_shared<tap_registry::tap>(tap_registry::tap{level, std::move(tap)});
  auto& taps = registry();
  {
    std::lock_guard lock{taps.mutex};
    taps.taps.emplace(oid, added);
    log()->set_level(effective_level(taps));
  }
  // The handle takes the tap out again when dropped.
  return std::shared_ptr<void>(nullptr, [oid = std::move(oid), added](void*) {
    auto& taps = registry();
    std::lock_guard lock{taps.mutex};
    auto [first, last] = taps.taps.equal_range(oid);
    for (auto it = first; it != last; ++it)
      if (it->second == added) {
        taps.taps.erase(it);
        break;
      }
    log()->set_level(effective_level(taps));
  });
}

} // namespace ferry
