#include "actors/policy/circuit_breaker.hpp"

#include <algorithm>

namespace ferry {

circuit_breaker::circuit_breaker(int failure_threshold, std::chrono::milliseconds open_for,
                                 int half_open_probes)
    : failure_threshold_(std::max(failure_threshold, 1)),
      open_for_(std::max(open_for, std::chrono::milliseconds{0})),
      half_open_probes_(std::max(half_open_probes, 1)) {}

void circuit_breaker::open(clock::time_point now) {
  state_ = state::open;
  ++generation_;
  opened_at_ = now;
  failures_ = 0;
  probes_out_ = 0;
}

void circuit_breaker::enter_half_open(clock::time_point now) {
  state_ = state::half_open;
  ++generation_;
  half_open_since_ = now;
  probes_out_ = 0;
}

void circuit_breaker::close() {
  state_ = state::closed;
  ++generation_;
  failures_ = 0;
  failed_probe_ = false;
  probes_out_ = 0;
}

bool circuit_breaker::current_ticket(const admission& ticket) const {
  if (!ticket.allowed || ticket.generation != generation_)
    return false;
  // A half_open result counts only from a probe; a closed one only from a
  // request admitted while closed.
  return ticket.probe == (state_ == state::half_open);
}

circuit_breaker::admission circuit_breaker::allow(clock::time_point now) {
  switch (state_) {
    case state::closed:
      return {true, generation_, false};
    case state::open:
      if (now - opened_at_ < open_for_)
        return {false, generation_, false};
      enter_half_open(now);
      break;
    case state::half_open:
      // A probe whose outcome never arrives (cancelled transfer) must not
      // keep the breaker half open forever: after another open_for, hand
      // out a fresh set of probes (a new generation: the lost ones no
      // longer count if they do report).
      if (now - half_open_since_ >= open_for_ && probes_out_ >= half_open_probes_)
        enter_half_open(now);
      break;
  }
  if (probes_out_ >= half_open_probes_)
    return {false, generation_, false};
  ++probes_out_;
  return {true, generation_, true};
}

void circuit_breaker::on_success(clock::time_point, const admission& ticket) {
  // Stale results (admitted before the breaker last changed state) and any
  // result arriving while open are ignored: only the probes decide.
  if (!current_ticket(ticket))
    return;
  switch (state_) {
    case state::closed:
      failures_ = 0;
      break;
    case state::half_open:
      close();
      break;
    case state::open:
      break;
  }
}

void circuit_breaker::on_failure(clock::time_point now, const admission& ticket) {
  if (!current_ticket(ticket))
    return;
  switch (state_) {
    case state::closed:
      if (++failures_ >= failure_threshold_)
        open(now);
      break;
    case state::half_open:
      open(now);
      failed_probe_ = true;
      break;
    case state::open:
      break;
  }
}

bool circuit_breaker::abandon(const admission& ticket) {
  if (!current_ticket(ticket) || state_ != state::half_open || probes_out_ == 0)
    return false;
  --probes_out_;
  return true;
}

circuit_breaker::state circuit_breaker::current(clock::time_point now) const {
  if (state_ == state::open && now - opened_at_ >= open_for_)
    return state::half_open;
  return state_;
}

const char* to_string(circuit_breaker::state s) {
  switch (s) {
    case circuit_breaker::state::closed:
      return "closed";
    case circuit_breaker::state::open:
      return "open";
    case circuit_breaker::state::half_open:
      return "half_open";
  }
  return "closed";
}

circuit_breakers::circuit_breakers(int failure_threshold, std::chrono::milliseconds open_for,
                                   int half_open_probes)
    : failure_threshold_(failure_threshold), open_for_(open_for),
      half_open_probes_(half_open_probes) {}

circuit_breaker& circuit_breakers::for_host(const std::string& host) {
  auto it = breakers_.find(host);
  if (it == breakers_.end())
    it = breakers_.emplace(host, circuit_breaker{failure_threshold_, open_for_, half_open_probes_})
           .first;
  return it->second;
}

} // namespace ferry
