#pragma once

// Scenarios for ferry-bridge-sim: the account's auth state and the faults to
// inject. The file format is documented in simulations/bridge_sim/README.md.

#include "protocol/status.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::bridge_sim {

/// What a firing rule does to the invocation.
enum class fault_kind {
  /// 429 RATE_LIMITED with retryAfter, and a cooldown every later command
  /// but auth-state answers with 429 until it ends.
  rate_limited,
  /// 407 CAPTCHA verification required.
  captcha,
  /// 401 SESSION_EXPIRED (browser-fork).
  session_expired,
  /// 403 INSUFFICIENT_SCOPE, protonCode 9101.
  insufficient_scope,
  /// 502 NETWORK_ERROR.
  bad_gateway,
  /// 500 with empty details (a generic SDK error).
  server_error,
  /// 507 QUOTA_EXCEEDED.
  quota,
  /// 400 with a message and empty details.
  invalid,
  /// Reads the request, then never answers.
  hang,
  /// Writes to stderr and exits 137 without an envelope.
  crash,
  /// Log lines on stdout before the normal envelope.
  noise,
  /// One JSON line on stdout that is not a valid envelope.
  bad_envelope,
  /// upload stores, download writes, the object with one byte flipped.
  corrupt,
  /// Only the delay, then the normal answer.
  delay,
};

/// The kind's name in scenario files ("rate_limited", ...).
const char* to_string(fault_kind kind);

/// Parses a name produced by to_string().
std::optional<fault_kind> fault_kind_from_string(std::string_view name);

/// One entry of a scenario's "rules".
struct fault_rule {
  /// Only this command (lower case); any command when unset.
  std::optional<std::string> command;
  /// Only requests about this object (oid, or one of oids), lower case.
  std::optional<std::string> oid;
  /// The first `skip` matching invocations pass untouched.
  int64_t skip = 0;
  /// Then fire for this many matching invocations; unset means forever.
  std::optional<int64_t> times;
  /// What firing does.
  fault_kind kind = fault_kind::delay;
  /// rate_limited: the retryAfter in seconds (60 when unset).
  std::optional<int64_t> retry_after;
  /// Sleep this long before the fault (or the normal answer).
  int64_t delay_ms = 0;
  /// invalid, server_error, bad_gateway, quota: the error text to give.
  std::optional<std::string> message;
};

/// What `refresh` does to a session that has one.
enum class refresh_outcome {
  /// Answers success and changes nothing (the scenario's state stays).
  keeps,
  /// Answers success and renews an expired session: from then on every
  /// process on the drive sees `session_expired` as `ready`, until a
  /// session_expired fault fires (the session expired again).
  renews,
  /// Fails as drive-cli does when Proton rejects the refresh token (10013):
  /// 500 "Token refresh failed: Invalid refresh token", details "".
  invalid_token,
};

/// A parsed scenario file.
struct scenario {
  /// What auth-state reports and what the Drive commands act on.
  std::string auth_state = "ready";
  /// What `refresh` does ("refresh" in the file: keeps, renews,
  /// invalid_token).
  refresh_outcome refresh = refresh_outcome::keeps;
  /// In file order: the first due rule fires.
  std::vector<fault_rule> rules;
  /// SHA-256 of the file's text: keys the persistent rule counters, so that
  /// another scenario in the same drive starts counting afresh.
  std::string fingerprint;
};

/// Parses scenario JSON text. Unknown keys, unknown commands, fault kinds or
/// auth states, bad oids and negative numbers are errc::invalid_request
/// naming the offending field ("rules[2].fault: ...").
result<scenario> parse_scenario(const std::string& text);

/// Reads and parses a scenario file.
result<scenario> load_scenario(const std::string& path);

/// True when `rule` looks at this invocation of `command` (lower case) with
/// `request` (which passed the field checks): same command, and for an oid
/// rule, the request's oid or one of its oids is that oid.
bool rule_matches(const fault_rule& rule, std::string_view command, const nlohmann::json& request);

} // namespace ferry::bridge_sim
