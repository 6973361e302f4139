#include "simulations/harness/report.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <iomanip>
#include <istream>
#include <set>
#include <sstream>
#include <utility>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace ferry::sim_report {

namespace fs = std::filesystem;

// ---- reading events.jsonl -------------------------------------------------

namespace {

// Reads the optional string field `key` of `object` into `out`; false when
// it is there with another type.
bool read_string(const nlohmann::json& object, const char* key, std::string& out) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null())
    return true;
  if (!it->is_string())
    return false;
  out = it->get<std::string>();
  return true;
}

// Reads the optional numeric field `key` (integer or floating) into `out`.
bool read_number(const nlohmann::json& object, const char* key, std::int64_t& out) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null())
    return true;
  if (it->is_number_integer()) {
    out = it->get<std::int64_t>();
    return true;
  }
  if (it->is_number_float()) {
    out = std::llround(it->get<double>());
    return true;
  }
  return false;
}

// The event of one line, or the reason it is not one.
std::optional<event> parse_line(const std::string& line, std::string& problem) {
  nlohmann::json object = nlohmann::json::parse(line, nullptr, false);
  if (object.is_discarded()) {
    problem = "not JSON";
    return std::nullopt;
  }
  if (!object.is_object()) {
    problem = "not a JSON object";
    return std::nullopt;
  }
  auto t = object.find("t");
  if (t == object.end() || !t->is_number()) {
    problem = "no numeric \"t\"";
    return std::nullopt;
  }
  auto ev = object.find("ev");
  if (ev == object.end() || !ev->is_string()) {
    problem = "no string \"ev\"";
    return std::nullopt;
  }
  event out;
  read_number(object, "t", out.t);
  out.ev = ev->get<std::string>();
  for (auto [key, field] : {std::pair{"dir", &out.dir}, std::pair{"oid", &out.oid},
                            std::pair{"error", &out.error}, std::pair{"kind", &out.kind}}) {
    if (!read_string(object, key, *field)) {
      problem = std::string{"\""} + key + "\" is not a string";
      return std::nullopt;
    }
  }
  for (auto [key, field] :
       {std::pair{"run", &out.run}, std::pair{"bytes", &out.bytes}, std::pair{"ms", &out.ms}}) {
    if (!read_number(object, key, *field)) {
      problem = std::string{"\""} + key + "\" is not a number";
      return std::nullopt;
    }
  }
  return out;
}

} // namespace

event_log parse_events(std::istream& in) {
  event_log log;
  std::string line;
  for (std::size_t number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos)
      continue;
    std::string problem;
    if (auto parsed = parse_line(line, problem))
      log.events.push_back(std::move(*parsed));
    else
      log.problems.push_back("line " + std::to_string(number) + ": " + problem);
  }
  return log;
}

// ---- the series -------------------------------------------------------------

std::int64_t percentile(std::vector<std::int64_t> values, double q) {
  if (values.empty())
    return 0;
  std::sort(values.begin(), values.end());
  auto rank = static_cast<std::size_t>(std::ceil(q / 100.0 * static_cast<double>(values.size())));
  rank = std::clamp<std::size_t>(rank, 1, values.size());
  return values[rank - 1];
}

std::int64_t bucket_ms_for(std::int64_t span_ms) {
  constexpr std::int64_t max_buckets = 600;
  std::int64_t seconds =
    (std::max<std::int64_t>(span_ms, 0) / 1000 + max_buckets - 1) / max_buckets;
  return std::max<std::int64_t>(seconds, 1) * 1000;
}

