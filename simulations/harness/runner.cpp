#include "simulations/harness/runner.hpp"

#include "simulations/harness/network_stage.hpp"
#include "simulations/harness/workload.hpp"
#include "store/os/child_process.hpp"

#include <httplib.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>

namespace ferry::harness {

namespace fs = std::filesystem;
using nlohmann::json;
using clock_type = std::chrono::steady_clock;

/// ferry.maxRetryWait of every run: the longest Retry-After Ferry honours.
constexpr int64_t max_retry_wait_s = 10;

json without_timings(json result) {
  result.erase("timings");
  return result;
}

namespace {

status setup_error(const std::string& what) { return {errc::config_error, what}; }

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

/// Starts `launch` with stdin from /dev/null, stdout into `out` and stderr
/// into `err` (the same file when `err` is empty).
result<child_process> start_logged(child_launch launch, const fs::path& out,
                                   const fs::path& err = {}) {
  const int flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC;
  fd_guard null_fd{::open("/dev/null", O_RDWR | O_CLOEXEC)};
  fd_guard out_fd{::open(out.c_str(), flags, 0644)};
  fd_guard err_fd{err.empty() ? -1 : ::open(err.c_str(), flags, 0644)};
  launch.stdio[0] = null_fd.get();
  launch.stdio[1] = out_fd.get();
  launch.stdio[2] = err.empty() ? out_fd.get() : err_fd.get();
  return child_process::start(launch);
}

bool write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.flush();
  return static_cast<bool>(out);
}

std::string trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' '))
    text.pop_back();
  return text;
}

/// Everything one simulation needs while it runs.
class simulation {
public:
  explicit simulation(const run_options& options) : opt_(options), scene_(options.scene) {}
  ~simulation() {
    if (disk_mounted_)
      ::umount2(peer_root_.c_str(), MNT_DETACH);
    stop_radosgw();
  }
  simulation(const simulation&) = delete;
  simulation& operator=(const simulation&) = delete;

  result<run_outcome> run();

private:
  // ---- set-up ---------------------------------------------------------------
  status make_directories();
  std::vector<std::string> environment(const std::vector<std::string>& extra = {}) const;
  /// Runs a set-up command that must succeed.
  status tool(const std::vector<std::string>& argv, const fs::path& dir,
              const std::vector<std::string>& extra_env = {}, std::string* output = nullptr);
  status configure_git();
  status write_object(const planned_object& object, const fs::path& path);
  status generate();
  /// ferry-lfs-sim --check of peer.rules, or ferry-bridge-sim's reading of
  /// them.
  status check_peer_rules();
  /// bridge-sim: writes its scenario and makes it ferry.proton.command.
  status start_bridge_sim();
  status start_peer();
  /// Where the peer keeps the objects in git-lfs's layout.
  fs::path peer_objects() const;
  /// radosgw: starts it with tests/s3/radosgw.sh, makes the bucket and
  /// starts the harness's S3 client mirroring the bucket into peer_root_.
  status start_radosgw();
  /// The S3 client's environment (the endpoint and the test keys).
  std::vector<std::string> s3_client_environment() const;
  /// Passes the mirror has finished (0 before the first).
  int64_t mirror_passes() const;
  /// Waits (bounded) until the mirror has made a whole pass that began after
  /// this call, so peer_root_ shows S3 as it is now.
  status sync_mirror();
  void stop_radosgw();
  /// faults.disk: the destination folder on a tmpfs of capacity_bytes.
  status mount_disk();
  /// faults.disk: the tmpfs grows to hold the whole workload.
  status grow_disk();
  std::string store_url(int repository) const;
  /// The repository's name in the peer's URLs ("sim" for a migration).
  std::string repository_name(int repository) const;
  status prepare_commands();

  // ---- runs -----------------------------------------------------------------
  /// One run: every command started, the destination sampled, the kill done
  /// when its point is reached, then the --after-run hook.
  status run_once(int run, run_record& record, json& timing);
  /// SIGKILLs the running ferry processes of this run; returns how many.
  int kill_ferry(std::vector<child_process>& children);
  void wait_peer_settled();
  /// Whether the same command runs again after `run`: it was killed, or the
  /// disk was full until now.
  bool another_run(int run, const run_record& record) const;
  status after_run_hook(int run, bool last);

  // ---- results --------------------------------------------------------------
  json sim_stats() const;
  /// How long after an answer a request may still arrive that was sent
  /// before the answer reached Ferry: 50 ms, plus the fault proxy's latency
  /// and jitter both ways.
  int64_t cooldown_tolerance_ms() const;
  /// The seeded schedule: kill points and network blackhole windows.
  json schedule() const;
  json build_result(const std::vector<run_record>& records, json timings);

  const run_options& opt_;
  const scenario& scene_;
  workload_plan plan_;
  event_log events_;
  fs::path work_, home_, peer_root_, runs_dir_, ferry_events_;
  destination destination_;
  std::unique_ptr<partial_watch> watch_;

  struct command {
    std::vector<std::string> argv;
    fs::path dir;
  };
  std::vector<command> commands_;

  std::optional<child_process> sim_;
  int sim_port_ = 0;
  int ferry_port_ = 0;
  std::unique_ptr<network_stage> network_;
  bool disk_mounted_ = false;

  // radosgw
  fs::path rgw_dir_;
  bool rgw_started_ = false;
  int rgw_port_ = 0;
  std::string rgw_access_key_, rgw_secret_key_, rgw_log_;
  std::optional<child_process> mirror_;

