#pragma once

#include "store/http/git_credentials.hpp"
#include "store/http/http_engine.hpp"
#include "store/lfs/lfs_store.hpp"
#include "store/object_store.hpp"
#include "store/proton/proton_store.hpp"
#include "store/s3/s3_store.hpp"

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace ferry {

/// What stores need from their opener; folder stores use only create_folder.
/// Wraps a store's own credential source for `endpoint` so that others
/// share what it gives (the daemon's SESSION per store).
using credential_sharing = std::function<std::unique_ptr<credential_source>(
  const std::string& endpoint, std::unique_ptr<credential_source> own)>;

struct store_context {
  /// The engine network stores share; one is created on first need when null.
  std::shared_ptr<http_engine> http;
  /// LFS settings; `endpoint` is filled in from the URL.
  lfs_store_options lfs;
  /// S3 settings.
  s3_store_options s3;
  /// Proton settings; `bridge.command` is filled in from proton_command and
  /// an empty `scratch_dir` means <temp>/ferry-proton.
  proton_store_options proton;
  /// The bridge's command line as configured (ferry.proton.command).
  std::string proton_command;
  /// Where `git credential` runs (the repository), for LFS and S3 stores.
  std::filesystem::path cwd;
  /// The agent's environment when it is not this process's (in the
  /// daemon): `git credential` runs in it and S3 keys are looked up in it.
  std::optional<std::map<std::string, std::string>> environment;
  /// Where `git credential` runs when not here (the daemon asks the agent);
  /// empty: in `cwd` with `environment`.
  credential_runner credentials;
  /// Shares what an LFS store's credentials give with others using its
  /// endpoint; empty: the store keeps its own.
  credential_sharing share_credentials;
  /// False for commands that must change nothing (a dry run, ferry check): a
  /// folder store that does not exist is opened as an empty store instead of
  /// being created.
  bool create_folder = true;
  /// Told where an S3 store's keys came from (never the keys), for the log.
  std::function<void(const std::string&)> notice;
};

/// Opens the store a URL names:
/// - `file:///absolute/path` or a bare absolute path: a folder store;
/// - `lfs+https://host/path` or `lfs+http://…`: the Git LFS server whose
///   endpoint (lfs.url) that is;
/// - `https://host/owner/repo(.git)` or `http://…`: a git remote URL; the LFS
///   endpoint is derived as git-lfs does (`<remote>.git/info/lfs`);
/// - `s3://bucket/prefix?endpoint=...&region=...`: an S3 bucket
///   (docs/s3.md); its keys are looked up now (s3::find_credentials), so
///   missing keys fail here with a message saying where to put them;
/// - `proton://<storageBase>`: Proton Drive through the proton-drive-cli
///   bridge (docs/proton.md); without ferry.proton.command this fails with
///   a message saying how to set it.
/// Opening contacts no server. Unknown schemes and relative paths give
/// errc::config_error with a message that lists what is supported.
result<std::shared_ptr<object_store>> open_store(const std::string& url,
                                                 const store_context& context = {});

} // namespace ferry
