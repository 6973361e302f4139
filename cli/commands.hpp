#pragma once

#include "config/settings.hpp"
#include "protocol/daemon_messages.hpp"
#include "store/http/http_engine.hpp"
#include "store/open_store.hpp"
#include "store/os/event_file.hpp"
#include "store/os/file_io.hpp"

#include <chrono>
#include <filesystem>
#include <functional>
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

/// `ferry daemon run`: the per-user daemon in the foreground (for systemd,
/// and what `start` runs detached). With `ready_fd` >= 0, "ready\n" or
/// "error: <why>\n" is written there once it serves or cannot.
int run_daemon_foreground(int ready_fd);

/// `ferry daemon start`: connects to the user's daemon, or starts one
/// (exactly one, however many starts run at once) and waits until it serves.
int run_daemon_start();

/// `ferry daemon status`: the running daemon's pid, build, uptime, clients
/// and directory; exit code 1 when none runs.
int run_daemon_status(bool json);

/// `ferry daemon stop`: asks the daemon to exit and waits until it has.
int run_daemon_stop();

/// A connection to the user's daemon that said hello, and the daemon's
/// reply (an error in reply.error when it refused the hello).
struct daemon_connection {
  fd_guard fd;
  protocol::daemon_reply reply;
};

/// Connects to the daemon in `dir` with a hello of `kind`. With `start`,
/// a daemon is started when none runs (as `ferry daemon start`: exactly
/// one, however many clients start at once). errc::not_found or
/// errc::unavailable when no daemon serves `dir`.
result<daemon_connection> connect_daemon(const std::filesystem::path& dir,
                                         protocol::daemon_request kind, bool start);

/// Reads one line of at most `max_line` bytes from the non-blocking `fd`
/// until `deadline`; `what` names the other end in errors.
result<std::string> read_daemon_line(int fd, std::chrono::steady_clock::time_point deadline,
                                     const std::string& what,
                                     size_t max_line = protocol::daemon_max_line);

/// `ferry metrics`: prints the current metrics in the Prometheus text
/// format, from the endpoint at `from` (a metrics_address), or with an empty
/// `from` from the user's running daemon. Exit code 1 when it cannot get
/// them, 2 for a bad address.
int run_metrics(const std::string& from);

/// The running daemon's metrics; errc::not_found or errc::unavailable when
/// none runs.
result<std::string> daemon_metrics();

/// `ferry status`: in-flight transfers, failures and recent history.
int run_status(const flag_map& flags, bool json, size_t limit);

/// `ferry cleanup`: aborts the multipart uploads under the S3 store's prefix
/// that started more than `older_than` ago ("24h", "90m"); with `dry_run`
/// only lists them.
int run_cleanup(const flag_map& flags, const std::string& older_than, bool dry_run);

/// `ferry migrate`'s command line (docs/migrate.md).
struct migrate_request {
  /// Store URLs, as for `ferry install --store`.
  std::string from;
  std::string to;
  /// Where the oids come from when the source cannot list them: every LFS
  /// pointer in a repository's history, or a file of `oid size` lines.
  std::string from_repo;
  std::string inventory_file;
  /// A number from 1 to 256, or "auto".
  std::string transfers = "8";
  /// Requests per second and bytes per second ("50MiB"); 0 / empty: no limit.
  double tps = 0;
  std::string bwlimit;
  /// The whole migration's requests and bytes per second, split over
  /// `concurrent_shards` (default: the shard count); 0 / empty: none.
  double tps_total = 0;
  std::string bwlimit_total;
  std::string concurrent_shards;
  /// redis://host:port/key: --tps-total held exactly for every shard there.
  std::string rate_limiter;
  bool dry_run = false;
  bool verify_existing = false;
  bool retry_failed = false;
  /// Where to write the JSON report.
  std::string report;
  /// A directory for the report, named after the shard
  /// (report-shard-I-of-N.json, or report.json for the whole source).
  std::string report_dir;
  /// "I/N": this machine's share of the oids; "auto": from the
  /// orchestrator's environment (shard_choice::from_environment).
  std::string shard;
  /// The migration's journal directory (default: one per source,
  /// destination and shard under ~/.local/state/ferry/migrations).
  std::string journal;
  /// Where to serve Prometheus metrics while it runs (metrics_address);
  /// empty: nowhere.
  std::string metrics;
  /// Serve them on an address other machines can reach too.
  bool metrics_allow_remote = false;
};

