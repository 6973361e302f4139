#include "actors/engine.hpp"

#include "actors/journal_actor.hpp"
#include "actors/logging.hpp"
#include "actors/policy/metrics.hpp"
#include "actors/rate_limiter.hpp"
#include "actors/shared_rate_limiter.hpp"
#include "actors/transfer_supervisor.hpp"
#include "protocol/daemon_messages.hpp"
#include "protocol/line_splitter.hpp"

#include <caf/all.hpp>

#include <cerrno>
#include <poll.h>
#include <thread>
#include <unistd.h>

namespace ferry {

namespace {

/// Reads request lines on its own thread (blocking reads must not occupy
/// the actor scheduler) and hands them to the protocol IO actor. stop()
/// wakes it through a pipe.
class line_reader {
public:
  line_reader(const agent_options& options, protocol_io_actor io)
      : fd_(options.input_fd), read_before_(options.read_before),
        splitter_(options.framed_input ? protocol::daemon_max_frame : options.max_line_bytes),
        max_line_bytes_(options.max_line_bytes), framed_(options.framed_input),
        on_frame_(options.on_frame), on_input_end_(options.on_input_end), io_(std::move(io)) {
    if (::pipe(wake_) != 0)
      wake_[0] = wake_[1] = -1;
    thread_ = std::thread{[this] { run(); }};
  }

  ~line_reader() {
    if (wake_[1] >= 0) {
      char byte = 0;
      [[maybe_unused]] auto n = ::write(wake_[1], &byte, 1);
    }
    thread_.join();
    for (int fd : wake_)
      if (fd >= 0)
        ::close(fd);
  }

private:
  void deliver(std::vector<protocol::line_splitter::line> lines) {
    for (auto& line : lines) {
      if (!line.too_long && framed_) {
        // A frame that is no JSON is a broken client: answered like a
        // malformed request, so git-lfs sees it.
        auto frame = protocol::decode_daemon_frame(line.text);
        if (!frame)
          caf::anon_send(io_, atom::input_v, std::move(line.text));
        else if (frame->kind == protocol::frame_kind::too_long ||
                 (frame->kind == protocol::frame_kind::line &&
                  frame->text.size() > max_line_bytes_))
          caf::anon_send(io_, atom::too_long_v);
        else if (frame->kind == protocol::frame_kind::line)
          caf::anon_send(io_, atom::input_v, std::move(frame->text));
        else if (on_frame_)
          on_frame_(*frame);
        continue;
      }
      if (line.too_long)
        caf::anon_send(io_, atom::too_long_v);
      else
        caf::anon_send(io_, atom::input_v, std::move(line.text));
    }
  }

