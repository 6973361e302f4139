#include "simulations/bridge_sim/scenario.hpp"

#include "simulations/bridge_sim/contract.hpp"

#include "protocol/parsing.hpp"
#include "store/os/sha256.hpp"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <set>

namespace ferry::bridge_sim {

using nlohmann::json;

namespace {

struct kind_name {
  fault_kind kind;
  const char* name;
};

constexpr kind_name kind_names[] = {
  {fault_kind::rate_limited, "rate_limited"},
  {fault_kind::captcha, "captcha"},
  {fault_kind::session_expired, "session_expired"},
  {fault_kind::insufficient_scope, "insufficient_scope"},
  {fault_kind::bad_gateway, "bad_gateway"},
  {fault_kind::server_error, "server_error"},
  {fault_kind::quota, "quota"},
  {fault_kind::invalid, "invalid"},
  {fault_kind::hang, "hang"},
  {fault_kind::crash, "crash"},
  {fault_kind::noise, "noise"},
  {fault_kind::bad_envelope, "bad_envelope"},
  {fault_kind::corrupt, "corrupt"},
  {fault_kind::delay, "delay"},
};

status invalid(const std::string& where, const std::string& what) {
  return {errc::invalid_request, where + ": " + what};
}

status check_keys(const json& object, const std::string& where,
                  const std::set<std::string>& allowed) {
  for (const auto& item : object.items())
    if (allowed.count(item.key()) == 0)
      return invalid(where + "." + item.key(), "unknown key");
  return status::success();
}

status read_count(const json& object, const char* key, const std::string& where,
                  std::optional<int64_t>& out) {
  const auto it = object.find(key);
  if (it == object.end())
    return status::success();
  const auto value = protocol::as_int64(*it);
  if (!value || *value < 0)
    return invalid(where + "." + key, "expected a non-negative integer");
  out = *value;
  return status::success();
}

status read_name(const json& object, const char* key, const std::string& where,
                 std::optional<std::string>& out) {
  const auto it = object.find(key);
  if (it == object.end())
    return status::success();
  if (!it->is_string())
    return invalid(where + "." + key, "expected a string");
  out = it->get<std::string>();
  return status::success();
}

result<fault_rule> parse_rule(const json& value, const std::string& where) {
  if (!value.is_object())
    return invalid(where, "expected an object");
  if (auto s = check_keys(value, where,
                          {"name", "comment", "command", "oid", "skip", "times", "fault",
                           "retry_after", "delay_ms", "message"});
      !s.ok())
    return s;
  fault_rule rule;
  if (auto s = read_name(value, "command", where, rule.command); !s.ok())
    return s;
  if (rule.command && !field_rule_for(*rule.command))
    return invalid(where + ".command", "not a bridge command: " + *rule.command);
  if (rule.command)
    rule.command = lower_command(*rule.command);
  if (auto s = read_name(value, "oid", where, rule.oid); !s.ok())
    return s;
  if (rule.oid && !is_valid_oid(*rule.oid))
    return invalid(where + ".oid", "expected 64 hex characters");
  if (rule.oid)
    rule.oid = protocol::lower_ascii(*rule.oid);
  std::optional<std::string> kind;
  if (auto s = read_name(value, "fault", where, kind); !s.ok())
    return s;
  if (!kind)
    return invalid(where + ".fault", "required");
  const auto parsed_kind = fault_kind_from_string(*kind);
  if (!parsed_kind)
    return invalid(where + ".fault", "unknown fault kind: " + *kind);
  rule.kind = *parsed_kind;
  std::optional<int64_t> skip;
  std::optional<int64_t> delay;
  if (auto s = read_count(value, "skip", where, skip); !s.ok())
    return s;
  if (auto s = read_count(value, "times", where, rule.times); !s.ok())
    return s;
  if (auto s = read_count(value, "retry_after", where, rule.retry_after); !s.ok())
    return s;
  if (auto s = read_count(value, "delay_ms", where, delay); !s.ok())
    return s;
  rule.skip = skip.value_or(0);
  rule.delay_ms = delay.value_or(0);
  if (auto s = read_name(value, "message", where, rule.message); !s.ok())
    return s;
  if (rule.message && rule.message->empty())
    return invalid(where + ".message", "must not be empty");
  return rule;
}

} // namespace

const char* to_string(fault_kind kind) {
  for (const auto& entry : kind_names)
    if (entry.kind == kind)
      return entry.name;
  return "delay";
}

std::optional<fault_kind> fault_kind_from_string(std::string_view name) {
  for (const auto& entry : kind_names)
    if (name == entry.name)
      return entry.kind;
  return std::nullopt;
}

result<scenario> parse_scenario(const std::string& text) {
  if (protocol::nests_too_deep(text))
    return invalid("scenario", "nested too deeply");
  const json document = json::parse(text, nullptr, false);
  if (document.is_discarded())
    return invalid("scenario", "not valid JSON");
  if (!document.is_object())
    return invalid("scenario", "expected an object");
  if (auto s =
        check_keys(document, "scenario", {"name", "comment", "auth_state", "refresh", "rules"});
      !s.ok())
    return s;
  scenario parsed;
  parsed.fingerprint = sha256::of(text.data(), text.size());
  if (auto it = document.find("auth_state"); it != document.end()) {
    if (!it->is_string())
      return invalid("scenario.auth_state", "expected a string");
    parsed.auth_state = it->get<std::string>();
    const auto& states = auth_states();
    if (std::find(states.begin(), states.end(), parsed.auth_state) == states.end())
      return invalid("scenario.auth_state", "unknown state: " + parsed.auth_state);
  }
  if (auto it = document.find("refresh"); it != document.end()) {
    const std::string name = it->is_string() ? it->get<std::string>() : std::string{};
    if (name == "keeps")
      parsed.refresh = refresh_outcome::keeps;
    else if (name == "renews")
      parsed.refresh = refresh_outcome::renews;
    else if (name == "invalid_token")
      parsed.refresh = refresh_outcome::invalid_token;
    else
      return invalid("scenario.refresh", "expected \"keeps\", \"renews\" or \"invalid_token\"");
  }
  if (auto it = document.find("rules"); it != document.end()) {
    if (!it->is_array())
      return invalid("scenario.rules", "expected an array");
    for (size_t i = 0; i < it->size(); ++i) {
      auto rule = parse_rule((*it)[i], "rules[" + std::to_string(i) + "]");
      if (!rule.ok())
        return rule.error();
      parsed.rules.push_back(std::move(*rule));
    }
  }
  return parsed;
}

result<scenario> load_scenario(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return status{errc::not_found, "cannot read scenario " + path};
  const std::string text{std::istreambuf_iterator<char>(in), {}};
  auto parsed = parse_scenario(text);
  if (!parsed.ok())
    return parsed.error().with_context(path);
  return parsed;
}

bool rule_matches(const fault_rule& rule, std::string_view command, const json& request) {
  if (rule.command && *rule.command != command)
    return false;
  if (!rule.oid)
    return true;
  const auto same_oid = [&](const json& value) {
    return value.is_string() && protocol::lower_ascii(value.get<std::string>()) == *rule.oid;
  };
  if (!request.is_object())
    return false;
  if (auto it = request.find("oid"); it != request.end() && same_oid(*it))
    return true;
  if (auto it = request.find("oids"); it != request.end() && it->is_array())
    return std::any_of(it->begin(), it->end(), same_oid);
  return false;
}

} // namespace ferry::bridge_sim
