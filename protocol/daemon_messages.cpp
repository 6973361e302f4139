#include "protocol/daemon_messages.hpp"

#include "protocol/parsing.hpp"

#include <nlohmann/json.hpp>

#include <cmath>

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

/// The number member `key`; nullopt when it is absent or not a finite number.
std::optional<double> number_member(const json& object, const char* key) {
  const json* member = find_member(object, key);
  if (member == nullptr || !member->is_number())
    return std::nullopt;
  double value = member->get<double>();
  return std::isfinite(value) ? std::optional<double>{value} : std::nullopt;
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
    case daemon_request::agent:
      return "agent";
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
    if (reply.code != 0)
      out["code"] = reply.code;
    return dump(out);
  }
  out["uptime"] = reply.uptime_seconds;
  out["clients"] = reply.clients;
  out["directory"] = reply.directory;
  if (!reply.metrics.empty())
    out["metrics"] = reply.metrics;
  out["agents"] = reply.agents;
  out["repositories"] = reply.repositories;
  out["in_flight"] = reply.in_flight;
  auto& hosts = out["hosts"] = nlohmann::ordered_json::array();
  for (const auto& host : reply.hosts)
    hosts.push_back({{"host", host.host},
                     {"circuit", host.circuit},
                     {"rate", host.rate},
                     {"full_rate", host.full_rate},
                     {"cooldown", host.cooldown_seconds},
                     {"waiting", host.waiting}});
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
  else if (kind == std::optional<std::string>{"agent"})
    hello.kind = daemon_request::agent;
  else
    return invalid("hello",
                   "'kind' must be \"ping\", \"status\", \"stop\", \"metrics\" or \"agent\"");
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
  reply.code = integer_member(*object, "code").value_or(0);
  reply.agents = integer_member(*object, "agents").value_or(0);
  reply.repositories = integer_member(*object, "repositories").value_or(0);
  reply.in_flight = integer_member(*object, "in_flight").value_or(0);
  if (const json* hosts = find_member(*object, "hosts")) {
    if (!hosts->is_array() || hosts->size() > max_status_hosts)
      return invalid("reply", "'hosts' must be an array of at most " +
                                std::to_string(max_status_hosts) + " hosts");
    for (const auto& entry : *hosts) {
      if (!entry.is_object())
        return invalid("reply", "each of 'hosts' must be an object");
      daemon_host host;
      host.host = text_member(entry, "host").value_or("");
      host.circuit = text_member(entry, "circuit").value_or("");
      host.rate = number_member(entry, "rate").value_or(0);
      host.full_rate = number_member(entry, "full_rate").value_or(0);
      host.cooldown_seconds = number_member(entry, "cooldown").value_or(0);
      host.waiting = integer_member(entry, "waiting").value_or(0);
      reply.hosts.push_back(std::move(host));
    }
  }
  return reply;
}

bool session_variable(std::string_view name) {
  auto starts = [&](std::string_view prefix) { return name.substr(0, prefix.size()) == prefix; };
  // git (GIT_DIR, GIT_CONFIG_*, GIT_CEILING_DIRECTORIES...) and ferry's own
  // settings steer what the repository is and how it is served; AWS_* are
  // S3 keys and profiles. HOME and XDG_CONFIG_HOME find the global git
  // config; PATH finds git and credential helpers; SSH_AUTH_SOCK, DISPLAY,
  // DBUS_SESSION_BUS_ADDRESS and GPG/pass variables let those helpers reach
  // the user's agents and keyrings; LANG/LC_* keep git's messages in the
  // user's language; proxies and CA bundles reach the stores as the user
  // would. Everything else stays with the agent.
  if (starts("GIT_") || starts("FERRY_") || starts("AWS_") || starts("LC_"))
    return true;
  for (std::string_view exact : {"HOME",
                                 "PATH",
                                 "XDG_CONFIG_HOME",
                                 "XDG_CACHE_HOME",
                                 "XDG_RUNTIME_DIR",
                                 "SSH_AUTH_SOCK",
                                 "DISPLAY",
                                 "WAYLAND_DISPLAY",
                                 "DBUS_SESSION_BUS_ADDRESS",
                                 "GNUPGHOME",
                                 "GPG_TTY",
                                 "PASSWORD_STORE_DIR",
                                 "LANG",
                                 "LANGUAGE",
                                 "TZ",
                                 "TMPDIR",
                                 "USER",
                                 "LOGNAME",
                                 "http_proxy",
                                 "https_proxy",
                                 "no_proxy",
                                 "HTTP_PROXY",
                                 "HTTPS_PROXY",
                                 "NO_PROXY",
                                 "ALL_PROXY",
                                 "all_proxy",
                                 "SSL_CERT_FILE",
                                 "SSL_CERT_DIR",
                                 "CURL_CA_BUNDLE"})
    if (name == exact)
      return true;
  return false;
}

namespace {

/// The string members of the object `key`, or an error naming it.
result<std::map<std::string, std::string>> text_map(const json& object, const char* key) {
  std::map<std::string, std::string> values;
  const json* member = find_member(object, key);
  if (member == nullptr)
    return values;
  if (!member->is_object())
    return invalid("session", std::string{"'"} + key + "' must be an object");
  for (const auto& [name, value] : member->items()) {
    if (!value.is_string())
      return invalid("session", std::string{"'"} + key + "' must hold strings");
    values[name] = value.get<std::string>();
  }
  return values;
}

} // namespace

