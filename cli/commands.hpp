#pragma once

#include "actors/http_engine.hpp"
#include "config/settings.hpp"
#include "store/open_store.hpp"

#include <filesystem>
#include <map>
#include <memory>
#include <string>

namespace ferry::cli {

/// Flags given on the command line, keyed as config::sources::flags expects.
using flag_map = std::map<std::string, std::string>;

/// `ferry agent`: serve git-lfs's custom transfer protocol on stdin/stdout.
int run_agent_command(const flag_map& flags);

/// `ferry install`: configure git-lfs to use ferry. With a store URL, ferry
/// becomes the standalone agent and keeps objects in that store; with
/// `server_offered`, ferry is registered as the custom transfer `ferry` that
/// LFS servers may pick (non-standalone mode, no store). `global` writes the
/// user's global git config instead of the repository's.
int run_install(const std::string& store_url, bool server_offered, bool global);

/// `ferry uninstall`: remove what install wrote.
int run_uninstall(bool global);

/// `ferry status`: in-flight transfers, failures and recent history.
int run_status(const flag_map& flags, bool json, size_t limit);

/// `ferry cleanup`: aborts the multipart uploads under the S3 store's prefix
/// that started more than `older_than` ago ("24h", "90m"); with `dry_run`
/// only lists them.
int run_cleanup(const flag_map& flags, const std::string& older_than, bool dry_run);

/// What opening the configured store needs, from the settings: `http` is
/// the engine network stores share, `cwd` where `git credential` runs.
store_context store_context_for(const config::settings& settings,
                                std::shared_ptr<http_engine> http, std::filesystem::path cwd);

} // namespace ferry::cli
