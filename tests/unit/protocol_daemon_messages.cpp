#include "protocol/daemon_messages.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <optional>
#include <string>

using ferry::errc;
using ferry::protocol::daemon_hello;
using ferry::protocol::daemon_reply;
using ferry::protocol::daemon_request;
using ferry::protocol::decode_daemon_hello;
using ferry::protocol::decode_daemon_reply;
using ferry::protocol::encode;

TEST_CASE("a daemon hello round-trips as one line of JSON", "[protocol][daemon]") {
  daemon_hello hello;
  hello.build = "1.2.3";
  hello.pid = 42;
  hello.kind = daemon_request::stop;
  auto line = encode(hello);
  CHECK(line == R"({"proto":1,"build":"1.2.3","pid":42,"kind":"stop"})");
  auto decoded = decode_daemon_hello(line);
  REQUIRE(decoded.ok());
  CHECK(decoded->proto == 1);
  CHECK(decoded->build == "1.2.3");
  CHECK(decoded->pid == 42);
  CHECK(decoded->kind == daemon_request::stop);
}

TEST_CASE("a hello of another protocol decodes whatever its kind", "[protocol][daemon]") {
  auto decoded = decode_daemon_hello(R"({"proto":2,"build":"9.0","kind":"transfer"})");
  REQUIRE(decoded.ok());
  CHECK(decoded->proto == 2);
  CHECK(decoded->build == "9.0");
}

TEST_CASE("a malformed hello is refused with its reason", "[protocol][daemon]") {
  auto reason = [](const std::string& line) {
    auto decoded = decode_daemon_hello(line);
    REQUIRE_FALSE(decoded.ok());
    CHECK(decoded.error().code() == errc::invalid_request);
    return decoded.error().message();
  };
  CHECK_THAT(reason("hello"), Catch::Contains("not a JSON object"));
  CHECK_THAT(reason(R"({"build":"1"})"), Catch::Contains("'proto'"));
  CHECK_THAT(reason(R"({"proto":"1","build":"1"})"), Catch::Contains("'proto'"));
  CHECK_THAT(reason(R"({"proto":1})"), Catch::Contains("'build'"));
  CHECK_THAT(reason(R"({"proto":1,"build":"1","kind":"dance"})"), Catch::Contains("'kind'"));
  CHECK_THAT(reason(std::string(100, '[')), Catch::Contains("nested too deeply"));
}

TEST_CASE("a daemon reply carries either its state or an error", "[protocol][daemon]") {
  daemon_reply reply;
  reply.build = "1.2.3";
  reply.pid = 7;
  reply.uptime_seconds = 30;
  reply.clients = 2;
  reply.directory = "/run/user/1000/ferry";
  auto decoded = decode_daemon_reply(encode(reply));
  REQUIRE(decoded.ok());
  CHECK(decoded->error.empty());
  CHECK(decoded->uptime_seconds == 30);
  CHECK(decoded->clients == 2);
  CHECK(decoded->directory == "/run/user/1000/ferry");

  reply.error = "another build";
  auto line = encode(reply);
  CHECK(line == R"({"proto":1,"build":"1.2.3","pid":7,"error":"another build"})");
  CHECK(decode_daemon_reply(line)->error == "another build");
  CHECK_FALSE(decode_daemon_reply(R"({"proto":1,"build":"1"})").ok());
}

TEST_CASE("a status reply lists transfers in flight and every host", "[protocol][daemon]") {
  daemon_reply reply;
  reply.build = "1.2.3";
  reply.pid = 7;
  reply.in_flight = 5;
  reply.hosts.push_back({"127.0.0.1:8080", "open", 4, 10, 2.5, 3});
  reply.hosts.push_back({"proton-drive", "", 0, 0, 0, 0});
  auto decoded = decode_daemon_reply(encode(reply));
  REQUIRE(decoded.ok());
  CHECK(decoded->in_flight == 5);
  REQUIRE(decoded->hosts.size() == 2u);
  const auto& host = decoded->hosts[0];
  CHECK(host.host == "127.0.0.1:8080");
  CHECK(host.circuit == "open");
  CHECK(host.rate == 4);
  CHECK(host.full_rate == 10);
  CHECK(host.cooldown_seconds == 2.5);
  CHECK(host.waiting == 3);
  CHECK(decoded->hosts[1].host == "proton-drive");

  auto base = std::string{R"({"proto":1,"build":"1","pid":1,"hosts":)"};
  CHECK_FALSE(decode_daemon_reply(base + R"("many"})").ok());
  CHECK_FALSE(decode_daemon_reply(base + R"([1]})").ok());
  std::string many = "[";
  for (size_t i = 0; i <= ferry::protocol::max_status_hosts; ++i)
    many += std::string{i ? "," : ""} + R"({"host":"h"})";
  CHECK_FALSE(decode_daemon_reply(base + many + "]}").ok());
  // A number that is no number is left out, not taken.
  auto odd = decode_daemon_reply(base + R"([{"host":"h","rate":"fast","waiting":-1}]})");
  REQUIRE(odd.ok());
  CHECK(odd->hosts[0].rate == 0);
}

