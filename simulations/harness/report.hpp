#pragma once

// report.html of a ferry-sim run directory: the series computed from
// events.jsonl (pure, unit-tested), the plots gnuplot draws from them as SVG,
// and one self-contained page that embeds those plots with the summary from
// result.json, the two files of the run directory ferry-sim writes.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::sim_report {

/// The fields of one events.jsonl line the report uses; absent ones stay
/// empty or zero. `t` is Unix time in milliseconds.
struct event {
  std::int64_t t = 0;
  std::string ev;
  std::string dir;
  std::string oid;
  std::string error;
  std::string kind;
  std::int64_t run = 0;
  std::int64_t bytes = 0;
  std::int64_t ms = 0;
};

/// events.jsonl as read: the events in file order, and one message per line
/// that could not be read ("line 7: ...").
struct event_log {
  std::vector<event> events;
  std::vector<std::string> problems;
};

/// Reads events.jsonl from `in`. Unknown fields and unknown `ev` values are
/// kept or ignored as they are; a line that is not a JSON object with a
/// numeric `t` and a string `ev` is skipped and named in `problems`. Blank
/// lines are skipped silently.
event_log parse_events(std::istream& in);

/// A kill of the ferry process: when, and which run it ended.
struct kill_marker {
  std::int64_t t = 0;
  std::int64_t run = 0;
};

/// A fault injected between `from` and `to` (Unix ms).
struct fault_window {
  std::string kind;
  std::int64_t from = 0;
  std::int64_t to = 0;
};

/// After a kill: when the next run started and when the first object was
/// done after that start, both as milliseconds after the kill; unset when
/// the log has no such event.
struct recovery {
  kill_marker kill;
  std::optional<std::int64_t> restart_ms;
  std::optional<std::int64_t> recover_ms;
};

/// Percentiles of the `ms` of the done events of one direction, by nearest
/// rank: p<q> is the smallest value with at least q% of the values <= it.
struct latency_summary {
  std::size_t count = 0;
  std::int64_t p50 = 0;
  std::int64_t p90 = 0;
  std::int64_t p99 = 0;
  std::int64_t max = 0;
};

/// Everything the plots show. Bucket i covers [start + i*bucket_ms,
/// start + (i+1)*bucket_ms); `start` is the first event's time.
struct run_series {
  std::int64_t start = 0;
  std::int64_t end = 0;
  std::int64_t bucket_ms = 1000;
  /// Bytes of the done events in each bucket, per second of bucket.
  std::vector<double> throughput;
  /// The mean number of objects in flight over each bucket (over the part
  /// up to the last event for the last bucket). An object (a direction and
  /// an oid) is in flight from its first `start` until its `done` or `fail`;
  /// a `retry` keeps it in flight (it waits for its next attempt); a `kill`
  /// or `run_end` ends every object in flight, since the process that moved
  /// them is gone.
  std::vector<double> in_flight;
  /// Retry and fail events per error class, per bucket.
  std::map<std::string, std::vector<std::int64_t>> retries;
  std::map<std::string, std::vector<std::int64_t>> failures;
  /// By direction (`upload`, `download`, `copy`).
  std::map<std::string, latency_summary> latency;
  std::vector<kill_marker> kills;
  /// fault_start/fault_end pairs of the same kind, in order of start; an end
  /// closes the earliest open start of its kind, a start never closed ends
  /// at the last event, an end without a start is ignored.
  std::vector<fault_window> faults;
  std::vector<recovery> recoveries;
};

/// The nearest-rank percentile `q` (0 < q <= 100) of `values`; 0 when empty.
std::int64_t percentile(std::vector<std::int64_t> values, double q);

/// A bucket width for a run of `span_ms`: one second, or more whole seconds
/// so that the plots have at most about 600 buckets.
std::int64_t bucket_ms_for(std::int64_t span_ms);

/// The series of `events` (sorted by `t`, as events.jsonl is) in buckets of
/// `bucket_ms`.
run_series compute_series(const std::vector<event>& events, std::int64_t bucket_ms);

/// `text` with &, <, >, " and ' replaced by character references.
std::string html_escape(std::string_view text);

/// One drawn plot: an id, a title, the inline SVG, and the colours its data
/// is drawn in (so a check of the rendered page can look for them).
struct plot {
  std::string id;
  std::string title;
  std::string svg;
  std::vector<std::string> colours;
};

/// Draws the plots of `series` with gnuplot (found in PATH), working in
/// `work_dir` (it must exist). A plot with nothing to show (no retries, no
/// kills, ...) is left out. Returns false with `error` set when gnuplot is
/// missing or fails.
bool draw_plots(const run_series& series, const std::filesystem::path& work_dir,
                std::vector<plot>& plots, std::string& error);

/// The page: the summary of `result` (result.json), the plots, the latency
/// and recovery tables of `series`, and the problems of `log`. Every string
/// from the run directory is HTML-escaped.
std::string report_html(const nlohmann::json& result, const event_log& log,
                        const run_series& series, const std::vector<plot>& plots);

/// What write_report() returns.
enum report_status : int {
  report_written = 0,
  /// A tool is missing or failed, or report.html could not be written.
  report_failed = 1,
  /// result.json or events.jsonl is missing or is not what the contract says.
  report_bad_input = 2,
};

/// (Re)writes `run_dir`/report.html from its result.json and events.jsonl.
/// Malformed event lines do not stop it (the page lists them). On anything
/// but report_written, `error` says what went wrong.
int write_report(const std::filesystem::path& run_dir, std::string& error);

} // namespace ferry::sim_report
