#pragma once

#include "protocol/status.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ferry {

/// The objects object_store::sync_published() could not publish: oid and why.
using publish_failures = std::vector<std::pair<std::string, status>>;

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

  /// Makes written bytes durable as far as the store can now and returns the
  /// point up to which they are: everything written for a store that syncs
  /// at once, less while writes are still in flight (the parts of an S3
  /// multipart upload), 0 for a store that cannot resume. A later
  /// open_write(oid, size, resume_state()) continues from that point or later.
  virtual result<int64_t> sync() = 0;

  /// How many written bytes between sync() calls this writer wants; 0 leaves
  /// it to the caller. A store whose sync() is cheap and whose durable point
  /// moves in steps (the parts of a multipart upload) asks for each step, so
  /// the journal loses at most the steps still in flight when a crash comes.
  virtual int64_t sync_every() const { return 0; }

  /// What a later open_write needs to continue this write, for the journal
  /// to keep with the resume point (an S3 multipart upload's id and its
  /// completed parts). Empty for stores that find partial data by oid alone.
  virtual std::string resume_state() const { return {}; }

  /// When a write resumes, the caller shows the writer the bytes below
  /// offset() again, in order, before writing on, so a store that recorded
  /// checksums of what it holds can compare them with the source. A mismatch
  /// is errc::hash_mismatch: the caller aborts and starts over from byte 0.
  virtual status check_resumed(const char* data, size_t size);

  /// Verifies that everything written (including any resumed prefix) has
  /// exactly the declared size and hashes to the oid, then publishes the
  /// object atomically: a server's store at once, a store on a local
  /// filesystem in its next sync_published(), where a whole group of objects
  /// shares the syncs. On a mismatch nothing is published, the partial data
  /// is discarded, and errc::size_mismatch or errc::hash_mismatch is returned.
  /// The object survives a crash and a power loss once it is published and,
  /// for a local store, sync_published() has returned.
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

  /// host:port of the server behind the store, for per-host rate limits
  /// and circuit breakers; empty for stores on a local filesystem. A store
  /// with an endpoint blocks on the network, so the engine gives each of
  /// its transfers a thread of its own.
  virtual std::string endpoint() const { return {}; }

  /// Checks, once before the first transfer, that the store can be used
  /// (a Proton session must be ready, an S3 endpoint must answer as S3);
  /// the agent answers git-lfs's init with a failure that is not transient
  /// and starts no transfer. Stores with nothing to check succeed.
  virtual status prepare();

  /// Publishes every object committed so far (object_writer::commit) that
  /// waits for it, and makes every published object survive a power loss. A
  /// store that writes to a local filesystem syncs here once for a whole
  /// group instead of once per object; nothing may be reported done before
  /// this returns. An error means no object committed since the last call is
  /// known durable; otherwise the objects that could not be published are
  /// returned with why. Servers keep what they acknowledged: this default
  /// does nothing.
  virtual result<publish_failures> sync_published();

  /// The object's info, or std::nullopt when the store does not have it.
  virtual result<std::optional<object_info>> stat(const std::string& oid) = 0;

  /// True when the store holds `object` with exactly its size and content,
  /// so an upload can be skipped. This default reads the store's copy back
  /// and hashes it: a corrupt copy counts as absent and gets replaced.
  /// Servers that verify every upload themselves (an LFS server, S3 with
  /// x-amz-content-sha256) override it and are taken at their word.
  virtual result<bool> holds(const object_info& object);

  /// holds() for several objects at once, in their order. This default asks
  /// one by one; a store that can ask about many objects in one request
  /// (Proton's batch-exists) overrides it.
  virtual result<std::vector<bool>> holds_each(const std::vector<object_info>& objects);

  /// The size the store holds under each object's oid, std::nullopt where it
  /// holds nothing, in their order. Only asks, never reads content, with the
  /// cheapest complete answer the store has: a folder's stat, S3 HEADs in
  /// parallel, one LFS batch request per 100, Proton's batch-exists. Stores
  /// that cannot tell a size (an LFS server, Proton Drive) answer the asked
  /// size for what they hold. This default calls stat() for each.
  virtual result<std::vector<std::optional<int64_t>>>
  sizes_of(const std::vector<object_info>& objects);

  /// Objects one request of list() covers, for a store whose listing is a
  /// walk of pages that can be cheaper than asking about each object (S3's
  /// ListObjectsV2: 1000); 0 for stores where sizes_of() is cheaper anyway.
  virtual int64_t objects_per_list_request() const { return 0; }

  /// Opens an object for reading from `offset` (0 <= offset <= size).
  /// errc::not_found when the store does not have it; errc::size_mismatch
  /// when it is shorter than `offset`.
  virtual result<std::unique_ptr<object_reader>> open_read(const std::string& oid,
                                                           int64_t offset) = 0;

  /// Starts writing an object of `size` bytes. With a `resume` state (the
  /// last resume_state() of an interrupted writer for this object, empty for
  /// stores that report none), durable partial data is kept and offset()
  /// tells where to continue; with std::nullopt any partial data is
  /// discarded.
  virtual result<std::unique_ptr<object_writer>>
  open_write(const std::string& oid, int64_t size, const std::optional<std::string>& resume) = 0;

  /// Announces objects about to be read, with their sizes, so a store that
  /// must name an object's size when it asks a server for it (an LFS server)
  /// can ask about all of them in few requests. Local stores ignore it.
  virtual status expect_reads(const std::vector<object_info>& objects);

  /// Calls `visit` for every complete object; stops early when it returns false.
  virtual status list(const std::function<bool(const object_info&)>& visit) = 0;

  /// Removes an object; removing an absent object succeeds.
  virtual status remove(const std::string& oid) = 0;
};

/// True when `store` has `object` with exactly its size and content: its
/// copy is read back and hashed. Absent counts as false.
result<bool> read_back_matches(object_store& store, const object_info& object);

/// sizes_of() for a store that can tell only whether it holds each object
/// (its holds_each()): the asked size where it does, std::nullopt elsewhere.
result<std::vector<std::optional<int64_t>>>
sizes_from_holds(object_store& store, const std::vector<object_info>& objects);

} // namespace ferry