run_series compute_series(const std::vector<event>& unsorted, std::int64_t bucket_ms) {
  run_series out;
  out.bucket_ms = std::max<std::int64_t>(bucket_ms, 1);
  if (unsorted.empty())
    return out;
  std::vector<event> events = unsorted;
  std::stable_sort(events.begin(), events.end(),
                   [](const event& a, const event& b) { return a.t < b.t; });
  out.start = events.front().t;
  out.end = events.back().t;
  auto buckets = static_cast<std::size_t>((out.end - out.start) / out.bucket_ms + 1);
  auto bucket_of = [&](const event& e) {
    return static_cast<std::size_t>((e.t - out.start) / out.bucket_ms);
  };
  out.throughput.assign(buckets, 0.0);
  out.in_flight.assign(buckets, 0);
  auto count_in = [&](std::map<std::string, std::vector<std::int64_t>>& by_class, const event& e) {
    auto& series = by_class[e.error.empty() ? "unknown" : e.error];
    series.resize(buckets, 0);
    ++series[bucket_of(e)];
  };

  std::set<std::pair<std::string, std::string>> moving;
  // Object-milliseconds in flight per bucket, from the previous event on.
  std::int64_t previous = out.start;
  auto count_until = [&](std::int64_t t) {
    while (previous < t) {
      std::size_t b = static_cast<std::size_t>((previous - out.start) / out.bucket_ms);
      std::int64_t bucket_end = out.start + static_cast<std::int64_t>(b + 1) * out.bucket_ms;
      std::int64_t to = std::min(t, bucket_end);
      out.in_flight[b] += static_cast<double>(moving.size()) * static_cast<double>(to - previous);
      previous = to;
    }
  };
  std::map<std::string, std::vector<std::int64_t>> latencies;
  std::map<std::string, std::deque<std::size_t>> open_faults;
  for (const event& e : events) {
    std::size_t b = bucket_of(e);
    count_until(e.t);
    std::pair<std::string, std::string> object{e.dir, e.oid};
    if (e.ev == "start") {
      moving.insert(object);
    } else if (e.ev == "done") {
      moving.erase(object);
      out.throughput[b] += static_cast<double>(e.bytes);
      latencies[e.dir.empty() ? "unknown" : e.dir].push_back(e.ms);
    } else if (e.ev == "fail") {
      moving.erase(object);
      count_in(out.failures, e);
    } else if (e.ev == "retry") {
      count_in(out.retries, e);
    } else if (e.ev == "kill") {
      moving.clear();
      out.kills.push_back({e.t, e.run});
    } else if (e.ev == "run_end") {
      moving.clear();
    } else if (e.ev == "fault_start") {
      open_faults[e.kind].push_back(out.faults.size());
      out.faults.push_back({e.kind, e.t, out.end});
    } else if (e.ev == "fault_end") {
      auto& open = open_faults[e.kind];
      if (!open.empty()) {
        out.faults[open.front()].to = e.t;
        open.pop_front();
      }
    }
  }
  for (double& bytes : out.throughput)
    bytes = bytes * 1000.0 / static_cast<double>(out.bucket_ms);
  for (std::size_t b = 0; b < buckets; ++b) {
    std::int64_t from = out.start + static_cast<std::int64_t>(b) * out.bucket_ms;
    std::int64_t covered = std::min(out.bucket_ms, out.end - from);
    // A last bucket that starts at the last event shows the count after it.
    out.in_flight[b] = covered > 0 ? out.in_flight[b] / static_cast<double>(covered)
                                   : static_cast<double>(moving.size());
  }
  for (auto& [dir, values] : latencies) {
    latency_summary& summary = out.latency[dir];
    summary.count = values.size();
    summary.p50 = percentile(values, 50);
    summary.p90 = percentile(values, 90);
    summary.p99 = percentile(values, 99);
    summary.max = *std::max_element(values.begin(), values.end());
  }

  for (std::size_t i = 0; i < events.size(); ++i) {
    if (events[i].ev != "kill")
      continue;
    recovery r;
    r.kill = {events[i].t, events[i].run};
    std::size_t j = i + 1;
    while (j < events.size() && events[j].ev != "run_start")
      ++j;
    if (j < events.size()) {
      r.restart_ms = events[j].t - r.kill.t;
      while (j < events.size() && events[j].ev != "done")
        ++j;
      if (j < events.size())
        r.recover_ms = events[j].t - r.kill.t;
    }
    out.recoveries.push_back(r);
  }
  return out;
}

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// ---- the plots ----------------------------------------------------------------

