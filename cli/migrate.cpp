#include "cli/commands.hpp"

#include "actors/logging.hpp"
#include "actors/migrator.hpp"
#include "actors/policy/migration_plan.hpp"
#include "actors/policy/migration_shard.hpp"
#include "actors/policy/rate_budget.hpp"
#include "actors/policy/report_merge.hpp"
#include "actors/shared_rate_limiter.hpp"
#include "config/git_config.hpp"
#include "ferry/version.hpp"
#include "store/http/redis_permits.hpp"
#include "store/journal/rocksdb_support.hpp"
#include "store/os/file_io.hpp"
#include "store/os/metrics_endpoint.hpp"
#include "store/os/sha256.hpp"
#include "store/presence_check.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <mutex>
#include <optional>
#include <random>
#include <unistd.h>

namespace ferry::cli {

namespace {

namespace fs = std::filesystem;

/// Opens one of a migration's databases with `open`. One RocksDB finds
/// damaged is moved aside and a new one created in its place: every run
/// lists the source and asks the destination about every object again, so
/// a new database loses only resume points and which objects had failed.
template <class Open>
auto open_or_set_aside(const fs::path& dir, Open open) -> decltype(open()) {
  auto db = open();
  if (db || db.error().code() != errc::corrupt_record)
    return db;
  auto aside = set_aside_damaged(dir);
  if (!aside)
    return status{errc::corrupt_record, db.error().message() + "; " + aside.error().message()};
  std::cerr << "ferry migrate: " << db.error().message() << "\n"
            << "ferry migrate: moved the damaged database to " << aside->string()
            << " and starting a new one; this run checks every object at the destination "
               "again, so nothing is lost\n";
  return open();
}

/// A walk of the destination's listing stands in for asking about each
/// object while it costs less: one listing request is taken to cost as much
/// as this many single questions.
constexpr int64_t listing_request_cost = 10;

int usage_error(const std::string& message) {
  std::cerr << "ferry migrate: " << message << "\n";
  return exit_usage;
}

/// $XDG_STATE_HOME/ferry/migrations, or ~/.local/state/ferry/migrations.
fs::path migrations_dir() {
  if (const char* state = std::getenv("XDG_STATE_HOME"); state && *state == '/')
    return fs::path{state} / "ferry" / "migrations";
  const char* home = std::getenv("HOME");
  return fs::path{home && *home ? home : "/tmp"} / ".local" / "state" / "ferry" / "migrations";
}

/// This shard's share of what the source holds, in batches.
status list_source(const migrate_request& request, object_store& source,
                   const migration_shard& shard,
                   const std::function<status(const std::vector<object_info>&)>& take) {
  return list_objects(
    source, {request.from_repo, request.inventory_file},
    [&](const std::string& oid) { return shard.takes(oid); }, take);
}

/// Writes the report where --report and --report-dir say; a report that
/// cannot be written is a warning (the summary on stdout says the same).
void write_reports(const migrate_request& request, const migration_shard& shard,
                   const nlohmann::json& report) {
  auto text = report.dump(2) + "\n";
  if (!request.report.empty()) {
    std::ofstream out{request.report};
    out << text;
    if (!out)
      std::cerr << "ferry migrate: cannot write the report to " << request.report << "\n";
  }
  if (!request.report_dir.empty()) {
    // Read by `ferry report merge`, perhaps while shards still run: whole or not at all.
    std::error_code error;
    fs::create_directories(request.report_dir, error);
    auto file = fs::path{request.report_dir} / shard_report_name(shard);
    if (auto written = write_file_atomically(file, text); !written)
      std::cerr << "ferry migrate: cannot write the report: " << written.message() << "\n";
  }
}

/// --dry-run: lists the source, asks the destination, prints what would be
/// copied and the totals; writes nothing anywhere.
int dry_run(const migrate_request& request, object_store& source, object_store& destination,
            const migration_shard& shard) {
  migration_summary summary;
  summary.source = source.describe();
  summary.destination = destination.describe();
  summary.dry_run = true;
  summary.shard = shard;
  auto listed = list_source(request, source, shard, [&](const std::vector<object_info>& batch) {
    constexpr size_t per_page = migration_plan::page_objects;
    for (size_t start = 0; start < batch.size(); start += per_page) {
      auto end = std::min(batch.size(), start + per_page);
      std::vector<object_info> page(batch.begin() + static_cast<std::ptrdiff_t>(start),
                                    batch.begin() + static_cast<std::ptrdiff_t>(end));
      auto answers = ask_sizes(destination, page);
      size_t unanswered = 0;
      for (size_t i = 0; i < page.size(); ++i) {
        auto& held = answers.sizes[i];
        if (!held && unanswered++ == 0)
          std::cerr << "ferry migrate: cannot ask " << destination.describe() << " about "
                    << page[i].oid << ": " << held.error().message() << "\n";
        bool there = answers.holds(i, page[i].size);
        auto& count = there ? summary.totals.present : summary.totals.pending;
        count.objects += 1;
        count.bytes += page[i].size;
        if (!there)
          std::cout << "would copy " << page[i].oid << " " << page[i].size << "\n";
      }
      if (unanswered > 1)
        std::cerr << "ferry migrate: cannot ask " << destination.describe() << " about "
                  << unanswered - 1 << " more of these " << page.size() << " objects either\n";
    }
    return status::success();
  });
  if (!listed)
    return std::cerr << "ferry migrate: " << listed.to_string() << "\n", exit_code_of(listed);
  std::cout << summary_text(summary);
  write_reports(request, shard, report_json(summary));
  return 0;
}

/// Shows progress on stderr: rewritten in place on a terminal, as log
/// lines otherwise. Remembers the last numbers for the summary.
class progress_display {
public:
  explicit progress_display(bool terminal) : terminal_(terminal) {}

