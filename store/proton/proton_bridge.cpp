#include "store/proton/proton_bridge.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <string_view>
#include <utility>

extern char** environ;

namespace ferry {

namespace {

constexpr std::array<std::string_view, 17> allowed_names{
  "PATH",          "HOME",           "USER",           "SHELL",  "LANG", "TERM", "NODE_ENV",
  "NODE_OPTIONS",  "NODE_PATH",      "NODE_BIN",       "TMPDIR", "TMP",  "TEMP", "XDG_CONFIG_HOME",
  "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_RUNTIME_DIR"};
constexpr std::array<std::string_view, 5> allowed_prefixes{"LC_", "MOCK_BRIDGE_", "PROTON_", "LFS_",
                                                           "SDK_"};

bool allowed_variable(std::string_view name) {
  if (std::find(allowed_names.begin(), allowed_names.end(), name) != allowed_names.end())
    return true;
  return std::any_of(allowed_prefixes.begin(), allowed_prefixes.end(),
                     [&](std::string_view prefix) { return name.rfind(prefix, 0) == 0; });
}

std::string details_text(const bridge::envelope& failure, const char* key) {
  if (!failure.details.is_object())
    return {};
  auto found = failure.details.find(key);
  return found != failure.details.end() && found->is_string() ? found->get<std::string>()
                                                              : std::string{};
}

bool needs_login(const bridge::envelope& failure, const std::string& code) {
  if (failure.code == 401)
    return true;
  if (code == "SESSION_EXPIRED" || code == "AUTH_FAILED" || code == "INVALID_CREDENTIALS")
    return true;
  // TWO_FACTOR_, DATA_PASSWORD_, KEY_PASSWORD_REQUIRED (CAPTCHA_REQUIRED is
  // told apart below, since its advice differs).
  constexpr std::string_view required = "_REQUIRED";
  return code != "CAPTCHA_REQUIRED" && code.size() > required.size() &&
         code.compare(code.size() - required.size(), required.size(), required) == 0;
}

bool insufficient_scope(const bridge::envelope& failure, const std::string& code) {
  if (code == "INSUFFICIENT_SCOPE")
    return true;
  if (failure.code != 403 || !failure.details.is_object())
    return false;
  auto proton_code = failure.details.find("protonCode");
  return proton_code != failure.details.end() && proton_code->is_number_integer() &&
         proton_code->get<int64_t>() == 9101;
}

std::string describe_failure(bridge::command name, const bridge::envelope& failure,
                             const std::string& code) {
  // The error text is the bridge's: shown only up to anything that looks
  // like a secret, on one line.
  std::string text = std::string{"Proton Drive bridge "} + bridge::to_string(name) + ": [" +
                     std::to_string(failure.code) + "] " +
                     bridge::sanitize_diagnostics(failure.error);
  if (!code.empty())
    text += " (" + code + ")";
  return text;
}

constexpr const char* command_help =
  "Set ferry.proton.command to the command line of proton-drive-cli, such as "
  "'node /opt/proton-drive-cli/dist/index.js' (docs/proton.md)";

// auth-state reads only local files and always answers with an envelope
// (exit 0, or 1 for unreadable input). A process that ended by itself
// without one is not the bridge: a missing script, another program. Exit
// codes from 128 up are how a shell reports a child killed by a signal,
// which may pass, as may a kill or a timeout.
bool ends_like_no_bridge(const child_result& ran) {
  return !ran.timed_out && ran.signal == 0 && ran.exit_code >= 0 && ran.exit_code < 128;
}

std::string seconds_text(std::chrono::milliseconds wait) {
  return std::to_string((wait.count() + 999) / 1000) + " s";
}

} // namespace

std::vector<std::string> bridge_environment(char** entries) {
  std::vector<std::string> kept;
  for (char** entry = entries; entry && *entry; ++entry) {
    std::string_view text{*entry};
    auto equals = text.find('=');
    if (equals == std::string_view::npos || equals == 0)
      continue;
    if (allowed_variable(text.substr(0, equals)))
      kept.emplace_back(text);
  }
  return kept;
}

bridge_verdict classify_bridge_failure(bridge::command name, const bridge::envelope& failure,
                                       std::chrono::seconds default_cooldown,
                                       std::chrono::seconds max_wait) {
  std::string code = bridge::error_code(failure);
  std::string text = describe_failure(name, failure, code);
  std::string action = bridge::sanitize_diagnostics(details_text(failure, "action"));

  if (failure.code == 407 || code == "CAPTCHA_REQUIRED") {
    std::string url = details_text(failure, "captchaUrl");
    std::string advice = url.empty() ? std::string{} : "complete the verification at " + url;
    if (!action.empty())
      advice += (advice.empty() ? "" : ", then ") + action;
    if (advice.empty())
      advice = "run: proton-drive login";
    return {{errc::permission_denied,
             text +
               ". Proton asks for a human verification; no transfer is tried until it is "
               "done: " +
               advice},
            true};
  }
  if (insufficient_scope(failure, code))
    return {{errc::permission_denied,
             text +
               ". The session's scope is not enough for Drive; logging in again the same "
               "way will not help. " +
               (action.empty() ? std::string{"stop: app/session scope is insufficient"} : action)},
            true};
  if (needs_login(failure, code))
    return {{errc::permission_denied,
             text + ". No transfer is tried until the session is ready again: " +
               (action.empty() ? std::string{"run: proton-drive login"} : action)},
            true,
            code == "SESSION_EXPIRED"};
  if (failure.code == 429 || code == "RATE_LIMITED") {
    std::chrono::milliseconds wait = default_cooldown;
    if (auto seconds = bridge::retry_after_seconds(failure))
      wait = std::chrono::milliseconds{static_cast<int64_t>(std::ceil(*seconds * 1000))};
    if (wait > max_wait)
      return {status{errc::config_error, text + "; Proton asks to wait " + seconds_text(wait) +
                                           ", longer than ferry.maxRetryWait (" +
                                           seconds_text(max_wait) +
                                           "): try again later, or raise ferry.maxRetryWait"}
                .with_retry_after(wait),
              false};
    return {status{errc::unavailable, text + "; every Proton call waits " + seconds_text(wait)}
              .with_retry_after(wait),
            false};
  }
  if (failure.code == 403)
    return {{errc::permission_denied, text}, false};
  if (failure.code == 404)
    return {{errc::not_found, text}, false};
  if (failure.code == 507 || code == "QUOTA_EXCEEDED" || code == "DISK_FULL")
    return {{errc::no_space, text + ". The Proton Drive is full: free space or upgrade it"}, false};
  if (failure.code >= 400 && failure.code < 500 && failure.code != 499)
    return {{errc::invalid_request, text}, false};
  return {{errc::unavailable, text}, false};
}

std::string session_identity(const proton_bridge_options& options) {
  std::string identity;
  for (auto& word : options.command)
    identity += word + '\0';
  std::vector<std::string> chosen;
  for (auto& entry : options.environment)
    if (entry.rfind("HOME=", 0) == 0 || entry.rfind("USER=", 0) == 0 ||
        entry.rfind("PROTON_", 0) == 0 || entry.rfind("XDG_", 0) == 0)
      chosen.push_back(entry);
  std::sort(chosen.begin(), chosen.end());
  identity += '\n';
  for (auto& entry : chosen)
    identity += entry + '\0';
  return identity;
}

proton_bridge::proton_bridge(proton_bridge_options options, runner run)
    : options_(std::move(options)), run_(std::move(run)) {
  if (options_.environment.empty())
    options_.environment = bridge_environment(environ);
  options_.processes = std::max(1, options_.processes);
  account_ = proton_account::for_identity(session_identity(options_));
}

std::chrono::milliseconds proton_bridge::timeout_for(int64_t bytes) const {
  auto rate = std::max<int64_t>(1, options_.min_bytes_per_second);
  auto transfer_ms =
    std::max<int64_t>(0, bytes) / rate * 1000 + std::max<int64_t>(0, bytes) % rate * 1000 / rate;
  return options_.base_timeout + std::chrono::milliseconds{transfer_ms};
}

result<nlohmann::json> proton_bridge::call(bridge::command name,
                                           const bridge::request_fields& fields, int64_t bytes) {
  child_options child;
  child.argv = options_.command;
  child.argv.emplace_back("bridge");
  child.argv.emplace_back(bridge::to_string(name));
  child.environment = options_.environment;
  child.input = bridge::encode_request(name, options_.common, fields);
  child.timeout = timeout_for(bytes);
  // The slot goes back to the account only once the answer is classified,
  // so that a 429's cooldown is in force before the next caller may start.
  auto slot = account_->start_process(options_.processes);
  if (!slot)
    return slot.error();
  auto ran = run_(child);

  std::string what = std::string{"Proton Drive bridge "} + bridge::to_string(name);
  std::string command_line;
  for (auto& word : options_.command)
    command_line += (command_line.empty() ? "" : " ") + word;
  if (!ran)
    return status{errc::config_error, "cannot start the Proton Drive bridge '" + command_line +
                                        "' (ferry.proton.command): " + ran.error().message() +
                                        ". " + command_help};
  if (ran->timed_out)
    return status{errc::unavailable,
                  what + " did not finish within " + seconds_text(child.timeout) +
                    " and was killed (the limit is ferry.proton.timeout plus the object's "
                    "size at ferry.proton.minRate)"};
  auto decoded = bridge::parse_envelope(ran->output);
  if (auto* problem = std::get_if<std::string>(&decoded)) {
    std::string how = ran->signal != 0 ? "was killed by signal " + std::to_string(ran->signal)
                                       : "exited with status " + std::to_string(ran->exit_code);
    std::string diagnostics = bridge::sanitize_diagnostics(ran->diagnostics);
    std::string text = what + " " + how + " without a valid answer (" + *problem + ")" +
                       (diagnostics.empty() ? "" : "; stderr: " + diagnostics);
    if (name == bridge::command::auth_state && ends_like_no_bridge(*ran))
      return status{errc::config_error,
                    text + ". '" + command_line +
                      "' (ferry.proton.command) does not run "
                      "proton-drive-cli's bridge, which always answers auth-state; "
                      "try: echo '{}' | " +
                      command_line + " bridge auth-state. " + command_help};
    return status{errc::unavailable, text};
  }
  auto& envelope = std::get<bridge::envelope>(decoded);
  if (envelope.ok)
    return std::move(envelope.payload);

  auto verdict =
    classify_bridge_failure(name, envelope, options_.default_cooldown, options_.max_retry_wait);
  // A session that expired after it was found ready (a long push, a token
  // revoked elsewhere) is not yet a reason to stop for good: the store
  // checks auth-state again before its next call, and refreshes the session
  // there if auth-state says it expired. Only the first loss gets this, so
  // that a session refreshing does not cure stops as before.
  if (verdict.session_expired && name != bridge::command::auth_state &&
      name != bridge::command::refresh && account_->expired_during(slot->epoch()))
    return status{errc::unavailable, verdict.failure.message() +
                                       " (Ferry checks the session again, refreshing it if it "
                                       "expired, and retries)"};
  if (verdict.stop)
    account_->stop(verdict.failure);
  else if (verdict.failure.retry_after().count() > 0)
    account_->cool_down(verdict.failure.retry_after());
  return verdict.failure;
}

} // namespace ferry