namespace {

// Series colours, in order (distinct from the marker colours below).
const std::vector<std::string> palette = {"#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
                                          "#e377c2", "#17becf", "#bcbd22", "#7f7f7f", "#393b79"};
const char* const kill_colour = "#c0392b";
const char* const fault_fill = "#fad7a0";
// Faults that act on every byte while they last (latency, bandwidth, resets)
// usually last the whole run: a lighter band, so that windows such as a
// blackhole stand out on top of it.
const char* const steady_fault_fill = "#fef5e7";
const char* const fault_text = "#a04000";

// A string from the run directory as gnuplot text: only characters that need
// no quoting in a gnuplot string or in the SVG gnuplot writes.
std::string gnuplot_text(std::string_view text) {
  std::string out;
  for (char c : text) {
    bool plain = std::isalnum(static_cast<unsigned char>(c)) || std::strchr("_-.:/ ", c);
    out += plain ? c : '?';
  }
  return out;
}

// `path` as a single-quoted gnuplot string.
std::string gnuplot_path(const fs::path& path) {
  std::string out = "'";
  for (char c : path.string())
    out += c == '\'' ? std::string{"''"} : std::string{c};
  return out + "'";
}

std::string seconds_text(double seconds) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(3) << seconds;
  return out.str();
}

// The terminal and the look every plot shares.
std::string preamble(const fs::path& svg, int height) {
  std::ostringstream out;
  out << "set terminal svg size 900," << height
      << " dynamic noenhanced font \"DejaVu Sans,10\" background rgb \"white\"\n"
      << "set output " << gnuplot_path(svg) << "\n"
      << "set border 3\nset tics nomirror\nset grid ytics linecolor rgb \"#dddddd\"\n"
      << "set key below\n";
  return out.str();
}

// Fault windows as shaded bands and kills as dashed lines labelled "kill k",
// on a time axis in seconds since the series start.
std::string markers(const run_series& series) {
  std::ostringstream out;
  auto x = [&](std::int64_t t) {
    return seconds_text(static_cast<double>(t - series.start) / 1000.0);
  };
  int object = 1;
  int label = 1;
  for (std::size_t i = 0; i < series.faults.size(); ++i) {
    const fault_window& fault = series.faults[i];
    const bool steady =
      fault.kind == "latency" || fault.kind == "bandwidth" || fault.kind == "reset";
    // Bands are drawn in order of start, a later one over an earlier one.
    out << "set object " << object++ << " rect from " << x(fault.from) << ", graph 0 to "
        << x(fault.to) << ", graph 1 behind fillcolor rgb \""
        << (steady ? steady_fault_fill : fault_fill) << "\" fillstyle solid 1.0 noborder\n";
    // Labels of windows that start together are stacked, not overprinted.
    out << "set label " << label++ << " \"" << gnuplot_text(fault.kind) << "\" at " << x(fault.from)
        << ", graph " << seconds_text(0.04 + 0.07 * static_cast<double>(i % 5))
        << " offset 0.3,0 textcolor rgb \"" << fault_text << "\"\n";
  }
  for (std::size_t k = 0; k < series.kills.size(); ++k) {
    std::string at = x(series.kills[k].t);
    out << "set arrow " << k + 1 << " from " << at << ", graph 0 to " << at
        << ", graph 1 nohead front dashtype 2 linewidth 1.5 linecolor rgb \"" << kill_colour
        << "\"\n";
    out << "set label " << label++ << " \"kill " << k + 1 << "\" at " << at
        << ", graph 0.96 offset 0.5,0 front textcolor rgb \"" << kill_colour << "\"\n";
  }
  // Room above the data for the kill labels.
  out << "set offsets 0, 0, graph 0.15, 0\n"
      << "set xlabel \"seconds since the first event\"\n"
      << "set xrange [0:" << x(std::max(series.end, series.start + series.bucket_ms)) << "]\n";
  return out.str();
}

// Bucket starts in seconds and one value column per series, with a closing
// row so `steps` draws the last bucket too.
void write_bucket_table(const fs::path& file, const run_series& series,
                        const std::vector<std::vector<double>>& columns) {
  std::ofstream out(file);
  std::size_t buckets = columns.empty() ? 0 : columns.front().size();
  double width = static_cast<double>(series.bucket_ms) / 1000.0;
  for (std::size_t b = 0; b <= buckets; ++b) {
    out << seconds_text(static_cast<double>(b) * width);
    for (const auto& column : columns)
      out << ' ' << column[std::min(b, buckets - 1)];
    out << '\n';
  }
}

