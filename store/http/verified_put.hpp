#pragma once

// A streamed PUT of one object that the server can only see complete once
// the bytes written were checked to be exactly that object. Shared by the
// stores that upload over HTTP (an LFS server's basic PUT, S3).

#include "protocol/status.hpp"
#include "store/http/http_engine.hpp"
#include "store/http/http_stream.hpp"
#include "store/os/sha256.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace ferry {

/// Size and SHA-256 of every byte of an object a writer saw, checked before
/// anything is published.
class object_digest {
public:
  object_digest(std::string oid, int64_t size) : oid_(std::move(oid)), size_(size) {}

  /// Counts and hashes bytes; more than the object's size is
  /// errc::size_mismatch.
  status add(const char* data, size_t n);

  int64_t count() const { return count_; }

  /// errc::size_mismatch or errc::hash_mismatch unless exactly the object's
  /// bytes were added. Finishes the hash: call it once.
  status verify();

private:
  std::string oid_;
  int64_t size_;
  int64_t count_ = 0;
  sha256 hash_;
};

/// One PUT (http_body_writer) of object `oid` of `size` bytes. The last byte
/// is released only by finish(), after object_digest::verify() passed, so
/// a wrong source never becomes an object on the server.
class verified_put {
public:
  /// How the store reads the server's answer to the PUT (an early refusal
  /// included): success, or the status to report.
  using judge_fn = std::function<status(const http_response&)>;

  /// `what` names the upload in messages ("upload of <oid>").
  verified_put(std::string oid, int64_t size, std::string what, judge_fn judge);

  /// Submits `request` with the object's size as its Content-Length.
  status start(http_engine& engine, http_request request);

  /// Counts, hashes and queues bytes (a byte too many aborts the PUT). When
  /// the server answered before the body was complete (a refusal such as a
  /// 401 or 403), returns the judge's reading of that answer.
  status write(const char* data, size_t size);

  /// Checks size and SHA-256 (aborting the PUT on a mismatch), then releases
  /// the last byte and returns the judge's reading of the server's answer.
  status finish();

  /// Abandons the PUT: the body never completes. Idempotent.
  void abort();

private:
  object_digest digest_;
  int64_t size_;
  std::string what_;
  judge_fn judge_;
  std::unique_ptr<http_body_writer> body_;
};

} // namespace ferry
