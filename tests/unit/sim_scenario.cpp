#include "simulations/harness/scenario.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

using ferry::harness::peer_kind;
using ferry::harness::scenario;
using ferry::harness::size_distribution;
using ferry::harness::workload_mode;

namespace {

/// The parse error of `text` (empty when it parses).
std::string error_of(const std::string& text) {
  auto parsed = scenario::parse(text);
  return parsed.ok() ? std::string() : parsed.error().message();
}

} // namespace

TEST_CASE("a full scenario parses with its values", "[harness][scenario]") {
  auto parsed = scenario::parse(R"({
    "name": "mixed", "comment": "text",
    "workload": {"objects": 20, "mode": "push", "repositories": 3,
                 "sizes": {"mix": [{"share": 0.95, "uniform": [1, 100]},
                                   {"share": 0.05, "lognormal": {"median": 1000, "sigma": 1.5, "max": 5000}}]}},
    "peer": {"kind": "lfs-sim", "rules": [{"fault": {"status": 503}, "times": 1}]},
    "faults": {"kills": 2},
    "expect": {"max_duration_s": 30, "min_throughput_bytes_per_s": 100}
  })");
  REQUIRE(parsed.ok());
  const auto& s = *parsed;
  CHECK(s.name == "mixed");
  CHECK(s.workload.objects == 20);
  CHECK(s.workload.mode == workload_mode::push);
  CHECK(s.workload.repositories == 3);
  REQUIRE(s.workload.sizes.shape == size_distribution::kind::mix);
  REQUIRE(s.workload.sizes.parts.size() == 2);
  CHECK(s.workload.sizes.parts[0].shape == size_distribution::kind::uniform);
  CHECK(s.workload.sizes.parts[0].high == 100);
  CHECK(s.workload.sizes.parts[1].median == 1000);
  CHECK(s.workload.sizes.parts[1].high == 5000);
  CHECK(s.peer.kind == peer_kind::lfs_sim);
  CHECK(s.peer.rules.size() == 1);
  CHECK(s.faults.kills == 2);
  CHECK(s.expect.max_duration_s == 30);
  CHECK(s.expect.min_throughput_bytes_per_s == 100);
}

TEST_CASE("defaults are filled in and to_json parses back to the same", "[harness][scenario]") {
  auto parsed = scenario::parse(R"({"workload": {"objects": 5, "sizes": {"fixed": 10}}})");
  REQUIRE(parsed.ok());
  CHECK(parsed->workload.mode == workload_mode::migrate);
  CHECK(parsed->workload.transfers == 8);
  CHECK(parsed->peer.kind == peer_kind::folder);
  CHECK(parsed->faults.kills == 0);
  CHECK(parsed->expect.max_duration_s == 600);
  const auto text = parsed->to_json().dump();
  auto again = scenario::parse(text);
  REQUIRE(again.ok());
  CHECK(again->to_json() == parsed->to_json());
  CHECK(parsed->to_json()["workload"]["sizes"] == nlohmann::json{{"fixed", 10}});
}