  clock_type::time_point deadline_;
  bool timed_out_ = false;
  int kills_done_ = 0;
  /// When each run began, in milliseconds since the epoch (the sim log's clock).
  std::vector<int64_t> run_starts_ms_;
  int64_t arrived_before_last_run_ = 0;
};

status simulation::make_directories() {
  std::error_code ec;
  if (fs::exists(opt_.out, ec) && !fs::is_empty(opt_.out, ec))
    return {errc::invalid_request, "--out " + opt_.out.string() + " exists and is not empty"};
  fs::create_directories(opt_.out, ec);
  if (ec)
    return setup_error("cannot create " + opt_.out.string() + ": " + ec.message());
  const fs::path out = fs::canonical(opt_.out, ec);
  work_ = out / "work";
  home_ = work_ / "home";
  peer_root_ = work_ / "peer";
  runs_dir_ = out / "runs";
  ferry_events_ = work_ / "ferry-events.jsonl";
  for (const auto& dir : {work_, home_, runs_dir_}) {
    fs::create_directories(dir, ec);
    if (ec)
      return setup_error("cannot create " + dir.string() + ": " + ec.message());
  }
  return status::success();
}

std::vector<std::string> simulation::environment(const std::vector<std::string>& extra) const {
  // A sandbox: nothing from the caller's environment steers git, git-lfs or
  // ferry (no FERRY_* variables, no proxies, no global git config).
  const char* path = std::getenv("PATH");
  const char* tmp = std::getenv("TMPDIR");
  std::vector<std::string> env = {
    "PATH=" + std::string(path ? path : "/usr/bin:/bin"),
    "HOME=" + home_.string(),
    "XDG_CONFIG_HOME=" + (home_ / ".config").string(),
    "XDG_STATE_HOME=" + (home_ / ".local" / "state").string(),
    "GIT_CONFIG_NOSYSTEM=1",
    "GIT_TERMINAL_PROMPT=0",
    "GIT_CEILING_DIRECTORIES=" + work_.string(),
    "LC_ALL=C",
    "TMPDIR=" + std::string(tmp ? tmp : "/tmp"),
    // Each agent runs the engine itself, where the kills land; no daemon
    // outlives the run or is shared with another.
    "FERRY_DAEMON=false",
  };
  if (rgw_started_) {
    // How ferry finds S3 keys (docs/s3.md): the test keys of radosgw.sh.
    env.push_back("AWS_ACCESS_KEY_ID=" + rgw_access_key_);
    env.push_back("AWS_SECRET_ACCESS_KEY=" + rgw_secret_key_);
  }
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

status simulation::tool(const std::vector<std::string>& argv, const fs::path& dir,
                        const std::vector<std::string>& extra_env, std::string* output) {
  child_options options;
  options.argv = argv;
  options.environment = environment(extra_env);
  options.directory = dir;
  options.timeout = std::chrono::minutes(10);
  auto ran = run_child(options);
  if (!ran.ok())
    return ran.error();
  if (output)
    *output = ran->output;
  if (ran->exit_code != 0) {
    std::string line;
    for (const auto& word : argv)
      line += (line.empty() ? "" : " ") + word;
    return setup_error("'" + line + "' in " + dir.string() + " failed (exit " +
                       std::to_string(ran->exit_code) + "): " + trimmed(ran->diagnostics) +
                       trimmed(ran->output));
  }
  return status::success();
}

status simulation::configure_git() {
  const std::vector<std::vector<std::string>> settings = {
    {"user.name", "ferry-sim"},
    {"user.email", "ferry-sim@example.invalid"},
    {"init.defaultBranch", "main"},
    {"protocol.file.allow", "always"},
    {"advice.detachedHead", "false"},
    // Ride out the peer's faults quickly: many attempts, short backoff.
    {"ferry.maxAttempts", "10"},
    {"ferry.backoffBase", "50ms"},
    {"ferry.backoffMax", "500ms"},
    {"ferry.stallTimeout", "2s"},
    {"ferry.maxRetryWait", std::to_string(max_retry_wait_s) + "s"},
    // A hung bridge (bridge-sim's hang) is killed after 3 s plus its
    // object's size at ferry.proton.minRate, not after the default 2 minutes.
    {"ferry.proton.timeout", "3s"},
  };
  for (const auto& kv : settings) {
    if (auto s = tool({"git", "config", "--global", kv[0], kv[1]}, work_); !s.ok())
      return s;
  }
  // Ferry's own events (every agent and migration reads the global git
  // config of the sandbox's HOME) are merged into events.jsonl.
  if (auto s =
        tool({"git", "config", "--global", "ferry.eventsFile", ferry_events_.string()}, work_);
      !s.ok())
    return s;
  return tool({"git", "lfs", "install", "--skip-repo"}, work_);
}

status simulation::write_object(const planned_object& object, const fs::path& path) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  object_bytes(object, [&](const unsigned char* data, size_t n) {
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(n));
  });
  out.flush();
  if (!out)
    return setup_error("cannot write " + path.string());
  return status::success();
}

fs::path layout_path(const fs::path& root, const std::string& oid) {
  return root / oid.substr(0, 2) / oid.substr(2, 2) / oid;
}

fs::path repo_dir(const fs::path& work, int r) {
  return work / "repos" / ("repo" + std::to_string(r));
}

fs::path remote_dir(const fs::path& work, int r) {
  return work / "remotes" / ("repo" + std::to_string(r) + ".git");
}

