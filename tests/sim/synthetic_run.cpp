#include "synthetic_run.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <deque>
#include <fstream>
#include <limits>
#include <random>

namespace ferry::sim_report::testing {

namespace {

struct object {
  std::string dir;
  std::string oid;
  std::int64_t size = 0;
  bool missing = false; // a download of an object the server does not have
  int attempt = 0;
};

std::string random_oid(std::mt19937_64& random) {
  static const char digits[] = "0123456789abcdef";
  std::string oid;
  for (int i = 0; i < 64; ++i)
    oid += digits[random() % 16];
  return oid;
}

} // namespace

synthetic_run write_synthetic_run(const std::filesystem::path& dir) {
  constexpr std::int64_t t0 = 1764900000000;
  constexpr int connections = 8;
  constexpr std::int64_t bytes_per_s = 1'000'000;
  constexpr std::int64_t never = std::numeric_limits<std::int64_t>::max();
  const std::int64_t fault_from = t0 + 20'000;
  const std::int64_t fault_to = t0 + 26'000;

  synthetic_run run;
  run.uploads = 300;
  run.downloads = 100;
  run.kills = {t0 + 15'000, t0 + 32'000};
  run.fault_kinds = {"blackhole"};
  run.retry_classes = {"io_error", "unavailable"};
  run.failure_classes = {"not_found"};
  run.scenario_name = "two kills & a \"blackhole\" <6 s>";
  run.evidence = "400 objects checked: 398 intact & 2 'not_found' downloads <as expected>";

  std::mt19937_64 random(14);
  std::uniform_int_distribution<std::int64_t> size_of(20'000, 2'000'000);
  std::uniform_real_distribution<double> jitter(0.8, 1.3);
  std::uniform_real_distribution<double> chance(0.0, 1.0);
  std::deque<object> pending;
  std::vector<std::pair<std::string, std::int64_t>> uploaded;
  for (int i = 0; i < run.uploads; ++i) {
    object o{"upload", random_oid(random), size_of(random)};
    uploaded.emplace_back(o.oid, o.size);
    pending.push_back(o);
  }
  for (int i = 0; i < run.downloads; ++i)
    pending.push_back({"download", uploaded[i].first, uploaded[i].second, i == 7 || i == 42});

  std::vector<nlohmann::json> events;
  events.push_back({{"t", fault_from},
                    {"ev", "fault_start"},
                    {"kind", "blackhole"},
                    {"detail", "drop every packet to the server"}});
  events.push_back({{"t", fault_to}, {"ev", "fault_end"}, {"kind", "blackhole"}});
  nlohmann::json runs = nlohmann::json::array();
  std::int64_t run_start = t0;
  std::int64_t bytes = 0;
  int retries = 0;
  int failures = 0;
  for (std::size_t number = 1; !pending.empty(); ++number) {
    std::int64_t stop = number <= run.kills.size() ? run.kills[number - 1] : never;
    events.push_back({{"t", run_start}, {"ev", "run_start"}, {"run", number}});
    std::vector<std::int64_t> free_at;
    for (int slot = 0; slot < connections; ++slot)
      free_at.push_back(run_start + 200 + slot * 30);
    std::deque<object> interrupted;
    std::int64_t last = run_start;
    while (true) {
      auto slot = std::min_element(free_at.begin(), free_at.end());
      std::int64_t t = *slot;
      if (t >= stop || t == never)
        break;
      if (pending.empty()) {
        *slot = never;
        continue;
      }
      object o = pending.front();
      pending.pop_front();
      while (true) {
        if (t >= stop) {
          interrupted.push_back(o);
          t = never;
          break;
        }
        ++o.attempt;
        nlohmann::json common = {
          {"dir", o.dir}, {"oid", o.oid}, {"cid", "c1"}, {"attempt", o.attempt}};
        nlohmann::json start = common;
        start.update({{"t", t}, {"ev", "start"}, {"size", o.size}});
        events.push_back(start);
        auto ms = static_cast<std::int64_t>(40 + o.size * 1000 / bytes_per_s * jitter(random));
        bool blackholed = t < fault_to && t + ms > fault_from;
        if (blackholed)
          ms = 3000; // the attempt times out
        std::int64_t end = t + ms;
        if (end > stop) {
          interrupted.push_back(o);
          t = never;
          break;
        }
        nlohmann::json outcome = common;
        outcome.update({{"t", end}, {"ms", ms}});
        last = std::max(last, end);
        if (blackholed || chance(random) < 0.04) {
          std::int64_t delay = blackholed ? 500 : 250;
          outcome.update({{"ev", "retry"},
                          {"error", blackholed ? "unavailable" : "io_error"},
                          {"delay_ms", delay}});
          events.push_back(outcome);
          ++retries;
          t = end + delay;
          continue;
        }
        if (o.missing) {
          outcome.update({{"ev", "fail"}, {"error", "not_found"}});
          events.push_back(outcome);
          ++failures;
        } else {
          outcome.update({{"ev", "done"}, {"size", o.size}, {"bytes", o.size}});
          events.push_back(outcome);
          bytes += o.size;
        }
        t = end;
        break;
      }
      *slot = t;
    }
    if (stop != never) {
      events.push_back({{"t", stop}, {"ev", "kill"}, {"run", number}});
      events.push_back({{"t", stop + 5}, {"ev", "run_end"}, {"run", number}, {"rc", 137}});
      runs.push_back({{"run", number}, {"duration_ms", stop + 5 - run_start}, {"rc", 137}});
      pending.insert(pending.begin(), interrupted.begin(), interrupted.end());
      run_start = stop + 1500;
    } else {
      events.push_back({{"t", last + 100}, {"ev", "run_end"}, {"run", number}, {"rc", 0}});
      runs.push_back({{"run", number}, {"duration_ms", last + 100 - run_start}, {"rc", 0}});
      run_start = last + 100;
    }
  }
  std::stable_sort(events.begin(), events.end(),
                   [](const nlohmann::json& a, const nlohmann::json& b) {
                     return a["t"].get<std::int64_t>() < b["t"].get<std::int64_t>();
                   });
  std::ofstream out(dir / "events.jsonl");
  for (const nlohmann::json& e : events)
    out << e.dump() << '\n';

  std::int64_t duration = events.back()["t"].get<std::int64_t>() - t0;
  nlohmann::json result = {
    {"scenario",
     {{"name", run.scenario_name},
      {"objects", run.uploads},
      {"connections", connections},
      {"kill_after_ms", {15'000, 32'000}},
      {"faults", {{{"kind", "blackhole"}, {"from_ms", 20'000}, {"to_ms", 26'000}}}}}},
    {"seed", 14},
    {"versions", {{"ferry", "0.0.0-synthetic"}, {"git_lfs", "3.3.0"}}},
    {"verdict", "pass"},
    {"invariants",
     {{{"name", "all_objects_intact"}, {"passed", true}, {"evidence", {run.evidence}}},
      {{"name", "failures_are_expected"},
       {"passed", true},
       {"evidence", {"2 downloads failed with not_found: their objects are missing"}}}}},
    {"counts",
     {{"objects", run.uploads + run.downloads},
      {"bytes", bytes},
      {"runs", runs.size()},
      {"kills", run.kills.size()},
      {"retries", retries},
      {"failures", failures}}},
    {"timings",
     {{"duration_ms", duration},
      {"throughput_bytes_per_s",
       static_cast<double>(bytes) * 1000.0 / static_cast<double>(duration)},
      {"runs", runs}}}};
  std::ofstream(dir / "result.json") << result.dump(2) << '\n';
  return run;
}

} // namespace ferry::sim_report::testing
