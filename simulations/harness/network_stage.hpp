#pragma once

// The network stage of a simulation: a scenario's faults.network turned into
// the fault proxy's faults, and the proxy run between ferry and the peer,
// its fault windows and resets recorded in the event log.

#include "simulations/harness/fault_proxy.hpp"
#include "simulations/harness/runner.hpp"

#include <cstdint>

namespace ferry::harness {

/// The proxy's faults for `network`. The blackhole windows are the fixed ones
/// and the drawn ones: the first random_blackholes_within_ms cut into
/// random_blackholes equal slots, one window of random_blackhole_ms in each at
/// a place drawn from seeded_random(seed, "network"). Windows that overlap or
/// touch are merged; the result is sorted by start.
sim::proxy_faults plan_network(const network_spec& network, uint64_t seed);

/// A network_stage_factory running a fault_proxy with plan_network's faults.
/// Its events: fault_start/fault_end of kind latency, bandwidth and reset
/// from the proxy's start to its stop (for the faults that are on), of kind
/// blackhole for each window as the proxy opens and closes it, and
/// {"ev":"connection_reset","cause":"reset"|"blackhole","connection":k} for
/// every connection the proxy reset.
network_stage_factory proxy_stage_factory();

} // namespace ferry::harness