fs::path clone_dir(const fs::path& work, int r) {
  return work / "clones" / ("repo" + std::to_string(r));
}

status simulation::generate() {
  const auto mode = scene_.workload.mode;
  if (mode == workload_mode::migrate) {
    for (const auto& object : plan_.objects) {
      if (auto s = write_object(object, layout_path(work_ / "source", object.oid)); !s.ok())
        return s;
    }
    return status::success();
  }
  for (int r = 0; r < scene_.workload.repositories; ++r) {
    const fs::path repo = repo_dir(work_, r), remote = remote_dir(work_, r);
    std::error_code ec;
    fs::create_directories(repo, ec);
    fs::create_directories(remote, ec);
    if (auto s = tool({"git", "init", "-q", "--bare", remote.string()}, work_); !s.ok())
      return s;
    for (const auto& argv : std::vector<std::vector<std::string>>{
           {"git", "init", "-q"},
           {"git", "remote", "add", "origin", remote.string()},
           {"git", "lfs", "track", "*.bin"},
         }) {
      if (auto s = tool(argv, repo); !s.ok())
        return s;
    }
  }
  for (size_t i = 0; i < plan_.objects.size(); ++i) {
    const auto& object = plan_.objects[i];
    const fs::path file =
      repo_dir(work_, object.repository) / "objects" / ("object-" + std::to_string(i) + ".bin");
    if (auto s = write_object(object, file); !s.ok())
      return s;
    if (mode == workload_mode::pull) {
      // The peer holds the objects from the start.
      if (auto s = write_object(object, layout_path(peer_objects(), object.oid)); !s.ok())
        return s;
    }
  }
  for (int r = 0; r < scene_.workload.repositories; ++r) {
    const fs::path repo = repo_dir(work_, r);
    for (const auto& argv : std::vector<std::vector<std::string>>{
           {"git", "add", "-A"},
           {"git", "commit", "-q", "-m", "objects of the simulation"},
         }) {
      if (auto s = tool(argv, repo); !s.ok())
        return s;
    }
    if (mode == workload_mode::pull) {
      // The commits only: the objects are already at the peer.
      if (auto s = tool({"git", "push", "-q", "--no-verify", "origin", "main"}, repo); !s.ok())
        return s;
      if (auto s = tool(
            {"git", "clone", "-q", remote_dir(work_, r).string(), clone_dir(work_, r).string()},
            work_, {"GIT_LFS_SKIP_SMUDGE=1"});
          !s.ok())
        return s;
    }
  }
  return status::success();
}

status simulation::check_peer_rules() {
  if (scene_.peer.kind != peer_kind::lfs_sim && scene_.peer.kind != peer_kind::bridge_sim)
    return status::success();
  // Before the run directory exists, so a bad scenario leaves nothing behind.
  std::string path = (fs::temp_directory_path() / "ferry-sim-rules-XXXXXX").string();
  const int fd = ::mkstemp(path.data());
  if (fd < 0)
    return setup_error("cannot create a temporary file in " + fs::temp_directory_path().string());
  ::close(fd);
  const bool written = write_text(path, json{{"rules", scene_.peer.rules}}.dump());
  child_options options;
  if (scene_.peer.kind == peer_kind::lfs_sim) {
    options.argv = {opt_.lfs_sim.string(), "--check", "--scenario", path};
  } else {
    // The bridge reads its scenario first; auth-state touches no Drive.
    options.argv = {opt_.bridge_sim.string(), "--scenario", path, "bridge", "auth-state"};
    options.input = "{}";
  }
  options.environment = {"PATH=/usr/bin:/bin"};
  auto ran = run_child(options);
  std::remove(path.c_str());
  if (!written)
    return setup_error("cannot write " + path);
  if (!ran.ok())
    return ran.error();
  if (ran->exit_code == 0)
    return status::success();
  // "ferry-lfs-sim: FILE: rules[0].fault.statuss: unknown key ..." (or the
  // bridge's "bad scenario: FILE: rules[0].fault: ...") names the field
  // inside the peer's rules.
  const std::string said = trimmed(ran->diagnostics);
  const auto at = said.find("rules[");
  return {errc::invalid_request,
          at == std::string::npos ? "peer.rules: " + said : "peer." + said.substr(at)};
}

fs::path simulation::peer_objects() const {
  // The bridge keeps the Drive's /LFS folder (proton://LFS) there.
  return scene_.peer.kind == peer_kind::bridge_sim ? peer_root_ / "LFS" : peer_root_;
}

status simulation::start_bridge_sim() {
  const fs::path scenario_file = work_ / "bridge-sim-scenario.json";
  if (!write_text(scenario_file, json{{"rules", scene_.peer.rules}}.dump(1)))
    return setup_error("cannot write " + scenario_file.string());
  std::error_code ec;
  fs::create_directories(peer_root_, ec);
  // ferry runs one bridge process per request (every agent reads the
  // sandbox's global git config); paths quoted as the command line's words.
  const auto quoted = [](const fs::path& path) { return "'" + path.string() + "'"; };
  const std::string command = quoted(opt_.bridge_sim) + " --drive " + quoted(peer_root_) +
                              " --log " + quoted(opt_.out / "bridge-sim.log") + " --scenario " +
                              quoted(scenario_file);
  return tool({"git", "config", "--global", "ferry.proton.command", command}, work_);
}

