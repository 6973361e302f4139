#include "store/os/file_io.hpp"

#include <catch2/catch.hpp>

#include <poll.h>
#include <unistd.h>

using ferry::fd_guard;
using ferry::poll_list;

TEST_CASE("a poll list leaves out closed descriptors and says which are ready", "[file_io]") {
  fd_guard quiet_read, quiet_write, busy_read, busy_write;
  REQUIRE(ferry::make_pipe(quiet_read, quiet_write, "test").ok());
  REQUIRE(ferry::make_pipe(busy_read, busy_write, "test").ok());
  REQUIRE(::write(busy_write.get(), "x", 1) == 1);

  poll_list<3> polled;
  int quiet_at = polled.add(quiet_read.get(), POLLIN);
  int closed_at = polled.add(-1, POLLIN);
  int busy_at = polled.add(busy_read.get(), POLLIN);
  CHECK(closed_at == -1);
  CHECK(quiet_at == 0);
  CHECK(busy_at == 1);
  REQUIRE(polled.size() == 2);
  CHECK(polled.data()[busy_at].fd == busy_read.get());

  REQUIRE(::poll(polled.data(), polled.size(), 0) == 1);
  CHECK(polled.ready(busy_at));
  CHECK_FALSE(polled.ready(quiet_at));
  CHECK_FALSE(polled.ready(closed_at));
}