TEST_CASE("a metrics request gets the text format in one reply line", "[protocol][daemon]") {
  daemon_hello hello;
  hello.build = "1.2.3";
  hello.kind = daemon_request::metrics;
  auto asked = decode_daemon_hello(encode(hello));
  REQUIRE(asked.ok());
  CHECK(asked->kind == daemon_request::metrics);

  daemon_reply reply;
  reply.build = "1.2.3";
  reply.metrics = "# HELP a_total A \"x\".\n# TYPE a_total counter\na_total{l=\"a\\\\b\"} 1\n";
  auto line = encode(reply);
  CHECK(line.find('\n') == std::string::npos);
  auto decoded = decode_daemon_reply(line);
  REQUIRE(decoded.ok());
  CHECK(decoded->metrics == reply.metrics);
  // A status reply has no metrics member.
  reply.metrics.clear();
  CHECK(encode(reply).find("metrics") == std::string::npos);
}

TEST_CASE("an agent's session carries its cwd, allow-listed environment and flags",
          "[protocol][daemon]") {
  using ferry::protocol::daemon_session;
  using ferry::protocol::decode_daemon_session;
  daemon_hello hello;
  hello.build = "1.2.3";
  hello.kind = daemon_request::agent;
  CHECK(decode_daemon_hello(encode(hello))->kind == daemon_request::agent);

  daemon_session session;
  session.cwd = "/home/u/repo";
  session.environment = {{"HOME", "/home/u"}, {"GIT_DIR", "/x/.git"}, {"LC_ALL", "C"}};
  session.flags = {{"store", "file:///s"}, {"log-level", "debug"}};
  auto decoded = decode_daemon_session(encode(session));
  REQUIRE(decoded.ok());
  CHECK(decoded->cwd == session.cwd);
  CHECK(decoded->environment == session.environment);
  CHECK(decoded->flags == session.flags);

  // What is not on the allow-list never reaches the daemon's resolution.
  auto stripped = decode_daemon_session(
    R"({"cwd":"/r","env":{"HOME":"/h","LD_PRELOAD":"/evil.so","SECRET":"x","FERRY_STORE":"s"}})");
  REQUIRE(stripped.ok());
  CHECK(stripped->environment ==
        std::map<std::string, std::string>{{"FERRY_STORE", "s"}, {"HOME", "/h"}});
  CHECK(ferry::protocol::session_variable("AWS_PROFILE"));
  CHECK(ferry::protocol::session_variable("SSH_AUTH_SOCK"));
  CHECK_FALSE(ferry::protocol::session_variable("LD_LIBRARY_PATH"));
  CHECK_FALSE(ferry::protocol::session_variable("HOMEX"));
}

TEST_CASE("a malformed session is refused", "[protocol][daemon]") {
  using ferry::protocol::decode_daemon_session;
  CHECK_FALSE(decode_daemon_session(R"({"env":{}})").ok());
  CHECK_FALSE(decode_daemon_session(R"({"cwd":"relative"})").ok());
  CHECK_FALSE(decode_daemon_session(R"({"cwd":"/r","env":{"HOME":1}})").ok());
  CHECK_FALSE(decode_daemon_session(R"({"cwd":"/r","flags":[]})").ok());
  CHECK_FALSE(decode_daemon_session("[]").ok());
}

TEST_CASE("frames tell git-lfs lines from the daemon's own messages", "[protocol][daemon]") {
  using ferry::protocol::decode_daemon_frame;
  using ferry::protocol::frame_kind;
  const std::string line = R"({"event":"init","operation":"upload"})";
  auto framed = ferry::protocol::encode_line_frame(line);
  CHECK(framed.find('\n') == std::string::npos);
  auto decoded = decode_daemon_frame(framed);
  REQUIRE(decoded.ok());
  CHECK(decoded->kind == frame_kind::line);
  CHECK(decoded->text == line);

  CHECK(decode_daemon_frame(ferry::protocol::encode_too_long_frame())->kind ==
        frame_kind::too_long);
  auto notice = decode_daemon_frame(ferry::protocol::encode_notice_frame("host x: circuit open"));
  CHECK(notice->kind == frame_kind::notice);
  CHECK(notice->text == "host x: circuit open");
  // A later version's frame is no error, and no line.
  CHECK(decode_daemon_frame(R"({"later":{"x":1}})")->kind == frame_kind::other);
  CHECK_FALSE(decode_daemon_frame("not json").ok());
  // Bytes that are no UTF-8 still make one frame.
  auto odd = decode_daemon_frame(ferry::protocol::encode_line_frame("a\xff\n b"));
  REQUIRE(odd.ok());
  CHECK(odd->kind == frame_kind::line);
}

