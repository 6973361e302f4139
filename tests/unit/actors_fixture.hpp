#pragma once

// A deterministic engine for actor tests: CAF's test coordinator (no threads,
// no real time), a real journal and a real folder store in a temp directory.

#include "actors/interfaces.hpp"
#include "actors/journal_actor.hpp"
#include "actors/logging.hpp"
#include "actors/policy/engine_config.hpp"
#include "actors/protocol_io.hpp"
#include "actors/rate_limiter.hpp"
#include "actors/transfer_supervisor.hpp"
#include "actors/transfer_worker.hpp"
#include "deterministic_system.hpp"
#include "store/folder/folder_store.hpp"
#include "store/journal/journal_db.hpp"
#include "store/os/sha256.hpp"
#include "test_support.hpp"

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace ferry::testing {

inline std::string random_bytes(size_t size, uint32_t seed) {
  std::mt19937 rng{seed};
  std::string out(size, '\0');
  for (auto& c : out)
    c = static_cast<char>(rng() & 0xff);
  return out;
}

inline void write_file(const std::filesystem::path& path, const std::string& bytes) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream out{path, std::ios::binary | std::ios::trunc};
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in{path, std::ios::binary};
  return {std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
}

struct engine_fixture : deterministic_system {
  /// Removed last, after every actor and the journal are gone.
  temp_dir scratch;
  std::filesystem::path root = scratch.path;
  std::shared_ptr<journal_db> db;
  std::shared_ptr<folder_store> folder;
  engine_config config;
  journal_actor journal;
  rate_limiter_actor limiter;
  supervisor_actor supervisor;
  std::shared_ptr<std::vector<progress_note>> notes =
    std::make_shared<std::vector<progress_note>>();
  /// The jobs the supervisor said stored (waiting for their sync), in order.
  std::shared_ptr<std::vector<uint64_t>> stored_jobs = std::make_shared<std::vector<uint64_t>>();
  progress_sink_actor sink;

  engine_fixture() {
    std::filesystem::create_directories(root / "repo");
    folder = std::shared_ptr<folder_store>{std::move(*folder_store::open(root / "store"))};
    db = std::shared_ptr<journal_db>{std::move(*journal_db::open(root / "journal", {}))};
    config.store = folder;
    config.upload_roots = {root / "repo"};
    config.download_dir = root / "repo" / ".git" / "lfs" / "tmp" / "ferry";
    config.chunk_bytes = 64 << 10;
    config.sync_bytes = 256 << 10;
    config.max_attempts = 3;
    config.seed = 7;
    // The deterministic scheduler has no threads: network calls run on the
    // workers themselves.
    config.network_threads = 0;
    log()->set_level(spdlog::level::off);
    // Spawn arguments rather than captures: CAF 0.17 binds a null reference
    // when a function actor is spawned without arguments.
    sink = sys.spawn(
      [](progress_sink_actor::pointer, std::shared_ptr<std::vector<progress_note>> log,
         std::shared_ptr<std::vector<uint64_t>> stored) -> progress_sink_actor::behavior_type {
        return {[=](atom::progress, const progress_note& note) { log->push_back(note); },
                [=](atom::stored, uint64_t id) { stored->push_back(id); }};
      },
      notes, stored_jobs);
  }

  ~engine_fixture() {
    for (auto& hdl : {caf::actor_cast<caf::actor>(journal), caf::actor_cast<caf::actor>(supervisor),
                      caf::actor_cast<caf::actor>(limiter), caf::actor_cast<caf::actor>(sink)})
      if (hdl)
        caf::anon_send_exit(hdl, caf::exit_reason::user_shutdown);
    sched.run();
  }

  /// Spawns the journal, rate limiter and supervisor over `store` (null:
  /// no store of its own, only jobs with a server action can run).
  void start(std::shared_ptr<object_store> store) {
    config.store = std::move(store);
    store_syncer_actor syncer;
    if (config.store)
      syncer = sys.spawn(store_syncer, config.store);
    journal = sys.spawn(ferry::journal, db, syncer);
    limiter = sys.spawn(
      rate_limiter, rate_limits{config.max_requests_per_second, 1, config.max_bytes_per_second, 0});
    supervisor = sys.spawn(transfer_supervisor, std::make_shared<const engine_config>(config),
                           journal, limiter);
    sched.run();
  }

  /// Submits a job; the outcome lands in the returned slot once it exists.
  std::shared_ptr<std::optional<transfer_outcome>> submit(transfer_job job) {
    auto slot = std::make_shared<std::optional<transfer_outcome>>();
    sys.spawn(
      [slot](caf::event_based_actor* self, supervisor_actor sup, transfer_job job,
             progress_sink_actor progress) {
        self->request(sup, caf::infinite, atom::run_v, job, progress)
          .then([=](const transfer_outcome& outcome) { *slot = outcome; });
      },
      supervisor, std::move(job), sink);
    return slot;
  }

  /// A file inside the repository with `bytes`, and its upload job.
  transfer_job upload_job(uint64_t id, const std::string& bytes, const std::string& name) {
    auto path = root / "repo" / name;
    write_file(path, bytes);
    return {id,
            direction::upload,
            sha256::of(bytes.data(), bytes.size()),
            static_cast<int64_t>(bytes.size()),
            path.string(),
            {}};
  }

  /// Stores `bytes` in the folder store directly and returns their
  /// download job.
  transfer_job stored_download_job(uint64_t id, const std::string& bytes) {
    auto oid = sha256::of(bytes.data(), bytes.size());
    auto size = static_cast<int64_t>(bytes.size());
    auto writer = folder->open_write(oid, size, std::nullopt);
    REQUIRE(writer);
    REQUIRE((*writer)->write(bytes.data(), bytes.size()).ok());
    REQUIRE((*writer)->commit().ok());
    REQUIRE(folder->sync_published().ok());
    return {id, direction::download, oid, size, {}, {}};
  }

  /// Runs the scheduler one message at a time until `reached` holds.
  template <class Condition>
  void run_until(Condition reached) {
    while (!reached())
      REQUIRE(sched.try_run_once());
  }

  /// Runs every actor but the transfer workers until none has a message.
  /// The test scheduler lets an actor run as long as its mailbox holds
  /// something, so a worker moving chunks (each step sends the next) would
  /// otherwise run to its end before any other actor reads a message.
  void run_all_but_workers() {
    sched.run_jobs_filtered([](caf::resumable* job) {
      auto* actor = dynamic_cast<caf::scheduled_actor*>(job);
      return actor == nullptr || std::string{actor->name()} != transfer_worker_state::name;
    });
  }

  /// Bytes of the upload of `oid` in the folder store's partial file so far.
  int64_t partial_bytes(const std::string& oid) {
    std::error_code ec;
    auto size = std::filesystem::file_size(folder->partial_path(oid), ec);
    return ec ? 0 : static_cast<int64_t>(size);
  }

  std::optional<transfer_record> newest_history() {
    auto history = db->history(1);
    if (!history || history->empty())
      return std::nullopt;
    return history->front();
  }
};

/// The protocol actors on top of the engine: request lines in, reply lines
/// out, as git-lfs sees them.
struct protocol_fixture : engine_fixture {
  std::shared_ptr<std::vector<std::string>> out = std::make_shared<std::vector<std::string>>();
  protocol_io_actor io;

  ~protocol_fixture() {
    if (io)
      caf::anon_send_exit(io, caf::exit_reason::user_shutdown);
    sched.run();
  }

  /// Starts the engine over `store` (see start()), then the protocol IO
  /// actor and its coordinator.
  void start_protocol(std::shared_ptr<object_store> store) {
    start(std::move(store));
    spawn_protocol();
  }

  /// Ends this protocol session and starts another over the same engine,
  /// as git-lfs starts one agent per direction.
  void new_session() {
    caf::anon_send_exit(io, caf::exit_reason::user_shutdown);
    sched.run();
    spawn_protocol();
  }

  void spawn_protocol() {
    auto lines = out;
    io = sys.spawn(
      protocol_io, [lines](const std::string& line) { lines->push_back(line); }, size_t{1 << 20},
      std::make_shared<const engine_config>(config), supervisor, uint64_t{1});
    sched.run();
  }

  /// Sends one request line and returns the replies it produced.
  std::vector<nlohmann::json> send(const std::string& line) {
    auto before = out->size();
    caf::anon_send(io, atom::input_v, line);
    sched.run();
    std::vector<nlohmann::json> replies;
    for (auto i = before; i < out->size(); ++i)
      replies.push_back(nlohmann::json::parse((*out)[i]));
    return replies;
  }
};

} // namespace ferry::testing
