#pragma once

// Fault scenarios for ferry-lfs-sim: which requests get which faults.
// The file format is documented in simulations/lfs_server/README.md.

#include "protocol/status.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ferry::sim {

/// The simulator endpoints a rule can target.
enum class endpoint { batch, download, upload, verify };

/// "batch", "download", "upload" or "verify".
const char* to_string(endpoint where);

/// What one rule injects. Unset fields inject nothing.
struct fault {
  /// Answer with this HTTP status instead of serving the request.
  std::optional<int> status;
  /// Value of a Retry-After header sent with the status.
  std::optional<std::string> retry_after;
  /// Send Retry-After as an HTTP-date this many seconds in the future.
  std::optional<int64_t> retry_after_date_in;
  /// With status 401: only requests without an Authorization header get it.
  bool then_success = false;
  /// Drop the connection after this many body bytes (request body for
  /// uploads, response body otherwise).
  std::optional<int64_t> reset_after_bytes;
  /// Promise the full Content-Length but end the response body after this
  /// many bytes.
  std::optional<int64_t> truncate_at;
  /// Flip the byte at this offset of the resource (the object, or the JSON
  /// body of batch and verify answers).
  std::optional<int64_t> corrupt_byte_at;
  /// Pause this long before answering (or mid-body, see stall_after_bytes).
  std::optional<int64_t> stall_ms;
  /// Make the stall happen after this many body bytes instead of up front.
  std::optional<int64_t> stall_after_bytes;
  /// Throttle the body to this many bytes per second.
  std::optional<int64_t> bandwidth_bytes_per_s;
  /// Batch only: actions that have already expired.
  bool expired_actions = false;
  /// Batch only: a per-object error with this code instead of actions.
  std::optional<int> object_error;

  /// True when the fault injects nothing.
  bool empty() const;

  /// Takes every field that is unset here from `other`, so that when several
  /// rules fire, the earlier rule wins where they disagree.
  void merge_from(const fault& other);
};

/// Which requests a rule looks at.
struct rule_match {
  /// Unset means any endpoint.
  std::optional<endpoint> where;
  /// Only requests about this object (for batch: requests listing it).
  std::string oid;
  /// "upload", "download" or empty for both.
  std::string operation;
};

/// One entry of a scenario's "rules".
struct rule {
  rule_match match;
  fault inject;
  /// Fire with this probability (drawn from the seed, see scenario::decide).
  std::optional<double> probability;
  /// Scripted: the n-th matching request fires when sequence[n] is true.
  std::optional<std::vector<bool>> sequence;
  /// Fire for the first N matching requests only.
  std::optional<int64_t> times;
};

/// The facts about a request that rules match on.
struct request_facts {
  endpoint where = endpoint::batch;
  /// "upload" or "download" (verify counts as upload).
  std::string operation;
  /// The object of a storage or verify request, or every valid oid of a batch.
  std::vector<std::string> oids;
  /// The request carries an Authorization header.
  bool authorized = false;
};

/// The rules that fired for one request.
struct decision {
  /// All fired faults merged (rule order decides conflicts).
  fault request;

  /// Object-level faults (object_error, expired_actions) for one object of a
  /// batch: those of fired rules that name this oid or no oid.
  fault for_object(const std::string& oid) const;

  /// Each fired rule's oid filter (empty for none) and its fault, in rule order.
  std::vector<std::pair<std::string, fault>> fired;
};

/// A parsed scenario plus the per-rule counters that make it deterministic.
/// Not thread-safe: the server serialises calls to decide().
class scenario {
public:
  /// Parses scenario JSON; errors name the offending field
  /// (e.g. "rules[2].fault.status: ...").
  static result<scenario> parse(const std::string& text);

  /// Reads and parses a scenario file.
  static result<scenario> load(const std::string& path);

  uint64_t seed() const { return seed_; }
  void set_seed(uint64_t seed) { seed_ = seed; }
  const std::vector<rule>& rules() const { return rules_; }

  /// Counts the request against every rule that matches it and returns the
  /// faults of the rules that fire. Each rule keeps its own count n of
  /// matching requests; probability draws are a pure function of (seed,
  /// rule index, n), so a rule's n-th request gets the same answer in every
  /// run with the same seed, however requests of other rules interleave.
  decision decide(const request_facts& facts);

  /// One line per rule, for --check and the log.
  std::string describe() const;

private:
  std::vector<rule> rules_;
  std::vector<int64_t> matched_;
  uint64_t seed_ = 0;
};

} // namespace ferry::sim
