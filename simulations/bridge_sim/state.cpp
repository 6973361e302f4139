#include "simulations/bridge_sim/state.hpp"

#include "store/os/file_io.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <iterator>

namespace ferry::bridge_sim {

using nlohmann::json;

namespace {

constexpr int64_t default_retry_after_s = 60;

status write_whole(int fd, const std::string& text, const std::string& what) {
  size_t written = 0;
  while (written < text.size()) {
    const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return from_errno(errno, "cannot write " + what);
    written += static_cast<size_t>(n);
  }
  return status::success();
}

/// Replaces `path` with `text` through a temporary file and a rename, so a
/// reader (or a crash) never sees half of it.
status replace_file(const std::filesystem::path& path, const std::string& text) {
  const std::string temp = path.string() + ".tmp-" + std::to_string(::getpid());
  fd_guard fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (fd.get() < 0)
    return from_errno(errno, "cannot create " + temp);
  if (auto s = write_whole(fd.get(), text, temp); !s.ok()) {
    ::unlink(temp.c_str());
    return s;
  }
  fd.reset();
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    const int error = errno;
    ::unlink(temp.c_str());
    return from_errno(error, "cannot rename " + temp);
  }
  return status::success();
}

} // namespace

result<shared_state> shared_state::open(const std::filesystem::path& drive) {
  std::error_code ec;
  std::filesystem::create_directories(drive / ".sim", ec);
  if (ec)
    return status{errc::io_error,
                  "cannot create " + (drive / ".sim").string() + ": " + ec.message()};
  shared_state state;
  state.folder_ = drive / ".sim";
  return state;
}

shared_state shared_state::in_memory() { return shared_state{}; }

status shared_state::update(const std::function<void(json&)>& change) {
  if (folder_.empty()) {
    if (!memory_.is_object())
      memory_ = json::object();
    change(memory_);
    return status::success();
  }
  const auto lock_path = folder_ / "lock";
  fd_guard lock(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (lock.get() < 0)
    return from_errno(errno, "cannot open " + lock_path.string());
  while (::flock(lock.get(), LOCK_EX) != 0)
    if (errno != EINTR)
      return from_errno(errno, "cannot lock " + lock_path.string());

  const auto state_path = folder_ / "state.json";
  json state = json::object();
  if (std::ifstream in(state_path, std::ios::binary); in) {
    const std::string text{std::istreambuf_iterator<char>(in), {}};
    state = json::parse(text, nullptr, false);
    // A state file nobody could have written whole is a bug; start afresh
    // rather than wedge every later run.
    if (state.is_discarded() || !state.is_object())
      state = json::object();
  }
  const json before = state;
  change(state);
  if (state == before)
    return status::success();
  return replace_file(state_path, state.dump() + "\n");
}

result<bool> session_renewed(shared_state& state, const scenario& scenario) {
  bool renewed = false;
  auto s = state.update([&](json& shared) {
    auto found = shared.find("renewed");
    renewed = found != shared.end() && found->is_object() &&
              found->value(scenario.fingerprint, false) == true;
  });
  if (!s.ok())
    return s;
  return renewed;
}

status renew_session(shared_state& state, const scenario& scenario) {
  return state.update([&](json& shared) {
    if (!shared["renewed"].is_object())
      shared["renewed"] = json::object();
    shared["renewed"][scenario.fingerprint] = true;
  });
}

int64_t retry_after_seconds(const fault_rule& rule) {
  return rule.retry_after.value_or(default_retry_after_s);
}

result<decision> decide(shared_state& state, const scenario& scenario, std::string_view command,
                        const json& request, int64_t now_ms) {
  decision outcome;
  auto s = state.update([&](json& shared) {
    if (command != "auth-state") {
      const int64_t until = shared.value(json::json_pointer("/cooldown/until_ms"), int64_t{0});
      if (until > now_ms) {
        outcome.cooldown_seconds = (until - now_ms + 999) / 1000;
        return;
      }
    }
    auto& counters = shared["counters"];
    if (!counters.is_object())
      counters = json::object();
    for (size_t i = 0; i < scenario.rules.size(); ++i) {
      const auto& rule = scenario.rules[i];
      if (!rule_matches(rule, command, request))
        continue;
      const std::string key = scenario.fingerprint + ":" + std::to_string(i);
      const int64_t seen = counters.value(key, int64_t{0}) + 1;
      counters[key] = seen;
      const bool due = seen > rule.skip && (!rule.times || seen <= rule.skip + *rule.times);
      if (due && !outcome.firing_rule)
        outcome.firing_rule = i;
    }
    const fault_rule* fired = outcome.firing_rule ? &scenario.rules[*outcome.firing_rule] : nullptr;
    if (fired != nullptr && fired->kind == fault_kind::session_expired &&
        shared.contains("renewed") && shared["renewed"].is_object())
      shared["renewed"].erase(scenario.fingerprint);
    if (fired != nullptr && fired->kind == fault_kind::rate_limited) {
      const int64_t wait_s = retry_after_seconds(*fired);
      shared["cooldown"] = {
        {"until_ms", now_ms + wait_s * 1000}, {"retry_after", wait_s}, {"recorded_at_ms", now_ms}};
    }
  });
  if (!s.ok())
    return s;
  return outcome;
}

} // namespace ferry::bridge_sim
