#include "simulations/harness/event_log.hpp"
#include "simulations/harness/invariants.hpp"
#include "simulations/harness/workload.hpp"

#include <catch2/catch.hpp>

#include "test_support.hpp"

#include <cctype>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace ferry::harness;
using ferry::testing::temp_dir;
using nlohmann::json;

namespace {

std::vector<planned_object> three_objects() {
  auto scene = scenario::parse(R"({"workload": {"objects": 3, "sizes": {"uniform": [10, 100]}}})");
  REQUIRE(scene.ok());
  auto plan = plan_workload(*scene, 9);
  REQUIRE(plan.ok());
  return plan->objects;
}

void put(const destination& where, const planned_object& object) {
  const auto path = where.path_of(object);
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  object_bytes(object, [&](const unsigned char* data, size_t n) {
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(n));
  });
}

void flip_first_byte(const fs::path& path) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  char c = 0;
  f.read(&c, 1);
  f.seekp(0);
  c = static_cast<char>(c ^ 0x5a);
  f.write(&c, 1);
}

bool mentions(const invariant_result& r, const std::string& text) {
  for (const auto& line : r.evidence) {
    if (line.find(text) != std::string::npos)
      return true;
  }
  return false;
}

} // namespace

TEST_CASE("all_objects_intact names missing, short and altered objects", "[harness][invariants]") {
  temp_dir dir;
  const destination where{{dir.path}};
  const auto objects = three_objects();
  for (const auto& o : objects)
    put(where, o);
  auto ok = check_all_objects_intact(objects, where);
  CHECK(ok.passed);
  CHECK(mentions(ok, "3 objects"));
  CHECK(count_arrived(objects, where) == 3);

  fs::remove(where.path_of(objects[0]));
  flip_first_byte(where.path_of(objects[1]));
  fs::resize_file(where.path_of(objects[2]), 5);
  auto bad = check_all_objects_intact(objects, where);
  CHECK_FALSE(bad.passed);
  CHECK(mentions(bad, objects[0].oid + ": missing"));
  CHECK(mentions(bad, objects[1].oid + ": content hashes to"));
  CHECK(mentions(bad, objects[2].oid + ": has 5 bytes"));
  CHECK(count_arrived(objects, where) == 1);
}

TEST_CASE("no_partial_visible flags files under a final name that are short or wrong",
          "[harness][invariants]") {
  temp_dir dir;
  const destination where{{dir.path}};
  const auto objects = three_objects();
  partial_watch watch(objects);
  for (const auto& o : objects)
    put(where, o);
  // A hidden partial file is not visible as an object.
  std::ofstream(where.path_of(objects[0]).parent_path() / ("." + objects[0].oid + ".ferry-partial"))
    << "xx";
  watch.sample(where, "first");
  CHECK(watch.result().passed);

  fs::resize_file(where.path_of(objects[1]), 3);
  flip_first_byte(where.path_of(objects[2]));
  watch.sample(where, "second");
  const auto r = watch.result();
  CHECK_FALSE(r.passed);
  CHECK(mentions(r, objects[1].oid + ": "));
  CHECK(mentions(r, "held 3 of"));
  CHECK(mentions(r, "(second)"));
  CHECK(mentions(r, objects[2].oid + ": "));
  CHECK_FALSE(mentions(r, objects[0].oid));
  CHECK(watch.samples() == 2);
}

TEST_CASE("honest_exit_codes fails only for a run that exited 0 with something missing",
          "[harness][invariants]") {
  std::vector<run_record> runs(3);
  runs[0] = {1, 137, true, false, {"x: missing at the destination"}};
  runs[1] = {2, 0, false, false, {}};
  CHECK(check_honest_exit_codes({runs[0], runs[1]}).passed);
  runs[2] = {3, 0, false, false, {"abc: missing at the destination"}};
  const auto r = check_honest_exit_codes(runs);
  CHECK_FALSE(r.passed);
  CHECK(mentions(r, "run 3 exited 0, but abc: missing"));
}

