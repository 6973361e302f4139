#pragma once

#include "actors/http_engine.hpp"
#include "store/lfs_store.hpp"
#include "store/object_store.hpp"

#include <filesystem>
#include <memory>
#include <string>

namespace ferry {

/// What network stores need from their opener; folder stores ignore it.
struct store_context {
  /// The engine network stores share; one is created on first need when null.
  std::shared_ptr<http_engine> http;
  /// LFS settings; `endpoint` is filled in from the URL.
  lfs_store_options lfs;
  /// Where `git credential` runs (the repository), for LFS stores.
  std::filesystem::path cwd;
};

/// Opens the store a URL names:
/// - `file:///absolute/path` or a bare absolute path: a folder store;
/// - `lfs+https://host/path` or `lfs+http://…`: the Git LFS server whose
///   endpoint (lfs.url) that is;
/// - `https://host/owner/repo(.git)` or `http://…`: a git remote URL; the LFS
///   endpoint is derived as git-lfs does (`<remote>.git/info/lfs`).
/// Opening contacts no server. Unknown schemes and relative paths give
/// errc::config_error with a message that lists what is supported.
result<std::shared_ptr<object_store>> open_store(const std::string& url,
                                                 const store_context& context = {});

} // namespace ferry