TEST_CASE("completed_oid reads the oid of a complete reply only", "[protocol][daemon]") {
  using ferry::protocol::completed_oid;
  CHECK(completed_oid(R"({"event":"complete","oid":"abc"})") == std::optional<std::string>{"abc"});
  CHECK(completed_oid(R"({"event":"complete","oid":"abc","error":{"code":2}})") ==
        std::optional<std::string>{"abc"});
  CHECK_FALSE(completed_oid(R"({"event":"progress","oid":"abc"})"));
  CHECK_FALSE(completed_oid("{}"));
  CHECK_FALSE(completed_oid("nonsense"));
}

TEST_CASE("an error reply to a session carries the code agents answer with", "[protocol][daemon]") {
  daemon_reply reply;
  reply.build = "1";
  reply.error = "ferry: no store";
  reply.code = 2;
  auto decoded = decode_daemon_reply(encode(reply));
  REQUIRE(decoded.ok());
  CHECK(decoded->code == 2);
  reply.error.clear();
  reply.agents = 3;
  reply.repositories = 2;
  decoded = decode_daemon_reply(encode(reply));
  CHECK(decoded->agents == 3);
  CHECK(decoded->repositories == 2);
}

TEST_CASE("credential frames carry git credential's input and answer by id", "[protocol][daemon]") {
  using ferry::protocol::decode_daemon_frame;
  using ferry::protocol::frame_kind;
  auto ask = decode_daemon_frame(
    ferry::protocol::encode_credential_frame(7, "fill", "protocol=http\nhost=127.0.0.1:8080\n"));
  REQUIRE(ask.ok());
  CHECK(ask->kind == frame_kind::credential);
  CHECK(ask->id == 7);
  CHECK(ask->action == "fill");
  CHECK(ask->text == "protocol=http\nhost=127.0.0.1:8080\n");
  auto answer = decode_daemon_frame(
    ferry::protocol::encode_credential_reply_frame(7, 0, "username=u\npassword=p\n"));
  REQUIRE(answer.ok());
  CHECK(answer->kind == frame_kind::credential_reply);
  CHECK(answer->id == 7);
  CHECK(answer->exit_code == 0);
  CHECK(answer->text == "username=u\npassword=p\n");
  // Only git credential's own actions, and nothing half given.
  CHECK_FALSE(decode_daemon_frame(R"({"credential":{"id":1,"action":"erase","input":""}})").ok());
  CHECK_FALSE(decode_daemon_frame(R"({"credential":{"action":"fill","input":""}})").ok());
  CHECK_FALSE(decode_daemon_frame(R"({"credential_reply":{"id":1,"output":""}})").ok());
}

TEST_CASE("a log frame carries one engine line about an agent's object", "[protocol][daemon]") {
  using ferry::protocol::decode_daemon_frame;
  using ferry::protocol::frame_kind;
  auto logged = decode_daemon_frame(
    ferry::protocol::encode_log_frame("debug", "ab12", "c0ffee", "upload attempt 1 started"));
  REQUIRE(logged.ok());
  CHECK(logged->kind == frame_kind::log);
  CHECK(logged->level == "debug");
  CHECK(logged->oid == "ab12");
  CHECK(logged->cid == "c0ffee");
  CHECK(logged->text == "upload attempt 1 started");
  CHECK_FALSE(decode_daemon_frame(R"({"log":{"level":"debug","oid":"a","message":"m"}})").ok());
  CHECK_FALSE(decode_daemon_frame(R"({"log":"m"})").ok());
}

TEST_CASE("a session says whether the agent's git-lfs traces", "[protocol][daemon]") {
  using ferry::protocol::decode_daemon_session;
  ferry::protocol::daemon_session session;
  session.cwd = "/r";
  CHECK_FALSE(decode_daemon_session(encode(session))->trace);
  session.trace = true;
  CHECK(decode_daemon_session(encode(session))->trace);
  CHECK_FALSE(decode_daemon_session(R"({"cwd":"/r","trace":"yes"})").ok());
}
