#include "protocol/log_line.hpp"

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <regex>
#include <string>

using ferry::format_log_line;
using ferry::format_trace_line;
using ferry::git_trace_target;
using ferry::log_entry;
using ferry::log_format;
using ferry::parse_git_trace;

namespace {

// 2026-12-05T12:00:00.123Z
std::chrono::system_clock::time_point example_time() {
  return std::chrono::system_clock::time_point{std::chrono::milliseconds{1796472000123}};
}

log_entry entry(std::string_view message, std::string_view oid = {}, std::string_view cid = {}) {
  log_entry e;
  e.time = example_time();
  e.level = "info";
  e.pid = 123;
  e.fields = {oid, cid};
  e.message = message;
  return e;
}

const std::string oid(64, 'a');

} // namespace

TEST_CASE("log line text format: fields in order, values quoted only when needed", "[log_line]") {
  CHECK(format_log_line(log_format::text, entry("upload: done", oid, "7f3a9c2e01b4")) ==
        "time=2026-12-05T12:00:00.123Z level=info pid=123 cid=7f3a9c2e01b4 oid=" + oid +
          " msg=\"upload: done\"");
  // Lines that are not about a transfer have no cid or oid.
  CHECK(format_log_line(log_format::text, entry("started")) ==
        "time=2026-12-05T12:00:00.123Z level=info pid=123 msg=started");
  CHECK(format_log_line(log_format::text, entry("")) ==
        "time=2026-12-05T12:00:00.123Z level=info pid=123 msg=\"\"");
}

TEST_CASE("log line text format escapes what could forge fields or lines", "[log_line]") {
  // A hostile peer's error text and oid: newlines, quotes, '=' and spaces.
  std::string message = "failed: \"x\" level=error\nlevel=info pid=1 msg=\"forged\"\r\t\x01\\";
  std::string forged_oid = "abc msg=\"hi\"";
  std::string line = format_log_line(log_format::text, entry(message, forged_oid, "c1"));
  CHECK(line.find('\n') == std::string::npos);
  CHECK(line.find('\r') == std::string::npos);
  CHECK(
    line ==
    "time=2026-12-05T12:00:00.123Z level=info pid=123 cid=c1 oid=\"abc msg=\\\"hi\\\"\" "
    "msg=\"failed: \\\"x\\\" level=error\\nlevel=info pid=1 msg=\\\"forged\\\"\\r\\t\\u0001\\\\\"");
  // Every field is one of the expected ones: the quoted values hide the rest.
  std::regex field{R"re( ?([a-z]+)=("([^"\\]|\\.)*"|[^ "]+))re"};
  std::string names;
  for (std::sregex_iterator i{line.begin(), line.end(), field}, end; i != end; ++i)
    names += (*i)[1].str() + ",";
  CHECK(names == "time,level,pid,cid,oid,msg,");
  // A bare '=' or a DEL makes a value quoted too.
  CHECK(format_log_line(log_format::text, entry("a=b")).find("msg=\"a=b\"") != std::string::npos);
  CHECK(format_log_line(log_format::text, entry("a\x7f")).find("msg=\"a\\u007f\"") !=
        std::string::npos);
}

TEST_CASE("log line JSON format is one valid JSON object per line", "[log_line]") {
  std::string message = "bad \"utf8\" \xFF\xC3( and\nnewline \x01";
  std::string line = format_log_line(log_format::json, entry(message, oid, "7f3a9c2e01b4"));
  CHECK(line.find('\n') == std::string::npos);
  auto doc = nlohmann::json::parse(line);
  CHECK(line.rfind("{\"time\":\"2026-12-05T12:00:00.123Z\",\"level\":\"info\",\"pid\":123,"
                   "\"cid\":\"7f3a9c2e01b4\",\"oid\":\"",
                   0) == 0);
  CHECK(doc["oid"] == oid);
  CHECK(doc["msg"] == "bad \"utf8\" \xEF\xBF\xBD\xEF\xBF\xBD( and\nnewline \x01");
  CHECK(doc.size() == 6);

  auto plain = nlohmann::json::parse(format_log_line(log_format::json, entry("started")));
  CHECK(plain.size() == 4);
  CHECK(plain.count("cid") == 0);
  CHECK(plain["msg"] == "started");
}

TEST_CASE("log format names", "[log_line]") {
  CHECK(ferry::parse_log_format("text") == log_format::text);
  CHECK(ferry::parse_log_format("json") == log_format::json);
  CHECK_FALSE(ferry::parse_log_format("JSON").has_value());
  CHECK_FALSE(ferry::parse_log_format("").has_value());
}

TEST_CASE("trace lines look like git-lfs's and stay one line", "[log_line]") {
  std::string line = format_trace_line(example_time(), {oid, "7f3a9c2e01b4"}, "upload: done");
  // Local time, microseconds, as git-lfs prints "15:04:05.123456 trace git-lfs: ...".
  CHECK(std::regex_match(
    line,
    std::regex{R"(\d\d:\d\d:\d\d\.123000 trace ferry: upload: done oid=a{64} cid=7f3a9c2e01b4)"}));
  std::string forged = format_trace_line(example_time(), {}, "x\n12:00:00.000000 trace ferry: y");
  CHECK(forged.find('\n') == std::string::npos);
  CHECK(forged.substr(15) == " trace ferry: x\\n12:00:00.000000 trace ferry: y");
}

TEST_CASE("GIT_TRACE is read as git reads it", "[log_line]") {
  using kind = git_trace_target::kind;
  for (const char* off : {"", "0", "false", "FALSE", "relative/path", "yes"}) {
    INFO(off);
    CHECK(parse_git_trace(off).where == kind::off);
  }
  CHECK(parse_git_trace(nullptr).where == kind::off);
  for (const char* on : {"1", "2", "true", "True", "7"}) {
    INFO(on);
    CHECK(parse_git_trace(on).where == kind::stderr_stream);
  }
  auto file = parse_git_trace("/tmp/trace.log");
  CHECK(file.where == kind::file);
  CHECK(file.path == "/tmp/trace.log");
}
