#include "simulations/harness/invariants.hpp"

#include "store/os/sha256.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <regex>
#include <sstream>

namespace ferry::harness {

namespace fs = std::filesystem;
using nlohmann::json;

void invariant_result::fail(const std::string& line) {
  passed = false;
  if (evidence.size() < max_evidence)
    evidence.push_back(line);
  else
    ++left_out;
}

void invariant_result::finish() {
  if (left_out > 0)
    evidence.push_back("... and " + std::to_string(left_out) + " more");
  left_out = 0;
}

json invariant_result::to_json() const {
  return {{"name", name}, {"passed", passed}, {"evidence", evidence}};
}

const fs::path& destination::root_of(const planned_object& object) const {
  if (roots.size() == 1)
    return roots.front();
  return roots.at(static_cast<size_t>(object.repository));
}

fs::path destination::path_of(const planned_object& object) const {
  return root_of(object) / object.oid.substr(0, 2) / object.oid.substr(2, 2) / object.oid;
}

object_state inspect_file(const fs::path& path) {
  object_state state;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno != ENOENT && errno != ENOTDIR) {
      state.exists = true;
      state.error = std::strerror(errno);
    }
    return state;
  }
  state.exists = true;
  sha256 hash;
  std::vector<char> buffer(size_t{1} << 20);
  for (;;) {
    const ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      state.error = std::strerror(errno);
      break;
    }
    if (n == 0)
      break;
    hash.update(buffer.data(), static_cast<size_t>(n));
  }
  ::close(fd);
  state.size = hash.bytes();
  state.sha256 = hash.hex_digest();
  return state;
}

int64_t count_arrived(const std::vector<planned_object>& objects, const destination& where) {
  int64_t count = 0;
  struct stat st {};
  for (const auto& object : objects) {
    if (::stat(where.path_of(object).c_str(), &st) == 0 && st.st_size == object.size)
      ++count;
  }
  return count;
}

std::string object_problem(const planned_object& object, const destination& where) {
  const auto state = inspect_file(where.path_of(object));
  if (!state.exists)
    return object.oid + ": missing at the destination";
  if (!state.error.empty())
    return object.oid + ": cannot be read: " + state.error;
  if (state.size != object.size)
    return object.oid + ": has " + std::to_string(state.size) + " bytes, expected " +
           std::to_string(object.size);
  if (state.sha256 != object.oid)
    return object.oid + ": content hashes to " + state.sha256;
  return {};
}

invariant_result check_all_objects_intact(const std::vector<planned_object>& objects,
                                          const destination& where) {
  invariant_result out{"all_objects_intact"};
  int64_t bytes = 0;
  for (const auto& object : objects) {
    if (auto problem = object_problem(object, where); !problem.empty())
      out.fail(problem);
    else
      bytes += object.size;
  }
  out.finish();
  if (out.passed)
    out.evidence.push_back(std::to_string(objects.size()) + " objects (" + std::to_string(bytes) +
                           " bytes) at the destination, each hashed by the harness");
  return out;
}

partial_watch::partial_watch(const std::vector<planned_object>& objects) {
  for (const auto& object : objects)
    sizes_[object.oid] = object.size;
}

namespace {

bool is_oid(const std::string& name) {
  if (name.size() != 64)
    return false;
  for (char c : name) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
      return false;
  }
  return true;
}

} // namespace

