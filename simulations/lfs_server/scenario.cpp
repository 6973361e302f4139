#include "simulations/lfs_server/scenario.hpp"

#include "protocol/parsing.hpp"
#include "protocol/transfer_protocol.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

namespace ferry::sim {

using nlohmann::json;

const char* to_string(endpoint where) {
  switch (where) {
    case endpoint::batch:
      return "batch";
    case endpoint::download:
      return "download";
    case endpoint::upload:
      return "upload";
    case endpoint::verify:
      return "verify";
  }
  return "batch";
}

bool fault::empty() const {
  return !status && !retry_after && !retry_after_date_in && !reset_after_bytes && !truncate_at &&
         !corrupt_byte_at && !stall_ms && !bandwidth_bytes_per_s && !expired_actions &&
         !object_error;
}

void fault::merge_from(const fault& other) {
  // A status and its Retry-After/then_success belong together: take them
  // from the same rule.
  if (!status && other.status) {
    status = other.status;
    retry_after = other.retry_after;
    retry_after_date_in = other.retry_after_date_in;
    then_success = other.then_success;
  }
  if (!reset_after_bytes)
    reset_after_bytes = other.reset_after_bytes;
  if (!truncate_at)
    truncate_at = other.truncate_at;
  if (!corrupt_byte_at)
    corrupt_byte_at = other.corrupt_byte_at;
  if (!stall_ms && other.stall_ms) {
    stall_ms = other.stall_ms;
    stall_after_bytes = other.stall_after_bytes;
  }
  if (!bandwidth_bytes_per_s)
    bandwidth_bytes_per_s = other.bandwidth_bytes_per_s;
  expired_actions = expired_actions || other.expired_actions;
  if (!object_error)
    object_error = other.object_error;
}

fault decision::for_object(const std::string& oid) const {
  fault merged;
  for (const auto& [filter, f] : fired) {
    if (!filter.empty() && filter != oid)
      continue;
    if (!merged.object_error)
      merged.object_error = f.object_error;
    merged.expired_actions = merged.expired_actions || f.expired_actions;
  }
  return merged;
}

namespace {

status invalid(const std::string& where, const std::string& what) {
  return {errc::invalid_request, where + ": " + what};
}

status read_int(const json& value, const std::string& where, int64_t min, int64_t max,
                int64_t& out) {
  auto v = protocol::as_int64(value);
  if (!v || *v < min || *v > max)
    return invalid(where, "expected an integer from " + std::to_string(min) + " to " +
                            std::to_string(max));
  out = *v;
  return status::success();
}

status check_keys(const json& object, const std::string& where,
                  const std::set<std::string>& allowed) {
  for (const auto& item : object.items()) {
    if (allowed.count(item.key()) == 0) {
      std::string known;
      for (const auto& key : allowed)
        known += (known.empty() ? "" : ", ") + key;
      return invalid(where + "." + item.key(), "unknown key (known: " + known + ")");
    }
  }
  return status::success();
}

status parse_match(const json& value, const std::string& where, rule_match& out) {
  if (!value.is_object())
    return invalid(where, "expected an object");
  if (auto s = check_keys(value, where, {"endpoint", "oid", "operation"}); !s.ok())
    return s;
  if (auto it = value.find("endpoint"); it != value.end()) {
    if (!it->is_string())
      return invalid(where + ".endpoint", "expected a string");
    const auto name = it->get<std::string>();
    if (name == "batch")
      out.where = endpoint::batch;
    else if (name == "download")
      out.where = endpoint::download;
    else if (name == "upload")
      out.where = endpoint::upload;
    else if (name == "verify")
      out.where = endpoint::verify;
    else if (name != "any")
      return invalid(where + ".endpoint",
                     "expected batch, download, upload, verify or any, got '" + name + "'");
  }
  if (auto it = value.find("oid"); it != value.end()) {
    if (!it->is_string() || !protocol::is_valid_oid(it->get<std::string>()))
      return invalid(where + ".oid", "expected 64 lower-case hex characters");
    out.oid = it->get<std::string>();
  }
  if (auto it = value.find("operation"); it != value.end()) {
    if (!it->is_string() || (*it != "upload" && *it != "download"))
      return invalid(where + ".operation", "expected \"upload\" or \"download\"");
    out.operation = it->get<std::string>();
  }
  return status::success();
}

status parse_fault(const json& value, const std::string& where, fault& out) {
  if (!value.is_object())
    return invalid(where, "expected an object");
  if (auto s = check_keys(value, where,
                          {"status", "retry_after", "retry_after_date_in", "then_success",
                           "reset_after_bytes", "truncate_at", "corrupt_byte_at", "stall_ms",
                           "stall_after_bytes", "bandwidth_bytes_per_s", "expired_actions",
                           "object_error"});
      !s.ok())
    return s;
  constexpr int64_t max_bytes = std::numeric_limits<int64_t>::max();
  int64_t n = 0;
  auto optional_int = [&](const char* key, int64_t min, int64_t max,
                          std::optional<int64_t>& field) -> status {
    auto it = value.find(key);
    if (it == value.end())
      return status::success();
    if (auto s = read_int(*it, where + "." + key, min, max, n); !s.ok())
      return s;
    field = n;
    return status::success();
  };
  auto flag = [&](const char* key, bool& field) -> status {
    auto it = value.find(key);
    if (it == value.end())
      return status::success();
    if (!it->is_boolean())
      return invalid(where + "." + key, "expected true or false");
    field = it->get<bool>();
    return status::success();
  };

  std::optional<int64_t> code;
  // Faults are error answers; a 1xx or 2xx "fault" would not be valid HTTP
  // or would not be a fault.
  status s = optional_int("status", 400, 599, code);
  if (s.ok() && code)
    out.status = static_cast<int>(*code);
  if (s.ok())
    s = optional_int("retry_after_date_in", -86400, 86400 * 365, out.retry_after_date_in);
  if (s.ok())
    s = optional_int("reset_after_bytes", 0, max_bytes, out.reset_after_bytes);
  if (s.ok())
    s = optional_int("truncate_at", 0, max_bytes, out.truncate_at);
  if (s.ok())
    s = optional_int("corrupt_byte_at", 0, max_bytes, out.corrupt_byte_at);
  // Ten minutes is far beyond any client timeout; longer stalls only hang tests.
  if (s.ok())
    s = optional_int("stall_ms", 0, 600000, out.stall_ms);
  if (s.ok())
    s = optional_int("stall_after_bytes", 0, max_bytes, out.stall_after_bytes);
  if (s.ok())
    s = optional_int("bandwidth_bytes_per_s", 1, max_bytes, out.bandwidth_bytes_per_s);
  std::optional<int64_t> object_code;
  if (s.ok())
    s = optional_int("object_error", 400, 599, object_code);
  if (s.ok() && object_code)
    out.object_error = static_cast<int>(*object_code);
  if (s.ok())
    s = flag("then_success", out.then_success);
  if (s.ok())
    s = flag("expired_actions", out.expired_actions);
  if (!s.ok())
    return s;

  if (auto it = value.find("retry_after"); it != value.end()) {
    if (it->is_string())
      out.retry_after = it->get<std::string>();
    else if (auto secs = protocol::as_int64(*it); secs && *secs >= 0)
      out.retry_after = std::to_string(*secs);
    else
      return invalid(where + ".retry_after", "expected seconds (string or integer)");
    // Header values must not smuggle in line breaks.
    if (out.retry_after->find_first_of("\r\n") != std::string::npos)
      return invalid(where + ".retry_after", "must not contain line breaks");
  }
  if ((out.retry_after || out.retry_after_date_in) && !out.status)
    out.status = 429; // a Retry-After only makes sense on an error answer
  if (out.retry_after && out.retry_after_date_in)
    return invalid(where, "use either retry_after or retry_after_date_in, not both");
  if (out.then_success && out.status != 401)
    return invalid(where + ".then_success", "only applies to status 401");
  if (out.stall_after_bytes && !out.stall_ms)
    return invalid(where + ".stall_after_bytes", "needs stall_ms");
  if (out.empty())
    return invalid(where, "injects nothing");
  return status::success();
}

status parse_rule(const json& value, const std::string& where, rule& out) {
  if (!value.is_object())
    return invalid(where, "expected an object");
  if (auto s = check_keys(
        value, where, {"name", "comment", "match", "fault", "probability", "sequence", "times"});
      !s.ok())
    return s;
  if (auto it = value.find("match"); it != value.end()) {
    if (auto s = parse_match(*it, where + ".match", out.match); !s.ok())
      return s;
  }
  auto f = value.find("fault");
  if (f == value.end())
    return invalid(where, "missing \"fault\"");
  if (auto s = parse_fault(*f, where + ".fault", out.inject); !s.ok())
    return s;
  if (auto it = value.find("probability"); it != value.end()) {
    if (!it->is_number() || it->get<double>() < 0.0 || it->get<double>() > 1.0)
      return invalid(where + ".probability", "expected a number from 0 to 1");
    out.probability = it->get<double>();
  }
  if (auto it = value.find("sequence"); it != value.end()) {
    if (!it->is_array())
      return invalid(where + ".sequence", "expected an array of true/false");
    std::vector<bool> steps;
    for (const auto& step : *it) {
      if (!step.is_boolean())
        return invalid(where + ".sequence", "expected an array of true/false");
      steps.push_back(step.get<bool>());
    }
    out.sequence = std::move(steps);
  }
  if (auto it = value.find("times"); it != value.end()) {
    int64_t n = 0;
    if (auto s = read_int(*it, where + ".times", 0, std::numeric_limits<int64_t>::max(), n);
        !s.ok())
      return s;
    out.times = n;
  }
  return status::success();
}

// splitmix64: a tiny, well-mixed hash; enough to turn (seed, rule, n) into
// an independent uniform draw.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

double draw(uint64_t seed, size_t rule_index, int64_t n) {
  uint64_t h = mix(seed);
  h = mix(h ^ static_cast<uint64_t>(rule_index));
  h = mix(h ^ static_cast<uint64_t>(n));
  return static_cast<double>(h >> 11) * (1.0 / 9007199254740992.0); // 53 bits -> [0,1)
}

bool matches(const rule& r, const request_facts& facts) {
  if (r.match.where && *r.match.where != facts.where)
    return false;
  if (!r.match.operation.empty() && r.match.operation != facts.operation)
    return false;
  if (!r.match.oid.empty() &&
      std::find(facts.oids.begin(), facts.oids.end(), r.match.oid) == facts.oids.end())
    return false;
  // "401 until the client authenticates": authenticated requests pass.
  if (r.inject.then_success && facts.authorized)
    return false;
  return true;
}

} // namespace

result<scenario> scenario::parse(const std::string& text) {
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded())
    return status{errc::invalid_request, "scenario is not valid JSON"};
  if (!doc.is_object())
    return invalid("scenario", "expected a JSON object");
  if (auto s = check_keys(doc, "scenario", {"name", "comment", "seed", "rules"}); !s.ok())
    return s;
  scenario out;
  if (auto it = doc.find("seed"); it != doc.end()) {
    if (!it->is_number_unsigned() && !(it->is_number_integer() && it->get<int64_t>() >= 0))
      return invalid("seed", "expected a non-negative integer");
    out.seed_ = it->get<uint64_t>();
  }
  if (auto it = doc.find("rules"); it != doc.end()) {
    if (!it->is_array())
      return invalid("rules", "expected an array");
    for (size_t i = 0; i < it->size(); ++i) {
      rule r;
      if (auto s = parse_rule((*it)[i], "rules[" + std::to_string(i) + "]", r); !s.ok())
        return s;
      out.rules_.push_back(std::move(r));
    }
  }
  out.matched_.assign(out.rules_.size(), 0);
  return out;
}