TEST_CASE("sent_at_most_once_plus_kills allows one PUT per kill and per faulted request",
          "[harness][invariants]") {
  const auto objects = three_objects();
  const std::string& a = objects[0].oid;
  const std::string& b = objects[1].oid;
  const std::string log = "2026-01-01T00:00:00.000Z fault status=503 on upload " + b + "\n" +
                          "2026-01-01T00:00:00.001Z fault bandwidth_bytes_per_s=10 on upload " + a +
                          "\n" + "2026-01-01T00:00:00.002Z PUT /x -> 200\n";
  const auto faulted = faulted_uploads(log);
  CHECK(faulted.count(a) == 0);
  CHECK(faulted.at(b) == 1);
  CHECK(check_sent_at_most_once(objects, {{a, 2}, {b, 3}}, faulted, 1).passed);
  const auto r =
    check_sent_at_most_once(objects, {{a, 3}, {b, 3}, {std::string(64, 'f'), 1}}, faulted, 1);
  CHECK_FALSE(r.passed);
  CHECK(mentions(r, a + ": 3 PUTs, allowed 2"));
  CHECK_FALSE(mentions(r, b));
  CHECK(mentions(r, std::string(64, 'f') + ": 1 PUTs of an object not in the workload"));
}

TEST_CASE("sent_at_most_once_plus_kills counts a pull's GETs against its faulted downloads",
          "[harness][invariants]") {
  const auto objects = three_objects();
  const std::string& a = objects[0].oid;
  const std::string& b = objects[1].oid;
  const std::string log =
    "2026-01-01T00:00:00.000Z fault reset_after_bytes=65536 on download " + b + "\n" +
    "2026-01-01T00:00:00.001Z fault status=500 on upload " + a + "\n" +
    "2026-01-01T00:00:00.002Z fault bandwidth_bytes_per_s=10 on download " + a + "\n";
  const auto faulted = faulted_downloads(log);
  CHECK(faulted.count(a) == 0);
  CHECK(faulted.at(b) == 1);
  CHECK(faulted_uploads(log).count(b) == 0);
  CHECK(check_sent_at_most_once(objects, {{a, 1}, {b, 2}}, faulted, 0, std::nullopt, "GET").passed);
  const auto r =
    check_sent_at_most_once(objects, {{a, 2}, {b, 2}}, faulted, 0, std::nullopt, "GET");
  CHECK_FALSE(r.passed);
  CHECK(mentions(r, a + ": 2 GETs, allowed 1"));
  CHECK_FALSE(mentions(r, b));
}

TEST_CASE("sent_at_most_once_plus_kills allows one more PUT in all per connection the proxy reset",
          "[harness][invariants]") {
  const auto objects = three_objects();
  const std::string& a = objects[0].oid;
  const std::string& b = objects[1].oid;
  // a and b each went once over their allowance of 1: two extra PUTs.
  const std::map<std::string, int64_t> puts = {{a, 2}, {b, 2}};
  const auto held = check_sent_at_most_once(objects, puts, {}, 0, int64_t{2});
  CHECK(held.passed);
  CHECK(mentions(held, "per connection the fault proxy reset"));
  const auto failed = check_sent_at_most_once(objects, puts, {}, 0, int64_t{1});
  CHECK_FALSE(failed.passed);
  CHECK(mentions(failed, a + ": 2 PUTs, allowed 1"));
  CHECK(mentions(failed, b + ": 2 PUTs, allowed 1"));
  CHECK(mentions(failed, "2 PUTs beyond those allowances, more than the 1 connections"));
  // Without the proxy nothing is shared out.
  CHECK_FALSE(check_sent_at_most_once(objects, {{a, 2}}, {}, 0).passed);
}

