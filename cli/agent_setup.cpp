#include "cli/agent_setup.hpp"

#include "actors/coordinator.hpp"
#include "actors/logging.hpp"
#include "actors/policy/retry_policy.hpp"
#include "actors/policy/transfer_task.hpp"
#include "protocol/transfer_protocol.hpp"
#include "store/journal/journal_slots.hpp"
#include "store/open_store.hpp"
#include "store/os/child_process.hpp"

#include <random>
#include <set>
#include <system_error>

namespace ferry::cli {

result<std::shared_ptr<http_engine>> start_http_engine(const config::settings& settings,
                                                       http_engine::options options) {
  options.low_speed_time = settings.stall_timeout;
  options.max_cooldown = settings.max_retry_wait;
  options.on_rate_change = [](const std::string& text) { log()->info("{}", text); };
  try {
    return std::make_shared<http_engine>(options);
  } catch (const std::exception& e) {
    return status{errc::internal, std::string{"cannot start the HTTP engine: "} + e.what()};
  }
}

http_engine::options paced_http_options(const config::settings& settings) {
  http_engine::options options;
  // Each HTTP request to a host takes a token; the rate limiter paces
  // transfers only to stores that make no HTTP requests.
  options.requests_per_second = settings.max_requests_per_second;
  return options;
}

store_context store_context_for(const config::settings& settings, std::shared_ptr<http_engine> http,
                                std::filesystem::path cwd) {
  store_context context;
  context.http = std::move(http);
  context.lfs.max_retry_wait = settings.max_retry_wait;
  context.lfs.parallel_streams = settings.parallel_streams;
  context.lfs.parallel_threshold = settings.parallel_threshold;
  context.s3.max_retry_wait = settings.max_retry_wait;
  context.s3.parallel_streams = settings.parallel_streams;
  context.s3.parallel_threshold = settings.parallel_threshold;
  context.s3.multipart_threshold = settings.s3_multipart_threshold;
  context.s3.part_bytes = settings.s3_part_size;
  context.s3.upload_concurrency = settings.s3_upload_concurrency;
  context.proton_command = settings.proton_command;
  context.proton.bridge.max_retry_wait = settings.max_retry_wait;
  context.proton.bridge.processes = settings.proton_processes;
  context.proton.bridge.base_timeout = settings.proton_timeout;
  context.proton.bridge.min_bytes_per_second = settings.proton_min_rate;
  context.proton.bridge.common.data_credential_provider = settings.proton_data_credential_provider;
  context.proton.bridge.common.data_credential_host = settings.proton_data_credential_host;
  context.cwd = std::move(cwd);
  context.notice = [](const std::string& text) { log()->info("{}", text); };
  return context;
}

std::shared_ptr<event_file> open_events_file(const config::settings& settings) {
  if (settings.events_file.empty())
    return nullptr;
  auto opened = event_file::open(settings.events_file);
  if (opened)
    return *opened;
  log()->warn("{} (ferry.eventsFile); no events are written", opened.error().message());
  return nullptr;
}

agent_context process_agent_context(const flag_map& flags) {
  agent_context context;
  std::error_code ec;
  context.cwd = std::filesystem::current_path(ec);
  context.flags = flags;
  return context;
}

namespace {

/// git's environment for `context`: nullopt for this process's.
config::git_environment git_environment_of(const agent_context& context) {
  if (!context.environment)
    return std::nullopt;
  return environment_entries(*context.environment);
}

} // namespace

logging_options logging_of(const config::settings& settings) {
  logging_options logging;
  logging.level = settings.log_level;
  logging.file = settings.log_file;
  logging.format = parse_log_format(settings.log_format).value_or(log_format::text);
  return logging;
}

result<agent_settings> resolve_agent_settings(const agent_context& context) {
  auto environment = git_environment_of(context);
  auto repo = config::discover_repo(context.cwd, environment);
  std::filesystem::path lfs_dir = repo ? repo->lfs_dir : std::filesystem::path{};
  auto git = context.git_config ? result<std::map<std::string, std::string>>{*context.git_config}
                                : config::read_git_config(context.cwd, environment);
  if (!git)
    return git.error().with_context("cannot read git config");
  auto variables = context.environment ? config::read_environment(*context.environment)
                                       : config::read_environment();
  auto settings = config::resolve({*git, variables, context.flags}, lfs_dir);
  if (!settings)
    return settings.error();
  agent_settings resolved;
  resolved.settings = std::move(*settings);
  if (repo)
    resolved.repo = std::move(*repo);
  else
    resolved.repo_error = repo.error();
  return resolved;
}

std::variant<prepared_agent, agent_refusal>
prepare_agent(const agent_context& context, const agent_settings& resolved,
              std::shared_ptr<http_engine> http, std::function<void(const std::string&)> notice) {
  auto refuse = [](const std::string& reason, int code = protocol::code::unavailable) {
    return agent_refusal{"ferry: " + reason, code};
  };
  if (!resolved.repo)
    return refuse(resolved.repo_error.message());
  const auto& repo = *resolved.repo;
  const auto& settings = resolved.settings;
  // One HTTP engine for the whole agent (or daemon): LFS stores and server
  // actions share its connections and per-host caps.
  if (!http) {
    auto started = start_http_engine(settings, paced_http_options(settings));
    if (!started)
      return refuse(started.error().message());
    http = std::move(*started);
  }
  // Without a store, ferry serves only requests that carry an LFS server's
  // action (non-standalone mode); the coordinator explains the rest.
  store_context stores = store_context_for(settings, http, repo.root());
  stores.environment = context.environment;
  stores.credentials = context.credentials;
  stores.share_credentials = context.share_credentials;
  std::shared_ptr<object_store> store;
  if (!settings.store_url.empty()) {
    stores.proton.scratch_dir = repo.lfs_dir / "tmp" / "ferry-proton";
    auto opened = open_store(settings.store_url, stores);
    if (!opened)
      return refuse(opened.error().message());
    store = std::move(*opened);
  }
  journal_db::options journal_options;
  journal_options.history_limit = settings.history_limit;
  // git-lfs may run several agents for this repository at once; each has
  // a journal slot and a download directory of its own.
  auto journal = open_free_slot(settings.journal_dir, journal_options);
  if (!journal && journal.error().code() == errc::corrupt_record)
    return refuse(journal.error().message() + "; move the journal aside (mv " +
                  settings.journal_dir.string() + " " + settings.journal_dir.string() +
                  ".damaged) and run the command again: git-lfs asks for every object again, "
                  "so nothing is lost");
  if (!journal)
    return refuse(journal.error().message());
  // A store that needs the user (a Proton login) or cannot work as
  // configured (a bridge that is no bridge, an endpoint that is not S3)
  // says so at init, before any transfer is tried. A transient failure is
  // left to the transfers, which prepare the store again and retry.
  if (store) {
    if (auto ready = store->prepare(); !ready) {
      if (classify(ready.code()) != retry_class::transient)
        return refuse(ready.message(), protocol_code(ready.code()));
      log()->warn("{} (the transfers try again)", ready.message());
    }
  }

  prepared_agent prepared;
  auto& engine = prepared.options.config;
  engine.download_dir = slot_dir(repo.lfs_dir / "tmp" / "ferry", journal->number);
  if (auto active = journal->db->active(); active) {
    std::set<std::string> resumable;
    for (auto& record : *active)
      if (record.dir == direction::download)
        resumable.insert(record.oid);
    if (auto removed = prune_download_dir(engine.download_dir, resumable); removed > 0)
      log()->info("removed {} leftover file(s) from {}", removed, engine.download_dir.string());
  }
  engine.store = std::move(store);
  engine.http = std::move(http);
  engine.upload_roots = {repo.top_level, repo.common_dir, repo.lfs_dir};
  engine.max_attempts = settings.max_attempts;
  engine.max_retry_time = settings.max_retry_time;
  engine.backoff_base = settings.backoff_base;
  engine.backoff_max = settings.backoff_max;
  engine.lfs = stores.lfs;
  engine.max_requests_per_second = settings.max_requests_per_second;
  engine.max_bytes_per_second = static_cast<double>(settings.max_bytes_per_second);
  engine.seed = std::random_device{}();
  engine.notice = std::move(notice);
  engine.events = open_events_file(settings);
  prepared.options.journal = std::move(journal->db);
  prepared.description = repo.top_level.string() + " (" +
                         (engine.store ? "store " + engine.store->describe()
                                       : std::string{"no store: serving LFS server actions only"}) +
                         ", journal " + journal->dir.string() + ")";
  return prepared;
}

} // namespace ferry::cli