  void show(const migration_progress& progress) {
    std::lock_guard lock{mutex_};
    last_ = progress;
    auto line = progress_line(progress);
    if (terminal_)
      std::fprintf(stderr, "\r%s\x1b[K", line.c_str());
    else
      std::fprintf(stderr, "ferry migrate: %s\n", line.c_str());
    std::fflush(stderr);
  }

  /// A line of its own for `text`: on a terminal, it replaces the progress
  /// line, which the next update draws again below it.
  void notice(const std::string& text) {
    std::lock_guard lock{mutex_};
    if (terminal_)
      std::fprintf(stderr, "\r%s\x1b[K\n", text.c_str());
    else
      std::fprintf(stderr, "%s\n", text.c_str());
    std::fflush(stderr);
  }

  /// Ends the line a terminal shows; returns the last numbers shown.
  migration_progress finish() {
    std::lock_guard lock{mutex_};
    if (terminal_ && last_.done_objects + last_.in_flight > 0)
      std::fputc('\n', stderr);
    return last_;
  }

private:
  bool terminal_;
  std::mutex mutex_;
  migration_progress last_;
};

/// Bytes of the files under `dir`, for ferry_journal_size_bytes: RocksDB's
/// live files and logs as the disk holds them.
int64_t directory_bytes(const fs::path& dir) {
  int64_t total = 0;
  std::error_code error;
  for (fs::recursive_directory_iterator i{dir, error}, end; !error && i != end;
       i.increment(error)) {
    std::error_code size_error;
    if (i->is_regular_file(size_error)) {
      auto size = i->file_size(size_error);
      if (!size_error)
        total += static_cast<int64_t>(size);
    }
  }
  return total;
}

} // namespace

int run_migrate(const migrate_request& request) {
  if (request.from.empty() || request.to.empty())
    return usage_error("say what to copy: --from SRC --to DST (store URLs, as for ferry install)");
  if (!request.from_repo.empty() && !request.inventory_file.empty())
    return usage_error("give --from-repo or --inventory, not both");
  auto shard = migration_shard::parse(request.shard);
  // --shard auto: an orchestrator's array task says which shard this is.
  std::string shard_origin;
  if (request.shard == "auto") {
    auto chosen = shard_choice::from_environment([](const std::string& name) {
      const char* value = std::getenv(name.c_str());
      return value ? std::optional<std::string>{value} : std::nullopt;
    });
    if (!chosen)
      return usage_error(chosen.error().message());
    shard = chosen->shard;
    shard_origin = chosen->origin;
    std::cerr << "ferry migrate: shard " << shard->index + 1 << "/" << shard->count << " from "
              << shard_origin << "\n";
  }
  if (!shard)
    return usage_error("--shard '" + request.shard +
                       "' is not I/N with 1 <= I <= N <= 4096 (e.g. --shard 2/4) or 'auto'");
  // Slow start: a limit set by round trips to a distant server is reached
  // within a few windows.
  auto concurrency = concurrency_control::adaptive(4, 64, concurrency_control::growth::slow_start);
  if (request.transfers != "auto") {
    auto count = request.transfers.find_first_not_of("0123456789") == std::string::npos &&
                     !request.transfers.empty() && request.transfers.size() <= 3
                   ? std::stoi(request.transfers)
                   : 0;
    if (count < 1 || count > 256)
      return usage_error("--transfers '" + request.transfers +
                         "' is not a number from 1 to 256 or 'auto'");
    concurrency = concurrency_control::fixed(count);
  }
  int64_t bytes_per_second = 0;
  if (!request.bwlimit.empty()) {
    auto parsed = config::parse_size(request.bwlimit);
    if (!parsed || *parsed <= 0)
      return usage_error("--bwlimit '" + request.bwlimit +
                         "' is not a size per second such as 50MiB");
    bytes_per_second = *parsed;
  }
  if (request.tps < 0)
    return usage_error("--tps must not be negative");
  int64_t bytes_total = 0;
  if (!request.bwlimit_total.empty()) {
    auto parsed = config::parse_size(request.bwlimit_total);
    if (!parsed || *parsed <= 0)
      return usage_error("--bwlimit-total '" + request.bwlimit_total +
                         "' is not a size per second such as 200MiB");
    bytes_total = *parsed;
  }
  rate_budget_request budget;
  budget.tps = request.tps;
  budget.bytes_per_second = bytes_per_second;
  budget.tps_total = request.tps_total;
  budget.bytes_total = bytes_total;
  budget.concurrent_shards = request.concurrent_shards;
  budget.shard_count = shard->count;
  auto rates = share_rate_budget(budget);
  if (!rates)
    return usage_error(rates.error().message());
  redis_address shared_limit;
  if (!request.rate_limiter.empty()) {
    if (!(request.tps_total > 0))
      return usage_error("--rate-limiter holds --tps-total for all shards; give --tps-total");
    auto parsed = redis_address::parse(request.rate_limiter);
    if (!parsed)
      return usage_error(parsed.error().message());
    shared_limit = *parsed;
  }
  std::optional<metrics_address> metrics_at;
  if (!request.metrics.empty()) {
    auto parsed = metrics_address::parse(request.metrics);
    if (!parsed)
      return usage_error("--metrics: " + parsed.error().message());
    // Refused before anything is created, as a usage error.
    if (auto allowed = parsed->permitted(request.metrics_allow_remote); !allowed)
      return usage_error("--metrics: " + allowed.message());
    metrics_at = *parsed;
  }

  auto settings = settings_outside_repository();
  if (!settings)
    return usage_error(settings.error().message());

  bool terminal = ::isatty(STDERR_FILENO) == 1;
  auto display = std::make_shared<progress_display>(terminal);
  // --tps and --tps-total count HTTP requests, each taking a token of its
  // host here; with --rate-limiter each also takes a permit from Redis.
  auto http_options = http_engine::options::for_transfers(concurrency.ceiling());
  http_options.requests_per_second = rates->requests_per_second;
  if (!shared_limit.host.empty())
    http_options.permits = std::make_shared<redis_permits>(
      shared_limit, request.tps_total, shared_limit_timeout, [display](const std::string& text) {
        auto line = "ferry migrate: " + text;
        log()->info("notice: {}", line);
        display->notice(line);
      });
  auto engine_started = start_http_engine(*settings, http_options);
  if (!engine_started)
    return std::cerr << "ferry migrate: " << engine_started.error().message() << "\n",
           exit_incomplete;
  auto http = std::move(*engine_started);
  auto context = store_context_for(*settings, http, fs::current_path());
  // A dry run changes nothing, not even by creating an empty destination folder.
  context.create_folder = !request.dry_run;
  auto source = open_named_store(request.from, "from", context);
  if (!source)
    return std::cerr << "ferry migrate: " << source.error().message() << "\n", exit_incomplete;
  auto destination = open_named_store(request.to, "to", context);
  if (!destination)
    return std::cerr << "ferry migrate: " << destination.error().message() << "\n", exit_incomplete;
  if ((*source)->describe() == (*destination)->describe())
    return usage_error("--from and --to are the same store (" + (*source)->describe() + ")");

  if (request.dry_run)
    return dry_run(request, **source, **destination, *shard);

  auto identity = migration_identity((*source)->describe(), (*destination)->describe(), *shard);
  fs::path dir = request.journal.empty()
                   ? migrations_dir() / sha256::of(identity.data(), identity.size()).substr(0, 16)
                   : fs::path{request.journal};
  // Shards of one count cover every object once; a journal of another count
  // would resume a split this run is not part of. (Without --journal, each
  // shard of each count has a directory of its own.)
  if (auto held = migration_inventory::identity_in(dir / "inventory"); held && *held != identity) {
    auto other = shard_in_identity(*held, (*source)->describe(), (*destination)->describe());
    if (other && other->count != shard->count)
      return usage_error(
        "the journal " + dir.string() + " holds shard " + std::to_string(other->index + 1) +
        " of " + std::to_string(other->count) + " of this migration, and this run is shard " +
        std::to_string(shard->index + 1) + " of " + std::to_string(shard->count) +
        ". A journal keeps the shard count it started with: run with " +
        std::to_string(other->count) + " shards, or start over with " +
        std::to_string(shard->count) + " by giving each shard a new --journal (or deleting " +
        dir.string() +
        "); the destination keeps what was copied, and no object it holds is sent again");
  }
  std::error_code error;
  fs::create_directories(dir, error);
  if (error)
    return std::cerr << "ferry migrate: cannot create " << dir << ": " << error.message() << "\n",
           exit_incomplete;
  logging_options logging;
  logging.level = settings->log_level;
  logging.file = dir / "ferry.log";
  logging.format = parse_log_format(settings->log_format).value_or(log_format::text);
  if (auto problem = configure_logging(logging); !problem.empty())
    std::cerr << "ferry migrate: " << problem << "\n";
  if (!shard_origin.empty())
    log()->info("shard {}/{} from {}", shard->index + 1, shard->count, shard_origin);

  auto inventory = open_or_set_aside(
    dir / "inventory", [&] { return migration_inventory::open(dir / "inventory", identity); });
  if (!inventory)
    return std::cerr << "ferry migrate: " << inventory.error().message() << "\n",
           exit_code_of(inventory.error());
  journal_db::options journal_options;
  journal_options.history_limit = 100;
  journal_options.sync_writes = false;
  auto journal = open_or_set_aside(
    dir / "journal", [&] { return journal_db::open(dir / "journal", journal_options); });
  if (!journal)
    return std::cerr << "ferry migrate: " << journal.error().message() << "\n", exit_incomplete;
  std::cerr << "ferry migrate: " << identity << " (journal " << dir.string() << ")\n";

  auto metrics = std::make_shared<metrics_registry>();
  describe_transfer_metrics(*metrics, version);
  std::unique_ptr<metrics_endpoint> metrics_server;
  if (metrics_at) {
    auto render = [metrics, journal_dir = dir / "journal"] {
      metrics->set(metric::journal_size, {}, static_cast<double>(directory_bytes(journal_dir)));
      return metrics->render();
    };
    auto served = metrics_endpoint::start(*metrics_at, render, request.metrics_allow_remote);
    if (!served)
      return std::cerr << "ferry migrate: " << served.error().message() << "\n", exit_incomplete;
    metrics_server = std::move(*served);
    auto bound = metrics_server->address();
    // `ferry metrics --from` takes the address as printed here.
    std::cerr << "ferry migrate: metrics at " << bound.to_string();
    if (!bound.unix_socket)
      std::cerr << " (http://" << bound.to_string() << "/metrics)";
    std::cerr << "\n";
  }

  auto fail = [&](const status& problem) {
    std::cerr << "ferry migrate: " << problem.to_string() << "\n";
    return exit_code_of(problem);
  };
  // Every run lists the source again and asks the destination again about
  // every object: what an earlier run saw there is not taken on trust.
  if (auto run = (*inventory)->begin_run(); !run)
    return fail(run.error());
  if (request.retry_failed) {
    auto again = requeue_failed(**inventory);
    if (!again)
      return fail(again.error());
    if (*again > 0)
      std::cerr << "ferry migrate: " << *again << " failed object(s) will be tried again\n";
  }
  auto started = std::chrono::steady_clock::now();
  int64_t seen = 0;
  auto add = [&](const std::vector<object_info>& batch) {
    auto added = (*inventory)->add(batch);
    if (!added)
      return added.error();
    seen += static_cast<int64_t>(batch.size());
    if (seen % 100000 < static_cast<int64_t>(batch.size()))
      std::cerr << "ferry migrate: listed " << seen << " objects so far\n";
    return status::success();
  };
  if (auto listed = list_source(request, **source, *shard, add); !listed)
    return fail(listed);
  auto gone = (*inventory)->forget_unlisted();
  if (!gone)
    return fail(gone.error());
  if (*gone > 0)
    std::cerr << "ferry migrate: " << *gone
              << " object(s) an earlier run listed are no longer at the source; left out\n";
  auto before = (*inventory)->totals();
  if (!before)
    return fail(before.error());
  migration_summary summary;
  summary.not_retried = failures_of(*before);

  // Where one walk of the destination's listing costs less than asking
  // about each object, it settles what it can first (S3: 1000 keys a page).
  // --verify-existing reads every present object anyway.
  auto per_request = (*destination)->objects_per_list_request();
  if (per_request > 0 && !request.verify_existing && before->pending.objects > 0) {
    std::cerr << "ferry migrate: asking " << (*destination)->describe() << " about "
              << before->pending.objects << " objects with a walk of its listing\n";
    auto settled = settle_by_listing(**destination, **inventory,
                                     before->pending.objects * per_request / listing_request_cost);
    if (!settled)
      return fail(settled.error());
    if (!settled->stopped)
      std::cerr << "ferry migrate: cannot list " << (*destination)->describe() << " ("
                << settled->stopped.message() << "); asking about each object instead\n";
    log()->info("the destination's listing: {} objects walked{}, {} present, {} of another size",
                settled->listed, settled->complete ? " (all of it)" : "", settled->present,
                settled->size_differs);
  }

  migration_options options;
  auto& engine = options.config;
  engine.store = *destination;
  engine.source = *source;
  engine.http = http;
  engine.lfs = context.lfs;
  engine.max_attempts = settings->max_attempts;
  engine.max_retry_time = settings->max_retry_time;
  engine.backoff_base = settings->backoff_base;
  engine.backoff_max = settings->backoff_max;
  if (auto split = rates->describe(budget); !split.empty())
    std::cerr << "ferry migrate: " << split << "\n";
  engine.max_requests_per_second = rates->requests_per_second;
  engine.max_bytes_per_second = static_cast<double>(rates->bytes_per_second);
  if (!shared_limit.host.empty())
    std::cerr << "ferry migrate: all shards together keep to --tps-total " << request.tps_total
              << " through Redis at " << shared_limit.describe() << "\n";
  engine.shared_limit = shared_limit;
  engine.shared_requests_per_second = request.tps_total;
  engine.seed = std::random_device{}();
  engine.metrics = metrics;
  engine.events = open_events_file(*settings);
  options.journal = std::move(*journal);
  options.inventory = std::move(*inventory);
  options.concurrency = concurrency;
  options.verify_existing = request.verify_existing;
  options.show_progress = [display](const migration_progress& progress) {
    display->show(progress);
  };
  engine.notice = [display](const std::string& text) { display->notice(text); };
  options.progress_every = terminal ? std::chrono::seconds{1} : std::chrono::seconds{10};
  auto kept_inventory = options.inventory;
  auto ran = run_migration(std::move(options));
  auto last = display->finish();

  summary.source = (*source)->describe();
  summary.destination = (*destination)->describe();
  summary.shard = *shard;
  summary.moved_bytes = last.moved_bytes;
  summary.duration = std::chrono::duration_cast<std::chrono::milliseconds>(
    std::chrono::steady_clock::now() - started);
  // Without the final counts nothing can be claimed: no summary, no exit 0.
  if (auto counted = summarize(*kept_inventory, summary); !counted)
    return fail(counted);
  std::cout << summary_text(summary);
  auto report = report_json(summary);
  write_reports(request, *shard, report);
  if (!ran) {
    std::cerr << "ferry migrate: " << ran.to_string()
              << (ran.code() == errc::no_space ? "\nFree some space, then run" : "\nRun")
              << " the same command again to continue.\n";
    return exit_incomplete;
  }
  auto outcome = report["outcome"].get<std::string>();
  if (outcome == "completed_with_failures") {
    std::cerr << "ferry migrate: completed with failures; after fixing their cause, run the same "
                 "command with --retry-failed\n";
    return exit_with_failures;
  }
  return outcome == "complete" ? 0 : exit_incomplete;
}

} // namespace ferry::cli