  void run() {
    deliver(splitter_.feed(read_before_));
    std::vector<char> buffer(64 << 10);
    for (;;) {
      pollfd fds[2] = {{fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
      if (::poll(fds, wake_[0] >= 0 ? 2 : 1, -1) < 0) {
        if (errno == EINTR)
          continue;
        break;
      }
      if (fds[1].revents != 0)
        return; // stopping: the engine has shut down
      auto n = ::read(fd_, buffer.data(), buffer.size());
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break;
      deliver(splitter_.feed({buffer.data(), static_cast<size_t>(n)}));
    }
    deliver(splitter_.finish());
    if (on_input_end_)
      on_input_end_();
    caf::anon_send(io_, atom::eof_v);
  }

  int fd_;
  std::string read_before_;
  protocol::line_splitter splitter_;
  size_t max_line_bytes_;
  bool framed_;
  std::function<void(const protocol::daemon_frame&)> on_frame_;
  std::function<void()> on_input_end_;
  protocol_io_actor io_;
  int wake_[2] = {-1, -1};
  std::thread thread_;
};

} // namespace

bool requests_paced_by_http(const engine_config& config) {
  const object_store* paced = config.store.get();
  if (config.source && (paced == nullptr || paced->endpoint().empty()))
    paced = config.source.get();
  // Without a store every job is an LFS server's action.
  if (paced == nullptr)
    return config.http != nullptr;
  auto kind = store_kind(*paced);
  return kind == "lfs" || kind == "s3";
}

rate_limits limiter_limits(const engine_config& config) {
  rate_limits limits;
  // A store that makes no HTTP requests (a folder, Proton's bridge) counts
  // each transfer attempt as one request.
  limits.requests_per_second = requests_paced_by_http(config) ? 0 : config.max_requests_per_second;
  limits.bytes_per_second = config.max_bytes_per_second;
  return limits;
}

engine_core start_engine_core(caf::actor_system& sys, caf::scoped_actor& self,
                              std::shared_ptr<const engine_config> config,
                              std::shared_ptr<journal_db> journal,
                              const std::function<void(const transfer_record&)>& recovered,
                              rate_limiter_actor shared_limiter) {
  engine_core core;
  // Detached, each on a thread of its own: RocksDB writes and the store's
  // group sync block, and must not hold one of the scheduler's few threads.
  store_syncer_actor syncer;
  if (config->store)
    syncer = sys.spawn<caf::detached>(store_syncer, config->store);
  core.journal = sys.spawn<caf::detached>(ferry::journal, std::move(journal), std::move(syncer));
  self->request(core.journal, caf::infinite, atom::recover_v)
    .receive(
      [&](const std::vector<transfer_record>& records) {
        for (auto& record : records)
          recovered(record);
      },
      [&](const caf::error& err) {
        log()->error("journal recovery failed: {}", to_status(err).to_string());
      });
  bool per_request = requests_paced_by_http(*config);
  if (shared_limiter && config->shared_limit.host.empty()) {
    core.limiter = std::move(shared_limiter);
    core.limiter_shared = true;
  } else {
    core.limiter = sys.spawn(rate_limiter, limiter_limits(*config));
  }
  // Detached: it waits on Redis. (The HTTP engine asks Redis for each
  // request itself.)
  if (!core.limiter_shared && !config->shared_limit.host.empty() && !per_request)
    core.limiter = sys.spawn<caf::detached>(shared_rate_limiter, core.limiter, config->shared_limit,
                                            config->shared_requests_per_second, config->notice);
  core.supervisor = sys.spawn(transfer_supervisor, std::move(config), core.journal, core.limiter);
  return core;
}

void stop_engine_core(caf::scoped_actor& self, const engine_core& core) {
  self->send_exit(core.supervisor, caf::exit_reason::user_shutdown);
  if (!core.limiter_shared)
    self->send_exit(core.limiter, caf::exit_reason::user_shutdown);
  self->send_exit(core.journal, caf::exit_reason::user_shutdown);
  // The next engine in this process may open the same journal.
  self->wait_for(core.journal);
}

void configure_scheduler(caf::actor_system_config& cfg) {
  cfg.set("scheduler.max-threads", 4);
  cfg.set("scheduler.policy", caf::atom("sharing"));
}

int run_agent(agent_options options) {
  caf::actor_system_config cfg;
  configure_scheduler(cfg);
  caf::actor_system sys{cfg};
  int exit_code = run_agent_on(sys, std::move(options));
  sys.await_all_actors_done();
  return exit_code;
}

void log_recovered(const transfer_record& record) {
  log_event(spdlog::level::warn, {record.oid, record.cid},
            "recovered interrupted {} ({} of {} bytes durable); it resumes when git-lfs asks for "
            "it again",
            to_string(record.dir), record.committed, record.size);
}

int serve_on_core(caf::actor_system& sys, const engine_core& core,
                  std::shared_ptr<const engine_config> config, const agent_options& options,
                  uint64_t first_job) {
  int exit_code = 0;
  caf::scoped_actor self{sys};
  auto io = sys.spawn(protocol_io, options.write, options.max_line_bytes, std::move(config),
                      core.supervisor, first_job);
  self->monitor(io);
  line_reader reader{options, io};
  self->receive([&](const caf::down_msg& dm) {
    if (dm.reason && dm.reason != caf::exit_reason::user_shutdown) {
      log()->error("agent stopped: {}", to_status(dm.reason).to_string());
      exit_code = 1;
    }
  });
  return exit_code;
}

int run_agent_on(caf::actor_system& sys, agent_options options) {
  auto config = std::make_shared<const engine_config>(std::move(options.config));
  caf::scoped_actor self{sys};
  auto core = start_engine_core(sys, self, config, options.journal, log_recovered, options.limiter);
  int exit_code = serve_on_core(sys, core, config, options, first_job_id(0));
  stop_engine_core(self, core);
  return exit_code;
}

} // namespace ferry
