#include "cli/daemon_agents.hpp"

#include "actors/engine.hpp"
#include "actors/logging.hpp"
#include "actors/policy/transfer_task.hpp"
#include "actors/rate_limiter.hpp"
#include "actors/session.hpp"
#include "cli/agent_setup.hpp"
#include "protocol/transfer_protocol.hpp"
#include "store/http/http_url.hpp"
#include "store/os/child_process.hpp"

#include <caf/all.hpp>

#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <future>
#include <map>
#include <set>
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

  /// Writes nothing from now on: the connection is about to close, and its
  /// descriptor's number may soon be another's.
  void close() {
    std::lock_guard lock{mutex_};
    broken_ = true;
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

  /// The agent's input has ended: it answers no more.
  bool gone() {
    std::lock_guard lock{mutex_};
    return closed_;
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

/// One agent's connection, and its context as the daemon sees it.
struct agent_link {
  std::shared_ptr<frame_writer> writer;
  std::shared_ptr<credential_channel> credentials;
  /// `git credential` in the daemon, in the agent's directory and
  /// environment, without a prompt.
  credential_runner here;
  agent_context context;
};

agent_link link_of(int fd, const protocol::daemon_session& session) {
  agent_link link;
  link.writer = std::make_shared<frame_writer>(fd);
  auto environment = environment_entries(session.environment);
  link.here = [cwd = session.cwd, environment](const std::string& action,
                                               const std::string& input) {
    return run_git({"credential", action}, cwd, {input, {"GIT_TERMINAL_PROMPT=0"}, environment});
  };
  // Before the engine runs: here, in the session's directory and
  // environment, without a prompt.
  link.credentials = std::make_shared<credential_channel>(link.writer, link.here);
  link.context.cwd = session.cwd;
  link.context.environment = session.environment;
  link.context.flags = session.flags;
  // A credential helper may need what only the agent has: its terminal,
  // variables outside the session's allow-list, the user's keyring.
  link.context.credentials = [credentials = link.credentials](const std::string& action,
                                                              const std::string& input) {
    return credentials->run(action, input);
  };
  return link;
}

/// `options` reading the agent's frames on `fd` and answering through `link`.
void speak_frames(agent_options& options, int fd, const agent_link& link) {
  options.input_fd = fd;
  options.framed_input = true;
  options.write = [writer = link.writer](const std::string& line) {
    writer->write(protocol::encode_line_frame(line));
  };
  options.on_frame = [credentials = link.credentials](const protocol::daemon_frame& frame) {
    credentials->take(frame);
  };
  options.on_input_end = [credentials = link.credentials] { credentials->close(); };
}

/// The repository's own log (ferry.log in its journal), which the daemon
/// writes the lines about its agents' objects to; null after saying why.
std::shared_ptr<spdlog::logger> repository_log(const config::settings& settings) {
  std::string problem;
  auto logger = file_logger(logging_of(settings), problem);
  if (!logger)
    log()->warn("{}", problem);
  return logger;
}

/// What an agent gets of the lines the engine logs about its objects:
/// `repository` (its repository's log) those at its level, and the agent
/// itself the warnings (for its stderr, which git-lfs traces) and, when its
/// git-lfs traces, the debug lines: as if it ran the engine itself.
std::function<std::shared_ptr<void>(const std::string&)>
watch_for_agent(std::shared_ptr<spdlog::logger> repository, std::shared_ptr<frame_writer> writer,
                bool trace) {
  auto to_agent = trace ? spdlog::level::debug : spdlog::level::warn;
  auto level = repository ? std::min(to_agent, repository->level()) : to_agent;
  return [=](const std::string& oid) {
    return tap_object_lines(oid, level, [=](const object_line& line) {
      if (repository)
        repository->log(line.level, "{}", line.message);
      if (line.level >= to_agent) {
        auto name = spdlog::level::to_string_view(line.level);
        writer->write(protocol::encode_log_frame({name.data(), name.size()}, line.fields.oid,
                                                 line.fields.cid, line.message));
      }
    });
  };
}

/// What must be equal for two agents to share an engine core: the
/// repository, the journal, every setting, and the environment the store
/// was opened with (its keys, its credential helpers).
std::string engine_key(const agent_settings& resolved,
                       const std::map<std::string, std::string>& environment) {
  const auto& repo = *resolved.repo;
  std::error_code ec;
  auto journal = std::filesystem::weakly_canonical(resolved.settings.journal_dir, ec);
  std::string key = "repository " + repo.root().string() + "\njournal " +
                    (ec ? resolved.settings.journal_dir : journal).string() + "\n" +
                    config::fingerprint(resolved.settings);
  for (const auto& [name, value] : environment)
    key += name + '=' + std::to_string(value.size()) + ':' + value + '\n';
  return key;
}

} // namespace

/// An engine core the agents of one repository share, and the agents it
/// serves: its store asks them for credentials and tells them its notices.
class daemon_engine::shared_core {
public:
  explicit shared_core(std::string key) : key(std::move(key)) {}

  const std::string key;
  /// Set by the agent that starts the core, before `ready`.
  std::shared_ptr<const engine_config> config;
  engine_core core;
  std::string repository;
  /// The repository's ferry.log (repository_log()); may be null.
  std::shared_ptr<spdlog::logger> log_file;
  /// Whether the core started; the agents that joined meanwhile wait.
  std::promise<bool> started;
  std::shared_future<bool> ready = started.get_future().share();
  /// Agents counted in, guarded by daemon_engine::mutex_.
  int users = 0;

  struct member {
    std::shared_ptr<frame_writer> writer;
    std::shared_ptr<credential_channel> credentials;
    /// Its download directory: download_dir/agents/<n>.
    int directory = 0;
  };

  /// The starting agent's `git credential` in the daemon: used when no
  /// agent is connected to answer.
  void set_fallback(credential_runner here) {
    std::lock_guard lock{mutex_};
    here_ = std::move(here);
  }

  /// Adds a connected agent; returns its number (for its job ids) and
  /// fills in its directory, the lowest no other connected agent has.
  uint32_t add(member& joining) {
    std::lock_guard lock{mutex_};
    std::set<int> taken;
    for (auto& [number, each] : members_)
      taken.insert(each.directory);
    while (taken.count(joining.directory) != 0)
      ++joining.directory;
    auto number = next_number_++;
    members_[number] = joining;
    return number;
  }

  void remove(uint32_t number) {
    std::lock_guard lock{mutex_};
    members_.erase(number);
  }

  size_t agents() {
    std::lock_guard lock{mutex_};
    return members_.size();
  }

  /// `git credential` for the shared store: run by a connected agent (the
  /// earliest still there), else in the daemon without a prompt.
  result<command_output> credentials(const std::string& action, const std::string& input) {
    for (;;) {
      std::shared_ptr<credential_channel> asked;
      credential_runner here;
      {
        std::lock_guard lock{mutex_};
        for (auto& [number, each] : members_)
          if (!each.credentials->gone()) {
            asked = each.credentials;
            break;
          }
        here = here_;
      }
      if (!asked)
        return here(action, input);
      auto answer = asked->run(action, input);
      // An agent that left meanwhile: the next one is asked.
      if (answer || !asked->gone())
        return answer;
    }
  }

  /// A notice of the shared engine (a host's circuit): once, to the
  /// earliest agent still connected.
  void notice(const std::string& text) {
    std::shared_ptr<frame_writer> writer;
    {
      std::lock_guard lock{mutex_};
      for (auto& [number, each] : members_)
        if (!each.credentials->gone()) {
          writer = each.writer;
          break;
        }
    }
    if (writer)
      writer->write(protocol::encode_notice_frame(text));
  }

private:
  std::mutex mutex_;
  std::map<uint32_t, member> members_;
  uint32_t next_number_ = 0;
  credential_runner here_;
};

result<std::unique_ptr<daemon_engine>>
daemon_engine::start(const config::settings& settings, std::shared_ptr<metrics_registry> metrics) {
  std::unique_ptr<daemon_engine> engine{new daemon_engine};
  engine->metrics_ = std::move(metrics);
  engine_config defaults;
  engine->circuits_ =
    std::make_shared<circuit_breakers>(defaults.breaker_failures, defaults.breaker_open_for);
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

rate_limiter_actor daemon_engine::limiter_for(const engine_config& config) {
  auto limits = limiter_limits(config);
  std::lock_guard lock{mutex_};
  auto& limiter = limiters_[{limits.requests_per_second, limits.bytes_per_second}];
  if (!limiter)
    limiter = system_->spawn(rate_limiter, limits);
  return limiter;
}

void daemon_engine::share_credentials(agent_context& context) {
  context.share_credentials = [this](const std::string& endpoint,
                                     std::unique_ptr<credential_source> own) {
    session_actor shared;
    {
      std::lock_guard lock{mutex_};
      // Sessions of closed stores leave their entries behind: drop them.
      for (auto it = sessions_.begin(); it != sessions_.end();)
        it = it->second.lock() ? std::next(it) : sessions_.erase(it);
      auto& weak = sessions_[endpoint];
      shared = caf::actor_cast<session_actor>(weak.lock());
      if (!shared) {
        auto url = parse_http_url(endpoint);
        shared = system_->spawn(session, url ? url->without_secrets() : std::string{"LFS store"});
        weak = caf::actor_cast<caf::weak_actor_ptr>(shared);
      }
    }
    return session_credentials(*system_, std::move(shared), std::move(own));
  };
}

std::vector<protocol::daemon_host> daemon_engine::hosts() {
  std::map<std::string, protocol::daemon_host> rows;
  auto row = [&](const std::string& name) -> protocol::daemon_host& {
    auto& host = rows[name];
    host.host = name;
    return host;
  };
  // Both paces count: the HTTP engine's per request, the limiter's per
  // transfer; a cooldown may sit in either.
  auto add_pace = [&](const host_pace& pace) {
    auto& host = row(pace.host);
    if (host.full_rate == 0 ||
        (pace.full_requests_per_second > 0 && pace.full_requests_per_second < host.full_rate)) {
      host.rate = pace.requests_per_second;
      host.full_rate = pace.full_requests_per_second;
    }
    host.cooldown_seconds = std::max(host.cooldown_seconds, pace.cooldown_seconds);
    host.waiting += pace.waiting;
  };
  for (auto pace : http_->host_paces()) {
    // Stores name their hosts "host:port", the HTTP engine by origin.
    if (auto scheme = pace.host.find("://"); scheme != std::string::npos)
      pace.host.erase(0, scheme + 3);
    add_pace(pace);
  }
  std::vector<rate_limiter_actor> limiters;
  {
    std::lock_guard lock{mutex_};
    for (auto& [limits, limiter] : limiters_)
      limiters.push_back(limiter);
  }
  caf::scoped_actor self{*system_};
  for (auto& limiter : limiters)
    self->request(limiter, std::chrono::seconds{2}, atom::get_v)
      .receive(
        [&](const std::vector<host_pace>& paces) {
          for (const auto& pace : paces)
            add_pace(pace);
        },
        [](const caf::error&) {});
  if (metrics_)
    for (const auto& [labels, value] : metrics_->values(metric::host_circuit_state))
      if (value == 1 && labels.size() == 2)
        row(labels[0].second).circuit = labels[1].second;
  std::vector<protocol::daemon_host> out;
  for (auto& [name, host] : rows)
    out.push_back(std::move(host));
  return out;
}

std::shared_ptr<daemon_engine::shared_core> daemon_engine::join(const std::string& key,
                                                                bool& starter) {
  std::lock_guard lock{mutex_};
  auto& core = cores_[key];
  starter = !core;
  if (starter)
    core = std::make_shared<shared_core>(key);
  core->users += 1;
  return core;
}

void daemon_engine::leave(const std::shared_ptr<shared_core>& core) {
  std::lock_guard lock{mutex_};
  if (--core->users > 0)
    return;
  if (auto found = cores_.find(core->key); found != cores_.end() && found->second == core)
    cores_.erase(found);
  // Stopped before the agent's connection closes: a next command in the
  // repository finds the journal free again.
  if (core->ready.get()) {
    caf::scoped_actor self{*system_};
    stop_engine_core(self, core->core);
    daemon_log("engine of " + core->repository + " stopped: its last agent is done");
  }
}

void daemon_engine::serve_alone(int fd, const protocol::daemon_session& session,
                                const agent_settings& resolved, agent_hooks& hooks) {
  auto link = link_of(fd, session);
  share_credentials(link.context);
  protocol::daemon_reply answer;
  auto prepared =
    prepare_agent(link.context, resolved, http_, [writer = link.writer](const std::string& text) {
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
  const auto& repo = *resolved.repo;
  hooks.serving(repo.root().string());
  hooks.answer(answer);
  log()->info("agent started in {}", agent.description);
  auto options = std::move(agent.options);
  speak_frames(options, fd, link);
  options.config.watch_object =
    watch_for_agent(repository_log(resolved.settings), link.writer, session.trace);
  link.credentials->open();
  options.limiter = limiter_for(options.config);
  options.config.metrics = metrics_;
  options.config.circuits = circuits_;
  run_agent_on(*system_, std::move(options));
  link.credentials->close();
}

void daemon_engine::serve(int fd, const protocol::daemon_session& session, agent_hooks& hooks) {
  auto link = link_of(fd, session);
  share_credentials(link.context);
  protocol::daemon_reply answer;
  auto resolved = resolve_agent_settings(link.context);
  if (!resolved) {
    answer.error = "ferry: " + resolved.error().message();
    answer.code = protocol::code::unavailable;
    hooks.answer(answer);
    return;
  }
  // Outside a repository the agent only refuses, as on its own.
  if (!resolved->repo)
    return serve_alone(fd, session, *resolved, hooks);
  const auto& repo = *resolved->repo;
  auto repository = repo.root().string();
  bool starter = false;
  auto core = join(engine_key(*resolved, session.environment), starter);
  if (starter) {
    // The store asks the core's agents for credentials and tells them its
    // notices; weakly, as the store lives in the core.
    std::weak_ptr<shared_core> weak = core;
    auto context = link.context;
    context.credentials = [weak](const std::string& action, const std::string& input) {
      if (auto shared = weak.lock())
        return shared->credentials(action, input);
      return result<command_output>{status{errc::unavailable, "the engine has stopped"}};
    };
    core->set_fallback(link.here);
    auto prepared = prepare_agent(context, *resolved, http_, [weak](const std::string& text) {
      if (auto shared = weak.lock())
        shared->notice(text);
    });
    if (auto* refusal = std::get_if<agent_refusal>(&prepared)) {
      log()->error("{}", refusal->reason);
      {
        // The next agent tries to start one again.
        std::lock_guard lock{mutex_};
        if (auto found = cores_.find(core->key); found != cores_.end() && found->second == core)
          cores_.erase(found);
      }
      core->started.set_value(false);
      leave(core);
      answer.error = refusal->reason;
      answer.code = refusal->code;
      hooks.answer(answer);
      return;
    }
    auto& agent = std::get<prepared_agent>(prepared);
    auto& config = agent.options.config;
    auto limiter = limiter_for(config);
    config.metrics = metrics_;
    config.circuits = circuits_;
    core->config = std::make_shared<const engine_config>(std::move(config));
    core->repository = repository;
    core->log_file = repository_log(resolved->settings);
    {
      // Start-up recovery runs once, here.
      caf::scoped_actor self{*system_};
      core->core = start_engine_core(*system_, self, core->config, agent.options.journal,
                                     log_recovered, std::move(limiter));
    }
    log()->info("engine started in {}", agent.description);
    daemon_log("engine started in " + agent.description);
    core->started.set_value(true);
  } else if (!core->ready.get()) {
    // The agent that started it was refused: so is this one, with its own
    // words (or it gets a core of its own).
    leave(core);
    return serve_alone(fd, session, *resolved, hooks);
  }

  hooks.serving(repository);
  hooks.answer(answer);
  shared_core::member member{link.writer, link.credentials, 0};
  auto number = core->add(member);
  if (!starter)
    daemon_log("an agent in " + repository + " shares its engine with " +
               std::to_string(core->agents() - 1) + " other(s)");
  // Each agent's downloads are named in a directory of its own: two agents
  // asking for one object each get a file their git-lfs can take.
  auto own = std::make_shared<engine_config>(*core->config);
  own->download_dir = core->config->download_dir / "agents" / std::to_string(member.directory);
  own->watch_object = watch_for_agent(core->log_file, link.writer, session.trace);
  if (auto removed = prune_download_dir(own->download_dir, {}); removed > 0)
    log()->info("removed {} leftover file(s) from {}", removed, own->download_dir.string());
  agent_options options;
  speak_frames(options, fd, link);
  link.credentials->open();
  serve_on_core(*system_, core->core, std::move(own), options, first_job_id(number));
  core->remove(number);
  link.credentials->close();
  link.writer->close();
  leave(core);
}

} // namespace ferry::cli
