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
          .rfind("faults.network: only for peer.kind lfs-sim", 0) == 0);
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

TEST_CASE("faults.network parses with its values and round-trips", "[harness][scenario]") {
  auto parsed = scenario::parse(R"({
    "workload": {"objects": 5, "sizes": {"fixed": 10}, "mode": "push"},
    "peer": {"kind": "lfs-sim"},
    "faults": {"network": {"latency_ms": 20, "jitter_ms": 10, "bandwidth_bytes_per_s": 1000,
                           "reset_probability": 0.5, "reset_after_bytes": [100, 200],
                           "blackholes": [{"start_ms": 10, "end_ms": 20}],
                           "blackhole": {"count": 2, "duration_ms": 50, "within_ms": 1000}}}
  })");
  REQUIRE(parsed.ok());
  const auto& n = parsed->faults.network;
  CHECK(n.enabled);
  CHECK(n.latency_ms == 20);
  CHECK(n.jitter_ms == 10);
  CHECK(n.bandwidth_bytes_per_s == 1000);
  CHECK(n.reset_probability == 0.5);
  CHECK(n.reset_after_min_bytes == 100);
  CHECK(n.reset_after_max_bytes == 200);
  REQUIRE(n.blackholes.size() == 1);
  CHECK(n.blackholes[0].start_ms == 10);
  CHECK(n.blackholes[0].end_ms == 20);
  CHECK(n.random_blackholes == 2);
  CHECK(n.random_blackhole_ms == 50);
  CHECK(n.random_blackholes_within_ms == 1000);
  auto again = scenario::parse(parsed->to_json().dump());
  REQUIRE(again.ok());
  CHECK(again->to_json() == parsed->to_json());

  auto none = scenario::parse(R"({"workload": {"objects": 5, "sizes": {"fixed": 10}}})");
  REQUIRE(none.ok());
  CHECK_FALSE(none->faults.network.enabled);
  CHECK(none->to_json()["faults"]["network"].is_null());
  auto empty = scenario::parse(
    R"({"workload": {"objects": 5, "sizes": {"fixed": 10}}, "peer": {"kind": "lfs-sim"},
        "faults": {"network": {}}})");
  REQUIRE(empty.ok());
  CHECK(empty->faults.network.enabled);
}

TEST_CASE("faults.network errors name the field", "[harness][scenario]") {
  auto network_error = [](const std::string& network) {
    return error_of(R"({"workload": {"objects": 5, "sizes": {"fixed": 10}},
                        "peer": {"kind": "lfs-sim"}, "faults": {"network": )" +
                    network + "}}");
  };
  CHECK(network_error("[]").rfind("faults.network: expected an object", 0) == 0);
  CHECK(network_error(R"({"latency": 1})").rfind("faults.network.latency: unknown key", 0) == 0);
  CHECK(network_error(R"({"latency_ms": -1})").rfind("faults.network.latency_ms:", 0) == 0);
  CHECK(network_error(R"({"latency_ms": 5, "jitter_ms": 6})")
          .rfind("faults.network.jitter_ms: must not exceed latency_ms (5)", 0) == 0);
  CHECK(network_error(R"({"bandwidth_bytes_per_s": 1.5})")
          .rfind("faults.network.bandwidth_bytes_per_s:", 0) == 0);
  CHECK(
    network_error(R"({"reset_probability": 2})").rfind("faults.network.reset_probability:", 0) ==
    0);
  CHECK(network_error(R"({"reset_probability": 0.5})")
          .rfind("faults.network.reset_after_bytes: missing", 0) == 0);
  CHECK(network_error(R"({"reset_after_bytes": [5]})")
          .rfind("faults.network.reset_after_bytes: expected [fewest, most]", 0) == 0);
  CHECK(network_error(R"({"reset_after_bytes": [5, 4]})")
          .rfind("faults.network.reset_after_bytes[1]:", 0) == 0);
  CHECK(network_error(R"({"blackholes": {}})").rfind("faults.network.blackholes: expected", 0) ==
        0);
  CHECK(network_error(R"({"blackholes": [{"start_ms": 5}]})")
          .rfind("faults.network.blackholes[0]: needs start_ms and end_ms", 0) == 0);
  CHECK(
    network_error(R"({"blackholes": [{"start_ms": 0, "end_ms": 1}, {"start_ms": 5, "end_ms": 5}]})")
      .rfind("faults.network.blackholes[1].end_ms:", 0) == 0);
  CHECK(network_error(R"({"blackhole": {"count": 2, "duration_ms": 10}})")
          .rfind("faults.network.blackhole: needs count, duration_ms and within_ms", 0) == 0);
  CHECK(network_error(R"({"blackhole": {"count": 0, "duration_ms": 10, "within_ms": 100}})")
          .rfind("faults.network.blackhole.count:", 0) == 0);
  CHECK(network_error(R"({"blackhole": {"count": 3, "duration_ms": 50, "within_ms": 100}})")
          .rfind("faults.network.blackhole.within_ms: must be at least count * duration_ms (150)",
                 0) == 0);
}

