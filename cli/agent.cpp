#include "cli/agent_setup.hpp"
#include "cli/commands.hpp"

#include "actors/engine.hpp"
#include "actors/logging.hpp"
#include "config/git_config.hpp"
#include "protocol/daemon_messages.hpp"
#include "protocol/line_splitter.hpp"
#include "protocol/transfer_protocol.hpp"
#include "store/os/git_command.hpp"
#include "store/os/process_info.hpp"
#include "store/os/runtime_dir.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <optional>
#include <utility>
#include <variant>

extern char** environ;

namespace ferry::cli {

namespace {

void write_line(const std::string& line) {
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fputc('\n', stdout);
  if (std::fflush(stdout) != 0)
    log()->error("cannot write to git-lfs (stdout): {}", std::strerror(errno));
}

/// What the agent read of git-lfs's input before serving it: the bytes,
/// and whether their first line was an init it has answered already.
struct read_ahead {
  std::string bytes;
  bool init_answered = false;
};

/// Reads git-lfs's first line and, when it is an init, answers it at once.
/// git-lfs starts its agents one after another and sends no object before
/// each has answered init, so the reply does not wait for the daemon to
/// start or to resolve the repository; a configuration the daemon refuses
/// then fails each transfer with the reason instead of init.
read_ahead answer_init_early() {
  read_ahead input;
  protocol::line_splitter splitter{1 << 20};
  char buffer[4096];
  for (;;) {
    auto n = ::read(STDIN_FILENO, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return input;
    input.bytes.append(buffer, static_cast<size_t>(n));
    auto lines = splitter.feed({buffer, static_cast<size_t>(n)});
    if (lines.empty())
      continue;
    auto decoded = protocol::decode_request(lines.front().text);
    auto* request = std::get_if<protocol::request>(&decoded);
    if (!lines.front().too_long && request != nullptr &&
        std::holds_alternative<protocol::init_request>(*request)) {
      write_line(protocol::encode_init_ok());
      input.init_answered = true;
    }
    return input;
  }
}

/// When the agent cannot start (bad configuration, journal in use, store
/// unreachable), it still speaks the protocol so git-lfs shows the reason:
/// init gets the error (unless it was answered already, `before`), and so
/// does every transfer, until terminate.
int refuse_all(const std::string& reason, int code = protocol::code::unavailable,
               const read_ahead& before = {}) {
  log()->error("{}", reason);
  protocol::line_splitter splitter{1 << 20};
  auto answer = [&](const protocol::line_splitter::line& line) {
    if (line.too_long)
      return write_line(protocol::encode_error(protocol::code::too_large, reason)), true;
    auto decoded = protocol::decode_request(line.text);
    if (auto* error = std::get_if<protocol::decode_error>(&decoded))
      return write_line(protocol::encode_decode_error(*error)), true;
    auto& request = std::get<protocol::request>(decoded);
    if (std::holds_alternative<protocol::terminate_request>(request))
      return false;
    if (auto* transfer = std::get_if<protocol::transfer_request>(&request))
      write_line(protocol::encode_complete_error(transfer->oid, code, reason));
    else
      write_line(protocol::encode_error(code, reason));
    return true;
  };
  bool skip_init = before.init_answered;
  for (auto& line : splitter.feed(before.bytes)) {
    if (std::exchange(skip_init, false))
      continue;
    if (!answer(line))
      return 1;
  }
  char buffer[64 << 10];
  for (;;) {
    auto n = ::read(STDIN_FILENO, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR)
      continue;
    auto lines = n > 0 ? splitter.feed({buffer, static_cast<size_t>(n)}) : splitter.finish();
    for (auto& line : lines)
      if (!answer(line))
        return 1;
    if (n <= 0)
      return 1;
  }
}

/// Where GIT_TRACE, as the user gave it to git, sends trace lines; read
/// once. git-lfs removes GIT_TRACE from the environment of every process it
/// starts (so git's trace never mixes into output it parses), this agent
/// included; without one of its own, the agent reads it from the git-lfs
/// that started it (directly or through `sh -c`).
git_trace_target git_trace() {
  static const git_trace_target target = [] {
    if (const char* own = std::getenv("GIT_TRACE"))
      return parse_git_trace(own);
    pid_t pid = ::getppid();
    for (int level = 0; level < 3 && pid > 1; ++level, pid = parent_of(pid))
      if (executable_of(pid).filename() == "git-lfs") {
        auto value = environment_of(pid, "GIT_TRACE");
        return parse_git_trace(value ? value->c_str() : nullptr);
      }
    return parse_git_trace(nullptr);
  }();
  return target;
}

/// One line for the user on stderr, whatever the log level. (git-lfs
/// 3.3.0 passes its agent's stderr to its trace, so under git-lfs these
/// lines show with GIT_TRACE=1; each failed object's own error names the
/// host and the reason too.)
void write_notice(const std::string& text) {
  auto line = text + "\n";
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

/// A line the daemon's engine logged about one of this agent's objects,
/// logged here again: its warnings reach git-lfs through stderr, and its
/// debug lines the trace.
void log_from_daemon(const protocol::daemon_frame& frame) {
  auto level = spdlog::level::from_str(frame.level);
  if (level == spdlog::level::off)
    return;
  log_event(level, {frame.oid, frame.cid}, "{}", frame.text);
}

/// The agent's settings, read once, with the log set up from them (its
/// file is in the repository's journal).
result<agent_settings> settings_with_logging(const agent_context& context) {
  static std::optional<result<agent_settings>> resolved;
  if (resolved)
    return *resolved;
  resolved = resolve_agent_settings(context);
  if (!*resolved)
    return *resolved;
  const auto& settings = (*resolved)->settings;
  auto logging = logging_of(settings);
  logging.trace = git_trace();
  if (auto problem = configure_logging(logging); !problem.empty())
    log()->warn("{}", problem);
  return *resolved;
}

// ---- through the daemon -------------------------------------------------------

/// Whether ferry.daemon asks for the daemon, read with one git call:
/// the full settings also need the repository's paths (three more), which
/// the daemon finds itself. The git config read is kept in `context` for
/// the agent's own setup. Settings that do not resolve answer no, and the
/// agent's own setup reports them.
bool daemon_wanted(agent_context& context) {
  auto git = config::read_git_config(context.cwd);
  if (!git)
    return false;
  context.git_config = *git;
  // The directory only places the path settings' defaults, unused here.
  auto settings = config::resolve({*git, config::read_environment(), context.flags}, "/");
  return settings && settings->daemon == "true";
}

/// How long an agent waits for the daemon to take its session: meanwhile
/// the daemon resolves the repository and opens its store and journal.
constexpr std::chrono::seconds session_timeout{60};
/// New daemons tried after the one serving this agent went away.
constexpr int reconnect_tries = 3;
/// Transfers an agent has at the daemon at once. git-lfs sends one at a
/// time; a client that sends more has the rest read as answers come, so
/// the daemon holds at most this many of any agent's transfers (its memory
/// stays bounded, and no agent's backlog queues ahead of other agents').
constexpr size_t max_transfers_at_daemon = 8;

/// What the daemon needs of this agent: where it runs, the environment
/// variables that steer git and ferry (protocol::session_variable), its flags.
protocol::daemon_session session_of(const agent_context& context) {
  protocol::daemon_session session;
  session.cwd = context.cwd.string();
  for (char** entry = environ; *entry != nullptr; ++entry) {
    std::string text = *entry;
    auto equals = text.find('=');
    if (equals != std::string::npos && protocol::session_variable(text.substr(0, equals)))
      session.environment[text.substr(0, equals)] = text.substr(equals + 1);
  }
  session.flags = context.flags;
  return session;
}

/// Sends all of `text` on the non-blocking `fd`; false once the daemon is
/// gone.
bool send_all(int fd, const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    ssize_t sent = ::send(fd, text.data() + done, text.size() - done, MSG_NOSIGNAL);
    if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd ready{fd, POLLOUT, 0};
      ::poll(&ready, 1, -1);
      continue;
    }
    if (sent < 0 && errno == EINTR)
      continue;
    if (sent <= 0)
      return false;
    done += static_cast<size_t>(sent);
  }
  return true;
}

/// A connection on which the daemon took this agent's session.
struct daemon_link {
  fd_guard fd;
  int64_t pid = 0;
};

/// Connects to the user's daemon (starting one when none runs) and hands
/// it the session. An error: the daemon cannot be used. A refusal: the
/// daemon's answer that this agent cannot serve (its configuration), which
/// running the engine here would only repeat.
result<std::variant<daemon_link, agent_refusal>>
open_daemon_link(const std::filesystem::path& dir, const protocol::daemon_session& session) {
  using result_type = std::variant<daemon_link, agent_refusal>;
  auto connected = connect_daemon(dir, protocol::daemon_request::agent, true);
  if (!connected)
    return connected.error();
  if (!connected->reply.error.empty())
    return status{errc::unavailable, connected->reply.error};
  int fd = connected->fd.get();
  if (!send_all(fd, protocol::encode(session) + "\n"))
    return status{errc::unavailable, "the daemon closed the connection"};
  auto answer = read_daemon_line(fd, std::chrono::steady_clock::now() + session_timeout,
                                 "the ferry daemon", protocol::daemon_max_frame);
  if (!answer)
    return answer.error();
  auto reply = protocol::decode_daemon_reply(*answer);
  if (!reply)
    return reply.error();
  if (!reply->error.empty())
    return result_type{agent_refusal{reply->error, reply->code != 0 ? static_cast<int>(reply->code)
                                                                    : protocol::code::unavailable}};
  return result_type{daemon_link{std::move(connected->fd), reply->pid}};
}

/// Copies git-lfs's lines to the daemon and the daemon's back, each as a
/// frame. It remembers init, terminate and the transfers not yet complete:
/// when the daemon goes away (killed, crashed), a new one gets them again
/// and git-lfs sees no failure; when none can be reached, each transfer in
/// flight fails with the reason.
class daemon_relay {
public:
  daemon_relay(const agent_context& context, std::filesystem::path dir,
               protocol::daemon_session session, daemon_link link)
      : context_(context), dir_(std::move(dir)), session_(std::move(session)),
        link_(std::move(link)) {}

