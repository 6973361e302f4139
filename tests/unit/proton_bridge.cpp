// The bridge caller: failure classification, the environment allow-list,
// and the pool's order, bound, cooldown and stop latch, alone and shared by
// the bridges of one account, with a runner that stands in for the process.

#include "store/proton/proton_bridge.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace ferry;
using namespace std::chrono_literals;

namespace {
constexpr std::chrono::seconds max_wait{120};
}

namespace {

bridge::envelope failure(int code, nlohmann::json details = nullptr, std::string error = "boom") {
  bridge::envelope out;
  out.ok = false;
  out.code = code;
  out.error = std::move(error);
  out.details = std::move(details);
  return out;
}

child_result answered(const std::string& envelope_line) {
  child_result out;
  out.exit_code = 0;
  out.output = envelope_line + "\n";
  return out;
}

std::string failure_line(int code, const nlohmann::json& details, const std::string& error) {
  return nlohmann::json{{"ok", false},
                        {"error", error},
                        {"code", code},
                        {"details", details.is_null() ? std::string{} : details.dump()}}
    .dump();
}

const std::string success_line = R"({"ok":true,"payload":{"oid":"x","exists":true}})";

proton_bridge_options options_with(int processes) {
  proton_bridge_options options;
  options.command = {"/opt/bridge/run", "--flag"};
  options.common.storage_base = "LFS";
  options.processes = processes;
  options.environment = {"PATH=/usr/bin"};
  return options;
}

} // namespace

TEST_CASE("login, CAPTCHA and scope failures stop every later call") {
  auto cooldown = std::chrono::seconds{60};
  auto expired = classify_bridge_failure(
    bridge::command::upload,
    failure(401, {{"errorCode", "SESSION_EXPIRED"}, {"authMode", "browser-fork"}}), cooldown,
    max_wait);
  CHECK(expired.stop);
  CHECK(expired.session_expired);
  CHECK(expired.failure.code() == errc::permission_denied);
  CHECK_THAT(expired.failure.message(), Catch::Contains("proton-drive login"));
  CHECK_THAT(expired.failure.message(), Catch::Contains("SESSION_EXPIRED"));
  CHECK_THAT(expired.failure.message(), Catch::Contains("upload"));

  auto key = classify_bridge_failure(bridge::command::download,
                                     failure(400, {{"errorCode", "KEY_PASSWORD_REQUIRED"}}),
                                     cooldown, max_wait);
  CHECK(key.stop);
  CHECK_FALSE(key.session_expired);
  CHECK(key.failure.code() == errc::permission_denied);

  auto captcha = classify_bridge_failure(bridge::command::init,
                                         failure(407, {{"captchaUrl", "https://verify.example/abc"},
                                                       {"action", "run: proton-drive login"}}),
                                         cooldown, max_wait);
  CHECK(captcha.stop);
  CHECK_THAT(captcha.failure.message(), Catch::Contains("https://verify.example/abc"));
  CHECK_THAT(captcha.failure.message(), Catch::Contains("run: proton-drive login"));

  auto scope = classify_bridge_failure(
    bridge::command::upload,
    failure(403, {{"errorCode", "INSUFFICIENT_SCOPE"},
                  {"protonCode", 9101},
                  {"action", "stop: app/session scope is insufficient; do not retry login loops"}}),
    cooldown, max_wait);
  CHECK(scope.stop);
  CHECK_THAT(scope.failure.message(), Catch::Contains("do not retry login loops"));
  auto scope_by_code = classify_bridge_failure(
    bridge::command::upload, failure(403, {{"protonCode", 9101}}), cooldown, max_wait);
  CHECK(scope_by_code.stop);
}

TEST_CASE("other failures map into the taxonomy without stopping") {
  auto cooldown = std::chrono::seconds{60};
  struct row {
    int code;
    nlohmann::json details;
    errc expected;
  };
  std::vector<row> rows = {
    {403, {{"errorCode", "PERMISSION_DENIED"}}, errc::permission_denied},
    {404, {{"errorCode", "FILE_NOT_FOUND"}}, errc::not_found},
    {507, {{"errorCode", "QUOTA_EXCEEDED"}}, errc::no_space},
    {400, nullptr, errc::invalid_request},
    {413, {{"errorCode", "FILE_TOO_LARGE"}}, errc::invalid_request},
    {500, nullptr, errc::unavailable},
    {502, {{"errorCode", "NETWORK_ERROR"}}, errc::unavailable},
    {504, {{"errorCode", "TIMEOUT"}}, errc::unavailable},
    {499, {{"errorCode", "OPERATION_CANCELLED"}}, errc::unavailable},
  };
  for (auto& each : rows) {
    INFO("code " << each.code);
    auto verdict = classify_bridge_failure(bridge::command::upload,
                                           failure(each.code, each.details, "the bridge's words"),
                                           cooldown, max_wait);
    CHECK_FALSE(verdict.stop);
    CHECK(verdict.failure.code() == each.expected);
    CHECK_THAT(verdict.failure.message(), Catch::Contains("the bridge's words"));
    CHECK(verdict.failure.retry_after() == 0ms);
  }
}

