#pragma once

// The messages on the per-user daemon's socket: newline-delimited JSON,
// one object a line. A client's first line is a hello; the daemon answers
// each hello with a reply. An agent's hello is followed by its session
// (answered with a reply too), then by frames both ways: the git-lfs
// protocol lines, and the daemon's notices for the agent. Pure: no I/O.

#include "protocol/status.hpp"

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::protocol {

/// The version of these messages; a daemon refuses a client of another.
inline constexpr int daemon_proto = 1;

/// Longest hello or reply either side accepts (protocol::line_splitter's cap).
inline constexpr size_t daemon_max_line = 64 * 1024;

/// Longest session or frame: a git-lfs line may be 1 MiB, and JSON may
/// escape each byte as six.
inline constexpr size_t daemon_max_frame = 8 * 1024 * 1024;

/// Most hosts a status reply lists, so that it stays within daemon_max_line.
inline constexpr size_t max_status_hosts = 200;

/// What a client asks for in its hello.
enum class daemon_request {
  /// Only the reply (is the daemon there, which one); the client stays
  /// connected as long as it likes and counts as a client meanwhile.
  ping,
  /// The reply with the daemon's state.
  status,
  /// The daemon answers, removes its socket and exits.
  stop,
  /// The reply with the daemon's metrics in the Prometheus text format.
  metrics,
  /// A `ferry agent`: a session line follows, and once the daemon has
  /// accepted it, frames (encode_line_frame) both ways until either side
  /// closes.
  agent,
};

/// {"proto":1,"build":"<version>","pid":N,"kind":"status"}
struct daemon_hello {
  int proto = daemon_proto;
  std::string build;
  int64_t pid = 0;
  daemon_request kind = daemon_request::ping;
};

/// The daemon's answer: who it is, and either an error or its state.
/// One host in `ferry daemon status`: its circuit breaker and its pace,
/// through the shared HTTP engine and the rate limiter.
struct daemon_host {
  /// "host:port", or a store's name for hosts without HTTP ("proton-drive").
  std::string host;
  /// "closed", "open", "half_open"; empty when no transfer named it yet.
  std::string circuit;
  /// Requests per second allowed now and without a cut; 0: unlimited.
  double rate = 0;
  double full_rate = 0;
  /// What is left of a cooldown the host asked for.
  double cooldown_seconds = 0;
  /// Requests and transfers waiting for their turn.
  int64_t waiting = 0;
};

struct daemon_reply {
  int proto = daemon_proto;
  std::string build;
  int64_t pid = 0;
  /// Empty when the hello was accepted; else why not, for people.
  std::string error;
  int64_t uptime_seconds = 0;
  /// Clients connected besides the one asking.
  int64_t clients = 0;
  std::string directory;
  /// For a metrics request: the Prometheus text format (newlines escaped
  /// by the JSON, so the reply stays one line).
  std::string metrics;
  /// With an error to a session: the git-lfs error code the agent answers
  /// every request with (protocol::code); 0 otherwise.
  int64_t code = 0;
  /// Agents served now, and the repositories they are in.
  int64_t agents = 0;
  int64_t repositories = 0;
  /// For a status request: transfers the engines hold, and every host.
  int64_t in_flight = 0;
  std::vector<daemon_host> hosts;
};

/// An agent's context, sent once after its hello: the daemon resolves the
/// repository, its settings and the store's credentials from it, never
/// from its own directory or environment.
/// {"cwd":"/repo","env":{"HOME":"/home/u",...},"flags":{"store":"..."},"trace":true}
struct daemon_session {
  std::string cwd;
  /// Only variables for which session_variable() holds.
  std::map<std::string, std::string> environment;
  /// The agent's command line flags, as config::sources::flags keys them.
  std::map<std::string, std::string> flags;
  /// Whether the git-lfs that started the agent traces (GIT_TRACE, which
  /// git-lfs keeps out of its agents' environment): the daemon then sends
  /// the agent its debug lines too.
  bool trace = false;
};

/// Whether the agent's environment variable `name` goes into its session.
bool session_variable(std::string_view name);

/// What one frame after the session carries.
enum class frame_kind {
  /// A git-lfs protocol line (either way), in `text`.
  line,
  /// The agent read a line longer than it forwards (answered like one).
  too_long,
  /// Daemon to agent: a line for the user, for the agent's stderr.
  notice,
  /// Daemon to agent: run `git credential <action>` with `text` as its
  /// input in the agent's own context (directory, whole environment,
  /// terminal), and answer with a credential_reply of the same id.
  credential,
  /// Agent to daemon: git's exit code and output for credential `id`.
  credential_reply,
  /// Daemon to agent: a line its engine logged about one of the agent's
  /// objects (`level`, `oid`, `cid`, message in `text`), for the agent's
  /// own stderr and trace.
  log,
  /// A frame of a later version; the receiver ignores it.
  other,
};

struct daemon_frame {
  frame_kind kind = frame_kind::other;
  std::string text;
  /// credential and credential_reply only.
  int64_t id = 0;
  /// credential: "fill", "approve" or "reject".
  std::string action;
  /// credential_reply: git's exit code.
  int64_t exit_code = 0;
  /// log only: spdlog's name of the level ("debug", "warning", ...), the
  /// object's oid and the transfer's correlation id.
  std::string level;
  std::string oid;
  std::string cid;
};

/// One line of JSON, without the newline.
std::string encode(const daemon_hello& hello);
std::string encode(const daemon_reply& reply);
std::string encode(const daemon_session& session);
/// {"line":"<text>"}; bytes that are no UTF-8 become U+FFFD (such a line is
/// no JSON, and is answered as malformed all the same).
std::string encode_line_frame(std::string_view text);
/// {"too_long":true}
std::string encode_too_long_frame();
/// {"notice":"<text>"}
std::string encode_notice_frame(std::string_view text);
/// {"credential":{"id":N,"action":"fill","input":"<text>"}}
std::string encode_credential_frame(int64_t id, std::string_view action, std::string_view input);
/// {"credential_reply":{"id":N,"exit":0,"output":"<text>"}}
std::string encode_credential_reply_frame(int64_t id, int64_t exit_code, std::string_view output);
/// {"log":{"level":"debug","oid":"<oid>","cid":"<cid>","message":"<text>"}}
std::string encode_log_frame(std::string_view level, std::string_view oid, std::string_view cid,
                             std::string_view message);

/// errc::invalid_request saying what is wrong. A hello of another proto
/// decodes (proto and build are read first) as long as both are there,
/// so that the daemon can answer it with a readable error.
result<daemon_hello> decode_daemon_hello(std::string_view line);
result<daemon_reply> decode_daemon_reply(std::string_view line);
/// Only allow-listed variables are kept; a session names a cwd that is an
/// absolute path.
result<daemon_session> decode_daemon_session(std::string_view line);
result<daemon_frame> decode_daemon_frame(std::string_view line);

/// The oid of a git-lfs `complete` reply line; nullopt for any other line.
std::optional<std::string> completed_oid(std::string_view reply);

const char* to_string(daemon_request kind);

} // namespace ferry::protocol
