#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

namespace ferry {

/// What went wrong. Every fallible call in Ferry reports one of these; the
/// retry policy (actors/policy/retry_policy.hpp) decides what each one means for a
/// transfer.
enum class errc : uint8_t {
  ok = 0,
  /// A request or argument is malformed (bad JSON, missing field, bad oid).
  invalid_request,
  /// The bytes read do not have the declared size.
  size_mismatch,
  /// The bytes read do not hash to the declared oid.
  hash_mismatch,
  /// The object or file does not exist.
  not_found,
  /// A path points outside the places Ferry may read or write.
  path_rejected,
  /// The operating system refused access.
  permission_denied,
  /// The destination is out of space or quota.
  no_space,
  /// A read, write, sync or rename failed; trying again may succeed.
  io_error,
  /// The backend is temporarily unavailable; trying again may succeed.
  unavailable,
  /// A journal record cannot be decoded (unknown format version, bad bytes).
  corrupt_record,
  /// The journal is held by another process.
  busy,
  /// The configuration is invalid or incomplete.
  config_error,
  /// A transfer was abandoned: the engine is shutting down, or the agent
  /// that asked for it went away.
  cancelled,
  /// A bug: an invariant did not hold.
  internal,
};

/// Stable, lower-case name of a code (used in journal records and replies).
const char* to_string(errc code);

/// Parses a name produced by to_string(); unknown names give errc::internal.
errc errc_from_string(const std::string& name);

/// The outcome of a fallible operation: a code plus a human-readable message.
/// Like rocksdb::Status, it must be looked at: callers that ignore a status
/// get a compiler warning.
class [[nodiscard]] status {
public:
  status() = default;
  status(errc code, std::string message) : code_(code), message_(std::move(message)) {}

  static status success() { return {}; }

  bool ok() const { return code_ == errc::ok; }
  explicit operator bool() const { return ok(); }
  errc code() const { return code_; }
  const std::string& message() const { return message_; }

  /// "<code>: <message>", for logs and error replies.
  std::string to_string() const;

  /// Returns a copy whose message is prefixed with `context` ("context: message").
  status with_context(const std::string& context) const;

  /// How long the other side asked us to wait before trying again (an HTTP
  /// Retry-After, a bridge's retryAfter); zero when it did not say.
  std::chrono::milliseconds retry_after() const { return retry_after_; }

  /// Returns a copy that carries `wait` as its retry_after().
  status with_retry_after(std::chrono::milliseconds wait) const;

private:
  errc code_ = errc::ok;
  std::string message_;
  std::chrono::milliseconds retry_after_{0};
};

/// Maps an errno value to a status: ENOENT -> not_found, EACCES/EPERM/EROFS ->
/// permission_denied, ENOSPC/EDQUOT -> no_space, anything else -> io_error.
/// The message is "<what>: <strerror>".
status from_errno(int error_number, const std::string& what);

/// A value or the status explaining why there is none.
template <class T>
class [[nodiscard]] result {
public:
  result(T value) : value_(std::move(value)) {}
  result(status failure) : status_(std::move(failure)) {}

  bool ok() const { return value_.has_value(); }
  explicit operator bool() const { return ok(); }
  const status& error() const { return status_; }

  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }
  T&& operator*() && { return std::move(*value_); }

private:
  std::optional<T> value_;
  status status_;
};

/// Whether trying again can change the outcome.
enum class retry_class {
  /// The failure may go away by itself (I/O hiccup, backend unavailable).
  transient,
  /// Trying again gives the same answer (bad request, content does not match
  /// its oid, object missing, out of space, no permission).
  permanent,
};

/// The error taxonomy: what each code means for a transfer.
retry_class classify(errc code);

} // namespace ferry