TEST_CASE("report_matches compares ferry's report with what the harness found",
          "[harness][invariants]") {
  const auto objects = three_objects();
  int64_t bytes = 0;
  for (const auto& o : objects)
    bytes += o.size;
  const auto group = [](int64_t n, int64_t b) { return json{{"objects", n}, {"bytes", b}}; };
  json report = {{"copied", group(2, bytes - objects[0].size)},
                 {"present", group(1, objects[0].size)},
                 {"verified", group(0, 0)},
                 {"failed", group(0, 0)},
                 {"corrupt", group(0, 0)},
                 {"pending", group(0, 0)},
                 {"not_retried", group(0, 0)},
                 {"outcome", "complete"}};
  CHECK(check_report_matches(report, objects, 3, 1).passed);
  // The harness saw another number of objects there before the run.
  auto r = check_report_matches(report, objects, 3, 2);
  CHECK_FALSE(r.passed);
  CHECK(mentions(r, "the harness saw 2 there"));
  r = check_report_matches(report, objects, 3, 0);
  CHECK_FALSE(r.passed);
  CHECK(mentions(r, "the report counts 1 objects present at the destination (and 0 not tried "
                    "again), the harness saw 0 there"));
  // A failed object of an earlier run, at the destination but not asked about.
  json dead_letter = report;
  dead_letter["copied"] = group(1, objects[1].size);
  dead_letter["failed"] = group(1, objects[2].size);
  dead_letter["not_retried"] = group(1, objects[2].size);
  dead_letter["outcome"] = "completed_with_failures";
  CHECK(check_report_matches(dead_letter, objects, 3, 2).passed);
  CHECK_FALSE(check_report_matches(dead_letter, objects, 3, 3).passed);
  // Not complete, yet nothing failed, corrupt or pending.
  dead_letter["failed"] = group(0, 0);
  dead_letter["copied"] = group(2, bytes - objects[0].size);
  r = check_report_matches(dead_letter, objects, 3, 2);
  CHECK_FALSE(r.passed);
  CHECK(mentions(r, "with no failed, corrupt or pending object"));
  // "complete" while an object is not intact.
  r = check_report_matches(report, objects, 2, 1);
  CHECK_FALSE(r.passed);
  CHECK(mentions(r, "outcome is 'complete', the harness found 2 of 3"));
  // An object counted twice.
  report["copied"] = group(3, bytes);
  r = check_report_matches(report, objects, 3, 1);
  CHECK_FALSE(r.passed);
  CHECK(mentions(r, "the report counts 4 objects"));
  CHECK_FALSE(check_report_matches(json(), objects, 3, 0).passed);
}

TEST_CASE("within_limits checks duration and throughput", "[harness][invariants]") {
  expect_spec expect;
  expect.max_duration_s = 10;
  expect.min_throughput_bytes_per_s = 1000;
  CHECK(check_within_limits(expect, 5, 2000, false).passed);
  CHECK_FALSE(check_within_limits(expect, 11, 2000, false).passed);
  CHECK_FALSE(check_within_limits(expect, 5, 500, false).passed);
  CHECK_FALSE(check_within_limits(expect, 5, 2000, true).passed);
}

TEST_CASE("evidence is capped with a count of what was left out", "[harness][invariants]") {
  invariant_result r{"x"};
  for (int i = 0; i < 25; ++i)
    r.fail("line " + std::to_string(i));
  r.finish();
  CHECK(r.evidence.size() == invariant_result::max_evidence + 1);
  CHECK(r.evidence.back() == "... and 5 more");
}

TEST_CASE("events.jsonl holds the harness's and ferry's events sorted by time",
          "[harness][events]") {
  temp_dir dir;
  const fs::path ferry_events = dir.path / "ferry.jsonl";
  std::ofstream(ferry_events) << R"({"t":150,"ev":"start","oid":"a"})"
                              << "\nnot json\n"
                              << R"({"ev":"no time"})"
                              << "\n";
  event_log log;
  log.add({{"t", 200}, {"ev", "run_end"}, {"run", 1}, {"rc", 0}});
  log.add({{"t", 100}, {"ev", "run_start"}, {"run", 1}});
  log.kill(1);
  REQUIRE(log.write(dir.path / "events.jsonl", ferry_events));
  std::ifstream in(dir.path / "events.jsonl");
  std::vector<std::string> kinds;
  for (std::string line; std::getline(in, line);)
    kinds.push_back(json::parse(line)["ev"].get<std::string>());
  CHECK(kinds == std::vector<std::string>{"run_start", "start", "run_end", "kill"});
}