TEST_CASE("faults.disk parses, round-trips and names its fields", "[harness][scenario]") {
  auto parsed = scenario::parse(R"({"workload": {"objects": 5, "sizes": {"fixed": 10}},
    "faults": {"disk": {"capacity_bytes": 1048576, "freed_after_run": 2}}})");
  REQUIRE(parsed.ok());
  CHECK(parsed->faults.disk.enabled);
  CHECK(parsed->faults.disk.capacity_bytes == 1048576);
  CHECK(parsed->faults.disk.freed_after_run == 2);
  auto again = scenario::parse(parsed->to_json().dump());
  REQUIRE(again.ok());
  CHECK(again->to_json() == parsed->to_json());
  auto one = scenario::parse(R"({"workload": {"objects": 5, "sizes": {"fixed": 10}},
    "faults": {"disk": {"capacity_bytes": 1048576}}})");
  REQUIRE(one.ok());
  CHECK(one->faults.disk.freed_after_run == 1);
  auto none = scenario::parse(R"({"workload": {"objects": 5, "sizes": {"fixed": 10}}})");
  REQUIRE(none.ok());
  CHECK_FALSE(none->faults.disk.enabled);
  CHECK(none->to_json()["faults"]["disk"].is_null());

  auto disk_error = [](const std::string& disk, const std::string& mode = "migrate") {
    return error_of(R"({"workload": {"objects": 5, "sizes": {"fixed": 10}, "mode": ")" + mode +
                    R"("}, "faults": {"disk": )" + disk + "}}");
  };
  CHECK(disk_error("[]").rfind("faults.disk: expected an object", 0) == 0);
  CHECK(disk_error(R"({"capacity_bytes": 1048576})", "push")
          .rfind("faults.disk: only for workload.mode migrate to peer.kind folder", 0) == 0);
  CHECK(disk_error("{}").rfind("faults.disk.capacity_bytes: missing", 0) == 0);
  CHECK(disk_error(R"({"capacity_bytes": 10})").rfind("faults.disk.capacity_bytes:", 0) == 0);
  CHECK(disk_error(R"({"capacity_bytes": 1048576, "freed_after_run": 0})")
          .rfind("faults.disk.freed_after_run:", 0) == 0);
  CHECK(disk_error(R"({"capacity_bytes": 1048576, "size": 1})")
          .rfind("faults.disk.size: unknown key", 0) == 0);
}

TEST_CASE("peer.kind bridge-sim parses with its rules, round-trips and names its fields",
          "[harness][scenario]") {
  auto parsed = scenario::parse(R"({"workload": {"objects": 5, "sizes": {"fixed": 10},
    "mode": "push"}, "peer": {"kind": "bridge-sim",
    "rules": [{"command": "upload", "times": 1, "fault": "bad_gateway"}]}})");
  REQUIRE(parsed.ok());
  CHECK(parsed->peer.kind == peer_kind::bridge_sim);
  REQUIRE(parsed->peer.rules.size() == 1);
  CHECK(parsed->peer.rules[0]["fault"] == "bad_gateway");
  CHECK(parsed->to_json()["peer"]["kind"] == "bridge-sim");
  auto again = scenario::parse(parsed->to_json().dump());
  REQUIRE(again.ok());
  CHECK(again->to_json() == parsed->to_json());
  auto pull = scenario::parse(R"({"workload": {"objects": 5, "sizes": {"fixed": 10},
    "mode": "pull"}, "peer": {"kind": "bridge-sim"}})");
  REQUIRE(pull.ok());
  CHECK(pull->peer.kind == peer_kind::bridge_sim);
  CHECK(pull->to_json()["peer"]["rules"] == nlohmann::json::array());

  const std::string push = R"("workload": {"objects": 5, "sizes": {"fixed": 10}, "mode": "push"})";
  CHECK(error_of(R"({"workload": {"objects": 5, "sizes": {"fixed": 10}},
    "peer": {"kind": "bridge-sim"}})")
          .rfind("peer.kind: bridge-sim only for workload.mode push or pull", 0) == 0);
  CHECK(error_of("{" + push + R"(, "peer": {"kind": "bridge"}})")
          .rfind("peer.kind: expected folder, lfs-sim, bridge-sim or radosgw, not 'bridge'", 0) ==
        0);
  CHECK(error_of("{" + push + R"(, "peer": {"kind": "bridge-sim", "rules": {}}})")
          .rfind("peer.rules: expected an array", 0) == 0);
  CHECK(error_of("{" + push + R"(, "peer": {"kind": "bridge-sim"}, "faults": {"network": {}}})")
          .rfind("faults.network: only for peer.kind lfs-sim", 0) == 0);
}

TEST_CASE("peer.kind radosgw parses for migrate and push, round-trips and names its fields",
          "[harness][scenario]") {
  for (const std::string mode : {"migrate", "push"}) {
    auto parsed =
      scenario::parse(R"({"workload": {"objects": 5, "sizes": {"fixed": 10}, "mode": ")" + mode +
                      R"("}, "peer": {"kind": "radosgw"}})");
    REQUIRE(parsed.ok());
    CHECK(parsed->peer.kind == peer_kind::radosgw);
    CHECK(parsed->to_json()["peer"] == nlohmann::json{{"kind", "radosgw"}});
    auto again = scenario::parse(parsed->to_json().dump());
    REQUIRE(again.ok());
    CHECK(again->to_json() == parsed->to_json());
  }
  CHECK(error_of(R"({"workload": {"objects": 5, "sizes": {"fixed": 10}, "mode": "pull"},
    "peer": {"kind": "radosgw"}})")
          .rfind("peer.kind: radosgw only for workload.mode migrate or push", 0) == 0);
  CHECK(error_of(R"({"workload": {"objects": 5, "sizes": {"fixed": 10}},
    "peer": {"kind": "radosgw", "rules": []}})")
          .rfind("peer.rules: only for kind lfs-sim or bridge-sim", 0) == 0);
  CHECK(error_of(R"({"workload": {"objects": 5, "sizes": {"fixed": 10}},
    "peer": {"kind": "radosgw"}, "faults": {"disk": {"capacity_bytes": 1048576}}})")
          .rfind("faults.disk: only for workload.mode migrate to peer.kind folder", 0) == 0);
}
