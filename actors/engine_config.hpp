#pragma once

#include "store/object_store.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <vector>

namespace ferry {

/// What the engine's actors need to know, resolved once at start-up.
struct engine_config {
  /// Where objects go to and come from.
  std::shared_ptr<object_store> store;
  /// Uploads may only read files under one of these directories (the
  /// repository's working tree and LFS directory).
  std::vector<std::filesystem::path> upload_roots;
  /// Downloads are assembled and verified here; it must be on the same
  /// filesystem as the repository's LFS directory so git-lfs can rename.
  std::filesystem::path download_dir;
  /// Bytes read or written per worker step.
  size_t chunk_bytes = 1 << 20;
  /// Bytes between syncs; each sync advances the journal's resume point.
  int64_t sync_bytes = 32 << 20;
  /// Attempts per object before its failure is final.
  int max_attempts = 5;
  std::chrono::milliseconds backoff_base{250};
  std::chrono::milliseconds backoff_max{10000};
  /// Restarts allowed across all workers within restart_window.
  int max_restarts = 50;
  std::chrono::milliseconds restart_window{60000};
  /// Seed for the backoff jitter (fixed in tests).
  uint64_t seed = 0;
};

} // namespace ferry
