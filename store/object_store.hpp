#pragma once

#include "store/status.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace ferry {

/// An object as a store reports it.
struct object_info {
  std::string oid;
  int64_t size = 0;
};

/// Streams one object out of a store, starting at the offset given to
/// object_store::open_read.
class object_reader {
public:
  virtual ~object_reader() = default;

  /// Total size of the stored object (not of the remaining range).
  virtual int64_t size() const = 0;

  /// Reads up to `capacity` bytes; 0 means end of object.
  virtual result<size_t> read(char* buffer, size_t capacity) = 0;
};

/// Streams one object into a store. Nothing is visible under the object's
/// name until commit() succeeds; a crash at any point leaves either the old
/// state or the complete, verified object.
class object_writer {
public:
  virtual ~object_writer() = default;

  /// Bytes already held durably for this object: the point from which the
  /// caller continues writing. Non-zero only when an earlier, interrupted
  /// write is resumed (see object_store::open_write).
  virtual int64_t offset() const = 0;

  /// Appends bytes at the current end.
  virtual status write(const char* data, size_t size) = 0;

  /// Makes everything written so far durable. After success, a later
  /// open_write(oid, size, resume = true) may continue from here.
  virtual status sync() = 0;

  /// Verifies that everything written (including any resumed prefix) has
  /// exactly the declared size and hashes to the oid, then publishes the
  /// object atomically. On a mismatch nothing is published, the partial data
  /// is discarded, and errc::size_mismatch or errc::hash_mismatch is returned.
  virtual status commit() = 0;

  /// Discards the partial data. Destroying a writer without commit() or
  /// abort() keeps the synced partial data for a later resume.
  virtual void abort() = 0;
};

/// A place objects live, addressed by oid (SHA-256, 64 lower-case hex).
/// Implementations are safe to use from several threads for different oids.
class object_store {
public:
  virtual ~object_store() = default;

  /// Where the store is, for logs and the journal; never contains secrets.
  virtual std::string describe() const = 0;

  /// The object's info, or std::nullopt when the store does not have it.
  virtual result<std::optional<object_info>> stat(const std::string& oid) = 0;

  /// Opens an object for reading from `offset` (0 <= offset <= size).
  /// errc::not_found when the store does not have it.
  virtual result<std::unique_ptr<object_reader>> open_read(const std::string& oid,
                                                           int64_t offset) = 0;

  /// Starts writing an object of `size` bytes. With `resume`, durable partial
  /// data from an earlier interrupted write is kept and offset() tells where
  /// to continue; without it any partial data is discarded.
  virtual result<std::unique_ptr<object_writer>> open_write(const std::string& oid,
                                                            int64_t size, bool resume) = 0;

  /// Calls `visit` for every complete object; stops early when it returns false.
  virtual status list(const std::function<bool(const object_info&)>& visit) = 0;

  /// Removes an object; removing an absent object succeeds.
  virtual status remove(const std::string& oid) = 0;
};

} // namespace ferry
