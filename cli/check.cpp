#include "cli/commands.hpp"

#include "actors/policy/migration_report.hpp"
#include "store/store_compare.hpp"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <unistd.h>

namespace ferry::cli {

namespace {

namespace fs = std::filesystem;

constexpr int exit_differ = exit_with_failures;

/// The report lists at most this many findings; the counts cover them all.
constexpr size_t reported_findings = 10000;

/// A directory under $TMPDIR for the scratch inventory, removed with it.
class scratch_dir {
public:
  static result<scratch_dir> make() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string{tmp && *tmp ? tmp : "/tmp"} + "/ferry-check-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr)
      return from_errno(errno, "cannot create a scratch directory " + pattern);
    return scratch_dir{pattern};
  }
  scratch_dir(scratch_dir&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  scratch_dir(const scratch_dir&) = delete;
  ~scratch_dir() {
    std::error_code ignored;
    if (!path_.empty())
      fs::remove_all(path_, ignored);
  }
  const fs::path& path() const { return path_; }

private:
  explicit scratch_dir(fs::path path) : path_(std::move(path)) {}
  fs::path path_;
};

/// "missing <oid> <size>", "size_differs <oid> <size> destination <size>",
/// "content_differs <oid> <size>: <why>".
std::string finding_line(const compare_finding& finding) {
  std::string line =
    std::string{to_string(finding.kind)} + " " + finding.oid + " " + std::to_string(finding.size);
  if (finding.kind == difference::size_differs && finding.destination_size)
    line += " destination " + std::to_string(*finding.destination_size);
  if (!finding.detail.empty())
    line += ": " + finding.detail;
  return line;
}

nlohmann::json count_json(const inventory_totals::count& count) {
  return {{"objects", count.objects}, {"bytes", count.bytes}};
}

nlohmann::json finding_json(const compare_finding& finding) {
  nlohmann::json out = {
    {"kind", to_string(finding.kind)}, {"oid", finding.oid}, {"size", finding.size}};
  if (finding.destination_size)
    out["destination_size"] = *finding.destination_size;
  if (!finding.detail.empty())
    out["detail"] = finding.detail;
  return out;
}

/// "1,000 objects (9.8 MiB) at the source: 997 match, 1 missing at the
/// destination, ...".
std::string summary_text(const compare_totals& totals, bool hash) {
  auto part = [](int64_t count, const char* what) {
    return ", " + with_separators(count) + " " + what;
  };
  std::string text = with_separators(totals.source.objects) + " objects (" +
                     format_bytes(totals.source.bytes) +
                     ") at the source: " + with_separators(totals.matched.objects) + " match" +
                     part(totals.missing.objects, "missing at the destination") +
                     part(totals.size_differs.objects, "of another size");
  if (hash)
    text += part(totals.content_differs.objects, "with other content at the destination") +
            part(totals.corrupt_at_source.objects, "corrupt at the source");
  text += part(totals.unreadable.objects, "unreadable");
  text += totals.extra_known
            ? "; " + with_separators(totals.extra.objects) + " extra at the destination"
            : std::string{"; extra objects unknown (the destination cannot list its objects)"};
  text += hash ? " (both copies read and hashed)"
               : " (sizes compared; --hash reads and hashes both copies)";
  return text + "\n" + (totals.match() ? "the stores match\n" : "the stores differ\n");
}

} // namespace

int run_check(const check_request& request) {
  auto usage = [](const std::string& message) {
    std::cerr << "ferry check: " << message << "\n";
    return exit_usage;
  };
  if (request.from.empty() || request.to.empty())
    return usage("say what to compare: --from SRC --to DST (store URLs, as for ferry migrate)");
  if (!request.from_repo.empty() && !request.inventory_file.empty())
    return usage("give --from-repo or --inventory, not both");
  if (request.checkers < 1 || request.checkers > 64)
    return usage("--checkers must be from 1 to 64");
  auto stop = [](const status& problem) {
    std::cerr << "ferry check: " << problem.to_string() << "\n";
    return exit_code_of(problem);
  };

  auto settings = settings_outside_repository();
  if (!settings)
    return usage(settings.error().message());
  auto http = start_http_engine(*settings);
  if (!http)
    return stop(http.error());
  auto context = store_context_for(*settings, *http, fs::current_path());
  // A check changes nothing, not even by creating an empty folder.
  context.create_folder = false;
  auto source = open_named_store(request.from, "from", context);
  if (!source)
    return stop(source.error());
  auto destination = open_named_store(request.to, "to", context);
  if (!destination)
    return stop(destination.error());
  if ((*source)->describe() == (*destination)->describe())
    return usage("--from and --to are the same store (" + (*source)->describe() + ")");

  auto scratch = scratch_dir::make();
  if (!scratch)
    return stop(scratch.error());
  auto listing = migration_inventory::open(scratch->path(), "ferry check");
  if (!listing)
    return stop(listing.error());

  std::vector<compare_finding> kept;
  int64_t left_out = 0;
  compare_options options;
  options.hash = request.hash;
  options.hash_workers = request.checkers;
  options.found = [&](const compare_finding& finding) {
    std::cout << finding_line(finding) << "\n";
    if (kept.size() < reported_findings)
      kept.push_back(finding);
    else
      ++left_out;
  };
  bool terminal = ::isatty(STDERR_FILENO) == 1;
  options.progress_every = terminal ? std::chrono::seconds{1} : std::chrono::seconds{10};
  options.progress = [terminal](const compare_progress& progress) {
    std::string line = progress.phase + ": " + with_separators(progress.done) +
                       (progress.total > 0 ? "/" + with_separators(progress.total) : "") +
                       " objects";
    if (progress.bytes_hashed > 0)
      line += ", " + format_bytes(progress.bytes_hashed) + " read";
    if (terminal)
      std::fprintf(stderr, "\rferry check: %s\x1b[K", line.c_str());
    else
      std::fprintf(stderr, "ferry check: %s\n", line.c_str());
    std::fflush(stderr);
  };
  auto list = [&](const std::function<status(const std::vector<object_info>&)>& take) {
    return list_objects(
      **source, {request.from_repo, request.inventory_file},
      [](const std::string&) { return true; }, take);
  };
  auto totals = compare_stores(**source, **destination, list, **listing, options);
  if (terminal)
    std::fputc('\n', stderr);
  if (!totals)
    return stop(totals.error());

  std::cout << summary_text(*totals, request.hash);
  if (!request.report.empty()) {
    auto findings = nlohmann::json::array();
    for (auto& finding : kept)
      findings.push_back(finding_json(finding));
    nlohmann::json report = {
      {"source", (*source)->describe()},
      {"destination", (*destination)->describe()},
      {"hash", request.hash},
      {"source_objects", count_json(totals->source)},
      {"matched", count_json(totals->matched)},
      {"hashed", count_json(totals->hashed)},
      {"missing", count_json(totals->missing)},
      {"size_differs", count_json(totals->size_differs)},
      {"content_differs", count_json(totals->content_differs)},
      {"corrupt_at_source", count_json(totals->corrupt_at_source)},
      {"unreadable", count_json(totals->unreadable)},
      {"extra", totals->extra_known ? count_json(totals->extra) : nlohmann::json{}},
      {"findings", std::move(findings)},
      {"findings_left_out", left_out},
      {"outcome", totals->match() ? "match" : "differ"},
    };
    std::ofstream out{request.report};
    out << report.dump(2) << "\n";
    if (!out)
      return stop({errc::io_error, "cannot write the report to " + request.report});
  }
  return totals->match() ? 0 : exit_differ;
}

} // namespace ferry::cli