// The unit that makes the peak of `values` (bytes per second) readable.
std::pair<double, std::string> rate_unit(const std::vector<double>& values) {
  double peak = values.empty() ? 0 : *std::max_element(values.begin(), values.end());
  if (peak >= 1e9)
    return {1e9, "GB/s"};
  if (peak >= 1e6)
    return {1e6, "MB/s"};
  if (peak >= 1e3)
    return {1e3, "kB/s"};
  return {1, "B/s"};
}

struct plot_job {
  plot drawn;
  std::string script;
};

plot_job throughput_plot(const run_series& series, const fs::path& dir) {
  auto [scale, unit] = rate_unit(series.throughput);
  std::vector<double> column;
  for (double bytes : series.throughput)
    column.push_back(bytes / scale);
  fs::path data = dir / "throughput.dat";
  write_bucket_table(data, series, {column});
  plot_job job{
    {"throughput", "Throughput (bytes of finished transfers per second)", "", {palette[0]}}, ""};
  job.script = preamble(dir / "throughput.svg", 300) + markers(series) + "set ylabel \"" + unit +
               "\"\nset yrange [0:*]\nplot " + gnuplot_path(data) +
               " using 1:2 with steps linewidth 2 linecolor rgb \"" + palette[0] + "\" title \"" +
               unit + "\"\n";
  return job;
}

plot_job in_flight_plot(const run_series& series, const fs::path& dir) {
  const std::vector<double>& column = series.in_flight;
  fs::path data = dir / "in_flight.dat";
  write_bucket_table(data, series, {column});
  plot_job job{{"in_flight", "Objects in flight (mean over each interval)", "", {palette[1]}}, ""};
  job.script = preamble(dir / "in_flight.svg", 260) + markers(series) +
               "set ylabel \"objects\"\nset yrange [0:*]\nplot " + gnuplot_path(data) +
               " using 1:2 with steps linewidth 2 linecolor rgb \"" + palette[1] +
               "\" title \"in flight\"\n";
  return job;
}

plot_job errors_plot(const run_series& series, const fs::path& dir) {
  std::vector<std::vector<double>> columns;
  std::vector<std::string> titles;
  for (const auto* by_class : {&series.retries, &series.failures}) {
    for (const auto& [error, counts] : *by_class) {
      columns.emplace_back(counts.begin(), counts.end());
      titles.push_back((by_class == &series.retries ? "retry " : "fail ") + gnuplot_text(error));
    }
  }
  fs::path data = dir / "errors.dat";
  write_bucket_table(data, series, columns);
  plot_job job{{"errors", "Retries and failures by error class (events per interval)", "", {}}, ""};
  std::string plots;
  for (std::size_t i = 0; i < columns.size(); ++i) {
    const std::string& colour = palette[i % palette.size()];
    job.drawn.colours.push_back(colour);
    bool failure = titles[i].rfind("fail ", 0) == 0;
    plots += (i == 0 ? gnuplot_path(data) : std::string{"''"}) +
             " using 1:" + std::to_string(i + 2) + " with steps linewidth 2 linecolor rgb \"" +
             colour + "\"" + (failure ? " dashtype 2" : "") + " title \"" + titles[i] + "\"" +
             (i + 1 < columns.size() ? ", \\\n  " : "\n");
  }
  job.script = preamble(dir / "errors.svg", 300) + markers(series) +
               "set ylabel \"events\"\nset yrange [0:*]\nplot " + plots;
  return job;
}

plot_job latency_plot(const run_series& series, const fs::path& dir) {
  fs::path data = dir / "latency.dat";
  {
    std::ofstream out(data);
    for (const auto& [dir_name, summary] : series.latency)
      out << '"' << gnuplot_text(dir_name) << "\" " << summary.p50 << ' ' << summary.p90 << ' '
          << summary.p99 << ' ' << summary.max << '\n';
  }
  plot_job job{{"latency",
                "Transfer time of finished objects by direction",
                "",
                {palette[0], palette[1], palette[2], palette[3]}},
               ""};
  job.script = preamble(dir / "latency.svg", 280) +
               "set style data histogram\nset style histogram cluster gap 1\n"
               "set style fill solid 1.0 noborder\nset yrange [0:*]\nset ylabel \"ms\"\n"
               "plot " +
               gnuplot_path(data) + " using 2:xtic(1) title \"p50\" linecolor rgb \"" + palette[0] +
               "\", '' using 3 title \"p90\" linecolor rgb \"" + palette[1] +
               "\", '' using 4 title \"p99\" linecolor rgb \"" + palette[2] +
               "\", '' using 5 title \"max\" linecolor rgb \"" + palette[3] + "\"\n";
  return job;
}