/// A loopback port nobody listens on now (the kernel's choice).
result<int> free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return status{errc::config_error, std::string("socket: ") + std::strerror(errno)};
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  ::close(fd);
  if (!ok)
    return status{errc::config_error, "cannot find a free loopback port"};
  return static_cast<int>(ntohs(addr.sin_port));
}

constexpr const char* rgw_bucket = "ferry-sim";
constexpr const char* rgw_prefix = "sim";

std::vector<std::string> simulation::s3_client_environment() const {
  return environment({"FERRY_S3_ENDPOINT=http://127.0.0.1:" + std::to_string(rgw_port_),
                      "FERRY_S3_ACCESS_KEY=" + rgw_access_key_,
                      "FERRY_S3_SECRET_KEY=" + rgw_secret_key_});
}

status simulation::start_radosgw() {
  int port = opt_.rgw_port, mon_port = opt_.rgw_mon_port;
  for (int* p : {&port, &mon_port}) {
    if (*p != 0)
      continue;
    auto picked = free_port();
    if (!picked.ok())
      return picked.error();
    *p = *picked;
  }
  rgw_dir_ = work_ / "radosgw";
  rgw_port_ = port;
  if (auto s = tool({"bash", opt_.radosgw_script.string(), "start", rgw_dir_.string(),
                     std::to_string(port), std::to_string(mon_port)},
                    work_);
      !s.ok())
    return s.with_context("peer radosgw: cannot start radosgw");
  rgw_started_ = true;
  // radosgw.sh's DIR/env: "export NAME=value" lines.
  std::istringstream env(read_text(rgw_dir_ / "env"));
  for (std::string line; std::getline(env, line);) {
    const auto eq = line.find('=');
    if (line.rfind("export ", 0) != 0 || eq == std::string::npos)
      continue;
    const std::string name = line.substr(7, eq - 7), value = line.substr(eq + 1);
    if (name == "FERRY_S3_ACCESS_KEY")
      rgw_access_key_ = value;
    else if (name == "FERRY_S3_SECRET_KEY")
      rgw_secret_key_ = value;
    else if (name == "FERRY_RADOSGW_LOG")
      rgw_log_ = value;
  }
  if (rgw_access_key_.empty() || rgw_secret_key_.empty() || rgw_log_.empty())
    return setup_error("peer radosgw: no keys or log in " + (rgw_dir_ / "env").string());
  std::error_code ec;
  fs::create_directories(peer_root_, ec);
  child_options make_bucket;
  make_bucket.argv = {"python3", opt_.s3_client.string(), "mkbucket", rgw_bucket};
  make_bucket.environment = s3_client_environment();
  auto made = run_child(make_bucket);
  if (!made.ok())
    return made.error();
  if (made->exit_code != 0)
    return setup_error("peer radosgw: cannot make the bucket: " + trimmed(made->diagnostics));
  child_launch launch;
  launch.argv = {"python3",
                 opt_.s3_client.string(),
                 "mirror",
                 rgw_bucket,
                 rgw_prefix,
                 peer_root_.string(),
                 (work_ / "s3-mirror.passes").string()};
  launch.environment = s3_client_environment();
  auto started = start_logged(launch, work_ / "s3-mirror.out");
  if (!started.ok())
    return started.error();
  mirror_ = std::move(*started);
  return sync_mirror();
}

int64_t simulation::mirror_passes() const {
  const std::string text = trimmed(read_text(work_ / "s3-mirror.passes"));
  return text.empty() ? 0 : std::atoll(text.c_str());
}

status simulation::sync_mirror() {
  if (!mirror_)
    return status::success();
  // The pass under way may have listed S3 before now: wait for the next one.
  const int64_t wanted = mirror_passes() + 2;
  const auto until = clock_type::now() + std::chrono::seconds(30);
  while (mirror_passes() < wanted) {
    if (mirror_->has_exited())
      return setup_error("peer radosgw: the S3 client stopped: " +
                         trimmed(read_text(work_ / "s3-mirror.out")));
    if (clock_type::now() > until)
      return setup_error("peer radosgw: the S3 client did not list the bucket within 30 s");
    ::poll(nullptr, 0, 5); // polling interval: the loop re-checks the condition
  }
  return status::success();
}

void simulation::stop_radosgw() {
  if (mirror_) {
    mirror_->kill();
    mirror_->wait();
    mirror_.reset();
  }
  if (!rgw_started_)
    return;
  rgw_started_ = false;
  (void)tool({"bash", opt_.radosgw_script.string(), "stop", rgw_dir_.string()}, work_);
}

