// ferry-bridge-sim: a stand-in for `proton-drive-cli bridge <command>` (the
// v1 contract of drive-cli@96b90c9) with a local folder as the Drive and
// scripted faults, for tests and simulations.
// Usage and the scenario format: simulations/bridge_sim/README.md.

#include "simulations/bridge_sim/contract.hpp"
#include "simulations/bridge_sim/drive.hpp"
#include "simulations/bridge_sim/scenario.hpp"
#include "simulations/bridge_sim/state.hpp"

#include "protocol/parsing.hpp"
#include "store/os/file_io.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <thread>

namespace {

using nlohmann::json;
using namespace ferry::bridge_sim;

/// drive-cli's STDIN_TIMEOUT_MS.
constexpr std::chrono::milliseconds stdin_timeout{30000};

constexpr const char* usage =
  "usage: ferry-bridge-sim [--drive DIR] [--scenario FILE] [--log FILE] bridge <command>\n";

struct options {
  std::string drive;
  std::string scenario;
  std::string log;
  std::string command;
};

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

/// Writes all of `text` to `fd` with as few write() calls as the kernel
/// allows (one for anything a pipe or an O_APPEND file takes whole).
void write_all(int fd, const std::string& text) {
  size_t written = 0;
  while (written < text.size()) {
    const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return;
    written += static_cast<size_t>(n);
  }
}

/// JSON text that never throws on invalid UTF-8 (raw stdin, argv).
std::string dump(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

/// The --log file: one JSON line per event, each appended by a single
/// write(), so lines of concurrent sim processes never interleave.
class event_log {
public:
  explicit event_log(const std::string& path) {
    if (!path.empty())
      fd_.reset(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644));
  }

  void write(json event, const std::string& command) {
    if (fd_.get() < 0)
      return;
    event["pid"] = ::getpid();
    event["command"] = command;
    event["at_ms"] = now_ms();
    write_all(fd_.get(), dump(event) + "\n");
  }

private:
  ferry::fd_guard fd_;
};

/// How the run ended, for the log's end event.
struct ending {
  bool ok = false;
  int code = 0;
  std::optional<fault_kind> fault;
  bool valid = true;
  bool cooldown = false;
  int exit_code = 0;
};

void log_end(event_log& log, const std::string& command, const ending& end) {
  log.write({{"event", "end"},
             {"ok", end.ok},
             {"code", end.code},
             {"fault", end.fault ? json(to_string(*end.fault)) : json(nullptr)},
             {"valid", end.valid},
             {"cooldown", end.cooldown},
             {"exit", end.exit_code}},
            command);
}

/// Prints `reply` as the envelope, logs the end and gives the exit code.
int finish(event_log& log, const std::string& command, const answer& reply, ending end) {
  write_all(STDOUT_FILENO, reply.envelope());
  end.ok = reply.ok;
  end.code = reply.ok ? 0 : reply.code;
  log_end(log, command, end);
  return end.exit_code;
}

/// A misconfigured simulator: said on stderr and as a 500 envelope, exit 1.
int refuse(const std::string& message) {
  write_all(STDERR_FILENO, "ferry-bridge-sim: " + message + "\n");
  write_all(STDOUT_FILENO, failure_envelope("ferry-bridge-sim: " + message, 500));
  return 1;
}

std::optional<std::string> parse_arguments(int argc, char** argv, options& out) {
  int i = 1;
  for (; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "bridge")
      break;
    std::string* target = arg.rfind("--drive", 0) == 0      ? &out.drive
                          : arg.rfind("--scenario", 0) == 0 ? &out.scenario
                          : arg.rfind("--log", 0) == 0      ? &out.log
                                                            : nullptr;
    const auto equals = arg.find('=');
    const std::string name = arg.substr(0, equals);
    if (target == nullptr || (name != "--drive" && name != "--scenario" && name != "--log"))
      return "unknown option " + arg;
    if (equals != std::string::npos) {
      *target = arg.substr(equals + 1);
    } else if (i + 1 < argc) {
      *target = argv[++i];
    } else {
      return arg + " needs a value";
    }
    if (target->empty())
      return arg + " needs a value";
  }
  if (i >= argc)
    return std::string("missing `bridge <command>`");
  if (i + 1 >= argc)
    return std::string("missing the bridge command");
  if (i + 2 < argc)
    return "unexpected argument " + std::string(argv[i + 2]);
  out.command = argv[i + 1];
  return std::nullopt;
}