std::string encode(const daemon_session& session) {
  nlohmann::ordered_json out;
  out["cwd"] = session.cwd;
  out["env"] = nlohmann::ordered_json::object();
  for (const auto& [name, value] : session.environment)
    out["env"][name] = value;
  out["flags"] = nlohmann::ordered_json::object();
  for (const auto& [name, value] : session.flags)
    out["flags"][name] = value;
  if (session.trace)
    out["trace"] = true;
  return dump(out);
}

result<daemon_session> decode_daemon_session(std::string_view line) {
  auto object = parse_object(line, "session");
  if (!object)
    return object.error();
  daemon_session session;
  auto cwd = text_member(*object, "cwd");
  if (!cwd || cwd->empty() || cwd->front() != '/' || cwd->find('\0') != std::string::npos)
    return invalid("session", "'cwd' must be an absolute path");
  session.cwd = *cwd;
  auto environment = text_map(*object, "env");
  if (!environment)
    return environment.error();
  for (auto& [name, value] : *environment)
    if (session_variable(name))
      session.environment.emplace(name, std::move(value));
  auto flags = text_map(*object, "flags");
  if (!flags)
    return flags.error();
  session.flags = std::move(*flags);
  if (const json* trace = find_member(*object, "trace")) {
    if (!trace->is_boolean())
      return invalid("session", "'trace' must be true or false");
    session.trace = trace->get<bool>();
  }
  return session;
}

std::string encode_line_frame(std::string_view text) {
  nlohmann::ordered_json out;
  out["line"] = std::string{text};
  return dump(out);
}

std::string encode_too_long_frame() { return R"({"too_long":true})"; }

std::string encode_notice_frame(std::string_view text) {
  nlohmann::ordered_json out;
  out["notice"] = std::string{text};
  return dump(out);
}

std::string encode_credential_frame(int64_t id, std::string_view action, std::string_view input) {
  nlohmann::ordered_json out;
  out["credential"]["id"] = id;
  out["credential"]["action"] = std::string{action};
  out["credential"]["input"] = std::string{input};
  return dump(out);
}

std::string encode_credential_reply_frame(int64_t id, int64_t exit_code, std::string_view output) {
  nlohmann::ordered_json out;
  out["credential_reply"]["id"] = id;
  out["credential_reply"]["exit"] = exit_code;
  out["credential_reply"]["output"] = std::string{output};
  return dump(out);
}

std::string encode_log_frame(std::string_view level, std::string_view oid, std::string_view cid,
                             std::string_view message) {
  nlohmann::ordered_json out;
  out["log"]["level"] = std::string{level};
  out["log"]["oid"] = std::string{oid};
  out["log"]["cid"] = std::string{cid};
  out["log"]["message"] = std::string{message};
  return dump(out);
}

result<daemon_frame> decode_daemon_frame(std::string_view line) {
  auto object = parse_object(line, "frame");
  if (!object)
    return object.error();
  daemon_frame frame;
  if (auto text = text_member(*object, "line")) {
    frame.kind = frame_kind::line;
    frame.text = std::move(*text);
  } else if (find_member(*object, "too_long") != nullptr) {
    frame.kind = frame_kind::too_long;
  } else if (auto notice = text_member(*object, "notice")) {
    frame.kind = frame_kind::notice;
    frame.text = std::move(*notice);
  } else if (const json* ask = find_member(*object, "credential")) {
    auto id = integer_member(*ask, "id");
    auto action = text_member(*ask, "action");
    auto input = text_member(*ask, "input");
    if (!id || !input ||
        (action != std::optional<std::string>{"fill"} &&
         action != std::optional<std::string>{"approve"} &&
         action != std::optional<std::string>{"reject"}))
      return invalid("frame", "'credential' needs an id, an action (fill, approve or reject) "
                              "and an input");
    frame.kind = frame_kind::credential;
    frame.id = *id;
    frame.action = std::move(*action);
    frame.text = std::move(*input);
  } else if (const json* answer = find_member(*object, "credential_reply")) {
    auto id = integer_member(*answer, "id");
    auto exit_code = integer_member(*answer, "exit");
    auto output = text_member(*answer, "output");
    if (!id || !exit_code || !output)
      return invalid("frame", "'credential_reply' needs an id, an exit code and an output");
    frame.kind = frame_kind::credential_reply;
    frame.id = *id;
    frame.exit_code = *exit_code;
    frame.text = std::move(*output);
  } else if (const json* logged = find_member(*object, "log")) {
    auto level = text_member(*logged, "level");
    auto oid = text_member(*logged, "oid");
    auto cid = text_member(*logged, "cid");
    auto message = text_member(*logged, "message");
    if (!level || !oid || !cid || !message)
      return invalid("frame", "'log' needs a level, an oid, a cid and a message");
    frame.kind = frame_kind::log;
    frame.level = std::move(*level);
    frame.oid = std::move(*oid);
    frame.cid = std::move(*cid);
    frame.text = std::move(*message);
  }
  return frame;
}

std::optional<std::string> completed_oid(std::string_view reply) {
  if (nests_too_deep(reply))
    return std::nullopt;
  auto value = json::parse(reply, nullptr, false);
  if (value.is_discarded() || !value.is_object())
    return std::nullopt;
  if (text_member(value, "event") != std::optional<std::string>{"complete"})
    return std::nullopt;
  return text_member(value, "oid");
}

} // namespace ferry::protocol