TEST_CASE("bridge_uploads counts each upload and the ones not answered cleanly",
          "[harness][invariants]") {
  const auto objects = three_objects();
  const std::string& a = objects[0].oid;
  const std::string& b = objects[1].oid;
  const std::string& c = objects[2].oid;
  const auto start = [](int pid, const std::string& command, const std::string& oid) {
    return json{{"event", "start"},
                {"pid", pid},
                {"command", command},
                {"at_ms", 1},
                {"request", {{"oid", oid}, {"path", "/x"}}}}
      .dump();
  };
  const auto end = [](int pid, bool ok, const json& fault, bool cooldown = false) {
    return json{{"event", "end"}, {"pid", pid},    {"command", "upload"},
                {"at_ms", 2},     {"ok", ok},      {"code", ok ? 0 : 502},
                {"fault", fault}, {"valid", true}, {"cooldown", cooldown},
                {"exit", 0}}
      .dump();
  };
  std::string upper = a;
  for (auto& ch : upper)
    ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  const std::string log = start(10, "upload", a) + "\n" + end(10, false, "bad_gateway") + "\n" +
                          start(11, "upload", upper) + "\n" + end(11, true, nullptr) + "\n" +
                          start(12, "upload", b) + "\n" + end(12, true, "noise") + "\n" +
                          start(13, "exists", c) + "\n" + "not json\n" + start(14, "upload", b) +
                          "\n" + end(14, false, nullptr, true) + "\n" +
                          // No end line: a hang, or killed with ferry; then pid 15 again.
                          start(15, "upload", c) + "\n" + start(15, "upload", c) + "\n" +
                          end(15, true, nullptr) + "\n" + start(16, "upload", b) + "\n";
  const auto counted = bridge_uploads(log);
  CHECK(counted.uploads.at(a) == 2);
  CHECK(counted.uploads.at(b) == 3);
  CHECK(counted.uploads.at(c) == 2);
  CHECK(counted.faulted.at(a) == 1);
  // noise, the cooldown's 429 and the upload with no end line.
  CHECK(counted.faulted.at(b) == 3);
  CHECK(counted.faulted.at(c) == 1);
  CHECK(check_sent_at_most_once(objects, counted.uploads, counted.faulted, 0).passed);
  CHECK_FALSE(check_sent_at_most_once(objects, counted.uploads, {}, 0).passed);
}

TEST_CASE("radosgw_uploads counts single PUTs and multipart starts of the store's keys",
          "[harness][invariants]") {
  const auto objects = three_objects();
  const std::string& a = objects[0].oid;
  const std::string& b = objects[1].oid;
  const auto line = [](const std::string& request, int status) {
    return "2026-12-05T14:00:34.112+0000 7fc1 1 beast: 0x7fc1: 127.0.0.1 - ferry-test "
           "[05/Dec/2026:14:00:34.072 +0000] \"" +
           request + " HTTP/1.1\" " + std::to_string(status) + " 0 - \"ferry\" - latency=0.1s\n";
  };
  const auto key = [](const std::string& oid) {
    return "/bkt/pre/" + oid.substr(0, 2) + "/" + oid.substr(2, 2) + "/" + oid;
  };
  const std::string log =
    line("PUT " + key(a), 200) + line("PUT " + key(a), 503) + line("HEAD " + key(a), 200) +
    line("POST " + key(b) + "?uploads", 200) +
    line("PUT " + key(b) + "?partNumber=1&uploadId=x", 200) +
    line("POST " + key(b) + "?uploadId=x", 200) +
    line("PUT /bkt/other/" + a.substr(0, 2) + "/" + a.substr(2, 2) + "/" + a, 200) + "PUT " +
    key(b) + " not a request line\n";
  const auto counted = radosgw_uploads(log, "bkt/pre");
  CHECK(counted.uploads.at(a) == 2);
  CHECK(counted.faulted.at(a) == 1);
  CHECK(counted.uploads.at(b) == 1);
  CHECK(counted.faulted.count(b) == 0);
  CHECK(check_sent_at_most_once(objects, counted.uploads, counted.faulted, 0).passed);
  CHECK_FALSE(check_sent_at_most_once(objects, counted.uploads, {}, 0).passed);
}

