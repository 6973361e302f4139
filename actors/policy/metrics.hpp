#pragma once

// What a long-running Ferry process counts for Prometheus: a thread-safe
// registry of counters, gauges and histograms with labels, rendered in the
// text exposition format (docs/metrics.md lists every metric).

#include "protocol/prometheus_text.hpp"
#include "store/object_store.hpp"

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace ferry {

/// The names of Ferry's metrics (docs/metrics.md).
namespace metric {
inline constexpr const char* transfers_started = "ferry_transfers_started_total";
inline constexpr const char* transfers_succeeded = "ferry_transfers_succeeded_total";
inline constexpr const char* transfers_failed = "ferry_transfers_failed_total";
inline constexpr const char* transferred_bytes = "ferry_transferred_bytes_total";
inline constexpr const char* transfer_duration = "ferry_transfer_duration_seconds";
inline constexpr const char* retries = "ferry_retries_total";
inline constexpr const char* in_flight = "ferry_transfers_in_flight";
inline constexpr const char* host_cooldowns = "ferry_host_cooldowns_total";
inline constexpr const char* host_cooldown = "ferry_host_cooldown_seconds";
inline constexpr const char* host_circuit_state = "ferry_host_circuit_state";
inline constexpr const char* journal_size = "ferry_journal_size_bytes";
inline constexpr const char* build_info = "ferry_build_info";
inline constexpr const char* uptime = "ferry_uptime_seconds";
inline constexpr const char* daemon_clients = "ferry_daemon_clients";
} // namespace metric

/// Counters, gauges and histograms by name and labels. Each name is
/// described once before use; an update of a name not described, or of
/// another type, is ignored (and returns false). Label values must come
/// from small sets (directions, store kinds, error classes, hosts), never
/// from oids. Safe to use from any thread.
class metrics_registry {
public:
  using labels = protocol::prometheus_labels;

  /// Declares `name`. `bounds` (ascending upper bounds) for histograms.
  /// Families are rendered in the order they were described.
  void describe(const std::string& name, const std::string& help, protocol::prometheus_type type,
                std::vector<double> bounds = {});

  /// Adds `delta` to a counter (delta >= 0) or gauge series.
  bool add(const std::string& name, const labels& series, double delta = 1);
  /// Sets a gauge series.
  bool set(const std::string& name, const labels& series, double value);
  /// Adds one observation to a histogram series.
  bool observe(const std::string& name, const labels& series, double value);

  /// The value of a counter or gauge series; 0 when it has none.
  double value(const std::string& name, const labels& series) const;
  /// Whether the series has been updated.
  bool has(const std::string& name, const labels& series) const;
  /// Every counter or gauge series of `name` with its value.
  std::vector<std::pair<labels, double>> values(const std::string& name) const;
  /// A histogram series as rendered (per-bucket counts, sum); empty counts
  /// when it has no observations.
  protocol::prometheus_histogram histogram(const std::string& name, const labels& series) const;

  /// Everything, in the text format.
  std::string render() const;

private:
  struct family {
    protocol::prometheus_family shape;
    std::vector<double> bounds;
    std::map<labels, double> values;
    std::map<labels, protocol::prometheus_histogram> histograms;
  };

  family* find(const std::string& name, protocol::prometheus_type type);

  mutable std::mutex mutex_;
  std::vector<family> families_;
  std::map<std::string, size_t> index_;
};

/// Describes the transfer metrics (started, succeeded, failed, bytes,
/// durations, retries, in flight, host cooldowns and circuits, journal
/// size) and sets ferry_build_info{version}.
void describe_transfer_metrics(metrics_registry& registry, const std::string& version);

/// The store kind a metric names: "folder", "s3", "proton" or "lfs".
std::string store_kind(const object_store& store);

} // namespace ferry
