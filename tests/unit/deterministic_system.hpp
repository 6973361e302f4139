#pragma once

// A CAF actor system on the test coordinator: no threads, no real time.
// Tests drive it with sched.run(), sched.clock().advance_time() and
// sched.trigger_timeouts().

#include <caf/all.hpp>

#include <chrono>

namespace ferry::testing {

struct deterministic_system {
  caf::actor_system_config cfg;
  caf::actor_system sys;
  caf::scheduler::test_coordinator& sched;

  deterministic_system()
      : sys(init(cfg)), sched(dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler())) {
    // Away from the clock's epoch, like a real steady clock.
    sched.clock().current_time += std::chrono::hours(1);
  }

private:
  static caf::actor_system_config& init(caf::actor_system_config& cfg) {
    cfg.set("scheduler.policy", caf::atom("testing"));
    return cfg;
  }
};

} // namespace ferry::testing