plot_job recovery_plot(const run_series& series, const fs::path& dir) {
  fs::path data = dir / "recovery.dat";
  {
    std::ofstream out(data);
    auto seconds = [](const std::optional<std::int64_t>& ms) {
      return ms ? seconds_text(static_cast<double>(*ms) / 1000.0) : std::string{"NaN"};
    };
    for (std::size_t k = 0; k < series.recoveries.size(); ++k)
      out << "\"kill " << k + 1 << "\" " << seconds(series.recoveries[k].restart_ms) << ' '
          << seconds(series.recoveries[k].recover_ms) << '\n';
  }
  // gnuplot refuses a histogram column without a single number: the second
  // bars are drawn only when some run after a kill finished an object.
  const bool any_done = std::any_of(series.recoveries.begin(), series.recoveries.end(),
                                    [](const recovery& r) { return r.recover_ms.has_value(); });
  plot_job job{{"recovery", "Time to recover after each kill", "", {palette[6]}}, ""};
  job.script = preamble(dir / "recovery.svg", 260) +
               "set style data histogram\nset style histogram cluster gap 1\n"
               "set style fill solid 1.0 noborder\nset yrange [0:*]\nset ylabel \"seconds\"\n"
               "plot " +
               gnuplot_path(data) + " using 2:xtic(1) title \"next run started\" linecolor rgb \"" +
               palette[6] + "\"";
  if (any_done) {
    job.script += ", '' using 3 title \"first object done\" linecolor rgb \"" + palette[3] + "\"";
    job.drawn.colours.push_back(palette[3]);
  }
  job.script += "\n";
  return job;
}

// The gnuplot in PATH, or empty.
fs::path find_gnuplot() {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path ? path : "");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    fs::path candidate = fs::path(dir.empty() ? "." : dir) / "gnuplot";
    if (::access(candidate.c_str(), X_OK) == 0)
      return candidate;
  }
  return {};
}

// Runs `gnuplot script` with its output in `log`; the exit status, or -1.
int run_gnuplot(const fs::path& gnuplot, const fs::path& script, const fs::path& log) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  std::string program = gnuplot.string();
  std::string argument = script.string();
  char* argv[] = {program.data(), argument.data(), nullptr};
  pid_t pid = 0;
  int spawned = posix_spawn(&pid, program.c_str(), &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0)
    return -1;
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR)
      return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string read_text(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

} // namespace

bool draw_plots(const run_series& series, const fs::path& work_dir, std::vector<plot>& plots,
                std::string& error) {
  plots.clear();
  if (series.throughput.empty())
    return true;
  fs::path gnuplot = find_gnuplot();
  if (gnuplot.empty()) {
    error = "gnuplot is not in PATH (Debian package gnuplot-nox)";
    return false;
  }
  std::vector<plot_job> jobs = {throughput_plot(series, work_dir),
                                in_flight_plot(series, work_dir)};
  if (!series.retries.empty() || !series.failures.empty())
    jobs.push_back(errors_plot(series, work_dir));
  if (!series.latency.empty())
    jobs.push_back(latency_plot(series, work_dir));
  bool any_recovery = std::any_of(series.recoveries.begin(), series.recoveries.end(),
                                  [](const recovery& r) { return r.restart_ms.has_value(); });
  if (any_recovery)
    jobs.push_back(recovery_plot(series, work_dir));

  for (plot_job& job : jobs) {
    fs::path script = work_dir / (job.drawn.id + ".gp");
    fs::path log = work_dir / (job.drawn.id + ".log");
    std::ofstream(script) << job.script;
    int status = run_gnuplot(gnuplot, script, log);
    std::string svg = read_text(work_dir / (job.drawn.id + ".svg"));
    auto svg_start = svg.find("<svg");
    if (status != 0 || svg_start == std::string::npos) {
      error = "gnuplot failed on the " + job.drawn.id + " plot (status " + std::to_string(status) +
              "): " + read_text(log);
      return false;
    }
    // Inline SVG in HTML takes no XML prolog.
    job.drawn.svg = svg.substr(svg_start);
    plots.push_back(std::move(job.drawn));
  }
  return true;
}

