#include "simulations/harness/workload.hpp"

#include "store/os/sha256.hpp"

#include <algorithm>
#include <cmath>
#include <unordered_set>

namespace ferry::harness {

int64_t draw_size(const size_distribution& sizes, seeded_random& random) {
  switch (sizes.shape) {
    case size_distribution::kind::fixed:
      return sizes.low;
    case size_distribution::kind::uniform:
      return random.between(sizes.low, sizes.high);
    case size_distribution::kind::lognormal: {
      const double size = std::round(sizes.median * std::exp(sizes.sigma * random.normal()));
      return std::clamp(static_cast<int64_t>(std::min(size, 9.0e18)), int64_t{1}, sizes.high);
    }
    case size_distribution::kind::mix: {
      const double pick = random.unit();
      double upto = 0;
      for (const auto& part : sizes.parts) {
        upto += part.share;
        if (pick < upto)
          return draw_size(part, random);
      }
      // Rounding left the last sliver of [0, 1) uncovered.
      return draw_size(sizes.parts.back(), random);
    }
  }
  return 1;
}

void object_bytes(const planned_object& object,
                  const std::function<void(const unsigned char*, size_t)>& sink) {
  // A multiple of 8, so that pieces join into the same stream as one fill.
  constexpr size_t piece = size_t{1} << 20;
  std::vector<unsigned char> buffer(static_cast<size_t>(std::min<int64_t>(object.size, piece)));
  seeded_random content(object.content_seed, "content");
  for (int64_t left = object.size; left > 0;) {
    const size_t n = static_cast<size_t>(std::min<int64_t>(left, piece));
    content.fill(buffer.data(), n);
    sink(buffer.data(), n);
    left -= static_cast<int64_t>(n);
  }
}

result<workload_plan> plan_workload(const scenario& scene, uint64_t seed) {
  seeded_random sizes(seed, "sizes");
  seeded_random contents(seed, "contents");
  workload_plan plan;
  plan.objects.reserve(static_cast<size_t>(scene.workload.objects));
  std::unordered_set<std::string> seen;
  for (int64_t i = 0; i < scene.workload.objects; ++i) {
    planned_object object;
    object.size = draw_size(scene.workload.sizes, sizes);
    object.repository = static_cast<int>(i % scene.workload.repositories);
    // Tiny sizes can repeat a content; draw again (an oid names one object).
    for (int attempt = 0;; ++attempt) {
      if (attempt == 1000)
        return status{errc::invalid_request, "workload.sizes: cannot draw " +
                                               std::to_string(scene.workload.objects) +
                                               " different objects (too few possible contents of " +
                                               std::to_string(object.size) + " bytes)"};
      object.content_seed = contents.next();
      sha256 hash;
      object_bytes(object, [&](const unsigned char* data, size_t n) { hash.update(data, n); });
      object.oid = hash.hex_digest();
      if (seen.insert(object.oid).second)
        break;
    }
    plan.total_bytes += object.size;
    plan.objects.push_back(std::move(object));
  }
  seeded_random kills(seed, "kills");
  // Up to 90% of the objects, so that the command still has work when its
  // kill point is reached.
  const int64_t last_point = std::max<int64_t>(1, scene.workload.objects * 9 / 10);
  for (int i = 0; i < scene.faults.kills; ++i)
    plan.kill_points.push_back(kills.between(1, last_point));
  std::sort(plan.kill_points.begin(), plan.kill_points.end());
  return plan;
}

} // namespace ferry::harness
