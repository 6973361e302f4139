#pragma once

// The keys an S3 client signs with, read again when the server refuses them,
// so that keys rotated in the credentials file (or a session token a tool
// renewed) take effect without reopening the store.

#include "protocol/status.hpp"
#include "store/s3/s3_credentials.hpp"
#include "store/s3/s3_signer.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace ferry::s3 {

/// Keys and the read of them they came from: a request keeps the generation
/// it was signed with, so that a refusal of old keys does not read them again
/// after another request already did.
struct signing_keys {
  credentials keys;
  uint64_t generation = 0;
};

/// The current keys of one store and how to look them up again. Thread-safe.
class key_holder {
public:
  /// Looks the keys up again (find_credentials with the store's inputs).
  using lookup_function = std::function<result<found_credentials>()>;

  /// `first` as found when the store was opened; `lookup` may be null for
  /// keys that are never read again.
  key_holder(found_credentials first, lookup_function lookup);

  /// Fixed keys, never read again; their source reads "given keys".
  static std::shared_ptr<key_holder> fixed(credentials keys);

  signing_keys current() const;

  /// After the server refused keys of `generation`: reads them again, unless
  /// they were read since that generation (any number of requests refused at
  /// once cause one read). True when the keys now differ from those of
  /// `generation`: sign again with current() and resend.
  bool reread(uint64_t generation);

  /// "the keys from <source> were refused", and why the last read of them
  /// failed, if it did. Never a key value.
  std::string refused_note() const;

private:
  mutable std::mutex mutex_;
  lookup_function lookup_;
  credentials keys_;
  std::string source_;
  /// Reads so far (0: only the first lookup), and the read that last
  /// changed the keys.
  uint64_t generation_ = 0;
  uint64_t changed_at_ = 0;
  /// Why the last read failed; empty when it succeeded or none happened.
  std::string read_problem_;
};

} // namespace ferry::s3