TEST_CASE("errors name the field", "[harness][scenario]") {
  const std::string ok_workload = R"("workload": {"objects": 5, "sizes": {"fixed": 10}})";
  CHECK(error_of("[]").rfind("scenario:", 0) == 0);
  CHECK(error_of("{").find("not valid JSON") != std::string::npos);
  CHECK(error_of("{}").rfind("workload: missing", 0) == 0);
  CHECK(error_of("{" + ok_workload + R"(, "extra": 1})").rfind("extra: unknown key", 0) == 0);
  CHECK(error_of(R"({"workload": {"objects": 0, "sizes": {"fixed": 1}}})")
          .rfind("workload.objects:", 0) == 0);
  CHECK(error_of(R"({"workload": {"objects": 5}})").rfind("workload.sizes: missing", 0) == 0);
  CHECK(error_of(R"({"workload": {"objects": 5, "sizes": {"fixed": 1, "obects": 2}}})")
          .rfind("workload.sizes.obects: unknown key", 0) == 0);
  CHECK(error_of(R"({"workload": {"objects": 5, "sizes": {"uniform": [10, 2]}}})")
          .rfind("workload.sizes.uniform[1]:", 0) == 0);
  CHECK(error_of(R"({"workload": {"objects": 5, "sizes": {"uniform": [1]}}})")
          .rfind("workload.sizes.uniform:", 0) == 0);
  CHECK(error_of(R"({"workload": {"objects": 5, "sizes": {}}})")
          .rfind("workload.sizes: expected one of", 0) == 0);
  CHECK(error_of(R"({"workload": {"objects": 5, "sizes": {"fixed": 1, "uniform": [1, 2]}}})")
          .rfind("workload.sizes: expected one of", 0) == 0);
  CHECK(
    error_of(R"({"workload": {"objects": 5, "sizes": {"lognormal": {"median": 10, "sigma": 1}}}})")
      .rfind("workload.sizes.lognormal: needs", 0) == 0);
  CHECK(
    error_of(
      R"({"workload": {"objects": 5, "sizes": {"lognormal": {"median": 10, "sigma": -1, "max": 20}}}})")
      .rfind("workload.sizes.lognormal.sigma:", 0) == 0);
  CHECK(error_of(R"({"workload": {"objects": 5, "sizes": {"mix": [{"share": 0.5, "fixed": 1}]}}})")
          .rfind("workload.sizes.mix: the shares add up to", 0) == 0);
  CHECK(error_of(R"({"workload": {"objects": 5, "sizes": {"mix": [{"fixed": 1}]}}})")
          .rfind("workload.sizes.mix[0].share: missing", 0) == 0);
  CHECK(error_of(R"({"workload": {"objects": 5, "sizes": {"mix": [{"share": 1, "mix": []}]}}})")
          .rfind("workload.sizes.mix[0].mix: unknown key", 0) == 0);
  CHECK(error_of(R"({"workload": {"objects": 5, "mode": "copy", "sizes": {"fixed": 1}}})")
          .rfind("workload.mode:", 0) == 0);
  CHECK(error_of(R"({"workload": {"objects": 5, "repositories": 2, "sizes": {"fixed": 1}}})")
          .rfind("workload.repositories:", 0) == 0);
  CHECK(error_of(R"({"workload": {"objects": 5, "mode": "push", "tps": 5, "sizes": {"fixed": 1}}})")
          .rfind("workload.tps: only for mode migrate", 0) == 0);
  CHECK(error_of("{" + ok_workload + R"(, "peer": {"kind": "s3"}})").rfind("peer.kind:", 0) == 0);
  CHECK(error_of("{" + ok_workload + R"(, "peer": {"kind": "folder", "rules": []}})")
          .rfind("peer.rules: only for kind lfs-sim", 0) == 0);
  CHECK(error_of("{" + ok_workload + R"(, "faults": {"kills": -1}})").rfind("faults.kills:", 0) ==
        0);
  CHECK(error_of("{" + ok_workload + R"(, "faults": {"kill": 1}})")
          .rfind("faults.kill: unknown key", 0) == 0);
  CHECK(error_of("{" + ok_workload + R"(, "faults": {"network": {}}})")
          .rfind("faults.network: expected an array", 0) == 0);
  CHECK(error_of("{" + ok_workload + R"(, "expect": {"max_duration_s": 0}})")
          .rfind("expect.max_duration_s:", 0) == 0);
  CHECK(error_of(R"({"workload": {"objects": 1, "sizes": {"fixed": 1}}, "faults": {"kills": 1}})")
          .rfind("faults.kills: kills need at least 2 objects", 0) == 0);
}

TEST_CASE("the example scenarios parse and plan", "[harness][scenario]") {
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(FERRY_SIM_SCENARIOS)) {
    const std::string name = entry.path().filename().string();
    // The other files there are ferry-lfs-sim's own scenarios.
    if (name.rfind("sim-", 0) != 0 && name.rfind("soak-", 0) != 0)
      continue;
    INFO(name);
    auto parsed = scenario::load(entry.path().string());
    REQUIRE(parsed.ok());
    CHECK(parsed->name + ".json" == name);
    ++files;
  }
  CHECK(files >= 5);
}
