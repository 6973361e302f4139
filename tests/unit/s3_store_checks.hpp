#pragma once

// For the tests of s3_store's reads, on loopback (remote_s3_store.cpp) and
// against radosgw (s3_store_reads.cpp): a plan of many small ranges, and a
// store's listing as a map.

#include "store/object_store.hpp"
#include "store/s3/s3_store.hpp"

#include <cstdint>
#include <map>
#include <string>

namespace ferry::testing {

/// Range bytes of small_ranges().
inline constexpr int64_t small_range_bytes = 64 << 10;

/// Four parallel ranges of 64 KiB for any object, so a modest one needs many.
inline s3_store_options small_ranges() {
  s3_store_options options;
  options.parallel_streams = 4;
  options.parallel_threshold = 1;
  options.range_bytes = small_range_bytes;
  return options;
}

/// How many small_ranges() GETs `bytes` take.
inline int64_t small_ranges_for(int64_t bytes) {
  return (bytes + small_range_bytes - 1) / small_range_bytes;
}

/// Every object the store lists, oid to size.
inline result<std::map<std::string, int64_t>> listed_objects(object_store& store) {
  std::map<std::string, int64_t> listed;
  auto done = store.list([&](const object_info& object) {
    listed[object.oid] = object.size;
    return true;
  });
  if (!done)
    return done;
  return listed;
}

} // namespace ferry::testing
