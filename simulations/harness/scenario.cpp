#include "simulations/harness/scenario.hpp"

#include "protocol/parsing.hpp"

#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

namespace ferry::harness {

using nlohmann::json;

const char* to_string(workload_mode mode) {
  switch (mode) {
    case workload_mode::migrate:
      return "migrate";
    case workload_mode::push:
      return "push";
    case workload_mode::pull:
      return "pull";
  }
  return "migrate";
}

const char* to_string(peer_kind kind) {
  switch (kind) {
    case peer_kind::folder:
      return "folder";
    case peer_kind::lfs_sim:
      return "lfs-sim";
    case peer_kind::bridge_sim:
      return "bridge-sim";
    case peer_kind::radosgw:
      return "radosgw";
  }
  return "?";
}

namespace {

/// The largest object a scenario may ask for: 1 TiB.
constexpr int64_t max_object_size = int64_t{1} << 40;

/// Thrown inside the parser and turned into a status by scenario::parse.
struct bad_field {
  std::string message;
};

[[noreturn]] void reject(const std::string& where, const std::string& what) {
  throw bad_field{where + ": " + what};
}

std::string path_of(const std::string& where, const std::string& key) {
  return where.empty() ? key : where + "." + key;
}

void check_keys(const json& value, const std::string& where, const std::set<std::string>& allowed) {
  if (!value.is_object())
    reject(where.empty() ? "scenario" : where, "expected an object");
  for (const auto& item : value.items()) {
    if (allowed.count(item.key()) == 0) {
      std::string known;
      for (const auto& key : allowed)
        known += (known.empty() ? "" : ", ") + key;
      reject(path_of(where, item.key()), "unknown key (known: " + known + ")");
    }
  }
}

int64_t read_int(const json& value, const std::string& where, int64_t min, int64_t max) {
  auto v = protocol::as_int64(value);
  if (!v || *v < min || *v > max)
    reject(where, "expected an integer from " + std::to_string(min) + " to " + std::to_string(max));
  return *v;
}

double read_number(const json& value, const std::string& where, double min, double max) {
  if (!value.is_number() || !std::isfinite(value.get<double>()) || value.get<double>() < min ||
      value.get<double>() > max) {
    std::ostringstream range;
    range << "expected a number from " << min << " to " << max;
    reject(where, range.str());
  }
  return value.get<double>();
}

std::string read_string(const json& value, const std::string& where) {
  if (!value.is_string())
    reject(where, "expected a string");
  return value.get<std::string>();
}

const json* member(const json& object, const char* key) {
  return protocol::find_member(object, key);
}

size_distribution parse_sizes(const json& value, const std::string& where, bool in_mix) {
  if (in_mix)
    check_keys(value, where, {"share", "fixed", "uniform", "lognormal"});
  else
    check_keys(value, where, {"fixed", "uniform", "lognormal", "mix"});
  size_distribution out;
  int shapes = 0;
  if (const auto* fixed = member(value, "fixed")) {
    ++shapes;
    out.shape = size_distribution::kind::fixed;
    out.low = out.high = read_int(*fixed, where + ".fixed", 1, max_object_size);
  }
  if (const auto* uniform = member(value, "uniform")) {
    ++shapes;
    const std::string at = where + ".uniform";
    if (!uniform->is_array() || uniform->size() != 2)
      reject(at, "expected [smallest, largest]");
    out.shape = size_distribution::kind::uniform;
    out.low = read_int((*uniform)[0], at + "[0]", 1, max_object_size);
    out.high = read_int((*uniform)[1], at + "[1]", out.low, max_object_size);
  }
  if (const auto* lognormal = member(value, "lognormal")) {
    ++shapes;
    const std::string at = where + ".lognormal";
    check_keys(*lognormal, at, {"median", "sigma", "max"});
    const auto* median = member(*lognormal, "median");
    const auto* sigma = member(*lognormal, "sigma");
    const auto* max = member(*lognormal, "max");
    if (!median || !sigma || !max)
      reject(at, "needs median, sigma and max");
    out.shape = size_distribution::kind::lognormal;
    out.median = static_cast<double>(read_int(*median, at + ".median", 1, max_object_size));
    out.sigma = read_number(*sigma, at + ".sigma", 0, 10);
    out.high = read_int(*max, at + ".max", static_cast<int64_t>(out.median), max_object_size);
  }
  if (const auto* mix = member(value, "mix")) {
    ++shapes;
    const std::string at = where + ".mix";
    if (!mix->is_array() || mix->empty())
      reject(at, "expected a non-empty array of parts");
    out.shape = size_distribution::kind::mix;
    double total = 0;
    for (size_t i = 0; i < mix->size(); ++i) {
      const std::string part_at = at + "[" + std::to_string(i) + "]";
      auto part = parse_sizes((*mix)[i], part_at, true);
      const auto* share = member((*mix)[i], "share");
      if (!share)
        reject(part_at + ".share", "missing");
      part.share = read_number(*share, part_at + ".share", 0, 1);
      total += part.share;
      out.parts.push_back(std::move(part));
    }
    if (std::fabs(total - 1.0) > 1e-9)
      reject(at, "the shares add up to " + std::to_string(total) + ", not 1");
  }
  if (shapes != 1)
    reject(where, in_mix ? "expected one of fixed, uniform, lognormal"
                         : "expected one of fixed, uniform, lognormal, mix");
  return out;
}

workload_spec parse_workload(const json& value) {
  const std::string where = "workload";
  check_keys(value, where, {"objects", "sizes", "mode", "repositories", "transfers", "tps"});
  workload_spec out;
  const auto* objects = member(value, "objects");
  if (!objects)
    reject(where + ".objects", "missing");
  out.objects = read_int(*objects, where + ".objects", 1, 100'000'000);
  const auto* sizes = member(value, "sizes");
  if (!sizes)
    reject(where + ".sizes", "missing");
  out.sizes = parse_sizes(*sizes, where + ".sizes", false);
  if (const auto* mode = member(value, "mode")) {
    const auto name = read_string(*mode, where + ".mode");
    if (name == "migrate")
      out.mode = workload_mode::migrate;
    else if (name == "push")
      out.mode = workload_mode::push;
    else if (name == "pull")
      out.mode = workload_mode::pull;
    else
      reject(where + ".mode", "expected migrate, push or pull, not '" + name + "'");
  }
  if (const auto* repositories = member(value, "repositories")) {
    out.repositories = static_cast<int>(read_int(*repositories, where + ".repositories", 1, 64));
    if (out.mode == workload_mode::migrate && out.repositories != 1)
      reject(where + ".repositories",
             "a migration moves one store (only push and pull take several)");
    if (out.repositories > out.objects)
      reject(where + ".repositories", "more repositories than objects");
  }
  if (const auto* transfers = member(value, "transfers")) {
    if (out.mode != workload_mode::migrate)
      reject(where + ".transfers", "only for mode migrate");
    out.transfers = static_cast<int>(read_int(*transfers, where + ".transfers", 1, 256));
  }
  if (const auto* tps = member(value, "tps")) {
    if (out.mode != workload_mode::migrate)
      reject(where + ".tps", "only for mode migrate");
    out.tps = read_number(*tps, where + ".tps", 0, 1e9);
  }
  return out;
}

peer_spec parse_peer(const json& value) {
  const std::string where = "peer";
  check_keys(value, where, {"kind", "rules"});
  peer_spec out;
  const auto* kind = member(value, "kind");
  if (!kind)
    reject(where + ".kind", "missing");
  const auto name = read_string(*kind, where + ".kind");
  if (name == "folder")
    out.kind = peer_kind::folder;
  else if (name == "lfs-sim")
    out.kind = peer_kind::lfs_sim;
  else if (name == "bridge-sim")
    out.kind = peer_kind::bridge_sim;
  else if (name == "radosgw")
    out.kind = peer_kind::radosgw;
  else
    reject(where + ".kind", "expected folder, lfs-sim, bridge-sim or radosgw, not '" + name + "'");
  if (const auto* rules = member(value, "rules")) {
    if (out.kind != peer_kind::lfs_sim && out.kind != peer_kind::bridge_sim)
      reject(where + ".rules", "only for kind lfs-sim or bridge-sim");
    if (!rules->is_array())
      reject(where + ".rules", "expected an array (the simulator's scenario rules)");
    out.rules = *rules;
  }
  return out;
}

/// The largest time a network fault may last or start at: one day.
constexpr int64_t max_fault_ms = 86'400'000;

time_window parse_window(const json& value, const std::string& where) {
  check_keys(value, where, {"start_ms", "end_ms"});
  const auto* start = member(value, "start_ms");
  const auto* end = member(value, "end_ms");
  if (!start || !end)
    reject(where, "needs start_ms and end_ms");
  time_window out;
  out.start_ms = read_int(*start, where + ".start_ms", 0, max_fault_ms);
  out.end_ms = read_int(*end, where + ".end_ms", out.start_ms + 1, max_fault_ms + 1);
  return out;
}

network_spec parse_network(const json& value) {
  const std::string where = "faults.network";
  check_keys(value, where,
             {"latency_ms", "jitter_ms", "bandwidth_bytes_per_s", "reset_probability",
              "reset_after_bytes", "blackholes", "blackhole"});
  network_spec out;
  out.enabled = true;
  if (const auto* latency = member(value, "latency_ms"))
    out.latency_ms = read_int(*latency, where + ".latency_ms", 0, 60'000);
  if (const auto* jitter = member(value, "jitter_ms"))
    out.jitter_ms = read_int(*jitter, where + ".jitter_ms", 0, 60'000);
  if (out.jitter_ms > out.latency_ms)
    reject(where + ".jitter_ms",
           "must not exceed latency_ms (" + std::to_string(out.latency_ms) + ")");
  if (const auto* bandwidth = member(value, "bandwidth_bytes_per_s"))
    out.bandwidth_bytes_per_s =
      read_int(*bandwidth, where + ".bandwidth_bytes_per_s", 0, int64_t{1} << 40);
  if (const auto* probability = member(value, "reset_probability"))
    out.reset_probability = read_number(*probability, where + ".reset_probability", 0, 1);
  if (const auto* after = member(value, "reset_after_bytes")) {
    const std::string at = where + ".reset_after_bytes";
    if (!after->is_array() || after->size() != 2)
      reject(at, "expected [fewest, most]");
    out.reset_after_min_bytes = read_int((*after)[0], at + "[0]", 0, int64_t{1} << 40);
    out.reset_after_max_bytes =
      read_int((*after)[1], at + "[1]", out.reset_after_min_bytes, int64_t{1} << 40);
  } else if (out.reset_probability > 0) {
    reject(where + ".reset_after_bytes", "missing (reset_probability needs it)");
  }
  if (const auto* blackholes = member(value, "blackholes")) {
    if (!blackholes->is_array())
      reject(where + ".blackholes", "expected an array of {start_ms, end_ms}");
    for (size_t i = 0; i < blackholes->size(); ++i)
      out.blackholes.push_back(
        parse_window((*blackholes)[i], where + ".blackholes[" + std::to_string(i) + "]"));
  }
  if (const auto* drawn = member(value, "blackhole")) {
    const std::string at = where + ".blackhole";
    check_keys(*drawn, at, {"count", "duration_ms", "within_ms"});
    const auto* count = member(*drawn, "count");
    const auto* duration = member(*drawn, "duration_ms");
    const auto* within = member(*drawn, "within_ms");
    if (!count || !duration || !within)
      reject(at, "needs count, duration_ms and within_ms");
    out.random_blackholes = read_int(*count, at + ".count", 1, 1000);
    out.random_blackhole_ms = read_int(*duration, at + ".duration_ms", 1, max_fault_ms);
    // Each window gets a slot of its own, so the drawn windows never overlap.
    out.random_blackholes_within_ms = read_int(*within, at + ".within_ms", 1, max_fault_ms);
    if (out.random_blackholes_within_ms < out.random_blackholes * out.random_blackhole_ms)
      reject(at + ".within_ms", "must be at least count * duration_ms (" +
                                  std::to_string(out.random_blackholes * out.random_blackhole_ms) +
                                  ")");
  }
  return out;
}

fault_spec parse_faults(const json& value, int64_t objects, workload_mode mode, peer_kind peer) {
  const std::string where = "faults";
  check_keys(value, where, {"kills", "network", "disk"});
  fault_spec out;
  if (const auto* kills = member(value, "kills")) {
    out.kills = static_cast<int>(read_int(*kills, where + ".kills", 0, 100'000));
    // A kill point is "after k objects arrived", 1 <= k < objects.
    if (out.kills > 0 && objects < 2)
      reject(where + ".kills", "kills need at least 2 objects");
  }
  if (const auto* network = member(value, "network"); network && !network->is_null()) {
    // The proxy stands between ferry and a server it starts: only ferry-lfs-sim.
    if (peer != peer_kind::lfs_sim)
      reject(where + ".network", "only for peer.kind lfs-sim");
    out.network = parse_network(*network);
  }
  if (const auto* disk = member(value, "disk"); disk && !disk->is_null()) {
    // The harness mounts the tmpfs where the destination folder is.
    if (mode != workload_mode::migrate || peer != peer_kind::folder)
      reject(where + ".disk", "only for workload.mode migrate to peer.kind folder");
    const std::string at = where + ".disk";
    check_keys(*disk, at, {"capacity_bytes", "freed_after_run"});
    const auto* capacity = member(*disk, "capacity_bytes");
    if (!capacity)
      reject(at + ".capacity_bytes", "missing");
    out.disk.enabled = true;
    out.disk.capacity_bytes = read_int(*capacity, at + ".capacity_bytes", 65536, int64_t{1} << 40);
    if (const auto* freed = member(*disk, "freed_after_run"))
      out.disk.freed_after_run =
        static_cast<int>(read_int(*freed, at + ".freed_after_run", 1, 1000));
  }
  return out;
}

expect_spec parse_expect(const json& value) {
  const std::string where = "expect";
  check_keys(value, where, {"max_duration_s", "min_throughput_bytes_per_s"});
  expect_spec out;
  if (const auto* max = member(value, "max_duration_s"))
    out.max_duration_s = read_number(*max, where + ".max_duration_s", 0.001, 86400.0 * 7);
  if (const auto* min = member(value, "min_throughput_bytes_per_s"))
    out.min_throughput_bytes_per_s =
      read_number(*min, where + ".min_throughput_bytes_per_s", 0, 1e15);
  return out;
}

json sizes_to_json(const size_distribution& sizes) {
  json out = json::object();
  switch (sizes.shape) {
    case size_distribution::kind::fixed:
      out["fixed"] = sizes.low;
      break;
    case size_distribution::kind::uniform:
      out["uniform"] = json::array({sizes.low, sizes.high});
      break;
    case size_distribution::kind::lognormal:
      out["lognormal"] = {{"median", static_cast<int64_t>(sizes.median)},
                          {"sigma", sizes.sigma},
                          {"max", sizes.high}};
      break;
    case size_distribution::kind::mix: {
      json parts = json::array();
      for (const auto& part : sizes.parts) {
        json item = sizes_to_json(part);
        item["share"] = part.share;
        parts.push_back(std::move(item));
      }
      out["mix"] = std::move(parts);
      break;
    }
  }
  return out;
}

json network_to_json(const network_spec& network) {
  if (!network.enabled)
    return nullptr;
  json blackholes = json::array();
  for (const auto& window : network.blackholes)
    blackholes.push_back({{"start_ms", window.start_ms}, {"end_ms", window.end_ms}});
  json out = {{"latency_ms", network.latency_ms},
              {"jitter_ms", network.jitter_ms},
              {"bandwidth_bytes_per_s", network.bandwidth_bytes_per_s},
              {"reset_probability", network.reset_probability},
              {"reset_after_bytes",
               json::array({network.reset_after_min_bytes, network.reset_after_max_bytes})},
              {"blackholes", std::move(blackholes)}};
  if (network.random_blackholes > 0)
    out["blackhole"] = {{"count", network.random_blackholes},
                        {"duration_ms", network.random_blackhole_ms},
                        {"within_ms", network.random_blackholes_within_ms}};
  return out;
}

} // namespace

result<scenario> scenario::parse(const std::string& text) {
  if (protocol::nests_too_deep(text))
    return status{errc::invalid_request, "scenario: nested too deeply"};
  json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded())
    return status{errc::invalid_request, "scenario: not valid JSON"};
  try {
    check_keys(doc, "", {"name", "comment", "workload", "peer", "faults", "expect"});
    scenario out;
    if (const auto* name = member(doc, "name"))
      out.name = read_string(*name, "name");
    if (const auto* comment = member(doc, "comment"))
      out.comment = read_string(*comment, "comment");
    const auto* workload = member(doc, "workload");
    if (!workload)
      reject("workload", "missing");
    out.workload = parse_workload(*workload);
    if (const auto* peer = member(doc, "peer"))
      out.peer = parse_peer(*peer);
    // Ferry reaches the Drive only as git-lfs's agent here.
    if (out.peer.kind == peer_kind::bridge_sim && out.workload.mode == workload_mode::migrate)
      reject("peer.kind", "bridge-sim only for workload.mode push or pull");
    // The harness puts no objects into S3 before a pull.
    if (out.peer.kind == peer_kind::radosgw && out.workload.mode == workload_mode::pull)
      reject("peer.kind", "radosgw only for workload.mode migrate or push");
    if (const auto* faults = member(doc, "faults"))
      out.faults = parse_faults(*faults, out.workload.objects, out.workload.mode, out.peer.kind);
    if (const auto* expect = member(doc, "expect"))
      out.expect = parse_expect(*expect);
    return out;
  } catch (const bad_field& e) {
    return status{errc::invalid_request, e.message};
  }
}

result<scenario> scenario::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return status{errc::not_found, "cannot read scenario " + path};
  std::ostringstream text;
  text << in.rdbuf();
  auto parsed = parse(text.str());
  if (!parsed.ok())
    return parsed.error().with_context(path);
  return parsed;
}

json scenario::to_json() const {
  json w = {{"objects", workload.objects},
            {"sizes", sizes_to_json(workload.sizes)},
            {"mode", to_string(workload.mode)},
            {"repositories", workload.repositories}};
  if (workload.mode == workload_mode::migrate) {
    w["transfers"] = workload.transfers;
    w["tps"] = workload.tps;
  }
  json p = {{"kind", to_string(peer.kind)}};
  if (peer.kind == peer_kind::lfs_sim || peer.kind == peer_kind::bridge_sim)
    p["rules"] = peer.rules;
  return {{"name", name},
          {"comment", comment},
          {"workload", std::move(w)},
          {"peer", std::move(p)},
          {"faults",
           {{"kills", faults.kills},
            {"network", network_to_json(faults.network)},
            {"disk", faults.disk.enabled ? json{{"capacity_bytes", faults.disk.capacity_bytes},
                                                {"freed_after_run", faults.disk.freed_after_run}}
                                         : json(nullptr)}}},
          {"expect",
           {{"max_duration_s", expect.max_duration_s},
            {"min_throughput_bytes_per_s", expect.min_throughput_bytes_per_s}}}};
}

} // namespace ferry::harness
