#pragma once

// An agent's setup, the same in its own process and in the daemon: the
// repository, settings, store, journal slot and engine config, resolved
// from a given directory and environment (never the process's, in the
// daemon, which serves many repositories and never changes its own).

#include "actors/engine.hpp"
#include "actors/logging.hpp"
#include "cli/commands.hpp"
#include "config/git_config.hpp"
#include "config/settings.hpp"
#include "store/http/http_engine.hpp"
#include "store/open_store.hpp"

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>

namespace ferry::cli {

/// Where an agent runs.
struct agent_context {
  std::filesystem::path cwd;
  /// The agent's environment; nullopt: this process's.
  std::optional<std::map<std::string, std::string>> environment;
  flag_map flags;
  /// Where the store's `git credential` runs; empty: in `cwd` with
  /// `environment`.
  credential_runner credentials;
  /// Shares the store's credentials with other repositories (the daemon);
  /// empty: the store keeps its own.
  credential_sharing share_credentials;
  /// git config as read in `cwd` with `environment`, once someone read it
  /// (the agent reads it to decide on the daemon); nullopt: not read yet.
  std::optional<std::map<std::string, std::string>> git_config;
};

/// This process's directory, environment and `flags`.
agent_context process_agent_context(const flag_map& flags);

/// An agent's settings, and its repository (or why there is none: the
/// agent then refuses every request, once logging is set up).
struct agent_settings {
  config::settings settings;
  std::optional<config::repo_paths> repo;
  status repo_error = status::success();
};

/// errc::config_error (or git's failure) when the settings cannot be read.
result<agent_settings> resolve_agent_settings(const agent_context& context);

/// The log `settings` ask for: their file (the repository's ferry.log),
/// level and format; no trace.
logging_options logging_of(const config::settings& settings);

/// Why an agent cannot serve: git-lfs gets `reason` with `code` for every
/// request.
struct agent_refusal {
  std::string reason;
  int code = 0;
};

/// An agent ready to run: its input, writer and limiter are left to the
/// caller.
struct prepared_agent {
  agent_options options;
  /// For the log: the repository, the store and the journal slot.
  std::string description;
};

/// The repository, store, journal slot and engine config of an agent.
/// `http` is the engine network stores share (null: one is started for
/// this agent); `notice` gets the one-line notices for the user.
std::variant<prepared_agent, agent_refusal>
prepare_agent(const agent_context& context, const agent_settings& resolved,
              std::shared_ptr<http_engine> http, std::function<void(const std::string&)> notice);

} // namespace ferry::cli
