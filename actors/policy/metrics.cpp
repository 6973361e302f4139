#include "actors/policy/metrics.hpp"

#include <algorithm>

namespace ferry {

using protocol::prometheus_type;

void metrics_registry::describe(const std::string& name, const std::string& help,
                                prometheus_type type, std::vector<double> bounds) {
  std::lock_guard lock{mutex_};
  if (index_.count(name) != 0)
    return;
  family added;
  added.shape.name = name;
  added.shape.help = help;
  added.shape.type = type;
  added.bounds = std::move(bounds);
  index_[name] = families_.size();
  families_.push_back(std::move(added));
}

metrics_registry::family* metrics_registry::find(const std::string& name, prometheus_type type) {
  auto i = index_.find(name);
  if (i == index_.end() || families_[i->second].shape.type != type)
    return nullptr;
  return &families_[i->second];
}

bool metrics_registry::add(const std::string& name, const labels& series, double delta) {
  std::lock_guard lock{mutex_};
  auto* counter = find(name, prometheus_type::counter);
  if (counter != nullptr && delta >= 0) {
    counter->values[series] += delta;
    return true;
  }
  auto* gauge = find(name, prometheus_type::gauge);
  if (gauge == nullptr)
    return false;
  gauge->values[series] += delta;
  return true;
}

bool metrics_registry::set(const std::string& name, const labels& series, double value) {
  std::lock_guard lock{mutex_};
  auto* gauge = find(name, prometheus_type::gauge);
  if (gauge == nullptr)
    return false;
  gauge->values[series] = value;
  return true;
}

bool metrics_registry::observe(const std::string& name, const labels& series, double value) {
  std::lock_guard lock{mutex_};
  auto* histogram = find(name, prometheus_type::histogram);
  if (histogram == nullptr)
    return false;
  auto& entry = histogram->histograms[series];
  if (entry.counts.empty()) {
    entry.labels = series;
    entry.bounds = histogram->bounds;
    entry.counts.assign(histogram->bounds.size() + 1, 0);
  }
  // The first bound at or above the value; past the end is +Inf's bucket.
  auto at =
    std::lower_bound(entry.bounds.begin(), entry.bounds.end(), value) - entry.bounds.begin();
  entry.counts[static_cast<size_t>(at)] += 1;
  entry.sum += value;
  return true;
}

double metrics_registry::value(const std::string& name, const labels& series) const {
  std::lock_guard lock{mutex_};
  auto i = index_.find(name);
  if (i == index_.end())
    return 0;
  auto& values = families_[i->second].values;
  auto j = values.find(series);
  return j == values.end() ? 0 : j->second;
}

bool metrics_registry::has(const std::string& name, const labels& series) const {
  std::lock_guard lock{mutex_};
  auto i = index_.find(name);
  if (i == index_.end())
    return false;
  auto& f = families_[i->second];
  return f.values.count(series) != 0 || f.histograms.count(series) != 0;
}

std::vector<std::pair<metrics_registry::labels, double>>
metrics_registry::values(const std::string& name) const {
  std::lock_guard lock{mutex_};
  auto i = index_.find(name);
  if (i == index_.end())
    return {};
  auto& values = families_[i->second].values;
  return {values.begin(), values.end()};
}

protocol::prometheus_histogram metrics_registry::histogram(const std::string& name,
                                                           const labels& series) const {
  std::lock_guard lock{mutex_};
  auto i = index_.find(name);
  if (i == index_.end())
    return {};
  auto& histograms = families_[i->second].histograms;
  auto j = histograms.find(series);
  return j == histograms.end() ? protocol::prometheus_histogram{} : j->second;
}

std::string metrics_registry::render() const {
  std::vector<protocol::prometheus_family> out;
  {
    std::lock_guard lock{mutex_};
    for (auto& f : families_) {
      auto shape = f.shape;
      for (auto& [series, value] : f.values)
        shape.samples.push_back({series, value});
      for (auto& [series, histogram] : f.histograms)
        shape.histograms.push_back(histogram);
      out.push_back(std::move(shape));
    }
  }
  return protocol::render(out);
}

void describe_transfer_metrics(metrics_registry& registry, const std::string& version) {
  using type = prometheus_type;
  registry.describe(metric::build_info, "Ferry's version; always 1.", type::gauge);
  registry.set(metric::build_info, {{"version", version}}, 1);
  registry.describe(metric::transfers_started,
                    "Transfers (one object each) handed to the supervisor.", type::counter);
  registry.describe(metric::transfers_succeeded, "Transfers that ended verified and durable.",
                    type::counter);
  registry.describe(metric::transfers_failed,
                    "Transfers that failed for good, by error class (after their retries).",
                    type::counter);
  registry.describe(
    metric::transferred_bytes,
    "Bytes written by succeeded transfers (none for an object the store already held).",
    type::counter);
  registry.describe(
    metric::transfer_duration, "Time from a transfer's start to its outcome, retries included.",
    type::histogram, {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300});
  registry.describe(metric::retries, "Failed attempts that are retried.", type::counter);
  registry.describe(metric::in_flight, "Transfers the supervisor holds now.", type::gauge);
  registry.describe(metric::host_cooldowns, "Times a host asked to wait (Retry-After).",
                    type::counter);
  registry.describe(metric::host_cooldown, "The latest wait a host asked for (Retry-After).",
                    type::gauge);
  registry.describe(metric::host_circuit_state,
                    "1 for the state a host's circuit breaker is in (closed, open, half_open), "
                    "0 for the others.",
                    type::gauge);
  registry.describe(metric::journal_size, "Bytes of the journal's files on disk.", type::gauge);
}

std::string store_kind(const object_store& store) {
  // The URL scheme, without a wrapper's "xxx+" ("lfs+https" is https).
  auto shown = store.describe();
  auto scheme = shown.substr(0, shown.find("://"));
  scheme = scheme.substr(scheme.rfind('+') + 1);
  if (scheme == "file")
    return "folder";
  if (scheme == "s3" || scheme == "proton")
    return scheme;
  return "lfs";
}

} // namespace ferry
