#pragma once

// The harness's own events (run_start, run_end, kill, fault_start,
// fault_end), kept in memory and written to events.jsonl together with
// Ferry's events. Thread-safe: the fault proxy records from its threads.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

namespace ferry::harness {

/// Unix time in milliseconds.
int64_t now_ms();

class event_log {
public:
  /// Adds an event; "t" is set to now_ms() when the event has none.
  void add(nlohmann::json event);

  void run_start(int run);
  void run_end(int run, int rc);
  void kill(int run);
  /// kind: blackhole, latency, bandwidth, reset, disk_full.
  void fault_start(const std::string& kind, const std::string& detail);
  void fault_end(const std::string& kind);

  std::vector<nlohmann::json> events() const;

  /// Writes these events and the lines of `ferry_events` (a JSON-lines file
  /// Ferry wrote; absent is fine, lines that are not JSON objects with a
  /// numeric "t" are skipped) to `path`, one per line, sorted by "t".
  bool write(const std::filesystem::path& path, const std::filesystem::path& ferry_events) const;

private:
  mutable std::mutex mutex_;
  std::vector<nlohmann::json> events_;
};

} // namespace ferry::harness