TEST_CASE("sim_requests reads answered requests with arrival and Retry-After",
          "[harness][invariants]") {
  const std::string log = "2026-01-01T00:00:01.500Z listening on http://127.0.0.1:1\n"
                          "2026-01-01T00:00:01.500Z fault status=429 on batch\n"
                          "2026-01-01T00:00:01.500Z POST /sim.git/info/lfs/objects/batch -> 429 "
                          "arrived_ms=1767225601490 retry_after=2\n"
                          "2026-01-01T00:00:02.000Z PUT /x -> 200 arrived_ms=1767225601900\n";
  const auto requests = sim_requests(log);
  REQUIRE(requests.size() == 2u);
  CHECK(requests[0].method == "POST");
  CHECK(requests[0].path == "/sim.git/info/lfs/objects/batch");
  CHECK(requests[0].status == 429);
  CHECK(requests[0].answered_ms == 1767225601500);
  CHECK(requests[0].arrived_ms == 1767225601490);
  CHECK(requests[0].retry_after_s == 2);
  CHECK(requests[1].retry_after_s == -1);
  CHECK(requests[1].answered_ms == 1767225602000);
}

TEST_CASE("no_request_during_cooldown finds requests inside a Retry-After",
          "[harness][invariants]") {
  auto request = [](std::string path, long status, int64_t arrived, int64_t answered,
                    int64_t retry_after = -1) {
    sim_request r;
    r.method = "POST";
    r.path = std::move(path);
    r.status = status;
    r.arrived_ms = arrived;
    r.answered_ms = answered;
    r.retry_after_s = retry_after;
    return r;
  };
  const std::string batch = "/sim.git/info/lfs/objects/batch";
  // Answered 429 at 10,000 ms asking for 2 s: the cooldown is 10,000-12,000.
  const std::vector<sim_request> held = {
    request(batch, 429, 9990, 10000, 2),
    request(batch, 200, 10020, 10030),          // on the wire when the answer left
    request("/stats", 200, 11000, 11000),       // the harness's own
    request("/repo1.git/x", 200, 11000, 11001), // another repository's process
    request(batch, 200, 12000, 12010),
  };
  CHECK(check_no_request_during_cooldown(held, {}, 10000, 50).passed);

  auto early = held;
  early.push_back(request(batch, 429, 10010, 10020, 2)); // a second cooldown over the first
  early.push_back(request(batch, 200, 11500, 11510));
  const auto r = check_no_request_during_cooldown(early, {}, 10000, 50);
  CHECK_FALSE(r.passed);
  CHECK(r.evidence.size() == 1u); // named once
  CHECK(mentions(r, "POST " + batch +
                      " arrived at 00:00:11.500, inside the cooldown 00:00:10.000 - "
                      "00:00:12.000 of POST " +
                      batch + " answered 429 with Retry-After: 2"));
  // A run that started after the answer knows nothing of it.
  CHECK(check_no_request_during_cooldown(early, {11200}, 10000, 50).passed);
  // A Retry-After beyond ferry.maxRetryWait fails its object and sets no cooldown.
  CHECK(check_no_request_during_cooldown(early, {}, 1000, 50).passed);
}
