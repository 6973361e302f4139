#pragma once

#include "actors/policy/metrics.hpp"
#include "store/lfs/lfs_store.hpp"
#include "store/object_store.hpp"
#include "store/os/event_file.hpp"
#include "store/os/redis_client.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace ferry {

class circuit_breakers;
class http_engine;

/// What the engine's actors need to know, resolved once at start-up.
struct engine_config {
  /// Where objects go to and come from when a request carries no server
  /// action (standalone mode). May be null: in non-standalone use every
  /// request brings its own action, and a request without one is answered
  /// with an error that tells how to configure a store.
  std::shared_ptr<object_store> store;
  /// Where copies (direction::copy, `ferry migrate`) read objects from;
  /// null in the agent.
  std::shared_ptr<object_store> source;
  /// The HTTP engine that the stores for server actions share (one
  /// connection cache, per-host connection caps).
  std::shared_ptr<http_engine> http;
  /// Retry-After cap and parallel-range settings for action transfers
  /// (non-standalone mode); `endpoint` is unused.
  lfs_store_options lfs;
  /// Uploads may only read files under one of these directories (the
  /// repository's working tree and LFS directory).
  std::vector<std::filesystem::path> upload_roots;
  /// Downloads are assembled and verified here; it must be on the same
  /// filesystem as the repository's LFS directory so git-lfs can rename.
  std::filesystem::path download_dir;
  /// Called by the COORDINATOR when a job for an oid starts; what it
  /// returns is held until the job's outcome is sent. The daemon gives
  /// each agent the log lines about its objects with it
  /// (tap_object_lines()). May be empty.
  std::function<std::shared_ptr<void>(const std::string& oid)> watch_object;
  /// Bytes read or written per worker step.
  size_t chunk_bytes = 1 << 20;
  /// Bytes between syncs; each sync advances the journal's resume point.
  int64_t sync_bytes = 32 << 20;
  /// Attempts per object before its failure is final.
  int max_attempts = 5;
  /// The longest time an object is retried, from its first attempt: a retry
  /// (or a wait for its host's circuit) that would start later fails the
  /// object instead. 0: no limit. Waits for another writer keep their own.
  std::chrono::milliseconds max_retry_time{300000};
  std::chrono::milliseconds backoff_base{250};
  std::chrono::milliseconds backoff_max{10000};
  /// Seed for the backoff jitter (fixed in tests).
  uint64_t seed = 0;

  // -- network jobs (a store endpoint or a server action) ---------------------

  /// Per host: requests and payload bytes per second; 0 means unlimited.
  /// Where the jobs go to an LFS server or S3, `http` paces each HTTP
  /// request itself (http_engine::options) and the rate limiter takes only
  /// the bytes; to other stores each transfer attempt counts as a request.
  double max_requests_per_second = 0;
  double max_bytes_per_second = 0;
  /// A limit shared with other processes through Redis (--rate-limiter):
  /// every network transfer to a store without HTTP requests also takes a
  /// slot of `shared_requests_per_second` from it (`http` asks it for each
  /// request where there are). Empty host: none.
  redis_address shared_limit;
  double shared_requests_per_second = 0;
  /// Consecutive transient failures that open a host's circuit, and how
  /// long it stays open before one probe is let through.
  int breaker_failures = 5;
  std::chrono::milliseconds breaker_open_for{30000};
  /// The hosts' circuits; engines given one registry (the daemon's, for
  /// every repository with the same two settings above) share each host's
  /// circuit. Null: the engine keeps its own.
  std::shared_ptr<circuit_breakers> circuits;
  /// Retries in flight may not exceed this share of the attempts in flight,
  /// or retry_budget_min, whichever is larger.
  double retry_budget_percent = 20.0;
  int retry_budget_min = 3;
  /// Network stores block the thread that calls them, so the calls of
  /// network jobs' workers run on a pool of at most this many threads
  /// (store/os/blocking_pool), not on the actor scheduler's; more calls than
  /// that wait in order. 0 keeps them on the actors: tests on CAF's
  /// deterministic scheduler, which has no threads.
  size_t network_threads = 256;
  /// Where one-line notices for the user go when a host's circuit changes
  /// state (opens, its probe fails, closes again): once per change, never
  /// per attempt. Called on an actor's thread; may be empty.
  std::function<void(const std::string&)> notice;
  /// Where the supervisor counts transfers, retries and host states for
  /// Prometheus (describe_transfer_metrics()); may be null.
  std::shared_ptr<metrics_registry> metrics;
  /// Where each attempt's start and end is appended as a line of JSON
  /// (ferry.eventsFile, protocol/transfer_events.hpp); may be null.
  std::shared_ptr<event_file> events;
};

} // namespace ferry