TEST_CASE("the bridge's error text is shown on one line and without secrets") {
  auto verdict = classify_bridge_failure(
    bridge::command::upload,
    failure(500, {{"action", "retry\nlater, refreshToken=SECRET2"}},
            "key unlock failed:\n\x1b[31m git credential answered password=SECRET1"),
    std::chrono::seconds{60}, max_wait);
  CHECK_THAT(verdict.failure.message(), Catch::Contains("key unlock failed:"));
  CHECK_THAT(verdict.failure.message(), !Catch::Contains("SECRET1"));
  CHECK_THAT(verdict.failure.message(), !Catch::Contains("\n"));
  CHECK_THAT(verdict.failure.message(), !Catch::Contains("\x1b"));

  auto login = classify_bridge_failure(
    bridge::command::init, failure(401, {{"action", "run: proton-drive login; token=SECRET2"}}),
    std::chrono::seconds{60}, max_wait);
  CHECK_THAT(login.failure.message(), Catch::Contains("run: proton-drive login"));
  CHECK_THAT(login.failure.message(), !Catch::Contains("SECRET2"));
}

TEST_CASE("a 429 carries retryAfter, or the default cooldown") {
  auto told = classify_bridge_failure(
    bridge::command::upload, failure(429, {{"errorCode", "RATE_LIMITED"}, {"retryAfter", 7}}),
    std::chrono::seconds{60}, max_wait);
  CHECK_FALSE(told.stop);
  CHECK(told.failure.code() == errc::unavailable);
  CHECK(told.failure.retry_after() == 7000ms);

  auto untold = classify_bridge_failure(bridge::command::upload, failure(429),
                                        std::chrono::seconds{45}, max_wait);
  CHECK(untold.failure.retry_after() == 45000ms);

  auto too_long =
    classify_bridge_failure(bridge::command::upload, failure(429, {{"retryAfter", 600}}),
                            std::chrono::seconds{60}, std::chrono::seconds{10});
  CHECK_FALSE(too_long.stop);
  CHECK(too_long.failure.code() == errc::config_error);
  CHECK(too_long.failure.retry_after() == 600s);
  CHECK_THAT(too_long.failure.message(), Catch::Contains("ferry.maxRetryWait"));
}

TEST_CASE("the bridge gets only the allow-listed environment") {
  std::vector<std::string> given = {"PATH=/usr/bin",
                                    "HOME=/home/u",
                                    "LC_ALL=C.UTF-8",
                                    "PROTON_DRIVE_CLI_APP_VERSION=x",
                                    "MOCK_BRIDGE_DIR=/tmp/d",
                                    "XDG_CONFIG_HOME=/home/u/.config",
                                    "AWS_SECRET_ACCESS_KEY=secret",
                                    "FERRY_PROTON_COMMAND=node x",
                                    "GIT_ASKPASS=/bin/askpass",
                                    "PATHX=/nope",
                                    "NOEQUALS"};
  std::vector<char*> entries;
  for (auto& entry : given)
    entries.push_back(entry.data());
  entries.push_back(nullptr);
  auto kept = bridge_environment(entries.data());
  CHECK(kept == std::vector<std::string>{"PATH=/usr/bin", "HOME=/home/u", "LC_ALL=C.UTF-8",
                                         "PROTON_DRIVE_CLI_APP_VERSION=x", "MOCK_BRIDGE_DIR=/tmp/d",
                                         "XDG_CONFIG_HOME=/home/u/.config"});
}