void partial_watch::sample(const destination& where, const std::string& when) {
  ++samples_;
  for (const auto& root : where.roots) {
    std::error_code ec;
    fs::recursive_directory_iterator it(root, ec), end;
    for (; !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (!is_oid(name) || violations_.count(name) != 0)
        continue;
      // A final name is <root>/<oid[0:2]>/<oid[2:4]>/<oid>; anything else
      // (temporary files, other layouts) is not visible as an object.
      if (it->path() != root / name.substr(0, 2) / name.substr(2, 2) / name)
        continue;
      struct stat st {};
      if (::stat(it->path().c_str(), &st) != 0 || !S_ISREG(st.st_mode))
        continue;
      const seen_file seen{st.st_ino, static_cast<int64_t>(st.st_size),
                           int64_t{st.st_ctim.tv_sec} * 1000000000 + st.st_ctim.tv_nsec};
      if (auto known = intact_.find(name); known != intact_.end() && known->second == seen)
        continue;
      const auto state = inspect_file(it->path());
      if (!state.exists)
        continue; // gone since the listing: nothing visible any more
      const auto expected = sizes_.find(name);
      const std::string relative = fs::relative(it->path(), root).string();
      if (expected != sizes_.end() && state.size != expected->second) {
        violations_[name] = name + ": " + relative + " held " + std::to_string(state.size) +
                            " of " + std::to_string(expected->second) + " bytes (" + when + ")";
      } else if (state.sha256 != name) {
        violations_[name] =
          name + ": " + relative + " hashes to " + state.sha256 + " (" + when + ")";
      } else {
        intact_[name] = seen;
      }
    }
  }
}

invariant_result partial_watch::result() const {
  invariant_result out{"no_partial_visible"};
  for (const auto& [oid, line] : violations_)
    out.fail(line);
  out.finish();
  if (out.passed)
    out.evidence.push_back("every file seen under an object's final name was complete and hashed "
                           "to its name");
  return out;
}

invariant_result check_honest_exit_codes(const std::vector<run_record>& runs) {
  invariant_result out{"honest_exit_codes"};
  int zero = 0;
  for (const auto& run : runs) {
    if (run.rc != 0)
      continue;
    ++zero;
    for (const auto& problem : run.problems_after)
      out.fail("run " + std::to_string(run.run) + " exited 0, but " + problem);
  }
  out.finish();
  if (out.passed)
    out.evidence.push_back(std::to_string(zero) +
                           " run(s) exited 0, each leaving every object in place");
  return out;
}

namespace {

std::map<std::string, int64_t> faulted_requests(const std::string& sim_log,
                                                const std::regex& line) {
  std::map<std::string, int64_t> out;
  std::istringstream in(sim_log);
  std::string text;
  std::smatch m;
  while (std::getline(in, text)) {
    if (std::regex_search(text, m, line) && m[1] != "bandwidth_bytes_per_s")
      ++out[m[2]];
  }
  return out;
}

} // namespace

std::map<std::string, int64_t> faulted_uploads(const std::string& sim_log) {
  static const std::regex line(R"( fault (\w+)\S* on (?:upload|verify) ([0-9a-f]{64}))");
  return faulted_requests(sim_log, line);
}

std::map<std::string, int64_t> faulted_downloads(const std::string& sim_log) {
  static const std::regex line(R"( fault (\w+)\S* on download ([0-9a-f]{64}))");
  return faulted_requests(sim_log, line);
}