// ---- the page -------------------------------------------------------------------

namespace {

// A JSON value as text: strings as they are, anything else as JSON.
std::string text_of(const nlohmann::json& value) {
  if (value.is_string())
    return value.get<std::string>();
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string cell(const nlohmann::json& value) {
  return "<td>" + html_escape(text_of(value)) + "</td>";
}

// A key/value table of an object's members (nested values as JSON).
std::string members_table(const nlohmann::json& object, const char* skip = "") {
  if (!object.is_object() || object.empty())
    return "<p class=\"none\">none recorded</p>\n";
  std::string out = "<table class=\"facts\">\n";
  for (const auto& [key, value] : object.items()) {
    if (key == skip)
      continue;
    out += "<tr><th>" + html_escape(key) + "</th>" + cell(value) + "</tr>\n";
  }
  return out + "</table>\n";
}

std::string seconds_of(std::int64_t ms) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(1) << static_cast<double>(ms) / 1000.0 << " s";
  return out.str();
}

const char* const style = R"(
body{font-family:"DejaVu Sans",sans-serif;font-size:14px;color:#222;margin:24px auto;max-width:960px;padding:0 16px}
h1{font-size:22px;margin:0 0 8px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd}
.verdict{display:inline-block;padding:4px 14px;border-radius:4px;font-weight:bold;color:#fff}
.pass{background:#1e8449}.fail{background:#c0392b}
table{border-collapse:collapse;margin:6px 0}th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
td.num{text-align:right}ul.evidence{margin:0;padding-left:18px}
figure{margin:12px 0 20px}figcaption{font-weight:bold;margin-bottom:4px}
figure svg{width:100%;height:auto;display:block}
.how{color:#555;margin:2px 0 0}.pass-text{color:#1e8449}.fail-text{color:#c0392b;font-weight:bold}.none{color:#777}
pre{background:#f6f6f6;padding:8px;overflow-x:auto;font-size:12px}
)";

// How to read each plot, under it.
std::string reading_hint(const std::string& id) {
  if (id == "throughput")
    return "Bytes of the objects finished in each interval. Red dashed lines are kills, shaded "
           "bands "
           "are fault windows; after a kill the line should climb back.";
  if (id == "in_flight")
    return "Objects started and not yet done or failed (a retry keeps an object in flight). It "
           "drops at each kill, since the killed process's transfers are gone, and should climb "
           "back soon after the next run starts.";
  if (id == "errors")
    return "Retries (solid) and failures (dashed) per error class. Retries inside a fault window "
           "are "
           "expected; failures outside one are worth a look.";
  if (id == "latency")
    return "Duration of the successful attempts, per direction. A max far above p99 is a single "
           "straggler.";
  if (id == "recovery")
    return "Seconds from each kill until the next run started and until it finished its first "
           "object.";
  return "";
}

} // namespace

std::string report_html(const nlohmann::json& result, const event_log& log,
                        const run_series& series, const std::vector<plot>& plots) {
  auto member = [&](const nlohmann::json& object, const char* key) {
    return object.is_object() && object.contains(key) ? object.at(key) : nlohmann::json{};
  };
  nlohmann::json scenario = member(result, "scenario");
  nlohmann::json name = member(scenario, "name");
  std::string title = name.is_string() ? name.get<std::string>() : std::string{"unnamed scenario"};
  std::string verdict = text_of(member(result, "verdict"));
  std::string verdict_class = verdict == "pass" ? "pass" : "fail";

  std::ostringstream out;
  out << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>ferry-sim: "
      << html_escape(title) << "</title>\n<style>" << style << "</style>\n</head>\n<body>\n";
  out << "<h1>ferry-sim: " << html_escape(title) << "</h1>\n";
  out << "<p><span class=\"verdict " << verdict_class << "\">" << html_escape(verdict)
      << "</span></p>\n";

  out << "<table class=\"facts\">\n";
  out << "<tr><th>scenario</th><td>" << html_escape(title) << "</td></tr>\n";
  out << "<tr><th>seed</th>" << cell(member(result, "seed")) << "</tr>\n";
  nlohmann::json versions = member(result, "versions");
  if (versions.is_object())
    for (const auto& [key, value] : versions.items())
      out << "<tr><th>" << html_escape(key) << " version</th>" << cell(value) << "</tr>\n";
  out << "<tr><th>events</th><td>" << log.events.size() << " events over "
      << seconds_of(series.end - series.start) << "</td></tr>\n";
  out << "</table>\n";

  out << "<h2>Invariants</h2>\n";
  nlohmann::json invariants = member(result, "invariants");
  if (!invariants.is_array() || invariants.empty()) {
    out << "<p class=\"none\">none recorded</p>\n";
  } else {
    out << "<table>\n<tr><th>invariant</th><th>result</th><th>evidence</th></tr>\n";
    for (const nlohmann::json& invariant : invariants) {
      bool passed = member(invariant, "passed") == true;
      out << "<tr>" << cell(member(invariant, "name")) << "<td class=\""
          << (passed ? "pass-text" : "fail-text") << "\">" << (passed ? "pass" : "FAIL")
          << "</td><td><ul class=\"evidence\">";
      nlohmann::json evidence = member(invariant, "evidence");
      if (!evidence.is_array())
        evidence = nlohmann::json::array({evidence});
      for (const nlohmann::json& line : evidence)
        if (!line.is_null())
          out << "<li>" << html_escape(text_of(line)) << "</li>";
      out << "</ul></td></tr>\n";
    }
    out << "</table>\n";
  }

  out << "<h2>Plots</h2>\n";
  if (plots.empty())
    out << "<p class=\"none\">events.jsonl has no events to plot.</p>\n";
  for (const plot& drawn : plots) {
    std::string colours;
    for (const std::string& colour : drawn.colours)
      colours += (colours.empty() ? "" : " ") + colour;
    out << "<figure id=\"plot-" << drawn.id << "\" data-colours=\"" << colours
        << "\">\n<figcaption>" << html_escape(drawn.title) << "</figcaption>\n"
        << drawn.svg << "\n<p class=\"how\">" << html_escape(reading_hint(drawn.id))
        << "</p>\n</figure>\n";
  }

  out << "<h2>Latency</h2>\n";
  if (series.latency.empty()) {
    out << "<p class=\"none\">no object was done</p>\n";
  } else {
    out << "<table>\n<tr><th>direction</th><th>done</th><th>p50 ms</th><th>p90 ms</th>"
           "<th>p99 ms</th><th>max ms</th></tr>\n";
    for (const auto& [dir, summary] : series.latency)
      out << "<tr><td>" << html_escape(dir) << "</td><td class=\"num\">" << summary.count
          << "</td><td class=\"num\">" << summary.p50 << "</td><td class=\"num\">" << summary.p90
          << "</td><td class=\"num\">" << summary.p99 << "</td><td class=\"num\">" << summary.max
          << "</td></tr>\n";
    out << "</table>\n";
  }

  out << "<h2>Recovery after kills</h2>\n";
  if (series.recoveries.empty()) {
    out << "<p class=\"none\">no kills</p>\n";
  } else {
    out << "<table>\n<tr><th>kill</th><th>at</th><th>run killed</th><th>next run started after</th>"
           "<th>first object done after</th></tr>\n";
    auto after = [](const std::optional<std::int64_t>& ms) {
      return ms ? seconds_of(*ms) : std::string{"never"};
    };
    for (std::size_t k = 0; k < series.recoveries.size(); ++k) {
      const recovery& r = series.recoveries[k];
      out << "<tr><td>kill " << k + 1 << "</td><td class=\"num\">"
          << seconds_of(r.kill.t - series.start) << "</td><td class=\"num\">" << r.kill.run
          << "</td><td class=\"num\">" << after(r.restart_ms) << "</td><td class=\"num\">"
          << after(r.recover_ms) << "</td></tr>\n";
    }
    out << "</table>\n";
  }

  out << "<h2>Counts</h2>\n" << members_table(member(result, "counts"));
  nlohmann::json timings = member(result, "timings");
  out << "<h2>Timings</h2>\n" << members_table(timings, "runs");
  nlohmann::json runs = member(timings, "runs");
  if (runs.is_array() && !runs.empty()) {
    out << "<table>\n<tr><th>run</th><th>duration ms</th><th>exit status</th></tr>\n";
    for (const nlohmann::json& run : runs)
      out << "<tr>" << cell(member(run, "run")) << cell(member(run, "duration_ms"))
          << cell(member(run, "rc")) << "</tr>\n";
    out << "</table>\n";
  }

  if (!log.problems.empty()) {
    out << "<h2>Unreadable lines of events.jsonl</h2>\n<ul>\n";
    for (const std::string& problem : log.problems)
      out << "<li>" << html_escape(problem) << "</li>\n";
    out << "</ul>\n";
  }

  out << "<h2>Scenario</h2>\n<pre>"
      << html_escape(scenario.dump(2, ' ', false, nlohmann::json::error_handler_t::replace))
      << "</pre>\n";
  out << "</body>\n</html>\n";
  return out.str();
}

// ---- the entry point --------------------------------------------------------------

namespace {

// A directory of its own under the system's temporary directory, removed
// with this object.
class temporary_directory {
public:
  explicit temporary_directory(std::string& error) {
    std::error_code no_tmpdir;
    fs::path base = fs::temp_directory_path(no_tmpdir);
    std::string pattern =
      ((no_tmpdir ? fs::path{"/tmp"} : base) / "ferry-sim-report.XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr)
      error = "cannot create a temporary directory: " + std::string{std::strerror(errno)};
    else
      path_ = pattern;
  }
  ~temporary_directory() {
    std::error_code ignored;
    if (!path_.empty())
      fs::remove_all(path_, ignored);
  }
  temporary_directory(const temporary_directory&) = delete;
  temporary_directory& operator=(const temporary_directory&) = delete;
  const fs::path& path() const { return path_; }

private:
  fs::path path_;
};

} // namespace

int write_report(const fs::path& run_dir, std::string& error) {
  std::ifstream result_file(run_dir / "result.json");
  if (!result_file) {
    error = "cannot read " + (run_dir / "result.json").string();
    return report_bad_input;
  }
  nlohmann::json result = nlohmann::json::parse(result_file, nullptr, false);
  if (result.is_discarded() || !result.is_object()) {
    error = (run_dir / "result.json").string() + " is not a JSON object";
    return report_bad_input;
  }
  std::ifstream events_file(run_dir / "events.jsonl");
  if (!events_file) {
    error = "cannot read " + (run_dir / "events.jsonl").string();
    return report_bad_input;
  }
  event_log log = parse_events(events_file);
  std::int64_t span = 0;
  if (!log.events.empty()) {
    auto [first, last] =
      std::minmax_element(log.events.begin(), log.events.end(),
                          [](const event& a, const event& b) { return a.t < b.t; });
    span = last->t - first->t;
  }
  run_series series = compute_series(log.events, bucket_ms_for(span));

  temporary_directory work(error);
  if (work.path().empty())
    return report_failed;
  std::vector<plot> plots;
  if (!draw_plots(series, work.path(), plots, error))
    return report_failed;

  // Written beside and renamed, so a reader never sees half a page.
  fs::path target = run_dir / "report.html";
  fs::path partial = run_dir / "report.html.partial";
  {
    std::ofstream out(partial, std::ios::binary | std::ios::trunc);
    out << report_html(result, log, series, plots);
    if (!out.flush()) {
      error = "cannot write " + partial.string();
      return report_failed;
    }
  }
  std::error_code renamed;
  fs::rename(partial, target, renamed);
  if (renamed) {
    error = "cannot write " + target.string() + ": " + renamed.message();
    return report_failed;
  }
  return report_written;
}

} // namespace ferry::sim_report
