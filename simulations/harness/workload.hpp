#pragma once

// What a simulation moves and when it kills ferry, drawn from the seed.

#include "simulations/harness/scenario.hpp"
#include "simulations/harness/seeded_random.hpp"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace ferry::harness {

/// One object of the workload. Its bytes are regenerated from content_seed.
struct planned_object {
  std::string oid;
  int64_t size = 0;
  uint64_t content_seed = 0;
  /// push and pull: which repository holds it (0-based).
  int repository = 0;
};

struct workload_plan {
  std::vector<planned_object> objects;
  int64_t total_bytes = 0;
  /// Ascending: kill i happens once kill_points[i] objects are at the
  /// destination (1 <= k <= 90% of the objects).
  std::vector<int64_t> kill_points;
};

/// One size from the distribution (at least 1 byte).
int64_t draw_size(const size_distribution& sizes, seeded_random& random);

/// The objects (sizes, contents, oids) and kill points of a scenario for a
/// seed. Errors when the sizes cannot give that many different objects.
result<workload_plan> plan_workload(const scenario& scene, uint64_t seed);

/// Calls `sink` with an object's bytes, in pieces of at most 1 MiB.
void object_bytes(const planned_object& object,
                  const std::function<void(const unsigned char*, size_t)>& sink);

} // namespace ferry::harness