status simulation::start_peer() {
  if (scene_.peer.kind == peer_kind::folder)
    return status::success();
  if (scene_.peer.kind == peer_kind::bridge_sim)
    return start_bridge_sim();
  if (scene_.peer.kind == peer_kind::radosgw)
    return start_radosgw();
  const fs::path scenario_file = work_ / "lfs-sim-scenario.json";
  const fs::path port_file = work_ / "lfs-sim.port";
  if (!write_text(scenario_file, json{{"seed", opt_.seed}, {"rules", scene_.peer.rules}}.dump(1)))
    return setup_error("cannot write " + scenario_file.string());
  child_launch launch;
  launch.argv = {opt_.lfs_sim.string(),
                 "--root",
                 peer_root_.string(),
                 "--port",
                 "0",
                 "--port-file",
                 port_file.string(),
                 "--log",
                 (opt_.out / "lfs-sim.log").string(),
                 "--scenario",
                 scenario_file.string(),
                 "--seed",
                 std::to_string(opt_.seed)};
  if (scene_.faults.network.enabled)
    launch.argv.push_back("--hrefs-follow-host"); // transfers go through the proxy too
  launch.environment = environment();
  auto started = start_logged(launch, work_ / "lfs-sim.out");
  if (!started.ok())
    return started.error();
  sim_ = std::move(*started);
  // Bounded wait for the port file, then for /health.
  const auto until = clock_type::now() + std::chrono::seconds(20);
  while (sim_port_ == 0) {
    if (clock_type::now() > until || sim_->has_exited())
      return setup_error("ferry-lfs-sim did not start: " + read_text(work_ / "lfs-sim.out"));
    const std::string port = trimmed(read_text(port_file));
    if (!port.empty())
      sim_port_ = std::atoi(port.c_str());
    else
      ::poll(nullptr, 0, 5); // polling interval: the loop re-checks the condition
  }
  httplib::Client client("127.0.0.1", sim_port_);
  client.set_connection_timeout(2);
  for (;;) {
    if (auto res = client.Get("/health"); res && res->status == 200)
      break;
    if (clock_type::now() > until)
      return setup_error("ferry-lfs-sim does not answer /health");
    ::poll(nullptr, 0, 5);
  }
  ferry_port_ = sim_port_;
  if (scene_.faults.network.enabled) {
    auto stage = opt_.network ? opt_.network(scene_, opt_.seed, events_)
                              : proxy_stage_factory()(scene_, opt_.seed, events_);
    if (!stage.ok())
      return stage.error().with_context("faults.network");
    network_ = std::move(*stage);
    auto port = network_->start(sim_port_);
    if (!port.ok())
      return port.error().with_context("faults.network");
    ferry_port_ = *port;
  }
  return status::success();
}

status simulation::mount_disk() {
  std::error_code ec;
  fs::create_directories(peer_root_, ec);
  const std::string size = "size=" + std::to_string(scene_.faults.disk.capacity_bytes);
  if (::mount("ferry-sim-disk", peer_root_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV,
              (size + ",mode=0755").c_str()) != 0)
    return {errc::invalid_request, "faults.disk: cannot mount a tmpfs at " + peer_root_.string() +
                                     " (" + std::strerror(errno) +
                                     "; it needs root or CAP_SYS_ADMIN)"};
  disk_mounted_ = true;
  events_.fault_start("disk_full", "the destination on a tmpfs of " +
                                     std::to_string(scene_.faults.disk.capacity_bytes) + " bytes");
  return status::success();
}

status simulation::grow_disk() {
  // Room for every object twice over (temporary files and the final ones).
  const int64_t size = scene_.faults.disk.capacity_bytes + 2 * plan_.total_bytes + (16 << 20);
  if (::mount("ferry-sim-disk", peer_root_.c_str(), "tmpfs", MS_REMOUNT | MS_NOSUID | MS_NODEV,
              ("size=" + std::to_string(size)).c_str()) != 0)
    return setup_error("faults.disk: cannot grow the tmpfs at " + peer_root_.string() + ": " +
                       std::strerror(errno));
  events_.fault_end("disk_full");
  return status::success();
}

std::string simulation::store_url(int repository) const {
  if (scene_.peer.kind == peer_kind::folder)
    return "file://" + peer_root_.string();
  if (scene_.peer.kind == peer_kind::bridge_sim)
    return "proton://LFS";
  if (scene_.peer.kind == peer_kind::radosgw)
    return std::string("s3://") + rgw_bucket + "/" + rgw_prefix +
           "?endpoint=http://127.0.0.1:" + std::to_string(rgw_port_) + "&path_style=true";
  return "lfs+http://127.0.0.1:" + std::to_string(ferry_port_) + "/" + repository_name(repository) +
         ".git/info/lfs";
}

std::string simulation::repository_name(int repository) const {
  return scene_.workload.mode == workload_mode::migrate ? "sim"
                                                        : "repo" + std::to_string(repository);
}

status simulation::prepare_commands() {
  const auto mode = scene_.workload.mode;
  if (mode == workload_mode::migrate) {
    command migrate{{opt_.ferry.string(), "migrate", "--from",
                     "file://" + (work_ / "source").string(), "--to", store_url(0), "--transfers",
                     std::to_string(scene_.workload.transfers)},
                    work_};
    if (scene_.workload.tps > 0) {
      std::ostringstream tps;
      tps << scene_.workload.tps;
      migrate.argv.insert(migrate.argv.end(), {"--tps", tps.str()});
    }
    commands_.push_back(std::move(migrate));
    destination_.roots = {peer_root_};
    return status::success();
  }
  for (int r = 0; r < scene_.workload.repositories; ++r) {
    const fs::path dir = mode == workload_mode::push ? repo_dir(work_, r) : clone_dir(work_, r);
    if (auto s = tool({opt_.ferry.string(), "install", "--store", store_url(r)}, dir); !s.ok())
      return s;
    // One agent per repository, as the scenarios were written for: each
    // kill lands on the one process that holds the repository's journal.
    if (auto s = tool({"git", "config", "lfs.customtransfer.ferry.concurrent", "false"}, dir);
        !s.ok())
      return s;
    if (mode == workload_mode::push) {
      commands_.push_back({{"git", "push", "-q", "origin", "main"}, dir});
    } else {
      commands_.push_back({{"git", "lfs", "pull"}, dir});
      destination_.roots.push_back(dir / ".git" / "lfs" / "objects");
    }
  }
  if (mode == workload_mode::push)
    destination_.roots = {peer_objects()};
  return status::success();
}

