#include "cli/daemon_agents.hpp"

#include "actors/engine.hpp"
#include "actors/logging.hpp"
#include "actors/rate_limiter.hpp"
#include "cli/agent_setup.hpp"
#include "protocol/transfer_protocol.hpp"

#include <caf/all.hpp>

#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>
#include <cstring>

namespace ferry::cli {

namespace {

/// Writes frames to an agent's connection: whole, one at a time (the
/// protocol IO actor and the notices come from different threads), never
/// raising SIGPIPE. A client that takes nothing for a minute is cut off,
/// so that a stuck agent does not hold a scheduler thread.
class frame_writer {
public:
  explicit frame_writer(int fd) : fd_(fd) {
    timeval limit{60, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
  }

  void write(std::string frame) {
    frame += '\n';
    std::lock_guard lock{mutex_};
    if (broken_)
      return;
    size_t done = 0;
    while (done < frame.size()) {
      ssize_t sent = ::send(fd_, frame.data() + done, frame.size() - done, MSG_NOSIGNAL);
      if (sent < 0 && errno == EINTR)
        continue;
      if (sent <= 0) {
        log()->warn("an agent's connection stopped taking replies ({}); closing it",
                    std::strerror(errno));
        ::shutdown(fd_, SHUT_RDWR);
        broken_ = true;
        return;
      }
      done += static_cast<size_t>(sent);
    }
  }

private:
  int fd_;
  std::mutex mutex_;
  bool broken_ = false;
};

} // namespace

result<std::unique_ptr<daemon_engine>> daemon_engine::start(const config::settings& settings) {
  std::unique_ptr<daemon_engine> engine{new daemon_engine};
  auto http = start_http_engine(settings);
  if (!http)
    return http.error();
  engine->http_ = std::move(*http);
  engine->config_ = std::make_unique<caf::actor_system_config>();
  configure_scheduler(*engine->config_);
  engine->system_ = std::make_unique<caf::actor_system>(*engine->config_);
  return engine;
}

daemon_engine::~daemon_engine() {
  {
    std::lock_guard lock{mutex_};
    for (auto& [limits, limiter] : limiters_)
      caf::anon_send_exit(limiter, caf::exit_reason::user_shutdown);
    limiters_.clear();
  }
  system_->await_all_actors_done();
  // The stores the actors held used the HTTP engine: it goes last.
  system_.reset();
  http_.reset();
}

rate_limiter_actor daemon_engine::limiter_for(double requests, double bytes) {
  std::lock_guard lock{mutex_};
  auto& limiter = limiters_[{requests, bytes}];
  if (!limiter) {
    rate_limits limits;
    limits.requests_per_second = requests;
    limits.bytes_per_second = bytes;
    limiter = system_->spawn(rate_limiter, limits);
  }
  return limiter;
}

void daemon_engine::serve(int fd, const protocol::daemon_session& session, agent_hooks& hooks) {
  agent_context context;
  context.cwd = session.cwd;
  context.environment = session.environment;
  context.flags = session.flags;
  protocol::daemon_reply answer;
  auto resolved = resolve_agent_settings(context);
  if (!resolved) {
    answer.error = "ferry: " + resolved.error().message();
    answer.code = protocol::code::unavailable;
    hooks.answer(answer);
    return;
  }
  auto writer = std::make_shared<frame_writer>(fd);
  auto prepared = prepare_agent(context, *resolved, http_, [writer](const std::string& text) {
    writer->write(protocol::encode_notice_frame(text));
  });
  if (auto* refusal = std::get_if<agent_refusal>(&prepared)) {
    log()->error("{}", refusal->reason);
    answer.error = refusal->reason;
    answer.code = refusal->code;
    hooks.answer(answer);
    return;
  }
  auto& agent = std::get<prepared_agent>(prepared);
  const auto& repo = *resolved->repo;
  hooks.serving((repo.top_level.empty() ? repo.git_dir : repo.top_level).string());
  hooks.answer(answer);
  log()->info("agent started in {}", agent.description);
  auto options = std::move(agent.options);
  options.input_fd = fd;
  options.framed_input = true;
  options.write = [writer](const std::string& line) {
    writer->write(protocol::encode_line_frame(line));
  };
  options.limiter =
    limiter_for(options.config.max_requests_per_second, options.config.max_bytes_per_second);
  run_agent_on(*system_, std::move(options));
}

} // namespace ferry::cli
