// The ferry-sim report: reading events.jsonl, the series the plots show,
// HTML escaping, and a whole report drawn by gnuplot from a made-up run.

#include "simulations/harness/report.hpp"
#include "synthetic_run.hpp"

#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

using namespace ferry::sim_report;
namespace fs = std::filesystem;

namespace {

constexpr std::int64_t t0 = 1764900000000;

event at(std::int64_t ms, std::string ev) {
  event e;
  e.t = t0 + ms;
  e.ev = std::move(ev);
  return e;
}

event transfer(std::int64_t ms, std::string ev, std::string dir, std::string oid) {
  event e = at(ms, std::move(ev));
  e.dir = std::move(dir);
  e.oid = std::move(oid);
  return e;
}

event done(std::int64_t ms, std::string dir, std::string oid, std::int64_t bytes,
           std::int64_t took) {
  event e = transfer(ms, "done", std::move(dir), std::move(oid));
  e.bytes = bytes;
  e.ms = took;
  return e;
}

event errored(std::int64_t ms, std::string ev, std::string oid, std::string error) {
  event e = transfer(ms, std::move(ev), "upload", std::move(oid));
  e.error = std::move(error);
  return e;
}

event with_run(event e, std::int64_t run) {
  e.run = run;
  return e;
}

event with_kind(event e, std::string kind) {
  e.kind = std::move(kind);
  return e;
}

// A directory of its own, removed afterwards.
struct scratch_dir {
  fs::path path;
  scratch_dir() {
    std::string pattern = (fs::temp_directory_path() / "ferry-sim-report-test.XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path = pattern;
  }
  ~scratch_dir() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
};

std::string read_text(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// "#1f77b4" as gnuplot's SVG writes it: "rgb( 31, 119, 180)".
std::string svg_colour(const std::string& hex) {
  char out[32];
  unsigned r = 0, g = 0, b = 0;
  std::sscanf(hex.c_str(), "#%02x%02x%02x", &r, &g, &b);
  std::snprintf(out, sizeof out, "rgb(%3u, %3u, %3u)", r, g, b);
  return out;
}

// The shapes gnuplot drew in `colour`: each one's list of points (from the
// d= of a path or the points= of a polygon, pen moves included).
std::vector<std::vector<std::pair<double, double>>> shapes_in(const std::string& svg,
                                                              const std::string& colour) {
  std::vector<std::vector<std::pair<double, double>>> shapes;
  std::string painted = "'" + svg_colour(colour) + "'";
  std::regex number_pair(R"((-?[0-9.]+),(-?[0-9.]+))");
  for (auto at = svg.find(painted); at != std::string::npos; at = svg.find(painted, at + 1)) {
    auto open = svg.rfind('<', at);
    auto close = svg.find("/>", at);
    std::string element = svg.substr(open, close - open);
    if (element.rfind("<path", 0) != 0 && element.rfind("<polygon", 0) != 0)
      continue;
    std::vector<std::pair<double, double>> points;
    for (std::sregex_iterator it(element.begin(), element.end(), number_pair), end; it != end; ++it)
      points.emplace_back(std::stod((*it)[1]), std::stod((*it)[2]));
    shapes.push_back(points);
  }
  return shapes;
}

// The part of `html` from the figure of plot `id` to its end.
std::string figure_of(const std::string& html, const std::string& id) {
  auto start = html.find("<figure id=\"plot-" + id + "\"");
  if (start == std::string::npos)
    return {};
  return html.substr(start, html.find("</figure>", start) - start);
}

std::vector<std::string> colours_of(const std::string& figure) {
  std::smatch match;
  REQUIRE(std::regex_search(figure, match, std::regex("data-colours=\"([^\"]*)\"")));
  std::istringstream words(match[1].str());
  std::vector<std::string> colours;
  for (std::string colour; words >> colour;)
    colours.push_back(colour);
  return colours;
}

} // namespace

TEST_CASE("events.jsonl lines are read, and bad lines are named by number") {
  std::istringstream in(
    R"({"t":1000,"ev":"run_start","run":1,"future":"ignored"})"
    "\n"
    R"({"t":1100,"ev":"done","dir":"upload","oid":"ab","bytes":2048,"ms":35.6,"attempt":1})"
    "\n"
    "\n"
    "not json at all\n"
    R"(["an","array"])"
    "\n"
    R"({"ev":"done"})"
    "\n"
    R"({"t":1200,"ev":7})"
    "\n"
    R"({"t":1300,"ev":"done","bytes":"many"})"
    "\n"
    R"({"t":1400,"ev":"something_new","whatever":[1,2]})"
    "\n");
  event_log log = parse_events(in);

  REQUIRE(log.events.size() == 3);
  CHECK(log.events[0].ev == "run_start");
  CHECK(log.events[0].run == 1);
  CHECK(log.events[1].dir == "upload");
  CHECK(log.events[1].bytes == 2048);
  CHECK(log.events[1].ms == 36); // 35.6 rounded
  CHECK(log.events[2].ev == "something_new");
  CHECK(log.problems == std::vector<std::string>{"line 4: not JSON", "line 5: not a JSON object",
                                                 "line 6: no numeric \"t\"",
                                                 "line 7: no string \"ev\"",
                                                 "line 8: \"bytes\" is not a number"});
}

TEST_CASE("percentiles are nearest-rank") {
  std::vector<std::int64_t> one_to_ten = {7, 3, 10, 1, 9, 2, 8, 4, 6, 5};
  // Sorted, the values are their ranks; the rank of p<q> is ceil(q/100 * 10).
  CHECK(percentile(one_to_ten, 50) == 5);
  CHECK(percentile(one_to_ten, 90) == 9);
  CHECK(percentile(one_to_ten, 99) == 10);
  CHECK(percentile(one_to_ten, 100) == 10);
  CHECK(percentile({42}, 1) == 42);
  CHECK(percentile({}, 50) == 0);
}

TEST_CASE("buckets are whole seconds, at most about 600 of them") {
  CHECK(bucket_ms_for(0) == 1000);
  CHECK(bucket_ms_for(600'000) == 1000);   // 10 minutes: 600 one-second buckets
  CHECK(bucket_ms_for(600'001) == 1000);   // still 600 whole seconds
  CHECK(bucket_ms_for(601'000) == 2000);   // 601 seconds would be 601 buckets
  CHECK(bucket_ms_for(3'600'000) == 6000); // an hour: 3600 s / 600
}

TEST_CASE("throughput is the bytes of done events per second of bucket") {
  std::vector<event> events = {done(100, "upload", "a", 1000, 5), done(900, "upload", "b", 3000, 5),
                               transfer(1200, "start", "upload", "c"),
                               done(2500, "upload", "c", 2000, 5)};
  run_series seconds = compute_series(events, 1000);
  CHECK(seconds.start == t0 + 100);
  CHECK(seconds.end == t0 + 2500);
  // Buckets start at the first event (t = 100): [100,1100) [1100,2100) [2100,3100).
  CHECK(seconds.throughput == std::vector<double>{1000 + 3000, 0, 2000});

  run_series halves = compute_series(events, 500);
  // Half-second buckets from 100: the done at 900 is in [600,1100), the one at 2500 in [2100,2600).
  CHECK(halves.throughput == std::vector<double>{1000 * 2, 3000 * 2, 0, 0, 2000 * 2});
}

TEST_CASE("objects in flight: from start to done or fail, cleared by kills, averaged per bucket") {
  std::vector<event> events = {
    transfer(0, "start", "upload", "a"),
    transfer(100, "start", "upload", "b"),
    errored(200, "retry", "b", "io_error"), // b waits for its next attempt: still in flight
    transfer(300, "start", "upload", "b"),  // its second attempt is the same object
    done(1200, "upload", "a", 10, 5),
    // 2000-2999: no event, b still in flight
    transfer(3100, "start", "download", "a"), // the same oid the other way is another object
    with_run(at(3500, "kill"), 1),
    with_run(at(4000, "run_start"), 2),
    transfer(4100, "start", "upload", "d"),
    errored(4200, "fail", "d", "not_found"),
    transfer(4300, "start", "upload", "e"),
  };
  run_series series = compute_series(events, 1000);
  // Object-milliseconds in flight over each bucket's length.
  REQUIRE(series.in_flight.size() == 5);
  CHECK(series.in_flight[0] == Approx((100 * 1 + 900 * 2) / 1000.0));           // a; then a and b
  CHECK(series.in_flight[1] == Approx((200 * 2 + 800 * 1) / 1000.0));           // a done at 1200
  CHECK(series.in_flight[2] == Approx(1.0));                                    // b throughout
  CHECK(series.in_flight[3] == Approx((100 * 1 + 400 * 2 + 500 * 0) / 1000.0)); // killed at 3500
  // The last bucket ends at the last event (4300): d for 100 of its 300 ms.
  CHECK(series.in_flight[4] == Approx((100 * 0 + 100 * 1 + 100 * 0) / 300.0));

  // A last bucket that starts at the last event shows the count after it.
  events.push_back(transfer(5000, "start", "upload", "f"));
  CHECK(compute_series(events, 1000).in_flight.back() == Approx(2.0)); // e and f
}

TEST_CASE("retries and failures are counted per class and bucket") {
  std::vector<event> events = {
    errored(0, "retry", "a", "unavailable"), errored(300, "retry", "b", "unavailable"),
    errored(900, "retry", "a", "io_error"),  errored(1500, "fail", "a", "unavailable"),
    errored(2100, "retry", "c", ""),         errored(2200, "fail", "d", "not_found"),
  };
  run_series series = compute_series(events, 1000);
  using counts = std::vector<std::int64_t>;
  CHECK(series.retries ==
        std::map<std::string, counts>{{"unavailable", {2, 0, 0}},
                                      {"io_error", {1, 0, 0}},
                                      {"unknown", {0, 0, 1}}}); // no error class given
  CHECK(series.failures ==
        std::map<std::string, counts>{{"unavailable", {0, 1, 0}}, {"not_found", {0, 0, 1}}});
}

TEST_CASE("latency percentiles are per direction, of done events only") {
  std::vector<event> events;
  for (int i = 1; i <= 100; ++i)
    events.push_back(done(i, "upload", "u" + std::to_string(i), 1, i * 10));
  events.push_back(done(200, "download", "d", 1, 7));
  event slow_retry = errored(300, "retry", "x", "io_error");
  slow_retry.ms = 99'999;
  events.push_back(slow_retry);

  run_series series = compute_series(events, 1000);
  REQUIRE(series.latency.size() == 2);
  const latency_summary& upload = series.latency.at("upload");
  // Upload times are 10, 20, ..., 1000: p<q> is the q-th value, q * 10 ms.
  CHECK(upload.count == 100);
  CHECK(upload.p50 == 50 * 10);
  CHECK(upload.p90 == 90 * 10);
  CHECK(upload.p99 == 99 * 10);
  CHECK(upload.max == 100 * 10);
  const latency_summary& download = series.latency.at("download");
  CHECK(download.count == 1);
  CHECK(download.p50 == 7);
  CHECK(download.max == 7);
}

TEST_CASE("time to recover: from a kill to the first done after the next run_start") {
  std::vector<event> events = {
    with_run(at(0, "run_start"), 1),
    with_run(at(1000, "kill"), 1),
    done(1200, "upload", "late", 1, 1), // reported after the kill, before the restart
    with_run(at(2500, "run_start"), 2),
    transfer(2600, "start", "upload", "a"),
    done(3700, "upload", "a", 1, 1),
    with_run(at(5000, "kill"), 2),
    with_run(at(5400, "run_start"), 3),
    with_run(at(9000, "kill"), 3), // nothing done in run 3, and no run after it
  };
  run_series series = compute_series(events, 1000);
  REQUIRE(series.kills.size() == 3);
  CHECK(series.kills[1].run == 2);
  REQUIRE(series.recoveries.size() == 3);
  CHECK(series.recoveries[0].restart_ms == 2500 - 1000);
  CHECK(series.recoveries[0].recover_ms == 3700 - 1000);
  CHECK(series.recoveries[1].restart_ms == 5400 - 5000);
  CHECK_FALSE(series.recoveries[1].recover_ms.has_value());
  CHECK_FALSE(series.recoveries[2].restart_ms.has_value());
  CHECK_FALSE(series.recoveries[2].recover_ms.has_value());
}

TEST_CASE("fault windows pair starts and ends of a kind, and an open one ends at the last event") {
  std::vector<event> events = {
    with_kind(at(100, "fault_start"), "blackhole"),
    with_kind(at(200, "fault_start"), "latency"),
    with_kind(at(250, "fault_start"), "latency"), // overlaps the first latency window
    with_kind(at(300, "fault_end"), "reset"),     // never started: ignored
    with_kind(at(500, "fault_end"), "blackhole"),
    with_kind(at(600, "fault_start"), "blackhole"),
    with_kind(at(700, "fault_end"), "blackhole"),
    with_kind(at(800, "fault_end"), "latency"),
    at(900, "run_end"),
  };
  run_series series = compute_series(events, 1000);
  REQUIRE(series.faults.size() == 4);
  // In order of start; an end closes the earliest open window of its kind.
  CHECK(series.faults[0].kind == "blackhole");
  CHECK(series.faults[0].from == t0 + 100);
  CHECK(series.faults[0].to == t0 + 500);
  CHECK(series.faults[1].kind == "latency");
  CHECK(series.faults[1].from == t0 + 200);
  CHECK(series.faults[1].to == t0 + 800);
  CHECK(series.faults[2].kind == "latency");
  CHECK(series.faults[2].from == t0 + 250);
  CHECK(series.faults[2].to == t0 + 900); // never closed: the last event
  CHECK(series.faults[3].kind == "blackhole");
  CHECK(series.faults[3].from == t0 + 600);
  CHECK(series.faults[3].to == t0 + 700);
}

TEST_CASE("html_escape replaces every character HTML gives a meaning") {
  CHECK(html_escape("plain text 1-2") == "plain text 1-2");
  CHECK(html_escape(R"(<a href="x">Tom & 'Jerry'</a>)") ==
        "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;");
}

TEST_CASE("the page escapes every string of result.json and events.jsonl") {
  nlohmann::json result = {
    {"scenario", {{"name", "<b>bold</b> & \"q\""}}},
    {"seed", 3},
    {"versions", {{"ferry", "1.0<beta>"}}},
    {"verdict", "fail"},
    {"invariants",
     {{{"name", "intact<"}, {"passed", false}, {"evidence", {"<script>alert(1)</script>"}}}}},
    {"counts", {{"objects&", 2}}},
  };
  event_log log;
  log.problems.push_back("line 2: <odd>");
  std::string html = report_html(result, log, run_series{}, {});
  CHECK(html.find("<b>bold") == std::string::npos);
  CHECK(html.find("<script>") == std::string::npos);
  CHECK(html.find("<odd>") == std::string::npos);
  CHECK(html.find("&lt;b&gt;bold&lt;/b&gt; &amp; &quot;q&quot;") != std::string::npos);
  CHECK(html.find("&lt;script&gt;alert(1)&lt;/script&gt;") != std::string::npos);
  CHECK(html.find("1.0&lt;beta&gt;") != std::string::npos);
  CHECK(html.find("intact&lt;") != std::string::npos);
  CHECK(html.find("objects&amp;") != std::string::npos);
  CHECK(html.find("line 2: &lt;odd&gt;") != std::string::npos);
  CHECK(html.find("FAIL") != std::string::npos);
}

TEST_CASE("a report of a run with kills, a fault window and retries has every plot, with data") {
  scratch_dir dir;
  testing::synthetic_run run = testing::write_synthetic_run(dir.path);
  std::string error;
  REQUIRE(write_report(dir.path, error) == report_written);
  INFO(error);
  std::string html = read_text(dir.path / "report.html");
  CHECK_FALSE(fs::exists(dir.path / "report.html.partial"));

  event_log log;
  {
    std::ifstream in(dir.path / "events.jsonl");
    log = parse_events(in);
  }
  REQUIRE(log.problems.empty());
  run_series series =
    compute_series(log.events, bucket_ms_for(log.events.back().t - log.events.front().t));
  std::size_t buckets = series.throughput.size();
  REQUIRE(buckets > 30);

  // Time plots: one line per series, drawn as steps (two points a bucket),
  // going up and down (an all-zero series would be one flat line).
  for (const std::string id : {"throughput", "in_flight", "errors"}) {
    INFO("plot " << id);
    std::string figure = figure_of(html, id);
    REQUIRE(figure.find("<svg") != std::string::npos);
    std::vector<std::string> colours = colours_of(figure);
    std::size_t expected =
      id == std::string{"errors"} ? run.retry_classes.size() + run.failure_classes.size() : 1;
    CHECK(colours.size() == expected);
    for (const std::string& colour : colours) {
      INFO("colour " << colour);
      auto shapes = shapes_in(figure, colour);
      REQUIRE(shapes.size() == 1);
      CHECK(shapes[0].size() >= buckets);
      std::set<double> heights;
      for (auto [x, y] : shapes[0])
        heights.insert(y);
      CHECK(heights.size() >= 3);
    }
    // A labelled dashed line per kill, a labelled band per fault window.
    for (std::size_t k = 1; k <= run.kills.size(); ++k)
      CHECK(figure.find("<text>kill " + std::to_string(k) + "</text>") != std::string::npos);
    CHECK(figure.find("<text>kill " + std::to_string(run.kills.size() + 1) + "</text>") ==
          std::string::npos);
    CHECK(figure.find("stroke-dasharray") != std::string::npos);
    for (const std::string& kind : run.fault_kinds)
      CHECK(figure.find("<text>" + kind + "</text>") != std::string::npos);
  }
  // Every error class has its own line, named in the legend.
  std::string errors = figure_of(html, "errors");
  for (const std::string& error_class : run.retry_classes)
    CHECK(errors.find("<text>retry " + error_class + "</text>") != std::string::npos);
  for (const std::string& error_class : run.failure_classes)
    CHECK(errors.find("<text>fail " + error_class + "</text>") != std::string::npos);

  // Bar plots: one bar per colour and row (a direction, a kill), plus the
  // legend's sample.
  std::map<std::string, std::size_t> rows = {{"latency", 2}, {"recovery", run.kills.size()}};
  for (const auto& [id, row_count] : rows) {
    INFO("plot " << id);
    std::string figure = figure_of(html, id);
    REQUIRE(figure.find("<svg") != std::string::npos);
    for (const std::string& colour : colours_of(figure)) {
      INFO("colour " << colour);
      CHECK(shapes_in(figure, colour).size() == row_count + 1);
    }
  }

  // Self-contained: nothing loaded from elsewhere, no script.
  CHECK(html.find("src=") == std::string::npos);
  CHECK(html.find("<script") == std::string::npos);
  CHECK(html.find("<link") == std::string::npos);
  std::regex reference(R"(href=['"]([^'"]*)['"])");
  for (std::sregex_iterator it(html.begin(), html.end(), reference), end; it != end; ++it)
    CHECK((*it)[1].str().rfind('#', 0) == 0);
  // The strings of result.json are escaped.
  CHECK(html.find(html_escape(run.scenario_name)) != std::string::npos);
  CHECK(html.find(html_escape(run.evidence)) != std::string::npos);
}

TEST_CASE("write_report names what is missing") {
  scratch_dir dir;
  std::string error;
  CHECK(write_report(dir.path, error) == report_bad_input);
  CHECK(error.find("result.json") != std::string::npos);

  std::ofstream(dir.path / "result.json") << R"({"verdict":"pass"})";
  CHECK(write_report(dir.path, error) == report_bad_input);
  CHECK(error.find("events.jsonl") != std::string::npos);

  std::ofstream(dir.path / "result.json") << "[1, 2";
  CHECK(write_report(dir.path, error) == report_bad_input);
  CHECK(error.find("not a JSON object") != std::string::npos);
}

TEST_CASE("unreadable event lines are listed in the page, and the rest is still drawn") {
  scratch_dir dir;
  std::ofstream(dir.path / "result.json") << R"({"verdict":"pass","scenario":{"name":"x"}})";
  std::ofstream(dir.path / "events.jsonl")
    << R"({"t":1000,"ev":"start","dir":"upload","oid":"a"})"
    << "\n{broken\n"
    << R"({"t":2500,"ev":"done","dir":"upload","oid":"a","bytes":10,"ms":1500})"
    << "\n";
  std::string error;
  REQUIRE(write_report(dir.path, error) == report_written);
  std::string html = read_text(dir.path / "report.html");
  CHECK(html.find("line 2: not JSON") != std::string::npos);
  CHECK(html.find("<figure id=\"plot-throughput\"") != std::string::npos);
}

TEST_CASE("runs with no events, one instant, or no transfers still get a report") {
  std::vector<std::pair<std::string, std::string>> runs = {
    {"no events", ""},
    {"one instant", R"({"t":1000,"ev":"run_start","run":1})"
                    "\n"
                    R"({"t":1000,"ev":"kill","run":1})"},
    {"no transfers", R"({"t":1000,"ev":"run_start","run":1})"
                     "\n"
                     R"({"t":4000,"ev":"run_end","run":1,"rc":0})"},
    // A kill and a next run, but no object done after it (ferry wrote no
    // events): the recovery plot has its first bars only.
    {"kill without transfers", R"({"t":1000,"ev":"run_start","run":1})"
                               "\n"
                               R"({"t":2000,"ev":"kill","run":1})"
                               "\n"
                               R"({"t":2100,"ev":"run_start","run":2})"
                               "\n"
                               R"({"t":4000,"ev":"run_end","run":2,"rc":0})"},
  };
  for (const auto& [name, events] : runs) {
    INFO(name);
    scratch_dir dir;
    std::ofstream(dir.path / "result.json") << R"({"verdict":"fail"})";
    std::ofstream(dir.path / "events.jsonl") << events << "\n";
    std::string error;
    CHECK(write_report(dir.path, error) == report_written);
    INFO(error);
    std::string html = read_text(dir.path / "report.html");
    bool drawn = !events.empty();
    CHECK((html.find("<figure id=\"plot-throughput\"") != std::string::npos) == drawn);
  }
}

TEST_CASE("without gnuplot in PATH the report says so") {
  scratch_dir dir;
  testing::write_synthetic_run(dir.path);
  std::string saved = std::getenv("PATH") ? std::getenv("PATH") : "";
  ::setenv("PATH", dir.path.c_str(), 1);
  std::string error;
  int status = write_report(dir.path, error);
  ::setenv("PATH", saved.c_str(), 1);
  CHECK(status == report_failed);
  CHECK(error.find("gnuplot") != std::string::npos);
  CHECK_FALSE(fs::exists(dir.path / "report.html"));
}