  int run(const read_ahead& before) {
    // The daemon's answer to an init git-lfs has had its answer to.
    skip_init_reply_ = before.init_answered;
    forward_lines(requests_.feed(before.bytes));
    std::vector<char> buffer(64 << 10);
    for (;;) {
      bool more_input = input_open_ && held_.empty();
      pollfd fds[2] = {{link_.fd.get(), POLLIN, 0}, {more_input ? STDIN_FILENO : -1, POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0) {
        if (errno == EINTR)
          continue;
        log()->error("cannot wait for input: {}", std::strerror(errno));
        return 1;
      }
      if (fds[1].revents != 0)
        forward_input(buffer);
      if (fds[0].revents == 0)
        continue;
      ssize_t got = ::recv(link_.fd.get(), buffer.data(), buffer.size(), 0);
      if (got < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
        continue;
      if (got > 0) {
        for (auto& line : replies_.feed({buffer.data(), static_cast<size_t>(got)}))
          take_reply(line);
        release_held();
        continue;
      }
      if ((!input_open_ || terminate_line_) && in_flight_.empty() && held_.empty())
        return 0;
      if (auto code = reconnect())
        return *code;
    }
  }

private:
  /// Reads what git-lfs wrote and sends it on.
  void forward_input(std::vector<char>& buffer) {
    ssize_t got = ::read(STDIN_FILENO, buffer.data(), buffer.size());
    if (got < 0 && errno == EINTR)
      return;
    if (got <= 0)
      input_open_ = false;
    forward_lines(got > 0 ? requests_.feed({buffer.data(), static_cast<size_t>(got)})
                          : requests_.finish());
  }

  /// Sends the lines on in order, each transfer only while fewer than
  /// max_transfers_at_daemon are there; the rest are held until answers come.
  void forward_lines(const std::vector<protocol::line_splitter::line>& lines) {
    held_.insert(held_.end(), lines.begin(), lines.end());
    release_held();
  }

  void release_held() {
    while (!held_.empty()) {
      const auto& line = held_.front();
      if (line.too_long) {
        send(protocol::encode_too_long_frame());
      } else {
        auto decoded = protocol::decode_request(line.text);
        auto* request = std::get_if<protocol::request>(&decoded);
        if (request != nullptr && std::holds_alternative<protocol::transfer_request>(*request) &&
            in_flight_.size() >= max_transfers_at_daemon)
          return;
        if (request != nullptr)
          remember(line.text, *request);
        send(protocol::encode_line_frame(line.text));
      }
      held_.pop_front();
    }
    // The daemon sees the end of input only after every line before it.
    if (!input_open_)
      ::shutdown(link_.fd.get(), SHUT_WR);
  }

  /// A failed send shows as the connection's end, which reconnect() handles.
  void send(const std::string& frame) { (void)send_all(link_.fd.get(), frame + "\n"); }

  void remember(const std::string& line, const protocol::request& request) {
    if (std::holds_alternative<protocol::init_request>(request))
      init_line_ = line;
    else if (auto* transfer = std::get_if<protocol::transfer_request>(&request))
      in_flight_[transfer->oid] = line;
    else
      terminate_line_ = line;
  }

  void take_reply(const protocol::line_splitter::line& line) {
    if (line.too_long)
      return;
    auto frame = protocol::decode_daemon_frame(line.text);
    if (!frame)
      return;
    if (frame->kind == protocol::frame_kind::notice)
      return write_notice(frame->text);
    if (frame->kind == protocol::frame_kind::log)
      return log_from_daemon(*frame);
    if (frame->kind == protocol::frame_kind::credential)
      return answer_credential(*frame);
    if (frame->kind != protocol::frame_kind::line)
      return;
    // A new daemon's answer to the init git-lfs had already been answered.
    if (skip_init_reply_) {
      skip_init_reply_ = false;
      return;
    }
    if (auto oid = protocol::completed_oid(frame->text))
      in_flight_.erase(*oid);
    write_line(frame->text);
  }

  /// Runs the daemon's `git credential` here, where the user's whole
  /// environment and terminal are, without git's own prompt (as the engine
  /// in this process would).
  void answer_credential(const protocol::daemon_frame& ask) {
    auto ran =
      run_git({"credential", ask.action}, session_.cwd, {ask.text, {"GIT_TERMINAL_PROMPT=0"}, {}});
    if (!ran)
      log()->warn("cannot run git credential {}: {}", ask.action, ran.error().message());
    send(protocol::encode_credential_reply_frame(ask.id, ran ? ran->exit_code : 128,
                                                 ran ? ran->out : std::string{}));
  }

  /// After the daemon went away: a new one gets init and the transfers in
  /// flight again. nullopt: relaying goes on; else the exit code.
  std::optional<int> reconnect() {
    (void)settings_with_logging(context_);
    log()->warn("the ferry daemon (pid {}) went away with {} transfer(s) in flight; connecting "
                "to a new one",
                link_.pid, in_flight_.size());
    std::string why;
    for (int attempt = 0; attempt < reconnect_tries; ++attempt) {
      auto opened = open_daemon_link(dir_, session_);
      if (!opened) {
        why = opened.error().message();
        continue;
      }
      if (auto* refusal = std::get_if<agent_refusal>(&*opened)) {
        why = refusal->reason;
        break;
      }
      link_ = std::move(std::get<daemon_link>(*opened));
      replies_ = protocol::line_splitter{protocol::daemon_max_frame};
      if (init_line_) {
        send(protocol::encode_line_frame(*init_line_));
        skip_init_reply_ = true;
      }
      for (const auto& [oid, line] : in_flight_)
        send(protocol::encode_line_frame(line));
      if (terminate_line_)
        send(protocol::encode_line_frame(*terminate_line_));
      if (!input_open_ && held_.empty())
        ::shutdown(link_.fd.get(), SHUT_WR);
      log()->info("the transfers in flight go on with the ferry daemon pid {}", link_.pid);
      return std::nullopt;
    }
    auto reason = "ferry: the daemon serving this agent went away and no other could be "
                  "reached (" +
                  why + "); run the command again";
    for (const auto& [oid, line] : in_flight_)
      write_line(protocol::encode_complete_error(oid, protocol::code::unavailable, reason));
    in_flight_.clear();
    // Lines held back are refused like those still to come.
    read_ahead held;
    for (const auto& line : held_)
      if (!line.too_long)
        held.bytes += line.text + "\n";
    held_.clear();
    if (terminate_line_)
      return 1;
    // At the end of input, refuse_all reads nothing more.
    return refuse_all(reason, protocol::code::unavailable, held);
  }

  const agent_context& context_;
  std::filesystem::path dir_;
  protocol::daemon_session session_;
  daemon_link link_;
  protocol::line_splitter requests_{1 << 20};
  protocol::line_splitter replies_{protocol::daemon_max_frame};
  std::optional<std::string> init_line_;
  std::optional<std::string> terminate_line_;
  std::map<std::string, std::string> in_flight_;
  /// Lines read from git-lfs, not yet sent (release_held()).
  std::deque<protocol::line_splitter::line> held_;
  bool input_open_ = true;
  bool skip_init_reply_ = false;
};

/// Sets this agent's log up for the lines the daemon sends about its
/// objects: warnings on stderr, and with a GIT_TRACE everything at debug
/// or worse there too, as an agent running the engine itself would. Says
/// whether the trace is on.
bool trace_for_daemon() {
  logging_options logging;
  logging.trace = git_trace();
  if (logging.trace.where == git_trace_target::kind::off)
    return false;
  if (auto problem = configure_logging(logging); !problem.empty())
    log()->warn("{}", problem);
  return true;
}

/// Serves git-lfs through the user's daemon. nullopt when the daemon
/// cannot be used: the caller runs the engine itself.
std::optional<int> run_through_daemon(const agent_context& context, const read_ahead& before) {
  auto fall_back = [&](const status& why) {
    (void)settings_with_logging(context);
    log()->warn("cannot use the ferry daemon ({}); running the engine in this process",
                why.message());
    return std::nullopt;
  };
  auto dir = daemon_directory();
  if (!dir)
    return fall_back(dir.error());
  auto session = session_of(context);
  session.trace = trace_for_daemon();
  auto opened = open_daemon_link(*dir, session);
  if (!opened)
    return fall_back(opened.error());
  if (auto* refusal = std::get_if<agent_refusal>(&*opened)) {
    (void)settings_with_logging(context);
    return refuse_all(refusal->reason, refusal->code, before);
  }
  return daemon_relay{context, *dir, std::move(session), std::move(std::get<daemon_link>(*opened))}
    .run(before);
}

} // namespace

int run_agent_command(const flag_map& flags) {
  auto context = process_agent_context(flags);
  read_ahead before;
  if (daemon_wanted(context)) {
    before = answer_init_early();
    if (auto code = run_through_daemon(context, before))
      return *code;
  }
  auto resolved = settings_with_logging(context);
  if (!resolved)
    return refuse_all("ferry: " + resolved.error().message(), protocol::code::unavailable, before);
  auto prepared = prepare_agent(context, *resolved, nullptr, write_notice);
  if (auto* refusal = std::get_if<agent_refusal>(&prepared))
    return refuse_all(refusal->reason, refusal->code, before);
  auto& agent = std::get<prepared_agent>(prepared);
  agent.options.input_fd = STDIN_FILENO;
  agent.options.read_before = before.bytes;
  agent.options.write = write_line;
  if (before.init_answered) {
    // The engine's own answer to that init: git-lfs has had one.
    auto skip = std::make_shared<std::atomic<bool>>(true);
    agent.options.write = [skip](const std::string& line) {
      if (!skip->exchange(false))
        write_line(line);
    };
  }
  log()->info("agent started in {}", agent.description);
  return run_agent(std::move(agent.options));
}

} // namespace ferry::cli
