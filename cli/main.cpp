#include "cli/commands.hpp"
#include "cli/docs.hpp"

#include "ferry/version.hpp"
#include "store/os/file_io.hpp"

#include <CLI/CLI.hpp>

#include <malloc.h>

#include <csignal>
#include <iostream>

namespace {

/// Adds an option whose value lands in `flags[name]` only when given, so
/// that unset flags do not override the environment or git config.
void add_setting_flag(CLI::App* cmd, ferry::cli::flag_map& flags, const std::string& name,
                      const std::string& help) {
  cmd->add_option_function<std::string>(
    "--" + name, [&flags, name](const std::string& value) { flags[name] = value; }, help);
}

} // namespace

int main(int argc, char** argv) {
  // A closed stdout must show up as a write error, not kill the agent.
  std::signal(SIGPIPE, SIG_IGN);
  // Buffers of 1 MiB and more (S3 parts, transfer buffers, RocksDB's
  // memtable blocks) get pages of their own, returned when freed. glibc's
  // default threshold rises to the largest block freed, after which 8 MiB
  // parts freed on the HTTP thread stayed in the heaps of several arenas:
  // 100 MiB and more of resident memory that nothing used.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);

  CLI::App app{"ferry: a verified, resumable Git LFS transfer engine.\n"
               "Run 'ferry install --store file:///path/to/store' in a repository, then use\n"
               "git lfs push / pull as usual. See 'ferry <command> --help'."};
  app.set_version_flag("--version", std::string{"ferry "} + ferry::version);
  // At most one command; with none, show the help (checked after parsing so
  // that an unknown command is reported as such).
  app.require_subcommand(0, 1);

  ferry::cli::flag_map flags;

  auto* agent = app.add_subcommand(
    "agent", "Serve git-lfs's custom transfer protocol on stdin/stdout (git-lfs runs this).");
  add_setting_flag(agent, flags, "store", "Store URL (overrides ferry.store / FERRY_STORE)");
  add_setting_flag(agent, flags, "journal", "Journal directory (default: <git-dir>/lfs/ferry)");
  add_setting_flag(agent, flags, "max-attempts", "Attempts per object before failing (1-100)");
  add_setting_flag(agent, flags, "log-level", "trace, debug, info, warn, error or off");
  add_setting_flag(agent, flags, "log-file", "Log file (default: <journal>/ferry.log)");

  std::string store_url;
  bool global = false;
  bool server_offered = false;
  auto* install = app.add_subcommand(
    "install", "Configure git-lfs in this repository (or --global) to move objects through ferry.");
  auto* store_option = install->add_option(
    "--store", store_url,
    "Where objects live: file:///absolute/path (a folder, created if missing), "
    "s3://bucket/prefix?endpoint=...&region=... (docs/s3.md), lfs+https://host/path or a git "
    "remote URL (an LFS server); ferry becomes the standalone agent");
  install
    ->add_flag("--server-offered", server_offered,
               "Instead of --store: register ferry as the 'ferry' transfer that LFS servers may "
               "pick; git-lfs keeps using the server, which hands ferry its actions")
    ->excludes(store_option);
  install->add_flag("--global", global,
                    "Write the user's global git config instead of the repository's");

  auto* uninstall = app.add_subcommand("uninstall", "Remove the git config that install wrote.");
  uninstall->add_flag("--global", global, "Remove it from the user's global git config");

  bool json = false;
  size_t limit = 20;
  auto* status = app.add_subcommand(
    "status", "Show transfers in flight, failures with their reasons, and recent history.");
  status->add_flag("--json", json, "Print the journal records as JSON");
  status->add_option("--limit", limit, "How many finished transfers to show (default 20)");
  add_setting_flag(status, flags, "journal", "Journal directory (default: <git-dir>/lfs/ferry)");

  std::string older_than = "24h";
  bool dry_run = false;
  auto* cleanup = app.add_subcommand(
    "cleanup", "Abort multipart uploads left in an S3 store that nothing will resume.");
  cleanup->add_option("--older-than", older_than,
                      "Only uploads started longer ago than this (default 24h; ms, s, m, h)");
  cleanup->add_flag("--dry-run", dry_run, "List them without aborting anything");
  add_setting_flag(cleanup, flags, "store", "Store URL (overrides ferry.store / FERRY_STORE)");

  ferry::cli::migrate_request migration;
  auto* migrate = app.add_subcommand(
    "migrate", "Copy every object of one store into another: verified, resumable, rate-limited.");
  migrate->add_option("--from", migration.from, "Source store URL")->required();
  migrate->add_option("--to", migration.to, "Destination store URL")->required();
  auto* from_repo = migrate->add_option(
    "--from-repo", migration.from_repo,
    "Take the oids from every LFS pointer reachable from any ref of this repository");
  migrate
    ->add_option("--inventory", migration.inventory_file,
                 "Take the oids from this file of 'oid size' lines")
    ->excludes(from_repo);
  migrate->add_option("--transfers", migration.transfers,
                      "Copies at once: 1 to 256, or 'auto' to adapt (default 8)");
  migrate->add_option("--tps", migration.tps,
                      "Requests per second, at most: each HTTP request, or each copy attempt "
                      "between stores without HTTP (default: no limit)");
  migrate->add_option("--bwlimit", migration.bwlimit,
                      "Bytes per second, at most, e.g. 50MiB (default: no limit)");
  migrate->add_option("--tps-total", migration.tps_total,
                      "Requests per second for the whole sharded migration, split over "
                      "--concurrent-shards (instead of --tps)");
  migrate->add_option("--bwlimit-total", migration.bwlimit_total,
                      "Bytes per second for the whole sharded migration, split over "
                      "--concurrent-shards (instead of --bwlimit)");
  migrate->add_option("--concurrent-shards", migration.concurrent_shards,
                      "Shards running at once, which share --tps-total and --bwlimit-total "
                      "(default: N of --shard I/N)");
  migrate->add_option("--rate-limiter", migration.rate_limiter,
                      "redis://host:port/key: hold --tps-total exactly for all shards in Redis "
                      "(falls back to the split with a warning when Redis is unreachable)");
  migrate->add_flag("--dry-run", migration.dry_run,
                    "Print what would be copied and the totals; change nothing");
  migrate->add_flag("--verify-existing", migration.verify_existing,
                    "Read back and hash objects the destination already has");
  migrate->add_flag("--retry-failed", migration.retry_failed,
                    "Try the objects that failed in an earlier run again");
  migrate->add_option("--report", migration.report, "Write a JSON report to this file");
  migrate->add_option("--report-dir", migration.report_dir,
                      "Write the JSON report into this directory as report-shard-I-of-N.json "
                      "(report.json without --shard), for 'ferry report merge'");
  migrate->add_option("--shard", migration.shard,
                      "Take share I of N of the oids (e.g. 2/4), one journal per share; 'auto' "
                      "takes it from FERRY_SHARD, JOB_COMPLETION_INDEX with FERRY_SHARD_COUNT "
                      "(Kubernetes Indexed Jobs) or SLURM_ARRAY_TASK_ID (Slurm arrays)");
  migrate->add_option("--journal", migration.journal,
                      "Journal directory (default: under ~/.local/state/ferry/migrations)");
  migrate->add_option("--metrics", migration.metrics,
                      "Serve Prometheus metrics at http://ADDR/metrics while it runs: "
                      "127.0.0.1:PORT, [::1]:PORT, localhost:PORT or unix:/path; port 0 picks "
                      "a free one, printed on stderr (docs/metrics.md)");
  migrate->add_flag("--metrics-allow-remote", migration.metrics_allow_remote,
                    "Allow --metrics on an address other machines can reach (e.g. 0.0.0.0:9100); "
                    "the metrics name hosts and store kinds");

  ferry::cli::check_request comparison;
  auto* check = app.add_subcommand(
    "check", "Compare two stores without changing either: missing, extra, size and content.");
  check->add_option("--from", comparison.from, "Source store URL")->required();
  check->add_option("--to", comparison.to, "Destination store URL")->required();
  auto* check_repo = check->add_option(
    "--from-repo", comparison.from_repo,
    "Take the source's oids from every LFS pointer reachable from any ref of this repository");
  check
    ->add_option("--inventory", comparison.inventory_file,
                 "Take the source's oids from this file of 'oid size' lines")
    ->excludes(check_repo);
  check->add_flag("--hash", comparison.hash,
                  "Also read both copies of every object and hash them against its oid");
  check->add_option("--checkers", comparison.checkers,
                    "Objects read and hashed at once with --hash, 1 to 64 (default 4)");
  check->add_option("--report", comparison.report, "Write a JSON report to this file");

  auto* daemon = app.add_subcommand(
    "daemon", "The per-user ferry daemon that serves the agents: start, status, stop.");
  daemon->require_subcommand(1);
  int ready_fd = -1;
  auto* daemon_run = daemon->add_subcommand("run", "Run the daemon in the foreground.");
  daemon_run->add_option("--ready-fd", ready_fd, "Report readiness on this descriptor")->group("");
  auto* daemon_start =
    daemon->add_subcommand("start", "Start the daemon unless it runs, and wait until it serves.");
  bool daemon_json = false;
  auto* daemon_status = daemon->add_subcommand(
    "status", "Show the running daemon: pid, build, uptime, clients, directory.");
  daemon_status->add_flag("--json", daemon_json, "Print the daemon's reply as JSON");
  auto* daemon_stop =
    daemon->add_subcommand("stop", "Ask the daemon to exit and wait until it has.");

  std::string metrics_from;
  auto* metrics = app.add_subcommand(
    "metrics", "Print the current metrics in the Prometheus text format (docs/metrics.md).");
  metrics->add_option("--from", metrics_from,
                      "Read them from a running 'ferry migrate --metrics ADDR' at ADDR "
                      "(127.0.0.1:PORT, [::1]:PORT, localhost:PORT or unix:/path) instead of "
                      "the user's daemon");

  std::string merge_dir;
  std::string merge_json;
  auto* report =
    app.add_subcommand("report", "Work with the JSON reports of ferry migrate (docs/migrate.md).");
  report->require_subcommand(1);
  auto* report_merge = report->add_subcommand(
    "merge", "Merge the shards' reports of one migration (ferry migrate --report-dir DIR): check "
             "that every shard of N is there, print one summary for the whole migration.");
  report_merge->add_option("dir", merge_dir, "The directory of report-shard-I-of-N.json files")
    ->required();
  report_merge->add_option("--json", merge_json, "Write the merged report as JSON to this file");

  // For the build: man pages and completions from the definitions above.
  std::string docs_dir;
  app.add_option("--write-docs", docs_dir)->group("");

  // Usage errors exit with 2, as every command's own checks do.
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (!docs_dir.empty())
    return ferry::cli::write_docs(app, docs_dir);
  if (app.get_subcommands().empty()) {
    std::cerr << app.help();
    return 2;
  }

  // Journals, logs, reports and scratch files are private, whatever the
  // user's umask. install and uninstall keep it: they only have git write
  // the user's config and make a store folder, which is shared on purpose.
  if (!install->parsed() && !uninstall->parsed())
    ferry::make_own_files_private();

  if (daemon_run->parsed())
    return ferry::cli::run_daemon_foreground(ready_fd);
  if (daemon_start->parsed())
    return ferry::cli::run_daemon_start();
  if (daemon_status->parsed())
    return ferry::cli::run_daemon_status(daemon_json);
  if (daemon_stop->parsed())
    return ferry::cli::run_daemon_stop();
  if (agent->parsed())
    return ferry::cli::run_agent_command(flags);
  if (install->parsed())
    return ferry::cli::run_install(store_url, server_offered, global);
  if (uninstall->parsed())
    return ferry::cli::run_uninstall(global);
  if (cleanup->parsed())
    return ferry::cli::run_cleanup(flags, older_than, dry_run);
  if (migrate->parsed())
    return ferry::cli::run_migrate(migration);
  if (check->parsed())
    return ferry::cli::run_check(comparison);
  if (report_merge->parsed())
    return ferry::cli::run_report_merge(merge_dir, merge_json);
  if (metrics->parsed())
    return ferry::cli::run_metrics(metrics_from);
  return ferry::cli::run_status(flags, json, limit);
}
