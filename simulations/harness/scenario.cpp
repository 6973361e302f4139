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

const char* to_string(peer_kind kind) { return kind == peer_kind::folder ? "folder" : "lfs-sim"; }

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
  else
    reject(where + ".kind", "expected folder or lfs-sim, not '" + name + "'");
  if (const auto* rules = member(value, "rules")) {
    if (out.kind != peer_kind::lfs_sim)
      reject(where + ".rules", "only for kind lfs-sim");
    if (!rules->is_array())
      reject(where + ".rules", "expected an array (ferry-lfs-sim's scenario rules)");
    out.rules = *rules;
  }
  return out;
}

fault_spec parse_faults(const json& value, int64_t objects) {
  const std::string where = "faults";
  check_keys(value, where, {"kills", "network", "disk"});
  fault_spec out;
  if (const auto* kills = member(value, "kills")) {
    out.kills = static_cast<int>(read_int(*kills, where + ".kills", 0, 100'000));
    // A kill point is "after k objects arrived", 1 <= k < objects.
    if (out.kills > 0 && objects < 2)
      reject(where + ".kills", "kills need at least 2 objects");
  }
  if (const auto* network = member(value, "network")) {
    if (!network->is_array())
      reject(where + ".network", "expected an array");
    out.network = *network;
  }
  if (const auto* disk = member(value, "disk")) {
    if (!disk->is_array())
      reject(where + ".disk", "expected an array");
    out.disk = *disk;
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
    if (const auto* faults = member(doc, "faults"))
      out.faults = parse_faults(*faults, out.workload.objects);
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
  if (peer.kind == peer_kind::lfs_sim)
    p["rules"] = peer.rules;
  return {{"name", name},
          {"comment", comment},
          {"workload", std::move(w)},
          {"peer", std::move(p)},
          {"faults", {{"kills", faults.kills}, {"network", faults.network}, {"disk", faults.disk}}},
          {"expect",
           {{"max_duration_s", expect.max_duration_s},
            {"min_throughput_bytes_per_s", expect.min_throughput_bytes_per_s}}}};
}

} // namespace ferry::harness
