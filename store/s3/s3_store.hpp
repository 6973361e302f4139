#pragma once

// S3-compatible object storage as an object store: `s3://bucket/prefix`.
// Every call blocks its caller (the engine runs each transfer of a store
// with an endpoint on a thread of its own).

#include "store/http/http_engine.hpp"
#include "store/object_store.hpp"
#include "store/s3/s3_keys.hpp"
#include "store/s3/s3_signer.hpp"
#include "store/s3/s3_url.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ferry {

namespace s3 {
class client;
}

struct s3_store_options {
  /// Longest Retry-After honoured (ferry.maxRetryWait).
  std::chrono::seconds max_retry_wait{120};
  /// Objects of at least this many bytes go up as multipart uploads
  /// (ferry.s3.multipartThreshold); smaller ones as one PUT.
  int64_t multipart_threshold = 200 << 20;
  /// Size of every part but the last (ferry.s3.partSize, at least 5 MiB,
  /// S3's minimum); raised for an object that would need more than 10,000.
  int64_t part_bytes = 8 << 20;
  /// Parts of one object in flight at once (ferry.s3.uploadConcurrency).
  int upload_concurrency = 4;
  /// Downloads of at least `parallel_threshold` bytes are fetched as up to
  /// `parallel_streams` concurrent ranges of `range_bytes`
  /// (ferry.parallelStreams, ferry.parallelThreshold).
  int parallel_streams = 4;
  int64_t parallel_threshold = 32 << 20;
  int64_t range_bytes = 8 << 20;
};

/// An S3 bucket (AWS, Ceph radosgw, MinIO, ...) as an object store.
///
/// Uploads are verified by the server: a single PUT carries the object's
/// SHA-256 (its oid) as x-amz-content-sha256, and each part of a multipart
/// upload its own SHA-256 and Content-MD5, so S3 refuses bytes that do not
/// match. Multipart uploads resume: the writer's resume_state() names the
/// upload and its completed parts, and a resumed write sends only the rest.
class s3_store final : public object_store {
public:
  /// `http` may be null (an engine is started on first use).
  /// `keys` are read again when the server refuses them (s3::client).
  s3_store(std::shared_ptr<http_engine> http, s3::s3_url url, std::shared_ptr<s3::key_holder> keys,
           s3_store_options options);
  ~s3_store() override;

  /// s3_url::describe(): no keys.
  std::string describe() const override;
  /// "host:port" of the endpoint.
  std::string endpoint() const override;

  /// One cheap request that shows whether the store URL and the keys can
  /// work at all: a ListObjectsV2 of at most one key under the prefix,
  /// judged by s3_check_verdict(). A server that cannot be reached gives
  /// the HTTP engine's status: transient for a refused connection or a
  /// timeout (the transfers retry, and the circuit breaker reports a dead
  /// host), errc::config_error for a TLS certificate that does not verify.
  status prepare() override;

  /// HEAD: present with its Content-Length; 404 means absent.
  result<std::optional<object_info>> stat(const std::string& oid) override;
  /// HEAD: true when the object is there with exactly this size (S3 checked
  /// its content against x-amz-content-sha256 when Ferry wrote it).
  result<bool> holds(const object_info& object) override;
  /// holds() for each object: the sizes sizes_of() finds compared with
  /// the asked ones.
  result<std::vector<bool>> holds_each(const std::vector<object_info>& objects) override;
  /// A HEAD of each object, up to 16 in flight at once: its Content-Length,
  /// nullopt for a 404. The first object (in order) whose answer is an
  /// error gives the result, with the same status holds() returns for it.
  result<std::vector<std::optional<int64_t>>>
  sizes_of(const std::vector<object_info>& objects) override;
  /// ListObjectsV2 answers up to 1000 keys a page.
  int64_t objects_per_list_request() const override { return 1000; }
  /// Ranged GETs from `offset`, several in parallel for large objects; every
  /// answer is checked against the object's size and the range asked for.
  result<std::unique_ptr<object_reader>> open_read(const std::string& oid, int64_t offset) override;
  /// One PUT below the multipart threshold, else a multipart upload (see the
  /// class comment). With a `resume` state from an interrupted multipart
  /// writer, parts the server still lists with the recorded ETag and size
  /// are kept and offset() is the end of the leading run of them.
  result<std::unique_ptr<object_writer>>
  open_write(const std::string& oid, int64_t size,
             const std::optional<std::string>& resume) override;
  /// Remembers the sizes, so reads can check the server's answers at once.
  status expect_reads(const std::vector<object_info>& objects) override;
  /// ListObjectsV2 under the prefix, page by page; keys that are not an oid
  /// in this store's layout are skipped.
  status list(const std::function<bool(const object_info&)>& visit) override;
  /// DELETE; an absent object is no error.
  status remove(const std::string& oid) override;

  /// Multipart uploads under the prefix, for the object keys of this
  /// layout, that were started before `before`: each is passed to `visit`
  /// (key and upload id) and, unless `dry_run`, aborted. Returns how many.
  result<size_t> abort_stale_uploads(
    std::chrono::system_clock::time_point before, bool dry_run,
    const std::function<void(const std::string& key, const std::string& upload_id)>& visit);

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// What the answer to s3_store::prepare()'s listing says about the store
/// URL `url` and the keys:
/// - a ListObjectsV2 page: success; so is AccessDenied, since S3 knew the
///   keys and the bucket (keys may be allowed objects but not listings);
/// - 5xx, 408 and 429, with an S3 error body or without (a proxy in front of
///   S3 answers so during an outage): errc::unavailable;
/// - any other S3 error (NoSuchBucket, InvalidAccessKeyId,
///   SignatureDoesNotMatch, a clock too far off...) and any redirect:
///   errc::config_error, quoting the S3 error and what to fix;
/// - anything else (an HTML page, JSON, an empty 200, a 404 without an S3
///   error): errc::config_error saying the endpoint is not S3.
status s3_check_verdict(const s3::s3_url& url, const http_response& answer);

} // namespace ferry