/// The ids of running processes that are descendants of this one and run
/// `program` (the agents git-lfs started).
std::vector<pid_t> descendants_running(const fs::path& program) {
  std::map<pid_t, pid_t> parent;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos)
      continue;
    const std::string stat = read_text(entry.path() / "stat");
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    const auto close = stat.rfind(')');
    if (close == std::string::npos)
      continue;
    std::istringstream rest(stat.substr(close + 1));
    std::string state;
    pid_t ppid = 0;
    rest >> state >> ppid;
    parent[static_cast<pid_t>(std::stol(name))] = ppid;
  }
  const pid_t self = ::getpid();
  std::vector<pid_t> found;
  for (const auto& [pid, ppid] : parent) {
    std::error_code link_ec;
    const auto exe = fs::read_symlink("/proc/" + std::to_string(pid) + "/exe", link_ec);
    if (link_ec || exe != program)
      continue;
    for (pid_t up = ppid; up > 1;) {
      if (up == self) {
        found.push_back(pid);
        break;
      }
      auto it = parent.find(up);
      if (it == parent.end())
        break;
      up = it->second;
    }
  }
  return found;
}

int simulation::kill_ferry(std::vector<child_process>& children) {
  int killed = 0;
  if (scene_.workload.mode == workload_mode::migrate) {
    for (auto& child : children) {
      if (!child.has_exited()) {
        child.kill(); // ferry migrate, in a process group of its own
        ++killed;
      }
    }
    return killed;
  }
  std::error_code ec;
  const auto program = fs::canonical(opt_.ferry, ec);
  for (const pid_t pid : descendants_running(program)) {
    if (::kill(pid, SIGKILL) == 0)
      ++killed;
  }
  return killed;
}

void simulation::wait_peer_settled() {
  if (!sim_)
    return;
  // The killed run's last uploads end at the sim (their bodies cut short)
  // a moment after the kill: wait until every PUT it began was answered and
  // no upload's temporary file is left, so the next run finds the peer
  // settled. Bounded: a peer that never settles is looked at anyway.
  const auto until = clock_type::now() + std::chrono::seconds(10);
  httplib::Client client("127.0.0.1", sim_port_);
  while (clock_type::now() < until) {
    const json stats = sim_stats();
    const int64_t started = stats.value("requests", json::object()).value("upload", int64_t{0});
    int64_t answered = 0;
    std::istringstream log(read_text(opt_.out / "lfs-sim.log"));
    for (std::string line; std::getline(log, line);) {
      // An upload reset by a fault gets no answer line.
      const bool put_answered =
        line.find(" PUT ") != std::string::npos && line.find(" -> ") != std::string::npos;
      const bool put_reset = line.find(" fault reset_after_bytes=") != std::string::npos &&
                             line.find(" on upload ") != std::string::npos;
      if (put_answered || put_reset)
        ++answered;
    }
    bool temporary = false;
    std::error_code ec;
    for (fs::recursive_directory_iterator it(peer_root_, ec), end; !ec && it != end;
         it.increment(ec)) {
      if (it->path().filename().string().rfind('.', 0) == 0)
        temporary = true;
    }
    if (answered >= started && !temporary)
      return;
    ::poll(nullptr, 0, 10); // polling interval: the loop re-checks the condition
  }
}

bool simulation::another_run(int run, const run_record& record) const {
  if (record.timed_out)
    return false;
  return record.killed || (scene_.faults.disk.enabled && run <= scene_.faults.disk.freed_after_run);
}

status simulation::after_run_hook(int run, bool last) {
  if (opt_.after_run.empty())
    return status::success();
  child_options options;
  options.argv = {"/bin/sh", "-c", opt_.after_run};
  std::vector<std::string> variables = {
    "FERRY_SIM_DESTINATION=" + destination_.roots.front().string(),
    "FERRY_SIM_RUN=" + std::to_string(run), "FERRY_SIM_LAST=" + std::string(last ? "1" : "0")};
  if (sim_)
    variables.push_back("FERRY_SIM_LFS_URL=http://127.0.0.1:" + std::to_string(sim_port_) + "/" +
                        repository_name(0) + ".git/info/lfs");
  options.environment = environment(variables);
  options.directory = work_;
  auto ran = run_child(options);
  if (!ran.ok())
    return ran.error();
  if (ran->exit_code != 0)
    return setup_error("--after-run exited " + std::to_string(ran->exit_code) + ": " +
                       trimmed(ran->diagnostics));
  return status::success();
}

