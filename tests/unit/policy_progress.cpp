#include "actors/policy/progress_throttle.hpp"

#include <catch2/catch.hpp>

#include <vector>

using namespace std::chrono_literals;
using ferry::progress_throttle;
using clock_type = progress_throttle::clock;

namespace {

struct recorded {
  std::vector<progress_throttle::report> reports;
  int64_t sum_since_last() const {
    int64_t sum = 0;
    for (auto& r : reports)
      sum += r.bytes_since_last;
    return sum;
  }
};

} // namespace

TEST_CASE("progress reports by bytes and ends exactly at the size", "[progress]") {
  auto t0 = clock_type::time_point{} + 1h;
  const int64_t size = 256 << 20; // 1% = 2.56 MiB
  progress_throttle throttle{size, t0};
  recorded out;
  for (int64_t sent = 0; sent < size; sent += 64 << 10)
    if (auto r = throttle.add(64 << 10, t0)) // no time passes: only byte steps count
      out.reports.push_back(*r);
  if (auto r = throttle.finish())
    out.reports.push_back(*r);
  REQUIRE(out.reports.size() >= 90);
  REQUIRE(out.reports.size() <= 101);
  CHECK(out.reports.back().bytes_so_far == size);
  CHECK(out.sum_since_last() == size);
  for (size_t i = 1; i < out.reports.size(); ++i)
    CHECK(out.reports[i].bytes_so_far > out.reports[i - 1].bytes_so_far);
}

TEST_CASE("progress reports small moves once the interval passed", "[progress]") {
  auto t0 = clock_type::time_point{} + 1h;
  progress_throttle throttle{1 << 30, t0, 250ms, 1 << 20};
  CHECK_FALSE(throttle.add(1000, t0 + 100ms));
  auto r = throttle.add(1000, t0 + 300ms);
  REQUIRE(r);
  CHECK(r->bytes_so_far == 2000);
  CHECK(r->bytes_since_last == 2000);
  CHECK_FALSE(throttle.add(10, t0 + 400ms));
}

TEST_CASE("progress of an empty object is one final 0/0 report", "[progress]") {
  progress_throttle throttle{0, clock_type::now()};
  auto r = throttle.finish();
  REQUIRE(r);
  CHECK(r->bytes_so_far == 0);
  CHECK(r->bytes_since_last == 0);
  CHECK_FALSE(throttle.finish());
}

TEST_CASE("progress after a resume counts the resumed bytes", "[progress]") {
  auto t0 = clock_type::time_point{} + 1h;
  progress_throttle throttle{100 << 20, t0};
  throttle.resume_at(60 << 20);
  auto r = throttle.add(2 << 20, t0);
  REQUIRE(r);
  CHECK(r->bytes_so_far == (62 << 20));
  CHECK(r->bytes_since_last == (62 << 20));
  throttle.add(38 << 20, t0);
  auto last = throttle.finish();
  REQUIRE(last);
  CHECK(last->bytes_so_far == (100 << 20));
  CHECK(last->bytes_since_last == (38 << 20));
}