TEST_CASE("a call runs the command with bridge <name> and the request on stdin") {
  child_options seen;
  proton_bridge caller{options_with(1), [&](const child_options& child) -> result<child_result> {
                         seen = child;
                         return answered(success_line);
                       }};
  bridge::request_fields fields;
  fields.oid = std::string(64, 'a');
  auto payload = caller.call(bridge::command::exists, fields);
  REQUIRE(payload.ok());
  CHECK((*payload)["exists"] == true);
  CHECK(seen.argv == std::vector<std::string>{"/opt/bridge/run", "--flag", "bridge", "exists"});
  CHECK(seen.environment == std::vector<std::string>{"PATH=/usr/bin"});
  auto request = nlohmann::json::parse(seen.input);
  CHECK(request["oid"] == fields.oid);
  CHECK(request["storageBase"] == "LFS");
}

TEST_CASE("time limits grow with the object's size") {
  auto options = options_with(1);
  options.base_timeout = 120s;
  options.min_bytes_per_second = 1 << 20;
  proton_bridge caller{
    options, [](const child_options&) -> result<child_result> { return answered(success_line); }};
  CHECK(caller.timeout_for(0) == 120s);
  CHECK(caller.timeout_for(int64_t{1} << 30) == 120s + 1024s);
  CHECK(caller.timeout_for(int64_t{1} << 19) == 120500ms);
}

TEST_CASE("no more than the configured number of bridge processes run at once") {
  std::mutex mutex;
  std::condition_variable changed;
  int running = 0;
  int most = 0;
  int finished = 0;
  bool release = false;
  proton_bridge caller{options_with(2), [&](const child_options&) -> result<child_result> {
                         std::unique_lock lock{mutex};
                         most = std::max(most, ++running);
                         changed.notify_all();
                         changed.wait_for(lock, 10s, [&] { return release; });
                         --running;
                         ++finished;
                         return answered(success_line);
                       }};
  std::vector<std::thread> callers;
  std::atomic<int> succeeded{0};
  for (int i = 0; i < 6; ++i)
    callers.emplace_back([&] {
      if (caller.call(bridge::command::exists, {}).ok())
        ++succeeded;
    });
  {
    std::unique_lock lock{mutex};
    REQUIRE(changed.wait_for(lock, 10s, [&] { return running == 2; }));
    release = true;
    changed.notify_all();
  }
  for (auto& thread : callers)
    thread.join();
  CHECK(most == 2);
  CHECK(finished == 6);
  CHECK(succeeded == 6);
}

TEST_CASE("after a 429 no bridge process starts until the cooldown has passed") {
  std::vector<std::chrono::steady_clock::time_point> starts;
  int calls = 0;
  auto options = options_with(2);
  proton_bridge caller{options, [&](const child_options&) -> result<child_result> {
                         starts.push_back(std::chrono::steady_clock::now());
                         if (calls++ == 0)
                           return answered(
                             failure_line(429, {{"errorCode", "RATE_LIMITED"}, {"retryAfter", 0.4}},
                                          "Rate limited by Proton API — wait 1s and retry"));
                         return answered(success_line);
                       }};
  auto limited = caller.call(bridge::command::upload, {});
  auto answered_at = std::chrono::steady_clock::now();
  REQUIRE_FALSE(limited.ok());
  CHECK(limited.error().code() == errc::unavailable);
  CHECK(limited.error().retry_after() == 400ms);
  CHECK(caller.account().cooldown_until().has_value());

  auto next = caller.call(bridge::command::exists, {});
  REQUIRE(next.ok());
  REQUIRE(starts.size() == 2);
  CHECK(starts[1] - answered_at >= 390ms);
  CHECK_FALSE(caller.account().cooldown_until().has_value());
}

TEST_CASE("once a call needs the user, later calls fail without starting a process") {
  int calls = 0;
  proton_bridge caller{options_with(2), [&](const child_options&) -> result<child_result> {
                         ++calls;
                         return answered(failure_line(401, {{"errorCode", "KEY_PASSWORD_REQUIRED"}},
                                                      "Key password required"));
                       }};
  auto first = caller.call(bridge::command::upload, {});
  REQUIRE_FALSE(first.ok());
  CHECK(first.error().code() == errc::permission_denied);
  REQUIRE(caller.account().stopped().has_value());
  for (int i = 0; i < 3; ++i) {
    auto later = caller.call(bridge::command::download, {});
    REQUIRE_FALSE(later.ok());
    CHECK(later.error().message() == first.error().message());
  }
  CHECK(calls == 1);
}

