// The Proton store against the bridge simulator: the session gate and its
// refresh, round trips in the shared layout, batch-exists, Ferry-side
// verification, the cooldown, and every request checked against the
// simulator's field rules.

#include "store/proton/proton_store.hpp"
#include "simulations/bridge_sim/contract.hpp"
#include "store/os/sha256.hpp"
#include "store/proton/session_refresh.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <future>
#include <iterator>
#include <optional>
#include <set>
#include <sstream>
#include <sys/stat.h>
#include <thread>

using namespace ferry;
using ferry::testing::temp_dir;

namespace {

std::string slurp(const std::filesystem::path& path) {
  std::ifstream in{path, std::ios::binary};
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Distinct content for each `n` (its digits lead), `size` bytes long.
std::string content_of(int n, size_t size) {
  std::string out = std::to_string(n) + ":";
  for (size_t i = out.size(); i < size; ++i)
    out.push_back(static_cast<char>('a' + (i * 7 + static_cast<size_t>(n)) % 26));
  out.resize(size);
  return out;
}

/// A simulated Drive, its scenario and log, and a store on it.
struct sim_drive {
  temp_dir dir;
  std::filesystem::path drive = dir.path / "drive";
  std::filesystem::path scratch = dir.path / "scratch";
  std::filesystem::path log = dir.path / "bridge.log";
  std::filesystem::path scenario = dir.path / "scenario.json";
  /// Words run before the simulator's command line (a wrapper script).
  std::vector<std::string> wrapper;

  explicit sim_drive(const nlohmann::json& plan = nlohmann::json::object()) {
    std::filesystem::create_directories(drive);
    std::ofstream{scenario} << plan.dump();
  }

  std::unique_ptr<proton_store> open(std::string base = "LFS",
                                     std::function<void(const std::string&)> notice = {}) {
    proton_store_options options;
    options.notice = std::move(notice);
    options.bridge.command = wrapper;
    for (std::string word :
         {std::string{FERRY_BRIDGE_SIM_PATH}, std::string{"--drive"}, drive.string(),
          std::string{"--scenario"}, scenario.string(), std::string{"--log"}, log.string()})
      options.bridge.command.push_back(std::move(word));
    options.bridge.base_timeout = std::chrono::seconds{20};
    options.scratch_dir = scratch;
    return std::make_unique<proton_store>(std::move(base), options);
  }

  /// The log's lines of one kind ("start" or "end").
  std::vector<nlohmann::json> events(const std::string& kind) const {
    std::vector<nlohmann::json> out;
    std::istringstream lines{slurp(log)};
    for (std::string line; std::getline(lines, line);) {
      auto event = nlohmann::json::parse(line, nullptr, false);
      if (!event.is_discarded() && event.value("event", "") == kind)
        out.push_back(std::move(event));
    }
    return out;
  }

  std::vector<std::string> commands() const {
    std::vector<std::string> out;
    for (auto& event : events("start"))
      out.push_back(event.value("command", ""));
    return out;
  }

  size_t count(const std::string& command) const {
    auto all = commands();
    return static_cast<size_t>(std::count(all.begin(), all.end(), command));
  }

  std::filesystem::path object_file(const std::string& oid, const std::string& base = "LFS") {
    return drive / base / oid.substr(0, 2) / oid.substr(2, 2) / oid;
  }

  /// Puts `bytes` into the Drive as `oid`, as another bridge client would.
  void place(const std::string& oid, const std::string& bytes) {
    auto file = object_file(oid);
    std::filesystem::create_directories(file.parent_path());
    std::ofstream{file, std::ios::binary} << bytes;
  }
};

std::string store_bytes(object_store& store, const std::string& bytes) {
  auto oid = sha256::of(bytes.data(), bytes.size());
  auto writer = store.open_write(oid, static_cast<int64_t>(bytes.size()), std::nullopt);
  REQUIRE(writer.ok());
  REQUIRE((*writer)->write(bytes.data(), bytes.size()).ok());
  auto committed = (*writer)->commit();
  INFO(committed.to_string());
  REQUIRE(committed.ok());
  return oid;
}

std::string read_all(object_reader& reader) {
  std::string out;
  char buffer[4096];
  for (;;) {
    auto got = reader.read(buffer, sizeof buffer);
    REQUIRE(got.ok());
    if (*got == 0)
      return out;
    out.append(buffer, *got);
  }
}

} // namespace

TEST_CASE("proton URLs name the storage base") {
  CHECK(*parse_proton_url("proton://LFS") == "LFS");
  CHECK(*parse_proton_url("proton://") == "LFS");
  CHECK(*parse_proton_url("PROTON://Backups/git lfs/") == "Backups/git lfs");
  for (auto bad : {"proton://../x", "proton://a//b", "proton://a?b=c", "proton://a/./b",
                   "s3://bucket", "proton://a%2Fb"}) {
    INFO(bad);
    auto parsed = parse_proton_url(bad);
    REQUIRE_FALSE(parsed.ok());
    CHECK(parsed.error().code() == errc::config_error);
  }
}

TEST_CASE("prepare checks the session once and initialises the base") {
  sim_drive sim;
  auto store = sim.open("Backups/LFS");
  REQUIRE(store->prepare().ok());
  REQUIRE(store->prepare().ok());
  CHECK(sim.commands() == std::vector<std::string>{"auth-state", "init"});
  CHECK(std::filesystem::is_directory(sim.drive / "Backups" / "LFS"));
}

TEST_CASE("a session that is not ready stops before any transfer, naming the action") {
  sim_drive sim{{{"auth_state", "needs_login"}}};
  auto store = sim.open();
  auto ready = store->prepare();
  REQUIRE_FALSE(ready.ok());
  CHECK(ready.code() == errc::permission_denied);
  CHECK_THAT(ready.message(), Catch::Contains("needs_login"));
  CHECK_THAT(ready.message(), Catch::Contains("proton-drive login"));
  auto held = store->holds({std::string(64, 'a'), 1});
  REQUIRE_FALSE(held.ok());
  CHECK(sim.count("init") == 0);
  CHECK(sim.count("batch-exists") == 0);
}

TEST_CASE("objects go up and come back in the shared layout") {
  sim_drive sim;
  auto store = sim.open();
  auto bytes = content_of(1, 300'000);
  auto oid = store_bytes(*store, bytes);
  CHECK(slurp(sim.object_file(oid)) == bytes);

  REQUIRE(store->expect_reads({{oid, static_cast<int64_t>(bytes.size())}}).ok());
  auto whole = store->open_read(oid, 0);
  REQUIRE(whole.ok());
  CHECK((*whole)->size() == static_cast<int64_t>(bytes.size()));
  CHECK(read_all(**whole) == bytes);
  auto tail = store->open_read(oid, 1000);
  REQUIRE(tail.ok());
  CHECK(read_all(**tail) == bytes.substr(1000));

  auto info = store->stat(oid);
  REQUIRE(info.ok());
  REQUIRE(info->has_value());
  CHECK((*info)->size == static_cast<int64_t>(bytes.size()));

  std::vector<object_info> listed;
  REQUIRE(store
            ->list([&](const object_info& object) {
              listed.push_back(object);
              return true;
            })
            .ok());
  REQUIRE(listed.size() == 1);
  CHECK(listed[0].oid == oid);

  REQUIRE(store->remove(oid).ok());
  REQUIRE(store->remove(oid).ok());
  CHECK_FALSE(std::filesystem::exists(sim.object_file(oid)));
  auto gone = store->open_read(oid, 0);
  REQUIRE_FALSE(gone.ok());
  CHECK(gone.error().code() == errc::not_found);
  auto absent = store->stat(oid);
  REQUIRE(absent.ok());
  CHECK_FALSE(absent->has_value());
  // Nothing staged or downloaded stays behind.
  CHECK(std::filesystem::is_empty(sim.scratch));
}

TEST_CASE("objects another bridge client wrote are read") {
  sim_drive sim;
  auto bytes = content_of(2, 5000);
  auto oid = sha256::of(bytes.data(), bytes.size());
  sim.place(oid, bytes);
  auto store = sim.open();
  auto held = store->holds({oid, 5000});
  REQUIRE(held.ok());
  CHECK(*held);
  auto reader = store->open_read(oid, 0);
  REQUIRE(reader.ok());
  CHECK(read_all(**reader) == bytes);
}

TEST_CASE("bytes that do not match the oid are never handed to the bridge") {
  sim_drive sim;
  auto store = sim.open();
  auto bytes = content_of(3, 2000);
  auto wrong_oid = sha256::of("other", 5);
  auto writer = store->open_write(wrong_oid, 2000, std::nullopt);
  REQUIRE(writer.ok());
  REQUIRE((*writer)->write(bytes.data(), bytes.size()).ok());
  auto committed = (*writer)->commit();
  CHECK(committed.code() == errc::hash_mismatch);

  auto short_writer = store->open_write(sha256::of(bytes.data(), bytes.size()), 2001, std::nullopt);
  REQUIRE(short_writer.ok());
  REQUIRE((*short_writer)->write(bytes.data(), bytes.size()).ok());
  CHECK((*short_writer)->commit().code() == errc::size_mismatch);

  CHECK(sim.count("upload") == 0);
  CHECK(std::filesystem::is_empty(sim.scratch));
}

TEST_CASE("presence is asked with batch-exists, 100 oids per process") {
  sim_drive sim;
  auto store = sim.open();
  std::vector<object_info> objects;
  std::vector<bool> expected;
  for (int i = 0; i < 250; ++i) {
    auto bytes = content_of(i, 10);
    objects.push_back({sha256::of(bytes.data(), bytes.size()), 10});
    expected.push_back(i % 3 == 0);
  }
  for (int i = 0; i < 250; i += 3)
    sim.place(objects[static_cast<size_t>(i)].oid, content_of(i, 10));
  auto held = store->holds_each(objects);
  REQUIRE(held.ok());
  CHECK(*held == expected);
  CHECK(sim.count("batch-exists") == 3);
  CHECK(sim.count("exists") == 0);
}

TEST_CASE("presence asked while a batch-exists runs goes in one process for all") {
  sim_drive sim;
  // The first batch-exists says it started, then waits for the test: the
  // questions asked meanwhile queue up behind it.
  auto started = sim.dir.path / "started";
  auto gate = sim.dir.path / "gate";
  REQUIRE(::mkfifo(started.c_str(), 0600) == 0);
  REQUIRE(::mkfifo(gate.c_str(), 0600) == 0);
  auto script = sim.dir.path / "hold-first-batch-exists.sh";
  std::ofstream{script} << "for word; do last=$word; done\n"
                        << "if [ \"$last\" = batch-exists ] && mkdir '"
                        << (sim.dir.path / "held").string() << "' 2>/dev/null; then\n"
                        << "  echo started > '" << started.string() << "'\n"
                        << "  read line < '" << gate.string() << "'\n"
                        << "fi\n"
                        << "exec \"$@\"\n";
  sim.wrapper = {"/bin/sh", script.string()};
  auto store = sim.open();
  REQUIRE(store->prepare().ok());

  std::vector<object_info> objects;
  for (int i = 0; i < 6; ++i) {
    auto bytes = content_of(i, 10);
    objects.push_back({sha256::of(bytes.data(), bytes.size()), 10});
    if (i % 2 == 0)
      sim.place(objects.back().oid, bytes);
  }
  auto ask = [&](size_t i) {
    return std::async(std::launch::async, [&, i] { return store->holds(objects[i]); });
  };
  auto first = ask(0);
  { std::ifstream{started}.ignore(); }
  std::vector<std::future<result<bool>>> later;
  for (size_t i = 1; i < objects.size(); ++i)
    later.push_back(ask(i));
  // Bounded so that a store that does not gather fails here, not by hanging.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{30};
  while (store->presence_questions_waiting() < later.size() &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::yield();
  CHECK(store->presence_questions_waiting() == later.size());
  std::ofstream{gate} << "go\n";

  auto held = first.get();
  REQUIRE(held.ok());
  CHECK(*held);
  for (size_t i = 1; i < objects.size(); ++i) {
    auto each = later[i - 1].get();
    INFO(i);
    REQUIRE(each.ok());
    CHECK(*each == (i % 2 == 0));
  }
  CHECK(sim.count("batch-exists") == 2);
}

TEST_CASE("sizes are asked with batch-exists, the asked size for each object held") {
  sim_drive sim;
  auto store = sim.open();
  std::vector<object_info> objects;
  std::vector<std::optional<int64_t>> expected;
  for (int i = 0; i < 250; ++i) {
    const int64_t size = 10 + i;
    auto bytes = content_of(i, static_cast<size_t>(size));
    objects.push_back({sha256::of(bytes.data(), bytes.size()), size});
    expected.push_back(i % 3 == 0 ? std::optional<int64_t>{size} : std::nullopt);
    if (i % 3 == 0)
      sim.place(objects.back().oid, bytes);
  }
  auto sizes = store->sizes_of(objects);
  INFO(sizes.error().to_string());
  REQUIRE(sizes.ok());
  CHECK(*sizes == expected);
  CHECK(sim.count("batch-exists") == 3);
  CHECK(sim.count("exists") == 0);
  CHECK(sim.count("list") == 0);
}

TEST_CASE("a download of the wrong size is not accepted") {
  sim_drive sim;
  auto bytes = content_of(4, 4000);
  auto oid = sha256::of(bytes.data(), bytes.size());
  sim.place(oid, bytes.substr(0, 3000));
  auto store = sim.open();
  REQUIRE(store->expect_reads({{oid, 4000}}).ok());
  auto reader = store->open_read(oid, 0);
  // The store reports what arrived; the transfer task compares it with the
  // declared size and the oid.
  REQUIRE(reader.ok());
  CHECK((*reader)->size() == 3000);
  auto beyond = store->open_read(oid, 3500);
  REQUIRE_FALSE(beyond.ok());
  CHECK(beyond.error().code() == errc::size_mismatch);
}

TEST_CASE("a 429 holds every later call until retryAfter has passed") {
  sim_drive sim{{{"rules",
                  {{{"command", "batch-exists"},
                    {"times", 1},
                    {"fault", "rate_limited"},
                    {"retry_after", 1}}}}}};
  auto store = sim.open();
  auto limited = store->holds({std::string(64, 'b'), 1});
  REQUIRE_FALSE(limited.ok());
  CHECK(limited.error().code() == errc::unavailable);
  CHECK(limited.error().retry_after() == std::chrono::seconds{1});
  auto again = store->holds({std::string(64, 'b'), 1});
  REQUIRE(again.ok());
  CHECK_FALSE(*again);

  auto ends = sim.events("end");
  auto starts = sim.events("start");
  int64_t limited_at = 0;
  for (auto& end : ends)
    if (end.value("code", 0) == 429)
      limited_at = end.value("at_ms", int64_t{0});
  REQUIRE(limited_at > 0);
  for (auto& start : starts)
    if (start.value("at_ms", int64_t{0}) > limited_at)
      CHECK(start.value("at_ms", int64_t{0}) >= limited_at + 990);
}

TEST_CASE("a session that expires mid-run again after a new check stops all later calls") {
  sim_drive sim{{{"rules", {{{"command", "upload"}, {"fault", "session_expired"}}}}}};
  auto store = sim.open();
  auto bytes = content_of(5, 100);
  auto oid = sha256::of(bytes.data(), bytes.size());
  auto commit = [&] {
    auto writer = store->open_write(oid, 100, std::nullopt);
    REQUIRE(writer.ok());
    REQUIRE((*writer)->write(bytes.data(), bytes.size()).ok());
    return (*writer)->commit();
  };
  // The first loss is retried after auth-state is asked again (it says
  // ready: nothing to refresh); the second needs the user.
  auto first = commit();
  CHECK(first.code() == errc::unavailable);
  auto second = commit();
  CHECK(second.code() == errc::permission_denied);
  CHECK_THAT(second.message(), Catch::Contains("proton-drive login"));
  CHECK(sim.commands() ==
        std::vector<std::string>{"auth-state", "init", "upload", "auth-state", "init", "upload"});
  auto before = sim.commands().size();
  CHECK_FALSE(store->holds({oid, 100}).ok());
  CHECK_FALSE(store->remove(oid).ok());
  CHECK(sim.commands().size() == before);
}

TEST_CASE("an expired session is refreshed once, then used") {
  sim_drive sim{{{"auth_state", "session_expired"}, {"refresh", "renews"}}};
  std::vector<std::string> notices;
  auto store = sim.open("LFS", [&](const std::string& text) { notices.push_back(text); });
  auto ready = store->prepare();
  INFO(ready.to_string());
  REQUIRE(ready.ok());
  CHECK(sim.commands() ==
        std::vector<std::string>{"auth-state", "auth-state", "refresh", "auth-state", "init"});
  REQUIRE(notices.size() == 1);
  CHECK_THAT(notices[0], Catch::Contains("refreshed"));
  auto oid = store_bytes(*store, content_of(7, 500));
  CHECK(std::filesystem::exists(sim.object_file(oid)));
  // The renewed session serves another store too, without a refresh.
  REQUIRE(sim.open()->prepare().ok());
  CHECK(sim.count("refresh") == 1);
}

TEST_CASE("a refresh that fails stops with the login action and is not tried again") {
  // drive-cli's answer to a rejected refresh token, a 401, and a refresh
  // that answers but leaves the session expired.
  auto rejected = nlohmann::json{{"auth_state", "session_expired"}, {"refresh", "invalid_token"}};
  auto unauthorized =
    nlohmann::json{{"auth_state", "session_expired"},
                   {"refresh", "renews"},
                   {"rules", {{{"command", "refresh"}, {"fault", "session_expired"}}}}};
  auto useless = nlohmann::json{{"auth_state", "session_expired"}};
  for (auto& [plan, why] : std::vector<std::pair<nlohmann::json, std::string>>{
         {rejected, "Invalid refresh token"},
         {unauthorized, "[401]"},
         {useless, "still reports session_expired"}}) {
    INFO(plan.dump());
    sim_drive sim{plan};
    std::vector<std::string> notices;
    auto store = sim.open("LFS", [&](const std::string& text) { notices.push_back(text); });
    auto ready = store->prepare();
    REQUIRE_FALSE(ready.ok());
    CHECK(ready.code() == errc::permission_denied);
    CHECK_THAT(ready.message(), Catch::Contains("auth-state: session_expired"));
    CHECK_THAT(ready.message(), Catch::Contains("run: proton-drive login"));
    CHECK_THAT(ready.message(), Catch::Contains(why));
    REQUIRE(notices.size() == 1);
    CHECK_THAT(notices[0], Catch::Contains("refreshing it failed"));
    CHECK_THAT(notices[0], Catch::Contains(why));
    for (int i = 0; i < 3; ++i) {
      auto again = store->prepare();
      CHECK(again.code() == errc::permission_denied);
      CHECK_FALSE(store->holds({std::string(64, 'a'), 1}).ok());
    }
    // Another store of the process on the same session does not refresh
    // the dead session again either.
    CHECK(sim.open()->prepare().code() == errc::permission_denied);
    CHECK(sim.count("refresh") == 1);
    CHECK(sim.count("init") == 0);
  }
}

TEST_CASE("stores of one session that prepare at once cause one refresh") {
  // The refresh takes long enough that both stores have seen
  // session_expired before it ends.
  sim_drive sim{{{"auth_state", "session_expired"},
                 {"refresh", "renews"},
                 {"rules", {{{"command", "refresh"}, {"fault", "delay"}, {"delay_ms", 500}}}}}};
  auto first = sim.open();
  auto second = sim.open();
  status first_ready, second_ready;
  std::thread one{[&] { first_ready = first->prepare(); }};
  std::thread two{[&] { second_ready = second->prepare(); }};
  one.join();
  two.join();
  INFO(first_ready.to_string() << " / " << second_ready.to_string());
  CHECK(first_ready.ok());
  CHECK(second_ready.ok());
  CHECK(sim.count("refresh") == 1);
  CHECK(sim.count("init") == 2);
}

TEST_CASE("a session that expires mid-run is refreshed before the transfer is tried again") {
  // Renewed at prepare, expired again by the first upload.
  sim_drive sim{{{"auth_state", "session_expired"},
                 {"refresh", "renews"},
                 {"rules", {{{"command", "upload"}, {"times", 1}, {"fault", "session_expired"}}}}}};
  auto store = sim.open();
  auto bytes = content_of(8, 300);
  auto oid = sha256::of(bytes.data(), bytes.size());
  auto commit = [&] {
    auto writer = store->open_write(oid, 300, std::nullopt);
    REQUIRE(writer.ok());
    REQUIRE((*writer)->write(bytes.data(), bytes.size()).ok());
    return (*writer)->commit();
  };
  auto lost = commit();
  CHECK(lost.code() == errc::unavailable);
  auto retried = commit();
  INFO(retried.to_string());
  REQUIRE(retried.ok());
  CHECK(slurp(sim.object_file(oid)) == bytes);
  CHECK(sim.count("refresh") == 2);
}

TEST_CASE("a failed refresh is answered again until the session is seen ready") {
  session_refresh refresher;
  std::string state = "session_expired";
  int refreshes = 0;
  auto check = [&]() -> result<bridge::auth_state> { return bridge::auth_state{state, {}, {}}; };
  auto failing = [&] {
    ++refreshes;
    return status{errc::unavailable, "Token refresh failed: Invalid refresh token"};
  };
  auto renewing = [&] {
    ++refreshes;
    state = "ready";
    return status::success();
  };
  auto first = refresher.renew(check, failing);
  REQUIRE(first.ok());
  CHECK(first->refreshed);
  REQUIRE(first->refresh_failure.has_value());
  auto second = refresher.renew(check, renewing);
  REQUIRE(second.ok());
  CHECK_FALSE(second->refreshed);
  REQUIRE(second->refresh_failure.has_value());
  CHECK_THAT(second->refresh_failure->message(), Catch::Contains("Invalid refresh token"));
  CHECK(refreshes == 1);
  // The user logged in; the session expired again later.
  refresher.session_ready();
  auto third = refresher.renew(check, renewing);
  REQUIRE(third.ok());
  CHECK(third->refreshed);
  CHECK_FALSE(third->refresh_failure.has_value());
  CHECK(third->state.state == "ready");
  CHECK(refreshes == 2);
}

TEST_CASE("every request the store sends passes the bridge's field rules") {
  sim_drive sim;
  auto store = sim.open("Team/LFS");
  auto oid = store_bytes(*store, content_of(6, 1234));
  REQUIRE(store->holds_each({{oid, 1234}, {std::string(64, 'c'), 1}}).ok());
  REQUIRE(store->stat(oid).ok());
  REQUIRE(store->open_read(oid, 0).ok());
  REQUIRE(store->list([](const object_info&) { return true; }).ok());
  REQUIRE(store->remove(oid).ok());

  auto starts = sim.events("start");
  std::set<std::string> seen;
  for (auto& start : starts) {
    auto command = start.value("command", "");
    seen.insert(command);
    INFO(command << " " << start["request"].dump());
    CHECK_FALSE(bridge_sim::check_request(command, start["request"]).has_value());
  }
  CHECK(seen == std::set<std::string>{"auth-state", "init", "upload", "batch-exists", "list",
                                      "download", "delete"});
  for (auto& end : sim.events("end"))
    CHECK(end.value("valid", false));
}