upload_counts bridge_uploads(const std::string& bridge_log) {
  upload_counts out;
  // A process logs start, then end (with the same pid); the oid is only in
  // the start line's request.
  std::map<int64_t, std::string> open;
  std::istringstream in(bridge_log);
  for (std::string text; std::getline(in, text);) {
    const json line = json::parse(text, nullptr, false);
    if (!line.is_object() || line.value("command", "") != "upload" || !line.contains("pid") ||
        !line["pid"].is_number_integer())
      continue;
    const int64_t pid = line["pid"].get<int64_t>();
    const std::string event = line.value("event", "");
    if (event == "start") {
      const json request = line.value("request", json::object());
      if (!request.is_object() || !request.contains("oid") || !request["oid"].is_string())
        continue;
      std::string oid = request["oid"].get<std::string>();
      std::transform(oid.begin(), oid.end(), oid.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      ++out.uploads[oid];
      // The pid's earlier process ended without an end line.
      if (auto earlier = open.find(pid); earlier != open.end())
        ++out.faulted[earlier->second];
      open[pid] = oid;
    } else if (event == "end") {
      auto started = open.find(pid);
      if (started == open.end())
        continue;
      const bool clean = line.value("ok", false) && line.value("fault", json()).is_null() &&
                         !line.value("cooldown", false);
      if (!clean)
        ++out.faulted[started->second];
      open.erase(started);
    }
  }
  for (const auto& [pid, oid] : open)
    ++out.faulted[oid];
  return out;
}

upload_counts radosgw_uploads(const std::string& rgw_log, const std::string& bucket_and_prefix) {
  // beast: ... "PUT /bucket/prefix/aa/bb/<oid> HTTP/1.1" 200 ...
  const std::regex request(
    "\"(PUT|POST) /" + bucket_and_prefix +
    R"(/[0-9a-f]{2}/[0-9a-f]{2}/([0-9a-f]{64})(\?[^ "]*)? HTTP/[0-9.]+" (-?\d+))");
  upload_counts out;
  std::istringstream in(rgw_log);
  std::smatch m;
  for (std::string text; std::getline(in, text);) {
    if (text.find("beast:") == std::string::npos || !std::regex_search(text, m, request))
      continue;
    const std::string query = m[3];
    const bool starts_upload = m[1] == "PUT" ? query.empty() : query == "?uploads";
    if (!starts_upload)
      continue;
    ++out.uploads[m[2]];
    const int code = std::stoi(m[4]);
    if (code < 200 || code > 299)
      ++out.faulted[m[2]];
  }
  return out;
}

namespace {

/// "2026-12-05T13:59:53.123Z" as milliseconds since the epoch; -1 if not.
int64_t parse_log_time(const std::string& text) {
  std::tm tm{};
  int millis = 0;
  char zone = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3d%c", &tm.tm_year, &tm.tm_mon,
                  &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &millis, &zone) != 8 ||
      zone != 'Z')
    return -1;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<int64_t>(::timegm(&tm)) * 1000 + millis;
}

/// Milliseconds since the epoch as "13:59:53.123" (UTC), for evidence.
std::string clock_time(int64_t ms) {
  const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&seconds, &tm);
  char text[32];
  std::snprintf(text, sizeof text, "%02d:%02d:%02d.%03d", tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  return text;
}

/// Whether a request is Ferry's: not the harness's, not git-lfs's locks.
bool sent_by_ferry(const sim_request& request) {
  return request.path != "/stats" && request.path != "/health" &&
         request.path.find("/locks") == std::string::npos;
}

/// The repository a request is about ("/repo0.git"): each repository is
/// pushed by a Ferry process of its own, which cannot know another's
/// cooldown.
std::string repository_of(const std::string& path) { return path.substr(0, path.find('/', 1)); }

} // namespace

std::vector<sim_request> sim_requests(const std::string& sim_log) {
  static const std::regex line(
    R"(^(\S+) ([A-Z]+) (\S+) -> ([0-9]+) arrived_ms=([0-9]+)(?: retry_after=([0-9]+))?$)");
  std::vector<sim_request> out;
  std::istringstream in(sim_log);
  std::string text;
  std::smatch m;
  while (std::getline(in, text)) {
    if (!std::regex_match(text, m, line))
      continue;
    sim_request request;
    request.answered_ms = parse_log_time(m[1]);
    request.method = m[2];
    request.path = m[3];
    request.status = std::stol(m[4]);
    request.arrived_ms = std::stoll(m[5]);
    if (m[6].matched)
      request.retry_after_s = std::stoll(m[6]);
    if (request.answered_ms >= 0)
      out.push_back(std::move(request));
  }
  return out;
}