TEST_CASE("a session that expires after it was found ready is checked again before it stops all") {
  int calls = 0;
  proton_bridge caller{
    options_with(2), [&](const child_options&) -> result<child_result> {
      ++calls;
      return answered(failure_line(
        401, {{"errorCode", "SESSION_EXPIRED"}, {"authMode", "browser-fork"}}, "Session expired"));
    }};
  // The first loss, and calls that meet it before the session is checked
  // again, are transient: the engine retries them after that check.
  for (auto name : {bridge::command::upload, bridge::command::download}) {
    auto lost = caller.call(name, {});
    REQUIRE_FALSE(lost.ok());
    CHECK(lost.error().code() == errc::unavailable);
    CHECK_THAT(lost.error().message(), Catch::Contains("SESSION_EXPIRED"));
    CHECK(caller.account().session_lost());
    CHECK_FALSE(caller.account().stopped().has_value());
  }
  caller.account().session_ready();
  CHECK_FALSE(caller.account().session_lost());
  // Lost again after the check: the session needs the user.
  auto again = caller.call(bridge::command::upload, {});
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().code() == errc::permission_denied);
  CHECK_THAT(again.error().message(), Catch::Contains("proton-drive login"));
  REQUIRE(caller.account().stopped().has_value());
  CHECK_FALSE(caller.call(bridge::command::exists, {}).ok());
  CHECK(calls == 3);
}

TEST_CASE("auth-state and refresh answering SESSION_EXPIRED stop at once") {
  for (auto name : {bridge::command::auth_state, bridge::command::refresh}) {
    proton_bridge caller{
      options_with(1), [&](const child_options&) -> result<child_result> {
        return answered(failure_line(401, {{"errorCode", "SESSION_EXPIRED"}}, "Session expired"));
      }};
    auto answer = caller.call(name, {});
    REQUIRE_FALSE(answer.ok());
    CHECK(answer.error().code() == errc::permission_denied);
    CHECK(caller.account().stopped().has_value());
    CHECK_FALSE(caller.account().session_lost());
  }
}

TEST_CASE("crashes, hangs and garbage are transient; a missing bridge is a setting") {
  child_result crashed;
  crashed.exit_code = 137;
  crashed.diagnostics = "fatal: Authorization: Bearer abcdef.secret.token";
  child_result hung;
  hung.timed_out = true;
  hung.signal = 9;
  child_result garbage;
  garbage.exit_code = 0;
  garbage.output = "not json at all\n";
  for (auto* outcome : {&crashed, &hung, &garbage}) {
    proton_bridge caller{options_with(1),
                         [&](const child_options&) -> result<child_result> { return *outcome; }};
    auto answer = caller.call(bridge::command::upload, {});
    REQUIRE_FALSE(answer.ok());
    CHECK(answer.error().code() == errc::unavailable);
    CHECK_THAT(answer.error().message(), !Catch::Contains("abcdef.secret.token"));
    CHECK_FALSE(caller.account().stopped().has_value());
  }
  proton_bridge timed{options_with(1),
                      [&](const child_options&) -> result<child_result> { return hung; }};
  CHECK_THAT(timed.call(bridge::command::upload, {}).error().message(),
             Catch::Contains("ferry.proton.timeout"));

  proton_bridge missing{options_with(1), [](const child_options&) -> result<child_result> {
                          return status{errc::not_found, "no program /opt/bridge/run"};
                        }};
  auto answer = missing.call(bridge::command::auth_state, {});
  REQUIRE_FALSE(answer.ok());
  CHECK(answer.error().code() == errc::config_error);
  CHECK_THAT(answer.error().message(), Catch::Contains("ferry.proton.command"));
}

TEST_CASE("auth-state ended without an answer by a process that is no bridge is a setting") {
  child_result not_bridge;
  not_bridge.exit_code = 1;
  not_bridge.diagnostics = "Error: Cannot find module '/opt/proton-drive-cli/dist/index.js'";
  child_result silent;
  silent.exit_code = 0;
  child_result shell_killed;
  shell_killed.exit_code = 137;
  child_result killed;
  killed.signal = 9;
  child_result hung;
  hung.timed_out = true;
  hung.signal = 9;

  for (auto* outcome : {&not_bridge, &silent}) {
    proton_bridge caller{options_with(1),
                         [&](const child_options&) -> result<child_result> { return *outcome; }};
    auto answer = caller.call(bridge::command::auth_state, {});
    REQUIRE_FALSE(answer.ok());
    CHECK(answer.error().code() == errc::config_error);
    CHECK_THAT(answer.error().message(),
               Catch::Contains("ferry.proton.command") &&
                 Catch::Contains("/opt/bridge/run --flag bridge auth-state") &&
                 Catch::Contains("exited with status " + std::to_string(outcome->exit_code)));
    // Another command may fail so for a passing reason: it stays transient.
    CHECK(caller.call(bridge::command::upload, {}).error().code() == errc::unavailable);
  }
  CHECK_THAT(proton_bridge(options_with(1),
                           [&](const child_options&) -> result<child_result> { return not_bridge; })
               .call(bridge::command::auth_state, {})
               .error()
               .message(),
             Catch::Contains("Cannot find module"));

  // Killed, by a signal or as a shell reports it, or timed out: that may pass.
  for (auto* outcome : {&shell_killed, &killed, &hung}) {
    proton_bridge caller{options_with(1),
                         [&](const child_options&) -> result<child_result> { return *outcome; }};
    CHECK(caller.call(bridge::command::auth_state, {}).error().code() == errc::unavailable);
  }
}

