#pragma once

// The harness's one source of randomness. Every draw comes from
// std::mt19937_64, whose output the C++ standard fixes; the distributions are
// written here rather than taken from <random>, whose algorithms differ
// between standard libraries, so a seed gives the same simulation anywhere.

#include <cstddef>
#include <cstdint>
#include <random>
#include <string_view>

namespace ferry::harness {

class seeded_random {
public:
  /// A stream of its own for each purpose ("sizes", "kills", "network", ...),
  /// so that drawing more for one purpose never shifts another's draws.
  seeded_random(uint64_t seed, std::string_view stream);

  /// 64 uniformly random bits.
  uint64_t next() { return engine_(); }
  /// Uniform in [0, n); n > 0. Rejection sampling: no modulo bias.
  uint64_t below(uint64_t n);
  /// Uniform in [low, high], both included; low <= high.
  int64_t between(int64_t low, int64_t high);
  /// Uniform in [0, 1), 53 random bits.
  double unit();
  /// Standard normal (Box-Muller).
  double normal();
  /// Fills `size` bytes with random data.
  void fill(unsigned char* data, size_t size);

private:
  std::mt19937_64 engine_;
};

} // namespace ferry::harness