/// Reads stdin to its end; false when it did not end within the timeout.
bool read_stdin(std::string& text) {
  const auto deadline = std::chrono::steady_clock::now() + stdin_timeout;
  char buffer[65536];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      return false;
    pollfd input{STDIN_FILENO, POLLIN, 0};
    const int ready = ::poll(&input, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR)
      continue;
    if (ready < 0)
      return true; // no usable stdin reads as empty
    if (ready == 0)
      return false;
    const ssize_t n = ::read(STDIN_FILENO, buffer, sizeof buffer);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
      continue;
    if (n <= 0)
      return true;
    text.append(buffer, static_cast<size_t>(n));
  }
}

bool is_blank(const std::string& text) {
  return text.find_first_not_of(" \t\r\n") == std::string::npos;
}

/// The request as the log shows it: parsed when it is JSON, with any
/// dataPassword masked; otherwise the raw text.
json loggable_request(const std::string& raw, const json& parsed) {
  if (parsed.is_discarded())
    return raw;
  json shown = parsed;
  if (shown.is_object() && shown.contains("dataPassword"))
    shown["dataPassword"] = "<redacted>";
  return shown;
}

[[noreturn]] void hang() {
  for (;;)
    ::pause();
}

/// drive-cli's answer to a rate limit, and to every call during the cooldown.
answer rate_limited(int64_t wait_s) {
  return answer::failure("Rate limited by Proton API — wait " + std::to_string(wait_s) +
                           "s and retry",
                         429, {{"errorCode", "RATE_LIMITED"}, {"retryAfter", wait_s}});
}

/// The failure envelope a fault kind answers with, if it answers with one.
std::optional<answer> fault_answer(const fault_rule& rule) {
  const auto text = [&](const char* fallback) { return rule.message.value_or(fallback); };
  switch (rule.kind) {
    case fault_kind::rate_limited:
      return rate_limited(retry_after_seconds(rule));
    case fault_kind::captcha:
      return answer::failure("CAPTCHA verification required — run: proton-drive login", 407,
                             {{"captchaUrl", "https://verify.proton.me/captcha?token=sim-captcha"},
                              {"captchaToken", "sim-captcha"},
                              {"verificationMethods", {"captcha"}},
                              {"action", "run: proton-drive login"}});
    case fault_kind::session_expired:
      return answer::failure("Session expired — run: proton-drive login", 401,
                             {{"errorCode", "SESSION_EXPIRED"}, {"authMode", "browser-fork"}});
    case fault_kind::insufficient_scope:
      return answer::failure(
        "Access token does not have sufficient scope", 403,
        {{"errorCode", "INSUFFICIENT_SCOPE"},
         {"protonCode", 9101},
         {"action", "stop: app/session scope is insufficient; do not retry login loops"}});
    case fault_kind::bad_gateway:
      return answer::failure(text("Network error: connection reset by Proton API"), 502,
                             {{"errorCode", "NETWORK_ERROR"}});
    case fault_kind::server_error:
      return answer::failure(text("Internal server error"), 500);
    case fault_kind::quota:
      return answer::failure(text("Storage quota exceeded"), 507,
                             {{"errorCode", "QUOTA_EXCEEDED"}});
    case fault_kind::invalid:
      return answer::failure(text("Invalid request rejected by Proton API"), 400);
    default:
      return std::nullopt;
  }
}

