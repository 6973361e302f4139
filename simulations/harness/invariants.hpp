#pragma once

// The invariants ferry-sim checks by itself, independently of what Ferry
// says: each gives pass/fail and evidence (simulations/README.md lists them).
// Evidence of a passed invariant never depends on timing, so that the same
// seed gives the same result.

#include "simulations/harness/workload.hpp"

#include <nlohmann/json.hpp>

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace ferry::harness {

struct invariant_result {
  invariant_result() = default;
  explicit invariant_result(std::string invariant) : name(std::move(invariant)) {}

  std::string name;
  bool passed = true;
  std::vector<std::string> evidence;

  /// Records a failure; evidence beyond `max_evidence` lines is counted only.
  void fail(const std::string& line);
  /// Adds the "... and N more" line, if any were left out.
  void finish();
  nlohmann::json to_json() const;

  static constexpr size_t max_evidence = 20;
  size_t left_out = 0;
};

/// Where the objects end up: folders in git-lfs's layout
/// (<root>/<oid[0:2]>/<oid[2:4]>/<oid>). One root for every object, or one
/// per repository (a pull's clones).
struct destination {
  std::vector<std::filesystem::path> roots;

  const std::filesystem::path& root_of(const planned_object& object) const;
  std::filesystem::path path_of(const planned_object& object) const;
};

/// How an object's file looks: missing, or its size and hash.
struct object_state {
  bool exists = false;
  int64_t size = 0;
  std::string sha256;
  /// Why it could not be read, when it exists but could not be.
  std::string error;
};

/// Opens, sizes and hashes a file (from one open descriptor, so a file
/// renamed over it meanwhile is not mixed in).
object_state inspect_file(const std::filesystem::path& path);

/// Objects at the destination now with their full size (a stat each).
int64_t count_arrived(const std::vector<planned_object>& objects, const destination& where);

/// What is wrong with one object at the destination ("" when it is intact).
std::string object_problem(const planned_object& object, const destination& where);

/// all_objects_intact: every object at the destination, byte-identical
/// (hashed here).
invariant_result check_all_objects_intact(const std::vector<planned_object>& objects,
                                          const destination& where);

/// no_partial_visible: samples the destination again and again; every file
/// under an object's final name must be complete and hash to its name.
class partial_watch {
public:
  explicit partial_watch(const std::vector<planned_object>& objects);

  /// Looks at every file under a final name in the roots; files seen intact
  /// before (same inode, size and change time) are not hashed again.
  /// `when` says when the sample was taken, for the evidence.
  void sample(const destination& where, const std::string& when);

  int64_t samples() const { return samples_; }
  invariant_result result() const;

private:
  struct seen_file {
    ino_t inode = 0;
    int64_t size = 0;
    int64_t ctime_ns = 0;
    bool operator==(const seen_file& o) const {
      return inode == o.inode && size == o.size && ctime_ns == o.ctime_ns;
    }
  };
  std::map<std::string, int64_t> sizes_;
  std::map<std::string, seen_file> intact_;
  std::map<std::string, std::string> violations_;
  int64_t samples_ = 0;
};

/// One run of the command (all repositories' commands for push and pull).
struct run_record {
  int run = 0;
  /// The exit code (128 + signal when a signal ended it); for several
  /// commands, the highest.
  int rc = 0;
  bool killed = false;
  bool timed_out = false;
  /// Objects not intact right after the run (before the --after-run hook).
  std::vector<std::string> problems_after;
};

/// honest_exit_codes: a run that exited 0 left every object in place.
invariant_result check_honest_exit_codes(const std::vector<run_record>& runs);

/// Faulted upload/verify requests per oid, read from a ferry-lfs-sim log
/// ("fault <kind>[=<detail>] on <endpoint> <oid>"). Throttling alone
/// (bandwidth_bytes_per_s) makes nobody send again and is not counted.
std::map<std::string, int64_t> faulted_uploads(const std::string& sim_log);

/// Faulted download requests per oid, read as faulted_uploads reads them.
std::map<std::string, int64_t> faulted_downloads(const std::string& sim_log);

/// Upload invocations per oid, read from a ferry-bridge-sim log (JSON lines,
/// simulations/bridge_sim/README.md): `uploads` counts every upload started;
/// `faulted` those not answered with a clean success (an error envelope, a
/// fault rule that fired, a cooldown's 429, or no end line at all: a hang, or
/// a bridge killed with ferry), each of which may make ferry upload again.
struct upload_counts {
  std::map<std::string, int64_t> uploads;
  std::map<std::string, int64_t> faulted;
};
upload_counts bridge_uploads(const std::string& bridge_log);

/// Uploads per oid from a radosgw log (its "beast:" request lines): a PUT of
/// `<bucket_and_prefix>/<oid[0:2]>/<oid[2:4]>/<oid>` or the POST that starts
/// a multipart upload of it counts as one upload (its part PUTs do not);
/// `faulted` counts those answered other than 2xx (or cut short by a kill).
upload_counts radosgw_uploads(const std::string& rgw_log, const std::string& bucket_and_prefix);

/// sent_at_most_once_plus_kills: each object was sent at most 1 + kills +
/// (its faulted requests) times: `sends` counts the requests that sent it,
/// `method` says which (uploads: PUT, from the sim's /stats "puts";
/// downloads: GET, from its "gets"). Through the fault proxy,
/// `network_resets` is the number of connections it reset: each may have cut
/// one request short, of an object nobody can tell, so all objects together
/// may exceed their allowances by that many requests.
invariant_result check_sent_at_most_once(const std::vector<planned_object>& objects,
                                         const std::map<std::string, int64_t>& sends,
                                         const std::map<std::string, int64_t>& faulted, int kills,
                                         std::optional<int64_t> network_resets = std::nullopt,
                                         const std::string& method = "PUT");

/// One answered request of a ferry-lfs-sim log ("<answer time> <method>
/// <path> -> <status> arrived_ms=<ms since epoch>[ retry_after=<s>]").
struct sim_request {
  std::string method;
  std::string path;
  long status = 0;
  /// Milliseconds since the epoch.
  int64_t arrived_ms = 0;
  int64_t answered_ms = 0;
  /// The Retry-After of the answer, in seconds; -1 without one.
  int64_t retry_after_s = -1;
};

/// The answered requests of a ferry-lfs-sim log, in log order.
std::vector<sim_request> sim_requests(const std::string& sim_log);

/// no_request_during_cooldown: after an answer with 429 or 503 and a
/// Retry-After at time T, no request arrives in (T + tolerance_ms,
/// T + Retry-After - tolerance_ms). A Retry-After beyond ferry.maxRetryWait
/// (`max_wait_ms`) sets no window: Ferry fails that object at once and keeps
/// no cooldown. The tolerance covers requests already on the wire when the
/// answer left. The window ends early at the next start of
/// a run in `run_starts_ms` (a new process cannot know the cooldown).
/// Only requests about the answer's repository (the path's first segment)
/// count: each repository is pushed by a Ferry process of its own. Requests
/// of the harness (/stats, /health) and of git-lfs (locks) are not Ferry's
/// and do not count.
invariant_result check_no_request_during_cooldown(const std::vector<sim_request>& requests,
                                                  const std::vector<int64_t>& run_starts_ms,
                                                  int64_t max_wait_ms, int64_t tolerance_ms);

/// report_matches: ferry migrate's --report of the last run agrees with what
/// the harness found: every object counted once (copied, present, verified,
/// failed, corrupt, pending), outcome complete only when every object is
/// intact (and otherwise with failed, corrupt or pending objects), and present + verified = the
/// objects at the destination when that run began, give or take the failed objects of earlier runs
/// that this run did not try again (not_retried: it did not ask about them).
invariant_result check_report_matches(const nlohmann::json& report,
                                      const std::vector<planned_object>& objects,
                                      int64_t intact_objects, int64_t arrived_before_last_run);

/// within_limits: the scenario's expect block (duration and throughput).
invariant_result check_within_limits(const expect_spec& expect, double duration_s,
                                     double throughput_bytes_per_s, bool timed_out);

} // namespace ferry::harness
