#include "store/os/process_info.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdlib>

using ferry::environment_of;
using ferry::executable_of;
using ferry::parent_of;

TEST_CASE("/proc tells a process's parent, program and starting environment", "[store][proc]") {
  CHECK(parent_of(::getpid()) == ::getppid());
  CHECK(parent_of(-1) == 0);

  CHECK(executable_of(::getpid()).filename() == "test_store");
  CHECK(executable_of(-1).empty());

  // What the process started with, not what it set later.
  const char* path = std::getenv("PATH");
  REQUIRE(path != nullptr);
  CHECK(environment_of(::getpid(), "PATH") == std::string{path});
  ::setenv("FERRY_TEST_SET_LATER", "1", 1);
  CHECK_FALSE(environment_of(::getpid(), "FERRY_TEST_SET_LATER").has_value());
  ::unsetenv("FERRY_TEST_SET_LATER");
  // A name that is a prefix of another entry's name is not that entry.
  CHECK_FALSE(environment_of(::getpid(), "PAT").has_value());
}
