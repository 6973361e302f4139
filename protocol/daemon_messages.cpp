#include "protocol/daemon_messages.hpp"

#include "protocol/parsing.hpp"

#include <nlohmann/json.hpp>

namespace ferry::protocol {

namespace {

using json = nlohmann::json;

status invalid(const std::string& what, const std::string& why) {
  return {errc::invalid_request, "invalid daemon " + what + ": " + why};
}

result<json> parse_object(std::string_view line, const std::string& what) {
  if (nests_too_deep(line))
    return invalid(what, "nested too deeply");
  auto value = json::parse(line, nullptr, false);
  if (value.is_discarded() || !value.is_object())
    return invalid(what, "not a JSON object");
  return value;
}

/// The integer member `key`; nullopt when it is absent or no integer.
std::optional<int64_t> integer_member(const json& object, const char* key) {
  const json* member = find_member(object, key);
  return member != nullptr ? as_int64(*member) : std::nullopt;
}

std::optional<std::string> text_member(const json& object, const char* key) {
  const json* member = find_member(object, key);
  if (member == nullptr || !member->is_string())
    return std::nullopt;
  return member->get<std::string>();
}

} // namespace

const char* to_string(daemon_request kind) {
  switch (kind) {
    case daemon_request::ping:
      return "ping";
    case daemon_request::status:
      return "status";
    case daemon_request::stop:
      return "stop";
    case daemon_request::metrics:
      return "metrics";
  }
  return "ping";
}

std::string encode(const daemon_hello& hello) {
  nlohmann::ordered_json out;
  out["proto"] = hello.proto;
  out["build"] = hello.build;
  out["pid"] = hello.pid;
  out["kind"] = to_string(hello.kind);
  return dump(out);
}

std::string encode(const daemon_reply& reply) {
  nlohmann::ordered_json out;
  out["proto"] = reply.proto;
  out["build"] = reply.build;
  out["pid"] = reply.pid;
  if (!reply.error.empty()) {
    out["error"] = reply.error;
    return dump(out);
  }
  out["uptime"] = reply.uptime_seconds;
  out["clients"] = reply.clients;
  out["directory"] = reply.directory;
  if (!reply.metrics.empty())
    out["metrics"] = reply.metrics;
  return dump(out);
}

result<daemon_hello> decode_daemon_hello(std::string_view line) {
  auto object = parse_object(line, "hello");
  if (!object)
    return object.error();
  daemon_hello hello;
  auto proto = integer_member(*object, "proto");
  auto build = text_member(*object, "build");
  if (!proto || *proto < 0 || *proto > 1000000)
    return invalid("hello", "'proto' must be a small integer");
  if (!build)
    return invalid("hello", "'build' must be a string");
  hello.proto = static_cast<int>(*proto);
  hello.build = *build;
  hello.pid = integer_member(*object, "pid").value_or(0);
  // Another protocol's kinds are not ours to judge: its client gets the
  // version error instead.
  if (hello.proto != daemon_proto)
    return hello;
  auto kind = text_member(*object, "kind");
  if (kind == std::optional<std::string>{"ping"})
    hello.kind = daemon_request::ping;
  else if (kind == std::optional<std::string>{"status"})
    hello.kind = daemon_request::status;
  else if (kind == std::optional<std::string>{"stop"})
    hello.kind = daemon_request::stop;
  else if (kind == std::optional<std::string>{"metrics"})
    hello.kind = daemon_request::metrics;
  else
    return invalid("hello", "'kind' must be \"ping\", \"status\", \"stop\" or \"metrics\"");
  return hello;
}

result<daemon_reply> decode_daemon_reply(std::string_view line) {
  auto object = parse_object(line, "reply");
  if (!object)
    return object.error();
  daemon_reply reply;
  auto proto = integer_member(*object, "proto");
  auto build = text_member(*object, "build");
  auto pid = integer_member(*object, "pid");
  if (!proto || !build || !pid)
    return invalid("reply", "'proto', 'build' and 'pid' are required");
  reply.proto = static_cast<int>(*proto);
  reply.build = *build;
  reply.pid = *pid;
  reply.error = text_member(*object, "error").value_or("");
  reply.uptime_seconds = integer_member(*object, "uptime").value_or(0);
  reply.clients = integer_member(*object, "clients").value_or(0);
  reply.directory = text_member(*object, "directory").value_or("");
  reply.metrics = text_member(*object, "metrics").value_or("");
  return reply;
}

} // namespace ferry::protocol
