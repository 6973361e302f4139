#include "simulations/harness/seeded_random.hpp"

#include <cmath>
#include <cstring>
#include <limits>

namespace ferry::harness {

namespace {

/// SplitMix64's finaliser: spreads the bits of the seed and the stream name.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t name_hash(std::string_view name) {
  uint64_t h = 0xcbf29ce484222325ULL; // FNV-1a
  for (unsigned char c : name) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

} // namespace

seeded_random::seeded_random(uint64_t seed, std::string_view stream)
    : engine_(mix(seed ^ mix(name_hash(stream)))) {}

uint64_t seeded_random::below(uint64_t n) {
  // The largest multiple of n that fits: draws at or above it are redrawn.
  const uint64_t limit =
    std::numeric_limits<uint64_t>::max() - std::numeric_limits<uint64_t>::max() % n;
  uint64_t x = next();
  while (x >= limit)
    x = next();
  return x % n;
}

int64_t seeded_random::between(int64_t low, int64_t high) {
  const uint64_t span = static_cast<uint64_t>(high) - static_cast<uint64_t>(low);
  if (span == std::numeric_limits<uint64_t>::max())
    return static_cast<int64_t>(next());
  return static_cast<int64_t>(static_cast<uint64_t>(low) + below(span + 1));
}

double seeded_random::unit() {
  return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0);
}

double seeded_random::normal() {
  // 1 - unit() is in (0, 1], so the logarithm is finite.
  const double u1 = 1.0 - unit();
  const double u2 = unit();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

void seeded_random::fill(unsigned char* data, size_t size) {
  size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    const uint64_t x = next();
    for (int b = 0; b < 8; ++b)
      data[i + b] = static_cast<unsigned char>(x >> (8 * b));
  }
  if (i < size) {
    const uint64_t x = next();
    for (int b = 0; i < size; ++i, ++b)
      data[i] = static_cast<unsigned char>(x >> (8 * b));
  }
}

} // namespace ferry::harness