namespace {

/// Bridge processes that run until the test lets them end, each named by
/// its bridge and number ("a1", "b1", "a2"...).
struct held_processes {
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<std::string> started;
  std::vector<std::string> released;
  bool all_released = false;

  proton_bridge::runner runner_for(std::string bridge_name) {
    auto count = std::make_shared<int>(0);
    return [this, bridge_name, count](const child_options&) -> result<child_result> {
      std::unique_lock lock{mutex};
      auto name = bridge_name + std::to_string(++*count);
      started.push_back(name);
      changed.notify_all();
      // Longer than any wait of the test, so that a process it holds is
      // still running when the test's wait gives up.
      changed.wait_for(lock, 60s, [&] {
        return all_released || std::find(released.begin(), released.end(), name) != released.end();
      });
      return answered(success_line);
    };
  }

  void release_all() {
    std::lock_guard lock{mutex};
    all_released = true;
    changed.notify_all();
  }

  void release(const std::string& name) {
    std::lock_guard lock{mutex};
    released.push_back(name);
    changed.notify_all();
  }

  /// Waits until `count` processes have started; false after 10 s.
  bool wait_started(size_t count) {
    std::unique_lock lock{mutex};
    return changed.wait_for(lock, 10s, [&] { return started.size() >= count; });
  }

  std::vector<std::string> started_now() {
    std::lock_guard lock{mutex};
    return started;
  }

  /// Waits until `account` has `callers` waiting in line, or a process
  /// beyond `started_count` started (the caller did not wait).
  bool wait_queued(proton_account& account, int callers, size_t started_count) {
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (account.waiting() >= callers || started_now().size() > started_count)
        return true;
      std::this_thread::yield();
    }
    return false;
  }
};

/// Calls on threads of their own; when the test ends, even by a failed
/// REQUIRE, every held process is let go and every call joined.
struct caller_threads {
  explicit caller_threads(held_processes& held) : processes(held) {}

  held_processes& processes;
  std::vector<std::thread> threads;
  std::atomic<int> succeeded{0};

  void call(proton_bridge& bridge) {
    threads.emplace_back([this, &bridge] {
      if (bridge.call(bridge::command::exists, {}).ok())
        ++succeeded;
    });
  }

  ~caller_threads() {
    processes.release_all();
    for (auto& thread : threads)
      thread.join();
  }
};

} // namespace

TEST_CASE("bridges of one account share its processes, callers served in arrival order") {
  held_processes processes;
  proton_bridge a{options_with(1), processes.runner_for("a")};
  proton_bridge b{options_with(1), processes.runner_for("b")};
  caller_threads callers{processes};
  callers.call(a);
  REQUIRE(processes.wait_started(1));
  callers.call(b);
  REQUIRE(processes.wait_queued(a.account(), 1, 1));
  callers.call(a);
  REQUIRE(processes.wait_queued(a.account(), 2, 1));
  // The account runs one process: b's call waits for a's, and a's second
  // call waits behind b's, which came first.
  CHECK(processes.started_now() == std::vector<std::string>{"a1"});
  processes.release("a1");
  REQUIRE(processes.wait_started(2));
  CHECK(processes.started_now() == std::vector<std::string>{"a1", "b1"});
  processes.release("b1");
  REQUIRE(processes.wait_started(3));
  CHECK(processes.started_now() == std::vector<std::string>{"a1", "b1", "a2"});
  processes.release("a2");
  for (auto& thread : callers.threads)
    thread.join();
  callers.threads.clear();
  CHECK(callers.succeeded == 3);
}

