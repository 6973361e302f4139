#include "simulations/harness/network_stage.hpp"

#include "simulations/harness/seeded_random.hpp"

#include <algorithm>
#include <sstream>

namespace ferry::harness {

using nlohmann::json;

sim::proxy_faults plan_network(const network_spec& network, uint64_t seed) {
  sim::proxy_faults faults;
  faults.latency_ms = network.latency_ms;
  faults.jitter_ms = network.jitter_ms;
  faults.bandwidth_bytes_per_s = network.bandwidth_bytes_per_s;
  faults.reset_probability = network.reset_probability;
  faults.reset_after_min_bytes = network.reset_after_min_bytes;
  faults.reset_after_max_bytes = network.reset_after_max_bytes;
  std::vector<sim::blackhole_window> windows;
  for (const auto& window : network.blackholes)
    windows.push_back({window.start_ms, window.end_ms});
  if (network.random_blackholes > 0) {
    seeded_random random(seed, "network");
    const int64_t slot = network.random_blackholes_within_ms / network.random_blackholes;
    for (int64_t i = 0; i < network.random_blackholes; ++i) {
      const int64_t start = i * slot + random.between(0, slot - network.random_blackhole_ms);
      windows.push_back({start, start + network.random_blackhole_ms});
    }
  }
  std::sort(windows.begin(), windows.end(),
            [](const auto& a, const auto& b) { return a.start_ms < b.start_ms; });
  for (const auto& window : windows) {
    if (!faults.blackholes.empty() && window.start_ms <= faults.blackholes.back().end_ms)
      faults.blackholes.back().end_ms = std::max(faults.blackholes.back().end_ms, window.end_ms);
    else
      faults.blackholes.push_back(window);
  }
  return faults;
}

namespace {

/// The faults that are on for the whole life of the proxy: kind and detail.
std::vector<std::pair<std::string, std::string>> steady_faults(const sim::proxy_faults& faults) {
  std::vector<std::pair<std::string, std::string>> out;
  if (faults.latency_ms > 0)
    out.emplace_back("latency", std::to_string(faults.latency_ms) + " ms +- " +
                                  std::to_string(faults.jitter_ms) + " ms each way");
  if (faults.bandwidth_bytes_per_s > 0)
    out.emplace_back("bandwidth",
                     std::to_string(faults.bandwidth_bytes_per_s) + " bytes/s each way");
  if (faults.reset_probability > 0) {
    std::ostringstream detail;
    detail << "probability " << faults.reset_probability << " per connection, after "
           << faults.reset_after_min_bytes << "-" << faults.reset_after_max_bytes << " bytes";
    out.emplace_back("reset", detail.str());
  }
  return out;
}

class proxy_stage final : public network_stage {
public:
  proxy_stage(sim::proxy_faults faults, uint64_t seed, event_log& events)
      : faults_(std::move(faults)), seed_(seed), events_(events) {}
  ~proxy_stage() override { stop(); }

  result<int> start(int upstream_port) override {
    sim::proxy_config config;
    config.target_port = upstream_port;
    config.seed = seed_;
    config.faults = faults_;
    config.on_event = [&events = events_](const sim::proxy_event& e) { record(events, e); };
    proxy_ = std::make_unique<sim::fault_proxy>(std::move(config));
    for (const auto& [kind, detail] : steady_faults(faults_))
      events_.fault_start(kind, detail);
    if (auto s = proxy_->start(); !s.ok())
      return s;
    return proxy_->port();
  }

  void stop() override {
    if (!proxy_ || stopped_)
      return;
    stopped_ = true;
    proxy_->stop();
    for (const auto& [kind, detail] : steady_faults(faults_))
      events_.fault_end(kind);
  }

  int64_t connections_reset() const override {
    if (!proxy_)
      return 0;
    const auto stats = proxy_->stats();
    return stats.resets_injected + stats.blackholed_connections;
  }

  json stats() const override {
    if (!proxy_)
      return json::object();
    const auto stats = proxy_->stats();
    return {{"connections", stats.connections_accepted},
            {"resets_injected", stats.resets_injected},
            {"blackholed_connections", stats.blackholed_connections},
            {"blackholed_bytes", stats.blackholed_bytes},
            {"bytes_to_target", stats.bytes_to_target},
            {"bytes_to_client", stats.bytes_to_client}};
  }

private:
  static void record(event_log& events, const sim::proxy_event& e) {
    switch (e.what) {
      case sim::proxy_event::kind::blackhole_start:
        events.add(
          {{"t", e.unix_ms}, {"ev", "fault_start"}, {"kind", "blackhole"}, {"detail", e.detail}});
        break;
      case sim::proxy_event::kind::blackhole_end:
        events.add({{"t", e.unix_ms}, {"ev", "fault_end"}, {"kind", "blackhole"}});
        break;
      case sim::proxy_event::kind::reset:
      case sim::proxy_event::kind::blackhole_reset:
        events.add({{"t", e.unix_ms},
                    {"ev", "connection_reset"},
                    {"cause", e.what == sim::proxy_event::kind::reset ? "reset" : "blackhole"},
                    {"connection", e.connection},
                    {"detail", e.detail}});
        break;
    }
  }

  sim::proxy_faults faults_;
  uint64_t seed_;
  event_log& events_;
  std::unique_ptr<sim::fault_proxy> proxy_;
  bool stopped_ = false;
};

} // namespace

network_stage_factory proxy_stage_factory() {
  return [](const scenario& scene, uint64_t seed,
            event_log& events) -> result<std::unique_ptr<network_stage>> {
    auto faults = plan_network(scene.faults.network, seed);
    if (auto s = sim::check_faults(faults); !s.ok())
      return s;
    return std::unique_ptr<network_stage>(
      std::make_unique<proxy_stage>(std::move(faults), seed, events));
  };
}

} // namespace ferry::harness
