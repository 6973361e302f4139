#include "simulations/harness/event_log.hpp"

#include <algorithm>
#include <chrono>
#include <fstream>

namespace ferry::harness {

using nlohmann::json;

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

void event_log::add(json event) {
  if (!event.contains("t"))
    event["t"] = now_ms();
  std::lock_guard<std::mutex> lock(mutex_);
  events_.push_back(std::move(event));
}

void event_log::run_start(int run) { add({{"t", now_ms()}, {"ev", "run_start"}, {"run", run}}); }

void event_log::run_end(int run, int rc) {
  add({{"t", now_ms()}, {"ev", "run_end"}, {"run", run}, {"rc", rc}});
}

void event_log::kill(int run) { add({{"t", now_ms()}, {"ev", "kill"}, {"run", run}}); }

void event_log::fault_start(const std::string& kind, const std::string& detail) {
  add({{"t", now_ms()}, {"ev", "fault_start"}, {"kind", kind}, {"detail", detail}});
}

void event_log::fault_end(const std::string& kind) {
  add({{"t", now_ms()}, {"ev", "fault_end"}, {"kind", kind}});
}

std::vector<json> event_log::events() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return events_;
}

bool event_log::write(const std::filesystem::path& path,
                      const std::filesystem::path& ferry_events) const {
  auto all = events();
  if (std::ifstream in(ferry_events); in) {
    std::string line;
    while (std::getline(in, line)) {
      json event = json::parse(line, nullptr, false);
      if (event.is_object() && event.contains("t") && event["t"].is_number())
        all.push_back(std::move(event));
    }
  }
  std::stable_sort(all.begin(), all.end(), [](const json& a, const json& b) {
    return a["t"].get<double>() < b["t"].get<double>();
  });
  std::ofstream out(path, std::ios::trunc);
  for (const auto& event : all)
    out << event.dump() << '\n';
  out.flush();
  return static_cast<bool>(out);
}

} // namespace ferry::harness
