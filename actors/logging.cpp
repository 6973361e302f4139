#include "actors/logging.hpp"

#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace ferry {

namespace {

std::shared_ptr<spdlog::logger> make_default() {
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  sink->set_level(spdlog::level::warn);
  auto logger = std::make_shared<spdlog::logger>("ferry", sink);
  logger->set_level(spdlog::level::info);
  return logger;
}

std::shared_ptr<spdlog::logger>& instance() {
  static auto logger = make_default();
  return logger;
}

} // namespace

std::shared_ptr<spdlog::logger> log() { return instance(); }

std::string configure_logging(const std::string& level, const std::filesystem::path& file) {
  auto parsed = spdlog::level::from_str(level);
  auto err = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  err->set_level(std::max(parsed, spdlog::level::warn));
  std::vector<spdlog::sink_ptr> sinks{err};
  if (!file.empty()) {
    try {
      std::filesystem::create_directories(file.parent_path());
      auto rotating =
        std::make_shared<spdlog::sinks::rotating_file_sink_mt>(file.string(), 5 << 20, 3);
      rotating->set_level(parsed);
      sinks.push_back(rotating);
    } catch (const std::exception& e) {
      return "cannot open log file " + file.string() + ": " + e.what();
    }
  }
  auto logger = std::make_shared<spdlog::logger>("ferry", sinks.begin(), sinks.end());
  logger->set_level(parsed);
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %P %l %v");
  logger->flush_on(spdlog::level::info);
  instance() = logger;
  return {};
}

} // namespace ferry
