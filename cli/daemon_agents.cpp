#include "cli/daemon_agents.hpp"

#include "actors/engine.hpp"
#include "actors/logging.hpp"
#include "actors/rate_limiter.hpp"
#include "cli/agent_setup.hpp"
#include "protocol/transfer_protocol.hpp"
#include "store/os/child_process.hpp"

#include <caf/all.hpp>

#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <map>
#include <vector>

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

/// `git credential` run by the agent, in its own context: the daemon sends
/// the request as a frame and waits for the answer with the same id. Until
/// the agent's engine runs (its connection is not read before), `before`
/// runs it here instead. Once the agent's input has ended, every request
/// waiting and to come fails.
class credential_channel {
public:
  credential_channel(std::shared_ptr<frame_writer> writer, credential_runner before)
      : writer_(std::move(writer)), before_(std::move(before)) {}

  result<command_output> run(const std::string& action, const std::string& input) {
    std::unique_lock lock{mutex_};
    if (!open_) {
      lock.unlock();
      return before_(action, input);
    }
    if (closed_)
      return status{errc::unavailable, "the agent is gone"};
    int64_t id = next_id_++;
    lock.unlock();
    writer_->write(protocol::encode_credential_frame(id, action, input));
    lock.lock();
    answered_.wait(lock, [&] { return closed_ || answers_.count(id) != 0; });
    auto found = answers_.find(id);
    if (found == answers_.end())
      return status{errc::unavailable, "the agent went away before git credential answered"};
    auto output = std::move(found->second);
    answers_.erase(found);
    return output;
  }

  void take(const protocol::daemon_frame& frame) {
    if (frame.kind != protocol::frame_kind::credential_reply)
      return;
    command_output output;
    output.exit_code = static_cast<int>(frame.exit_code);
    output.out = frame.text;
    std::lock_guard lock{mutex_};
    answers_[frame.id] = std::move(output);
    answered_.notify_all();
  }

  /// From now on the agent answers: its connection is read.
  void open() {
    std::lock_guard lock{mutex_};
    open_ = true;
  }

  void close() {
    std::lock_guard lock{mutex_};
    closed_ = true;
    answered_.notify_all();
  }

private:
  std::shared_ptr<frame_writer> writer_;
  credential_runner before_;
  std::mutex mutex_;
  std::condition_variable answered_;
  std::map<int64_t, command_output> answers_;
  int64_t next_id_ = 1;
  bool open_ = false;
  bool closed_ = false;
};

} // namespace

result<std::unique_ptr<daemon_engine>> daemon_engine::start(const config::settings& settings) {
  std::unique_ptr<daemon_engine> engine{new daemon_engine};
  auto http = start_http_engine(settings, paced_http_options(settings));
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
  auto writer = std::make_shared<frame_writer>(fd);
  auto environment = environment_entries(session.environment);
  // Before the engine runs: here, in the session's directory and
  // environment, without a prompt.
  auto here = [cwd = session.cwd, environment](const std::string& action,
                                               const std::string& input) {
    return run_git({"credential", action}, cwd, {input, {"GIT_TERMINAL_PROMPT=0"}, environment});
  };
  auto credentials = std::make_shared<credential_channel>(writer, here);
  agent_context context;
  context.cwd = session.cwd;
  context.environment = session.environment;
  context.flags = session.flags;
  // A credential helper may need what only the agent has: its terminal,
  // variables outside the session's allow-list, the user's keyring.
  context.credentials = [credentials](const std::string& action, const std::string& input) {
    return credentials->run(action, input);
  };
  protocol::daemon_reply answer;
  auto resolved = resolve_agent_settings(context);
  if (!resolved) {
    answer.error = "ferry: " + resolved.error().message();
    answer.code = protocol::code::unavailable;
    hooks.answer(answer);
    return;
  }
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
  options.on_frame = [credentials](const protocol::daemon_frame& frame) {
    credentials->take(frame);
  };
  options.on_input_end = [credentials] { credentials->close(); };
  credentials->open();
  options.limiter =
    limiter_for(requests_paced_by_http(options.config) ? 0 : options.config.max_requests_per_second,
                options.config.max_bytes_per_second);
  run_agent_on(*system_, std::move(options));
  credentials->close();
}

} // namespace ferry::cli
