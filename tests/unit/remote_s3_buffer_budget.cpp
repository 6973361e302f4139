#include "store/s3/buffer_budget.hpp"

#include <catch2/catch.hpp>

#include <thread>

using ferry::s3::buffer_budget;

TEST_CASE("buffer budget: takes bytes while they fit within the capacity", "[buffer_budget]") {
  buffer_budget budget{10};
  CHECK(budget.try_take(6));
  CHECK(budget.try_take(4));
  CHECK(budget.held() == 10);
  CHECK_FALSE(budget.try_take(1));
  budget.give_back(4);
  CHECK_FALSE(budget.try_take(5));
  CHECK(budget.try_take(3));
  CHECK(budget.held() == 9);
}

TEST_CASE("buffer budget: a request above the capacity goes ahead alone", "[buffer_budget]") {
  buffer_budget budget{10};
  REQUIRE(budget.try_take(1));
  CHECK_FALSE(budget.try_take(25));
  budget.give_back(1);
  CHECK(budget.try_take(25));
  CHECK(budget.held() == 25);
  CHECK_FALSE(budget.try_take(1));
}

TEST_CASE("buffer budget: take waits until enough is given back", "[buffer_budget]") {
  buffer_budget budget{10};
  REQUIRE(budget.try_take(8));
  std::thread taker([&] { budget.take(6); });
  while (budget.waiting() == 0)
    std::this_thread::yield();
  // Giving back too little leaves it waiting.
  budget.give_back(2);
  CHECK(budget.waiting() == 1);
  CHECK(budget.held() == 6);
  budget.give_back(6);
  taker.join();
  CHECK(budget.waiting() == 0);
  CHECK(budget.held() == 6);
}
