// Fuzzes the daemon's socket messages (protocol/daemon_messages.hpp): a line
// as a hello, a reply, a session and a frame, each as a client or daemon
// might send it. Promises checked, besides "never throws":
// - a decoded session has an absolute cwd and only allow-listed variables,
//   and encodes to one line that decodes to the same session;
// - a decoded frame that carries a line gives that line back when framed
//   again, and every frame encoder makes one line that decodes to its kind;
// - a decoded hello or reply encodes to one line that decodes again.

#include "fuzz_check.hpp"

#include "protocol/daemon_messages.hpp"

#include <string>

namespace {

using namespace ferry::protocol;

bool one_line(const std::string& text) {
  return text.find('\n') == std::string::npos && text.find('\r') == std::string::npos;
}

void check_session(std::string_view line) {
  auto session = decode_daemon_session(line);
  if (!session)
    return;
  FUZZ_CHECK(!session->cwd.empty() && session->cwd.front() == '/');
  for (const auto& [name, value] : session->environment)
    FUZZ_CHECK(session_variable(name));
  auto again = encode(*session);
  FUZZ_CHECK(one_line(again));
  auto redecoded = decode_daemon_session(again);
  FUZZ_CHECK(redecoded.ok());
  // Invalid UTF-8 is replaced on the way out, so only compare what is
  // unchanged by a second round.
  auto third = decode_daemon_session(encode(*redecoded));
  FUZZ_CHECK(third.ok());
  FUZZ_CHECK(third->cwd == redecoded->cwd);
  FUZZ_CHECK(third->environment == redecoded->environment);
  FUZZ_CHECK(third->flags == redecoded->flags);
}

void check_frames(std::string_view line) {
  if (auto frame = decode_daemon_frame(line); frame && frame->kind == frame_kind::line) {
    auto again = decode_daemon_frame(encode_line_frame(frame->text));
    FUZZ_CHECK(again.ok() && again->kind == frame_kind::line && again->text == frame->text);
  }
  auto framed = encode_line_frame(line);
  FUZZ_CHECK(one_line(framed));
  auto decoded = decode_daemon_frame(framed);
  FUZZ_CHECK(decoded.ok() && decoded->kind == frame_kind::line);
  auto notice = decode_daemon_frame(encode_notice_frame(line));
  FUZZ_CHECK(notice.ok() && notice->kind == frame_kind::notice);
  (void)completed_oid(line);
}

void check_hello_and_reply(std::string_view line) {
  if (auto hello = decode_daemon_hello(line)) {
    auto again = encode(*hello);
    FUZZ_CHECK(one_line(again));
    FUZZ_CHECK(decode_daemon_hello(again).ok());
  }
  if (auto reply = decode_daemon_reply(line)) {
    auto again = encode(*reply);
    FUZZ_CHECK(one_line(again));
    FUZZ_CHECK(decode_daemon_reply(again).ok());
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view line = ferry::fuzz::as_text(data, size);
  check_session(line);
  check_frames(line);
  check_hello_and_reply(line);
  return 0;
}