result<scenario> scenario::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return status{errc::not_found, "cannot read scenario file " + path};
  std::ostringstream text;
  text << in.rdbuf();
  auto parsed = parse(text.str());
  if (!parsed.ok())
    return parsed.error().with_context(path);
  return parsed;
}

decision scenario::decide(const request_facts& facts) {
  decision out;
  for (size_t i = 0; i < rules_.size(); ++i) {
    const rule& r = rules_[i];
    if (!matches(r, facts))
      continue;
    const int64_t n = matched_[i]++;
    bool fire = true;
    if (r.times && n >= *r.times)
      fire = false;
    if (r.sequence &&
        (n >= static_cast<int64_t>(r.sequence->size()) || !(*r.sequence)[static_cast<size_t>(n)]))
      fire = false;
    // Draw even when another condition already said no, so that one rule's
    // draws do not depend on its other conditions.
    if (r.probability && draw(seed_, i, n) >= *r.probability)
      fire = false;
    if (!fire)
      continue;
    out.request.merge_from(r.inject);
    out.fired.emplace_back(r.match.oid, r.inject);
  }
  return out;
}

std::string scenario::describe() const {
  std::ostringstream out;
  out << "seed " << seed_ << ", " << rules_.size() << " rule(s)\n";
  for (size_t i = 0; i < rules_.size(); ++i) {
    const rule& r = rules_[i];
    out << "  rules[" << i << "]: " << (r.match.where ? to_string(*r.match.where) : "any");
    if (!r.match.operation.empty())
      out << " " << r.match.operation;
    if (!r.match.oid.empty())
      out << " oid " << r.match.oid.substr(0, 12);
    out << " ->";
    const fault& f = r.inject;
    if (f.status)
      out << " status " << *f.status;
    if (f.retry_after)
      out << " retry_after " << *f.retry_after;
    if (f.retry_after_date_in)
      out << " retry_after_date_in " << *f.retry_after_date_in;
    if (f.then_success)
      out << " then_success";
    if (f.reset_after_bytes)
      out << " reset_after_bytes " << *f.reset_after_bytes;
    if (f.truncate_at)
      out << " truncate_at " << *f.truncate_at;
    if (f.corrupt_byte_at)
      out << " corrupt_byte_at " << *f.corrupt_byte_at;
    if (f.stall_ms)
      out << " stall_ms " << *f.stall_ms;
    if (f.stall_after_bytes)
      out << " stall_after_bytes " << *f.stall_after_bytes;
    if (f.bandwidth_bytes_per_s)
      out << " bandwidth_bytes_per_s " << *f.bandwidth_bytes_per_s;
    if (f.expired_actions)
      out << " expired_actions";
    if (f.object_error)
      out << " object_error " << *f.object_error;
    if (r.times)
      out << ", times " << *r.times;
    if (r.probability)
      out << ", probability " << *r.probability;
    if (r.sequence) {
      out << ", sequence [";
      for (size_t k = 0; k < r.sequence->size(); ++k)
        out << (k ? "," : "") << ((*r.sequence)[k] ? "T" : "F");
      out << "]";
    }
    out << "\n";
  }
  return out.str();
}

} // namespace ferry::sim
