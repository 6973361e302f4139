#include "store/proton/session_refresh.hpp"

namespace ferry {

result<session_renewal> session_refresh::renew(const auth_check& check,
                                               const refresh_call& refresh) {
  std::lock_guard lock{mutex_};
  auto before = check();
  if (!before)
    return before.error();
  if (before->state != "session_expired") {
    if (before->state == "ready")
      failed_.reset();
    return session_renewal{std::move(*before), std::nullopt, false};
  }
  if (failed_)
    return session_renewal{std::move(*before), failed_, false};

  if (auto refreshed = refresh(); !refreshed) {
    failed_ = refreshed;
    return session_renewal{std::move(*before), failed_, true};
  }
  auto after = check();
  if (!after)
    return after.error();
  if (after->state != "ready")
    failed_ = status{errc::permission_denied,
                     "the bridge's refresh answered, but auth-state still reports " + after->state};
  return session_renewal{std::move(*after), failed_, true};
}

void session_refresh::session_ready() {
  std::lock_guard lock{mutex_};
  failed_.reset();
}

} // namespace ferry