status simulation::run_once(int run, run_record& record, json& timing) {
  record.run = run;
  if (scene_.workload.mode == workload_mode::migrate)
    arrived_before_last_run_ = count_arrived(plan_.objects, destination_);
  const bool kill_pending = kills_done_ < static_cast<int>(plan_.kill_points.size());
  const int64_t kill_at = kill_pending ? plan_.kill_points[static_cast<size_t>(kills_done_)] : 0;

  std::vector<child_process> children;
  events_.run_start(run);
  run_starts_ms_.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count());
  const auto started = clock_type::now();
  for (size_t i = 0; i < commands_.size(); ++i) {
    auto argv = commands_[i].argv;
    const std::string stem = "run" + std::to_string(run) +
                             (commands_.size() > 1 ? "-repo" + std::to_string(i) : std::string());
    if (scene_.workload.mode == workload_mode::migrate)
      argv.insert(argv.end(), {"--report", (runs_dir_ / (stem + ".report.json")).string()});
    child_launch launch;
    launch.argv = argv;
    launch.environment = environment();
    launch.directory = commands_[i].dir;
    auto child = start_logged(launch, runs_dir_ / (stem + ".out"), runs_dir_ / (stem + ".err"));
    if (!child.ok())
      return child.error();
    children.push_back(std::move(*child));
  }

  const std::string during = "sampled during run " + std::to_string(run);
  int64_t arrived_at_kill = -1;
  int pause_ms = 5;
  for (;;) {
    std::vector<pollfd> watches;
    bool running = false;
    for (const auto& child : children) {
      if (!child.has_exited()) {
        running = true;
        if (child.exit_watch() >= 0)
          watches.push_back({child.exit_watch(), POLLIN, 0});
      }
    }
    if (!running)
      break;
    // Wakes when a child exits, else samples every 5 ms, or (for a large
    // destination) after as long as the last sample took, so the harness
    // leaves at least half a core to what it measures.
    ::poll(watches.data(), watches.size(), pause_ms);
    const auto sampling = clock_type::now();
    watch_->sample(destination_, during);
    if (kill_pending && !record.killed) {
      const int64_t arrived = count_arrived(plan_.objects, destination_);
      // No ferry running at this moment (an agent not started yet): next time.
      if (arrived >= kill_at && kill_ferry(children) > 0) {
        record.killed = true;
        arrived_at_kill = arrived;
        events_.kill(run);
      }
    }
    pause_ms =
      std::max<int>(5, static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          clock_type::now() - sampling)
                                          .count()));
    if (!timed_out_ && clock_type::now() > deadline_) {
      timed_out_ = record.timed_out = true;
      for (auto& child : children)
        child.kill();
    }
  }
  record.rc = 0;
  for (auto& child : children) {
    const auto exit = child.wait();
    const int rc = exit.exit_code >= 0 ? exit.exit_code : 128 + exit.signal;
    record.rc = std::max(record.rc, rc);
  }
  const auto ms =
    std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - started).count();
  events_.run_end(run, record.rc);
  if (record.killed) {
    ++kills_done_;
    wait_peer_settled();
  }
  if (auto s = sync_mirror(); !s.ok())
    return s;
  // What the run left, before anybody else touches the destination.
  if (record.rc == 0) {
    for (const auto& object : plan_.objects) {
      if (auto problem = object_problem(object, destination_); !problem.empty())
        record.problems_after.push_back(problem);
    }
  }
  if (auto s = after_run_hook(run, !another_run(run, record)); !s.ok())
    return s;
  watch_->sample(destination_, "sampled after run " + std::to_string(run));
  timing = {{"run", run}, {"duration_ms", ms}, {"rc", record.rc}, {"killed", record.killed}};
  if (record.killed)
    timing["arrived_at_kill"] = arrived_at_kill;
  return status::success();
}

int64_t simulation::cooldown_tolerance_ms() const {
  const auto& network = scene_.faults.network;
  return 50 + (network.enabled ? 2 * (network.latency_ms + network.jitter_ms) : 0);
}

json simulation::sim_stats() const {
  httplib::Client client("127.0.0.1", sim_port_);
  client.set_connection_timeout(5);
  auto res = client.Get("/stats");
  if (!res || res->status != 200)
    return json::object();
  json stats = json::parse(res->body, nullptr, false);
  return stats.is_object() ? stats : json::object();
}

result<run_outcome> simulation::run() {
  auto planned = plan_workload(scene_, opt_.seed);
  if (!planned.ok())
    return planned.error();
  plan_ = std::move(*planned);
  if (auto s = check_peer_rules(); !s.ok())
    return s;
  if (auto s = make_directories(); !s.ok())
    return s;
  if (scene_.faults.disk.enabled) {
    if (auto s = mount_disk(); !s.ok())
      return s;
  }
  if (auto s = configure_git(); !s.ok())
    return s;
  if (auto s = generate(); !s.ok())
    return s;
  if (auto s = start_peer(); !s.ok())
    return s;
  if (auto s = prepare_commands(); !s.ok())
    return s;
  watch_ = std::make_unique<partial_watch>(plan_.objects);

  std::vector<run_record> records;
  json runs = json::array();
  const auto begin = clock_type::now();
  const int64_t started_ms = now_ms();
  deadline_ =
    begin + std::chrono::milliseconds(static_cast<int64_t>(scene_.expect.max_duration_s * 1000.0));
  for (int run = 1;; ++run) {
    run_record record;
    json timing;
    if (auto s = run_once(run, record, timing); !s.ok())
      return s;
    records.push_back(record);
    runs.push_back(std::move(timing));
    if (!another_run(run, record))
      break;
    if (scene_.faults.disk.enabled && run == scene_.faults.disk.freed_after_run) {
      if (auto s = grow_disk(); !s.ok())
        return s;
    }
  }
  const double duration_s = std::chrono::duration<double>(clock_type::now() - begin).count();
  if (network_)
    network_->stop();
  json timings = {{"started_ms", started_ms},
                  {"duration_ms", static_cast<int64_t>(duration_s * 1000.0)},
                  {"throughput_bytes_per_s",
                   duration_s > 0 ? static_cast<double>(plan_.total_bytes) / duration_s : 0.0},
                  {"samples", watch_->samples()},
                  {"runs", std::move(runs)}};
  if (network_)
    timings["network"] = network_->stats();
  json result = build_result(records, std::move(timings));
  stop_radosgw();
  if (sim_) {
    sim_->kill();
    sim_->wait();
  }
  if (!write_text(opt_.out / "result.json", result.dump(2) + "\n"))
    return setup_error("cannot write result.json");
  if (!events_.write(opt_.out / "events.jsonl", ferry_events_))
    return setup_error("cannot write events.jsonl");
  if (opt_.after_results) {
    if (auto s = opt_.after_results(opt_.out); !s.ok())
      return s;
  }
  run_outcome outcome;
  outcome.passed = result["verdict"] == "pass";
  outcome.result = std::move(result);
  return outcome;
}