invariant_result check_no_request_during_cooldown(const std::vector<sim_request>& requests,
                                                  const std::vector<int64_t>& run_starts_ms,
                                                  int64_t max_wait_ms, int64_t tolerance_ms) {
  invariant_result out{"no_request_during_cooldown"};
  std::vector<const sim_request*> by_arrival;
  for (const auto& request : requests) {
    if (sent_by_ferry(request))
      by_arrival.push_back(&request);
  }
  std::stable_sort(
    by_arrival.begin(), by_arrival.end(),
    [](const sim_request* a, const sim_request* b) { return a->arrived_ms < b->arrived_ms; });
  std::set<const sim_request*> reported;
  for (const auto& answer : requests) {
    // Beyond max_wait_ms Ferry fails the object at once and keeps no cooldown.
    if ((answer.status != 429 && answer.status != 503) || answer.retry_after_s <= 0 ||
        answer.retry_after_s * 1000 > max_wait_ms)
      continue;
    const int64_t cooldown_end = answer.answered_ms + answer.retry_after_s * 1000;
    int64_t until = cooldown_end - tolerance_ms;
    for (const int64_t start : run_starts_ms) {
      if (start > answer.answered_ms)
        until = std::min(until, start);
    }
    const int64_t from = answer.answered_ms + tolerance_ms;
    auto it = std::upper_bound(by_arrival.begin(), by_arrival.end(), from,
                               [](int64_t t, const sim_request* r) { return t < r->arrived_ms; });
    const std::string repository = repository_of(answer.path);
    for (; it != by_arrival.end() && (*it)->arrived_ms < until; ++it) {
      const sim_request& early = **it;
      // Each request once, against the first cooldown it fell into.
      if (repository_of(early.path) != repository || !reported.insert(&early).second)
        continue;
      out.fail(early.method + " " + early.path + " arrived at " + clock_time(early.arrived_ms) +
               ", inside the cooldown " + clock_time(answer.answered_ms) + " - " +
               clock_time(cooldown_end) + " of " + answer.method + " " + answer.path +
               " answered " + std::to_string(answer.status) +
               " with Retry-After: " + std::to_string(answer.retry_after_s));
    }
  }
  out.finish();
  return out;
}

invariant_result check_sent_at_most_once(const std::vector<planned_object>& objects,
                                         const std::map<std::string, int64_t>& sends,
                                         const std::map<std::string, int64_t>& faulted, int kills,
                                         std::optional<int64_t> network_resets,
                                         const std::string& method) {
  invariant_result out{"sent_at_most_once_plus_kills"};
  const std::string requests = method + "s";
  std::set<std::string> ours;
  std::vector<std::string> over;
  int64_t excess = 0;
  for (const auto& object : objects) {
    ours.insert(object.oid);
    const auto got = sends.count(object.oid) != 0 ? sends.at(object.oid) : 0;
    const auto faults = faulted.count(object.oid) != 0 ? faulted.at(object.oid) : 0;
    const auto allowed = 1 + kills + faults;
    if (got > allowed) {
      excess += got - allowed;
      over.push_back(object.oid + ": " + std::to_string(got) + " " + requests + ", allowed " +
                     std::to_string(allowed) + " (1 + " + std::to_string(kills) + " kills + " +
                     std::to_string(faults) + " faulted requests)");
    }
  }
  const int64_t resets = network_resets.value_or(0);
  if (excess > resets) {
    for (const auto& line : over)
      out.fail(line);
    if (resets > 0)
      out.fail(std::to_string(excess) + " " + requests +
               " beyond those allowances, more than the " + std::to_string(resets) +
               " connections the fault proxy reset");
  }
  for (const auto& [oid, n] : sends) {
    if (ours.count(oid) == 0)
      out.fail(oid + ": " + std::to_string(n) + " " + requests +
               " of an object not in the workload");
  }
  out.finish();
  if (out.passed)
    out.evidence.push_back("every object " + method + " at most 1 + " + std::to_string(kills) +
                           " kills + its faulted requests times" +
                           (network_resets ? ", or more by at most one " + method +
                                               " in all per connection the fault proxy reset"
                                           : std::string()));
  return out;
}

