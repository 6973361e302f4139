#pragma once

// The `basic` transfer adapter: GETs (resumed with Range, or as parallel
// ranges, through store/http_download) and PUTs (plus `verify`) against the
// hrefs of batch actions.
// Shared by lfs_store and the single-action store.

#include "store/http/http_download.hpp"
#include "store/lfs/lfs_session.hpp"
#include "store/lfs/lfs_store.hpp"
#include "store/object_store.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace ferry::lfs {

/// Reads object `oid` of `size` bytes from `offset` through its download
/// action (see ferry::open_download); a 401 is answered once with
/// credentials from the session. Every response is checked against `size`:
/// a body that ends early fails with errc::unavailable, one that runs long
/// with errc::size_mismatch.
result<std::unique_ptr<object_reader>> open_download(std::shared_ptr<session> http,
                                                     const std::string& oid, int64_t size,
                                                     const lfs_action& download, int64_t offset,
                                                     const range_plan& plan);

/// Starts the PUT of object `oid` of `size` bytes to its upload action. The
/// writer's commit() checks size and SHA-256 before the last byte leaves,
/// then requires a 2xx, then a 2xx from `verify` when there is one, then
/// calls `stored`.
result<std::unique_ptr<object_writer>> open_upload(std::shared_ptr<session> http,
                                                   const std::string& oid, int64_t size,
                                                   const lfs_action& upload,
                                                   std::optional<lfs_action> verify,
                                                   std::function<void()> stored);

/// A writer for an object the server already has: it sends nothing, but
/// its commit() still checks that the bytes written are the object.
std::unique_ptr<object_writer> skipped_upload(const std::string& oid, int64_t size);

/// The action's headers as request headers.
void add_action_headers(http_request& request, const lfs_action& action);

} // namespace ferry::lfs