int run(const options& opts) {
  ferry::bridge_sim::scenario scenario;
  if (!opts.scenario.empty()) {
    auto loaded = load_scenario(opts.scenario);
    if (!loaded.ok())
      return refuse("bad scenario: " + loaded.error().message());
    scenario = std::move(*loaded);
  }
  event_log log(opts.log);
  const std::string command = lower_command(opts.command);

  std::string raw;
  const bool complete = read_stdin(raw);
  json request(json::value_t::discarded);
  std::string parse_problem = "nesting too deep";
  if (!ferry::protocol::nests_too_deep(raw)) {
    try {
      request = json::parse(raw);
    } catch (const json::parse_error& e) {
      parse_problem = e.what();
    }
  }
  log.write({{"event", "start"}, {"request", loggable_request(raw, request)}}, command);

  ending end;
  end.valid = false;
  end.exit_code = 1;
  if (!complete)
    return finish(log, command, answer::failure("Timed out reading stdin", 500), end);
  if (is_blank(raw))
    return finish(log, command, answer::failure("Empty input received", 500), end);
  if (request.is_discarded())
    return finish(log, command, answer::failure("Failed to parse JSON: " + parse_problem, 500),
                  end);
  if (field_rule_for(command) && !request.is_object())
    return finish(log, command, answer::failure(*check_request(command, request), 400), end);

  end.exit_code = 0;
  if (auto problem = check_request(command, request))
    return finish(log, command, answer::failure(*problem, 400), end);
  if (auto bad_path = check_local_paths(command, request))
    return finish(log, command, *bad_path, end);
  end.valid = true;

  if (touches_drive(command) && opts.drive.empty()) {
    end.exit_code = 1;
    return finish(
      log, command,
      answer::failure("ferry-bridge-sim: --drive DIR is required for bridge " + command, 500), end);
  }
  auto state = opts.drive.empty() ? ferry::result<shared_state>(shared_state::in_memory())
                                  : shared_state::open(opts.drive);
  if (!state.ok())
    return finish(log, command, answer::failure(state.error().message(), 500), end);
  // An expired session that a refresh renewed is ready for every process
  // on the drive (drive-cli keeps the rotated tokens in session.json).
  std::string auth_state = scenario.auth_state;
  if (auth_state == "session_expired") {
    auto renewed = session_renewed(*state, scenario);
    if (!renewed.ok())
      return finish(log, command, answer::failure(renewed.error().message(), 500), end);
    if (*renewed)
      auth_state = "ready";
  }
  if (auto refused = session_gate(command, auth_state, request))
    return finish(log, command, *refused, end);

  auto decided = decide(*state, scenario, command, request, now_ms());
  if (!decided.ok())
    return finish(log, command, answer::failure(decided.error().message(), 500), end);

  if (decided->cooldown_seconds) {
    end.cooldown = true;
    return finish(log, command, rate_limited(*decided->cooldown_seconds), end);
  }

  bool corrupt = false;
  if (decided->firing_rule) {
    const auto& rule = scenario.rules[*decided->firing_rule];
    end.fault = rule.kind;
    if (rule.delay_ms > 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(rule.delay_ms));
    if (auto reply = fault_answer(rule))
      return finish(log, command, *reply, end);
    switch (rule.kind) {
      case fault_kind::hang:
        hang();
      case fault_kind::crash:
        write_all(STDERR_FILENO,
                  "ferry-bridge-sim: simulated crash during bridge " + command + " (exit 137)\n");
        end.exit_code = 137;
        log_end(log, command, end);
        ::_exit(137);
      case fault_kind::noise:
        write_all(STDOUT_FILENO, "[ferry-bridge-sim] resolving session (simulated log noise)\n"
                                 "[OpenPGP.js debug] decrypting session key\n"
                                 "Warning: crypto cache is stale, refreshing\n");
        break;
      case fault_kind::bad_envelope:
        write_all(STDOUT_FILENO, dump({{"ok", true},
                                       {"payload", json::object()},
                                       {"error", "ferry-bridge-sim: simulated bad envelope"}}) +
                                   "\n");
        end.ok = true;
        log_end(log, command, end);
        return 0;
      case fault_kind::corrupt:
        corrupt = true;
        break;
      default:
        break;
    }
  }
  if (command == "auth-state")
    return finish(log, command, auth_state_answer(auth_state, request), end);
  if (command == "refresh" && scenario.refresh == refresh_outcome::invalid_token)
    return finish(log, command, answer::failure("Token refresh failed: Invalid refresh token", 500),
                  end);
  if (command == "refresh" && scenario.refresh == refresh_outcome::renews) {
    if (auto renewed = renew_session(*state, scenario); !renewed.ok())
      return finish(log, command, answer::failure(renewed.message(), 500), end);
  }
  return finish(log, command, run_command(command, request, opts.drive, corrupt), end);
}

} // namespace

int main(int argc, char** argv) {
  // A caller that stops reading gets a short envelope, not a dead simulator.
  ::signal(SIGPIPE, SIG_IGN);
  options opts;
  if (auto problem = parse_arguments(argc, argv, opts)) {
    write_all(STDERR_FILENO, usage);
    return refuse(*problem);
  }
  try {
    return run(opts);
  } catch (const std::exception& e) {
    // A bug in the simulator: still one envelope, so the caller sees why.
    return refuse(std::string("internal error: ") + e.what());
  }
}