invariant_result check_report_matches(const json& report,
                                      const std::vector<planned_object>& objects,
                                      int64_t intact_objects, int64_t arrived_before_last_run) {
  invariant_result out{"report_matches"};
  if (!report.is_object()) {
    out.fail("the last run wrote no readable --report");
    out.finish();
    return out;
  }
  int64_t total_bytes = 0;
  for (const auto& object : objects)
    total_bytes += object.size;
  const auto count = [&](const char* key, const char* what) -> int64_t {
    const auto* group = report.contains(key) ? &report.at(key) : nullptr;
    if (!group || !group->contains(what) || !group->at(what).is_number_integer()) {
      out.fail(std::string("the report has no ") + key + "." + what);
      return 0;
    }
    return group->at(what).get<int64_t>();
  };
  int64_t counted = 0, counted_bytes = 0;
  for (const char* key : {"copied", "present", "verified", "failed", "corrupt", "pending"}) {
    counted += count(key, "objects");
    counted_bytes += count(key, "bytes");
  }
  const auto objects_n = static_cast<int64_t>(objects.size());
  if (counted != objects_n || counted_bytes != total_bytes)
    out.fail("the report counts " + std::to_string(counted) + " objects (" +
             std::to_string(counted_bytes) + " bytes), the workload has " +
             std::to_string(objects_n) + " (" + std::to_string(total_bytes) + " bytes)");
  const std::string outcome = report.value("outcome", std::string());
  // "complete" must be true of the destination; anything else must have
  // its reasons counted (an object reported failed may still have arrived).
  const auto unfinished =
    count("failed", "objects") + count("corrupt", "objects") + count("pending", "objects");
  if (outcome == "complete" && intact_objects != objects_n)
    out.fail("the report's outcome is 'complete', the harness found " +
             std::to_string(intact_objects) + " of " + std::to_string(objects_n) +
             " objects intact");
  if (outcome != "complete" && unfinished == 0)
    out.fail("the report's outcome is '" + outcome + "' with no failed, corrupt or pending object");
  // Every object that was there counts as present, except dead-letter
  // objects from an earlier run that this run did not ask about.
  const auto present = count("present", "objects") + count("verified", "objects");
  const auto not_retried = count("not_retried", "objects");
  if (present > arrived_before_last_run || present + not_retried < arrived_before_last_run)
    out.fail("the report counts " + std::to_string(present) +
             " objects present at the destination (and " + std::to_string(not_retried) +
             " not tried again), the harness saw " + std::to_string(arrived_before_last_run) +
             " there when the last run began");
  out.finish();
  if (out.passed)
    out.evidence.push_back("the last run's report counts every object once, outcome '" + outcome +
                           "', present objects as the harness saw them");
  return out;
}

invariant_result check_within_limits(const expect_spec& expect, double duration_s,
                                     double throughput_bytes_per_s, bool timed_out) {
  invariant_result out{"within_limits"};
  std::ostringstream line;
  if (timed_out) {
    line << "stopped after max_duration_s " << expect.max_duration_s << " s";
    out.fail(line.str());
  } else if (duration_s > expect.max_duration_s) {
    line << "took " << duration_s << " s, more than max_duration_s " << expect.max_duration_s;
    out.fail(line.str());
  }
  if (expect.min_throughput_bytes_per_s > 0 &&
      throughput_bytes_per_s < expect.min_throughput_bytes_per_s) {
    std::ostringstream slow;
    slow << "moved " << throughput_bytes_per_s << " B/s, less than min_throughput_bytes_per_s "
         << expect.min_throughput_bytes_per_s;
    out.fail(slow.str());
  }
  if (out.passed) {
    std::ostringstream ok;
    ok << "within max_duration_s " << expect.max_duration_s;
    if (expect.min_throughput_bytes_per_s > 0)
      ok << " and min_throughput_bytes_per_s " << expect.min_throughput_bytes_per_s;
    out.evidence.push_back(ok.str());
  }
  return out;
}

} // namespace ferry::harness
