#include "cli/commands.hpp"

#include "actors/coordinator.hpp"
#include "actors/engine.hpp"
#include "actors/logging.hpp"
#include "actors/policy/retry_policy.hpp"
#include "actors/policy/transfer_task.hpp"
#include "config/git_config.hpp"
#include "config/settings.hpp"
#include "protocol/line_splitter.hpp"
#include "protocol/transfer_protocol.hpp"
#include "store/http/http_engine.hpp"
#include "store/journal/journal_slots.hpp"
#include "store/open_store.hpp"
#include "store/os/process_info.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <random>
#include <set>
#include <unistd.h>

namespace ferry::cli {

namespace {

void write_line(const std::string& line) {
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fputc('\n', stdout);
  if (std::fflush(stdout) != 0)
    log()->error("cannot write to git-lfs (stdout): {}", std::strerror(errno));
}

/// When the agent cannot start (bad configuration, journal in use, store
/// unreachable), it still speaks the protocol so git-lfs shows the reason:
/// init gets the error, and so does every transfer, until terminate.
int refuse_all(const std::string& reason, int code = protocol::code::unavailable) {
  log()->error("{}", reason);
  protocol::line_splitter splitter{1 << 20};
  auto answer = [&](const protocol::line_splitter::line& line) {
    if (line.too_long)
      return write_line(protocol::encode_error(protocol::code::too_large, reason)), true;
    auto decoded = protocol::decode_request(line.text);
    if (auto* error = std::get_if<protocol::decode_error>(&decoded))
      return write_line(protocol::encode_decode_error(*error)), true;
    auto& request = std::get<protocol::request>(decoded);
    if (std::holds_alternative<protocol::terminate_request>(request))
      return false;
    if (auto* transfer = std::get_if<protocol::transfer_request>(&request))
      write_line(protocol::encode_complete_error(transfer->oid, code, reason));
    else
      write_line(protocol::encode_error(code, reason));
    return true;
  };
  char buffer[64 << 10];
  for (;;) {
    auto n = ::read(STDIN_FILENO, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR)
      continue;
    auto lines = n > 0 ? splitter.feed({buffer, static_cast<size_t>(n)}) : splitter.finish();
    for (auto& line : lines)
      if (!answer(line))
        return 1;
    if (n <= 0)
      return 1;
  }
}

/// GIT_TRACE as the user gave it to git. git-lfs removes GIT_TRACE from the
/// environment of every process it starts (so git's trace never mixes into
/// output it parses), this agent included; without one of its own, the agent
/// reads it from the git-lfs that started it (directly or through `sh -c`).
std::optional<std::string> git_trace_setting() {
  if (const char* own = std::getenv("GIT_TRACE"))
    return std::string{own};
  pid_t pid = ::getppid();
  for (int level = 0; level < 3 && pid > 1; ++level, pid = parent_of(pid))
    if (executable_of(pid).filename() == "git-lfs")
      return environment_of(pid, "GIT_TRACE");
  return std::nullopt;
}

/// One line for the user on stderr, whatever the log level. (git-lfs
/// 3.3.0 passes its agent's stderr to its trace, so under git-lfs these
/// lines show with GIT_TRACE=1; each failed object's own error names the
/// host and the reason too.)
void write_notice(const std::string& text) {
  auto line = text + "\n";
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

} // namespace

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

int run_agent_command(const flag_map& flags) {
  auto repo = config::discover_repo();
  std::filesystem::path lfs_dir = repo ? repo->lfs_dir : std::filesystem::path{};
  auto git = config::read_git_config();
  if (!git)
    return refuse_all("ferry: cannot read git config: " + git.error().message());
  auto settings = config::resolve({*git, config::read_environment(), flags}, lfs_dir);
  if (!settings)
    return refuse_all("ferry: " + settings.error().message());
  logging_options logging;
  logging.level = settings->log_level;
  logging.file = settings->log_file;
  logging.format = parse_log_format(settings->log_format).value_or(log_format::text);
  auto trace = git_trace_setting();
  logging.trace = parse_git_trace(trace ? trace->c_str() : nullptr);
  if (auto problem = configure_logging(logging); !problem.empty())
    log()->warn("{}", problem);
  if (!repo)
    return refuse_all("ferry: " + repo.error().message());
  // One HTTP engine for the whole agent: LFS stores and server actions share
  // its connections and per-host caps.
  http_engine::options http_options;
  // Each HTTP request to a host takes a token; the rate limiter paces
  // transfers only to stores that make no HTTP requests.
  http_options.requests_per_second = settings->max_requests_per_second;
  auto started = start_http_engine(*settings, http_options);
  if (!started)
    return refuse_all("ferry: " + started.error().message());
  auto http = std::move(*started);
  // Without a store, ferry serves only requests that carry an LFS server's
  // action (non-standalone mode); the coordinator explains the rest.
  store_context context =
    store_context_for(*settings, http, repo->top_level.empty() ? repo->git_dir : repo->top_level);
  std::shared_ptr<object_store> store;
  if (!settings->store_url.empty()) {
    context.proton.scratch_dir = repo->lfs_dir / "tmp" / "ferry-proton";
    auto opened = open_store(settings->store_url, context);
    if (!opened)
      return refuse_all("ferry: " + opened.error().message());
    store = std::move(*opened);
  }
  journal_db::options journal_options;
  journal_options.history_limit = settings->history_limit;
  // git-lfs may run several agents for this repository at once; each has
  // a journal slot and a download directory of its own.
  auto journal = open_free_slot(settings->journal_dir, journal_options);
  if (!journal && journal.error().code() == errc::corrupt_record)
    return refuse_all("ferry: " + journal.error().message() + "; move the journal aside (mv " +
                      settings->journal_dir.string() + " " + settings->journal_dir.string() +
                      ".damaged) and run the command again: git-lfs asks for every object again, "
                      "so nothing is lost");
  if (!journal)
    return refuse_all("ferry: " + journal.error().message());
  // A store that needs the user (a Proton login) or cannot work as
  // configured (a bridge that is no bridge, an endpoint that is not S3)
  // says so at init, before any transfer is tried. A transient failure is
  // left to the transfers, which prepare the store again and retry.
  if (store) {
    if (auto ready = store->prepare(); !ready) {
      if (classify(ready.code()) != retry_class::transient)
        return refuse_all("ferry: " + ready.message(), protocol_code(ready.code()));
      log()->warn("{} (the transfers try again)", ready.message());
    }
  }

  agent_options options;
  auto& engine = options.config;
  engine.download_dir = slot_dir(repo->lfs_dir / "tmp" / "ferry", journal->number);
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
  engine.upload_roots = {repo->top_level, repo->common_dir, repo->lfs_dir};
  engine.max_attempts = settings->max_attempts;
  engine.max_retry_time = settings->max_retry_time;
  engine.backoff_base = settings->backoff_base;
  engine.backoff_max = settings->backoff_max;
  engine.lfs = context.lfs;
  engine.max_requests_per_second = settings->max_requests_per_second;
  engine.max_bytes_per_second = static_cast<double>(settings->max_bytes_per_second);
  engine.seed = std::random_device{}();
  engine.notice = write_notice;
  engine.events = open_events_file(*settings);
  options.journal = std::move(journal->db);
  options.input_fd = STDIN_FILENO;
  options.write = write_line;
  log()->info("agent started in {} ({}, journal {})", repo->top_level.string(),
              engine.store ? "store " + engine.store->describe()
                           : std::string{"no store: serving LFS server actions only"},
              journal->dir.string());
  return run_agent(std::move(options));
}

} // namespace ferry::cli