json simulation::schedule() const {
  json out = {{"kill_after_objects", plan_.kill_points}};
  if (scene_.faults.network.enabled) {
    json windows = json::array();
    for (const auto& window : plan_network(scene_.faults.network, opt_.seed).blackholes)
      windows.push_back({{"start_ms", window.start_ms}, {"end_ms", window.end_ms}});
    out["blackholes"] = std::move(windows);
  }
  return out;
}

json simulation::build_result(const std::vector<run_record>& records, json timings) {
  std::vector<invariant_result> checks;
  const auto intact = check_all_objects_intact(plan_.objects, destination_);
  checks.push_back(intact);
  checks.push_back(watch_->result());
  if (sim_) {
    const json stats = sim_stats();
    write_text(opt_.out / "lfs-sim-stats.json", stats.dump(1) + "\n");
    // A pull sends each object from the sim (GETs), the others to it (PUTs).
    const bool pull = scene_.workload.mode == workload_mode::pull;
    std::map<std::string, int64_t> sends;
    const json per_oid = stats.value(pull ? "gets" : "puts", json::object());
    for (const auto& [oid, n] : per_oid.items())
      sends[oid] = n.get<int64_t>();
    std::optional<int64_t> network_resets;
    if (network_)
      network_resets = network_->connections_reset();
    const std::string log = read_text(opt_.out / "lfs-sim.log");
    checks.push_back(check_sent_at_most_once(plan_.objects, sends,
                                             pull ? faulted_downloads(log) : faulted_uploads(log),
                                             kills_done_, network_resets, pull ? "GET" : "PUT"));
  }
  if (rgw_started_) {
    // radosgw logs every request: no upload of Ferry goes unseen.
    const std::string log = read_text(rgw_log_);
    write_text(opt_.out / "radosgw.log", log);
    const auto counted = radosgw_uploads(log, std::string(rgw_bucket) + "/" + rgw_prefix);
    checks.push_back(
      check_sent_at_most_once(plan_.objects, counted.uploads, counted.faulted, kills_done_));
  }
  if (scene_.peer.kind == peer_kind::bridge_sim && scene_.workload.mode == workload_mode::push) {
    // Every bridge process logs its upload: no retry of Ferry goes unseen.
    const auto counted = bridge_uploads(read_text(opt_.out / "bridge-sim.log"));
    checks.push_back(
      check_sent_at_most_once(plan_.objects, counted.uploads, counted.faulted, kills_done_));
  }
  if (sim_)
    checks.push_back(check_no_request_during_cooldown(
      sim_requests(read_text(opt_.out / "lfs-sim.log")), run_starts_ms_, max_retry_wait_s * 1000,
      cooldown_tolerance_ms()));
  checks.push_back(check_honest_exit_codes(records));
  if (scene_.workload.mode == workload_mode::migrate) {
    int64_t intact_objects = 0;
    for (const auto& object : plan_.objects) {
      if (object_problem(object, destination_).empty())
        ++intact_objects;
    }
    const json report = json::parse(
      read_text(runs_dir_ / ("run" + std::to_string(records.back().run) + ".report.json")), nullptr,
      false);
    checks.push_back(check_report_matches(report.is_discarded() ? json() : report, plan_.objects,
                                          intact_objects, arrived_before_last_run_));
  }
  checks.push_back(check_within_limits(scene_.expect, timings["duration_ms"].get<double>() / 1000.0,
                                       timings["throughput_bytes_per_s"].get<double>(),
                                       timed_out_));
  bool passed = true;
  json invariants = json::array();
  for (const auto& check : checks) {
    passed = passed && check.passed;
    invariants.push_back(check.to_json());
  }
  std::string ferry_version, lfs_version;
  (void)tool({opt_.ferry.string(), "--version"}, work_, {}, &ferry_version);
  (void)tool({"git", "lfs", "version"}, work_, {}, &lfs_version);
  return {{"scenario", scene_.to_json()},
          {"seed", opt_.seed},
          {"versions", {{"ferry", trimmed(ferry_version)}, {"git_lfs", trimmed(lfs_version)}}},
          {"verdict", passed ? "pass" : "fail"},
          {"invariants", std::move(invariants)},
          {"counts",
           {{"objects", plan_.objects.size()},
            {"bytes", plan_.total_bytes},
            {"repositories", scene_.workload.repositories},
            {"runs", records.size()},
            {"kills", kills_done_},
            {"kills_planned", plan_.kill_points.size()}}},
          {"schedule", schedule()},
          {"timings", std::move(timings)}};
}

} // namespace

result<run_outcome> run_simulation(const run_options& options) {
  simulation sim(options);
  return sim.run();
}

} // namespace ferry::harness
