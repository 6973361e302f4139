#include "actors/engine.hpp"
#include "actors/rate_limiter.hpp"
#include "protocol/daemon_messages.hpp"

#include <catch2/catch.hpp>

#include "test_support.hpp"

#include <caf/all.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace ferry;
using ferry::testing::temp_dir;

namespace {

/// Runs one engine over a socket on `sys`, as the daemon does for an
/// agent's connection, feeds it `input` and returns what it wrote.
std::vector<std::string> serve_framed(caf::actor_system& sys, rate_limiter_actor limiter,
                                      const std::filesystem::path& dir, const std::string& input) {
  auto journal = journal_db::open(dir / "journal", {});
  REQUIRE(journal.ok());
  int ends[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) == 0);
  std::mutex mutex;
  std::vector<std::string> replies;
  agent_options options;
  options.journal = std::move(*journal);
  options.input_fd = ends[0];
  options.framed_input = true;
  options.max_line_bytes = 1024;
  options.write = [&](const std::string& line) {
    std::lock_guard lock{mutex};
    replies.push_back(line);
  };
  options.limiter = std::move(limiter);
  options.config.download_dir = dir / "downloads";
  int exit_code = -1;
  std::thread engine{[&] { exit_code = run_agent_on(sys, std::move(options)); }};
  REQUIRE(::write(ends[1], input.data(), input.size()) == static_cast<ssize_t>(input.size()));
  ::shutdown(ends[1], SHUT_WR);
  engine.join();
  ::close(ends[0]);
  ::close(ends[1]);
  CHECK(exit_code == 0);
  return replies;
}

} // namespace

TEST_CASE("an engine on a shared actor system reads its requests from frames", "[actors][engine]") {
  temp_dir dir;
  caf::actor_system_config cfg;
  configure_scheduler(cfg);
  caf::actor_system sys{cfg};
  auto limiter = sys.spawn(rate_limiter, rate_limits{});
  std::string input =
    protocol::encode_line_frame(R"({"event":"init","operation":"upload","remote":"origin",)"
                                R"("concurrent":true,"concurrenttransfers":8})") +
    "\n" + protocol::encode_too_long_frame() + "\n" +
    protocol::encode_line_frame(std::string(2000, 'x')) + "\n" + "not a frame\n" +
    R"({"later":{"x":1}})" + "\n" + protocol::encode_line_frame(R"({"event":"terminate"})") + "\n";
  auto replies = serve_framed(sys, limiter, dir.path / "first", input);
  // Errors are answered at once, init by the coordinator: in any order.
  auto count = [&](const std::string& part) {
    return std::count_if(replies.begin(), replies.end(), [&](const std::string& reply) {
      return reply.find(part) != std::string::npos;
    });
  };
  REQUIRE(replies.size() == 4);
  CHECK(std::count(replies.begin(), replies.end(), std::string{"{}"}) == 1);
  // A line the agent found too long, and a frame whose line is.
  CHECK(count("\"code\":413") == 2);
  // A frame that is no JSON is answered as a malformed request; a frame of
  // a later kind is left alone.
  CHECK(count("\"code\":400") == 1);

  // The shared limiter outlives the engine, and serves the next one.
  auto again = serve_framed(sys, limiter, dir.path / "second",
                            protocol::encode_line_frame(R"({"event":"init","operation":"download",)"
                                                        R"("remote":"origin"})") +
                              "\n");
  CHECK(again == std::vector<std::string>{"{}"});
  caf::scoped_actor self{sys};
  self->monitor(limiter);
  self->send_exit(limiter, caf::exit_reason::kill);
  self->receive([](const caf::down_msg& down) { CHECK(down.reason == caf::exit_reason::kill); });
}