/// The exit codes of `ferry migrate`, `ferry check` and `ferry report
/// merge` besides 0: scripts and orchestrators act on them, so they stay
/// as documented (docs/migrate.md, "Exit codes").
/// Could not finish: the same command again continues.
constexpr int exit_incomplete = 1;
/// A usage or configuration error: running it again cannot help.
constexpr int exit_usage = 2;
/// Finished, with failed or corrupt objects (check: the stores differ).
constexpr int exit_with_failures = 3;

/// The exit code for a run that stopped at `problem`: a configuration error
/// is the user's to fix, anything else may pass when run again.
inline int exit_code_of(const status& problem) {
  return problem.code() == errc::config_error ? exit_usage : exit_incomplete;
}

/// `ferry migrate`: copies every object of one store into another,
/// verified, resumable. Exit codes: 0 everything is at the destination,
/// 1 the migration could not finish (run it again to continue), 2 usage,
/// 3 completed with failures (see the summary or --report).
int run_migrate(const migrate_request& request);

/// `ferry report merge DIR`: merges the shards' reports in `dir` (written
/// by `ferry migrate --report-dir`), prints one summary and, with a
/// non-empty `json_file`, writes the merged report there. Exit codes: 0
/// every shard reported complete, 1 a shard is missing or incomplete, 2
/// reports that cannot be merged, 3 completed with failures.
int run_report_merge(const std::string& dir, const std::string& json_file);

/// `ferry check`'s command line (docs/migrate.md).
struct check_request {
  /// Store URLs, as for `ferry install --store`.
  std::string from;
  std::string to;
  /// As for migrate: where the oids come from when the source cannot list.
  std::string from_repo;
  std::string inventory_file;
  /// Read and hash both copies of every object present on both sides.
  bool hash = false;
  /// Objects hashed at once, 1 to 64.
  int checkers = 4;
  /// Where to write the JSON report.
  std::string report;
};

/// `ferry check`: compares two stores without changing either. Exit codes:
/// 0 they match, 1 the check could not finish, 2 usage, 3 they differ.
int run_check(const check_request& request);

/// Where a command takes the source's oids from: its own listing, or, when
/// one of these is set, a repository's LFS pointers or an inventory file.
struct oid_origin {
  std::string from_repo;
  std::string inventory_file;
};

/// Streams the objects `origin` names to `take` in batches of 1000, keeping
/// those `takes` accepts. A source that cannot list and has no other origin
/// is a config_error saying how to name its objects.
status list_objects(object_store& source, const oid_origin& origin,
                    const std::function<bool(const std::string& oid)>& takes,
                    const std::function<status(const std::vector<object_info>&)>& take);

/// Settings (retries, timeouts, store options) from git config and the
/// environment, as for the agent, for commands that use no repository's
/// journal (migrate, check).
result<config::settings> settings_outside_repository();

/// Opens the store `url` names for the option `--<role>` ("from", "to"),
/// and checks that it can be used (object_store::prepare). A source folder
/// must exist: opening it never creates it.
result<std::shared_ptr<object_store>> open_named_store(const std::string& url, const char* role,
                                                       const store_context& context);

/// The HTTP engine network stores share, set up from the settings (with
/// the connection caps of `options`); the error says why it could not start.
result<std::shared_ptr<http_engine>> start_http_engine(const config::settings& settings,
                                                       http_engine::options options = {});

/// HTTP engine options that pace each request to a host at the agent's
/// ferry.maxRequestsPerSecond.
http_engine::options paced_http_options(const config::settings& settings);

/// What opening the configured store needs, from the settings: `http` is
/// the engine network stores share, `cwd` where `git credential` runs.
store_context store_context_for(const config::settings& settings, std::shared_ptr<http_engine> http,
                                std::filesystem::path cwd);

/// The events file the settings name (ferry.eventsFile), opened; null when
/// none is set, or when it cannot be opened (a warning in the log says why:
/// transfers go on without it).
std::shared_ptr<event_file> open_events_file(const config::settings& settings);

} // namespace ferry::cli
