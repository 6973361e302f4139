#pragma once

// The S3 store's writers: one PUT for small objects, a resumable multipart
// upload for large ones, and the cleanup of multipart uploads left behind.
// Internal to the S3 store (store/s3/s3_store.cpp).

#include "store/object_store.hpp"
#include "store/s3/s3_client.hpp"
#include "store/s3/s3_store.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace ferry::s3 {

/// Starts the upload of object `oid` of `size` bytes to `key`: a single PUT
/// (x-amz-content-sha256 = oid, Content-Length = size, the last byte held
/// back until commit() has checked size and SHA-256) below
/// options.multipart_threshold, else a multipart upload. A `resume` state
/// from an earlier multipart writer of the same key is checked against
/// ListParts: the leading run of recorded parts the server lists unchanged
/// is kept and later parts are sent again under the same numbers. A state
/// that is malformed or names another key or part size is aborted on the
/// server (best effort) and a new upload begins; so does NoSuchUpload.
result<std::unique_ptr<object_writer>> open_upload(std::shared_ptr<client> s3,
                                                   const std::string& oid, int64_t size,
                                                   const std::string& key,
                                                   const std::optional<std::string>& resume,
                                                   const s3_store_options& options);

/// See s3_store::abort_stale_uploads. `key_is_ours` tells which keys belong
/// to the store (an oid in its layout).
result<size_t> abort_stale_uploads(
  client& s3, std::chrono::system_clock::time_point before, bool dry_run,
  const std::function<bool(const std::string& key)>& key_is_ours,
  const std::function<void(const std::string& key, const std::string& upload_id)>& visit);

} // namespace ferry::s3