TEST_CASE("each caller starts a process only while fewer than its own bridge's setting run") {
  held_processes processes;
  proton_bridge wide{options_with(2), processes.runner_for("w")};
  proton_bridge narrow{options_with(1), processes.runner_for("n")};
  caller_threads callers{processes};
  callers.call(wide);
  REQUIRE(processes.wait_started(1));
  // One runs: the narrow bridge (1) waits, and the wide one's next call
  // waits behind it although the wide setting (2) would allow it.
  callers.call(narrow);
  REQUIRE(processes.wait_queued(wide.account(), 1, 1));
  callers.call(wide);
  REQUIRE(processes.wait_queued(wide.account(), 2, 1));
  CHECK(processes.started_now() == std::vector<std::string>{"w1"});
  processes.release("w1");
  // Now none runs: the narrow call starts, and the wide one with it (1 < 2).
  REQUIRE(processes.wait_started(3));
  CHECK(processes.started_now() == std::vector<std::string>{"w1", "n1", "w2"});
}

TEST_CASE("a 429, a stop and a lost session in one bridge hold every bridge of the account") {
  std::atomic<int> b_calls{0};
  std::vector<std::chrono::steady_clock::time_point> b_starts;
  std::string a_answer =
    failure_line(429, {{"errorCode", "RATE_LIMITED"}, {"retryAfter", 0.4}}, "Rate limited");
  proton_bridge a{options_with(2),
                  [&](const child_options&) -> result<child_result> { return answered(a_answer); }};
  proton_bridge b{options_with(2), [&](const child_options&) -> result<child_result> {
                    ++b_calls;
                    b_starts.push_back(std::chrono::steady_clock::now());
                    return answered(success_line);
                  }};

  REQUIRE_FALSE(a.call(bridge::command::upload, {}).ok());
  auto limited_at = std::chrono::steady_clock::now();
  CHECK(b.account().cooldown_until().has_value());
  REQUIRE(b.call(bridge::command::exists, {}).ok());
  REQUIRE(b_starts.size() == 1);
  CHECK(b_starts[0] - limited_at >= 390ms);

  a_answer = failure_line(401, {{"errorCode", "SESSION_EXPIRED"}}, "Session expired");
  REQUIRE_FALSE(a.call(bridge::command::upload, {}).ok());
  CHECK(b.account().session_lost());
  b.account().session_ready();
  CHECK_FALSE(a.account().session_lost());

  a_answer = failure_line(401, {{"errorCode", "KEY_PASSWORD_REQUIRED"}}, "Key password required");
  auto stopped = a.call(bridge::command::upload, {});
  REQUIRE_FALSE(stopped.ok());
  REQUIRE(b.account().stopped().has_value());
  auto later = b.call(bridge::command::download, {});
  REQUIRE_FALSE(later.ok());
  CHECK(later.error().code() == errc::permission_denied);
  CHECK(later.error().message() == stopped.error().message());
  CHECK(b_calls == 1);
}

TEST_CASE("bridges of different accounts share nothing") {
  held_processes processes;
  auto other_options = options_with(1);
  other_options.environment = {"PATH=/usr/bin", "HOME=/home/other"};
  proton_bridge a{options_with(1), processes.runner_for("a")};
  proton_bridge b{other_options, processes.runner_for("b")};
  {
    caller_threads callers{processes};
    callers.call(a);
    REQUIRE(processes.wait_started(1));
    // b's process starts while a's runs.
    callers.call(b);
    CHECK(processes.wait_started(2));
  }
  a.account().cool_down(60s);
  a.account().stop(status{errc::permission_denied, "run: proton-drive login"});
  CHECK_FALSE(b.account().cooldown_until().has_value());
  CHECK_FALSE(b.account().stopped().has_value());
}

TEST_CASE("once every bridge of an account is gone, the next one starts afresh") {
  auto make = [] {
    return std::make_unique<proton_bridge>(
      options_with(1), [](const child_options&) -> result<child_result> {
        return answered(failure_line(401, {{"errorCode", "KEY_PASSWORD_REQUIRED"}}, "Key"));
      });
  };
  auto first = make();
  REQUIRE_FALSE(first->call(bridge::command::upload, {}).ok());
  REQUIRE(first->account().stopped().has_value());
  CHECK(make()->account().stopped().has_value());
  // The user logged in; the command that stopped has ended.
  first.reset();
  CHECK_FALSE(make()->account().stopped().has_value());
}
