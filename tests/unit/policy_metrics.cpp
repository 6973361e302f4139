#include "actors/policy/metrics.hpp"

#include <catch2/catch.hpp>

#include <sstream>
#include <thread>

using namespace ferry;
using protocol::prometheus_type;

TEST_CASE("metrics registry: counters and gauges by labels", "[metrics]") {
  metrics_registry registry;
  registry.describe("c_total", "C.", prometheus_type::counter);
  registry.describe("g", "G.", prometheus_type::gauge);
  CHECK(registry.add("c_total", {{"a", "x"}}));
  CHECK(registry.add("c_total", {{"a", "x"}}, 2));
  CHECK(registry.add("c_total", {{"a", "y"}}));
  CHECK(registry.value("c_total", {{"a", "x"}}) == 3);
  CHECK(registry.value("c_total", {{"a", "y"}}) == 1);
  CHECK_FALSE(registry.has("c_total", {{"a", "z"}}));
  // A counter only goes up.
  CHECK_FALSE(registry.add("c_total", {{"a", "x"}}, -1));
  CHECK_FALSE(registry.set("c_total", {{"a", "x"}}, 0));
  CHECK(registry.value("c_total", {{"a", "x"}}) == 3);
  CHECK(registry.add("g", {}, 2));
  CHECK(registry.add("g", {}, -1));
  CHECK(registry.value("g", {}) == 1);
  CHECK(registry.set("g", {}, 7));
  CHECK(registry.value("g", {}) == 7);
  // Undescribed names are ignored.
  CHECK_FALSE(registry.add("nope_total", {}));
  CHECK_FALSE(registry.observe("g", {}, 1));
  CHECK(registry.render() == "# HELP c_total C.\n# TYPE c_total counter\n"
                             "c_total{a=\"x\"} 3\nc_total{a=\"y\"} 1\n"
                             "# HELP g G.\n# TYPE g gauge\ng 7\n");
}

TEST_CASE("metrics registry: histogram buckets hold what is at or below their bound", "[metrics]") {
  metrics_registry registry;
  registry.describe("h_seconds", "H.", prometheus_type::histogram, {0.5, 1, 2});
  for (double v : {0.1, 0.5, 0.7, 1.0, 3.0, 9.0})
    CHECK(registry.observe("h_seconds", {{"op", "copy"}}, v));
  auto h = registry.histogram("h_seconds", {{"op", "copy"}});
  CHECK(h.counts == std::vector<uint64_t>{2, 2, 0, 2});
  CHECK(h.sum == Approx(14.3));
  auto text = registry.render();
  CHECK(text.find("h_seconds_bucket{op=\"copy\",le=\"0.5\"} 2\n"
                  "h_seconds_bucket{op=\"copy\",le=\"1\"} 4\n"
                  "h_seconds_bucket{op=\"copy\",le=\"2\"} 4\n"
                  "h_seconds_bucket{op=\"copy\",le=\"+Inf\"} 6\n") != std::string::npos);
  CHECK(text.find("h_seconds_count{op=\"copy\"} 6\n") != std::string::npos);
}

TEST_CASE("metrics registry: rendered buckets never decrease and +Inf equals _count", "[metrics]") {
  metrics_registry registry;
  describe_transfer_metrics(registry, "1.2.3");
  for (int i = 0; i < 200; ++i)
    registry.observe(metric::transfer_duration, {{"direction", "copy"}}, i * 0.37);
  std::istringstream lines{registry.render()};
  std::string line;
  double previous = -1;
  double inf = -1;
  double count = -2;
  int buckets = 0;
  while (std::getline(lines, line)) {
    if (line.rfind('#', 0) == 0)
      continue;
    auto value = std::stod(line.substr(line.rfind(' ') + 1));
    if (line.rfind(std::string{metric::transfer_duration} + "_bucket", 0) == 0) {
      CHECK(value >= previous);
      previous = value;
      ++buckets;
      if (line.find("le=\"+Inf\"") != std::string::npos)
        inf = value;
    } else if (line.rfind(std::string{metric::transfer_duration} + "_count", 0) == 0) {
      count = value;
    }
  }
  CHECK(buckets == 16);
  CHECK(inf == 200);
  CHECK(count == 200);
}

TEST_CASE("metrics registry: updates from many threads are all counted", "[metrics]") {
  metrics_registry registry;
  registry.describe("c_total", "C.", prometheus_type::counter);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i)
        registry.add("c_total", {});
    });
  for (auto& thread : threads)
    thread.join();
  CHECK(registry.value("c_total", {}) == 4000);
}

TEST_CASE("store kinds for metric labels", "[metrics]") {
  struct named : object_store {
    explicit named(std::string shown) : shown_(std::move(shown)) {}
    std::string describe() const override { return shown_; }
    result<std::optional<object_info>> stat(const std::string&) override {
      return std::optional<object_info>{};
    }
    result<std::unique_ptr<object_reader>> open_read(const std::string&, int64_t) override {
      return status{errc::internal, "unused"};
    }
    result<std::unique_ptr<object_writer>> open_write(const std::string&, int64_t,
                                                      const std::optional<std::string>&) override {
      return status{errc::internal, "unused"};
    }
    status list(const std::function<bool(const object_info&)>&) override { return {}; }
    status remove(const std::string&) override { return {}; }
    std::string shown_;
  };
  CHECK(store_kind(named{"file:///srv/lfs"}) == "folder");
  CHECK(store_kind(named{"s3://bucket/prefix"}) == "s3");
  CHECK(store_kind(named{"proton://Ferry"}) == "proton");
  CHECK(store_kind(named{"https://example.com/repo.git/info/lfs"}) == "lfs");
  CHECK(store_kind(named{"lfs+https://example.com/repo"}) == "lfs");
  CHECK(store_kind(named{"wrapped+file:///srv/lfs"}) == "folder");
}
