#include "store/proton/proton_account.hpp"

#include <iterator>
#include <map>

namespace ferry {

std::shared_ptr<proton_account> proton_account::for_identity(const std::string& identity) {
  static std::mutex registry_mutex;
  static std::map<std::string, std::weak_ptr<proton_account>> registry;
  std::lock_guard lock{registry_mutex};
  for (auto it = registry.begin(); it != registry.end();)
    it = it->second.expired() ? registry.erase(it) : std::next(it);
  auto& slot = registry[identity];
  auto account = slot.lock();
  if (!account) {
    account = std::make_shared<proton_account>();
    slot = account;
  }
  return account;
}

proton_account::process_slot::process_slot(process_slot&& other) noexcept
    : account_(other.account_), epoch_(other.epoch_) {
  other.account_ = nullptr;
}

proton_account::process_slot::~process_slot() {
  if (account_)
    account_->end_process();
}

result<proton_account::process_slot> proton_account::start_process(int processes) {
  // The one at the head of the line waits for a free process and for any
  // cooldown to pass, so no bridge process starts while Proton is limiting
  // the account.
  std::unique_lock lock{mutex_};
  uint64_t ticket = next_ticket_++;
  uint64_t epoch = session_epoch_;
  ++waiting_;
  for (;;) {
    // Once stopped, nobody is served again, so the line does not matter.
    if (stopped_) {
      --waiting_;
      return *stopped_;
    }
    if (ticket == serving_ticket_ && running_ < processes) {
      if (!cooldown_until_ || *cooldown_until_ <= std::chrono::steady_clock::now())
        break;
      changed_.wait_until(lock, *cooldown_until_);
      continue;
    }
    changed_.wait(lock);
  }
  --waiting_;
  ++serving_ticket_;
  ++running_;
  changed_.notify_all();
  return process_slot{this, epoch};
}

int proton_account::waiting() const {
  std::lock_guard lock{mutex_};
  return waiting_;
}

void proton_account::end_process() {
  {
    std::lock_guard lock{mutex_};
    --running_;
  }
  changed_.notify_all();
}

void proton_account::cool_down(std::chrono::milliseconds wait) {
  {
    std::lock_guard lock{mutex_};
    auto until = std::chrono::steady_clock::now() + wait;
    if (!cooldown_until_ || *cooldown_until_ < until)
      cooldown_until_ = until;
  }
  changed_.notify_all();
}

std::optional<std::chrono::steady_clock::time_point> proton_account::cooldown_until() const {
  std::lock_guard lock{mutex_};
  if (cooldown_until_ && *cooldown_until_ > std::chrono::steady_clock::now())
    return cooldown_until_;
  return std::nullopt;
}

void proton_account::stop(status why) {
  {
    std::lock_guard lock{mutex_};
    if (!stopped_)
      stopped_ = std::move(why);
  }
  changed_.notify_all();
}

std::optional<status> proton_account::stopped() const {
  std::lock_guard lock{mutex_};
  return stopped_;
}

bool proton_account::expired_during(uint64_t epoch) {
  std::lock_guard lock{mutex_};
  bool stale = epoch < session_epoch_;
  if (!session_lost_ && !stale && session_renewed_)
    return false;
  if (!stale)
    session_lost_ = true;
  return true;
}

bool proton_account::session_lost() const {
  std::lock_guard lock{mutex_};
  return session_lost_;
}

void proton_account::session_ready() {
  std::lock_guard lock{mutex_};
  if (session_lost_) {
    session_lost_ = false;
    session_renewed_ = true;
    ++session_epoch_;
  }
}

} // namespace ferry
