#include "protocol/prometheus_text.hpp"

#include <catch2/catch.hpp>

#include <limits>

using namespace ferry::protocol;

TEST_CASE("label values escape backslash, quote and newline only", "[prometheus]") {
  CHECK(escape_label_value("plain") == "plain");
  CHECK(escape_label_value("C:\\tmp \"x\"\nnext\t") == "C:\\\\tmp \\\"x\\\"\\nnext\t");
  CHECK(escape_help("a \"quoted\" \\ line\nnext") == "a \"quoted\" \\\\ line\\nnext");
}

TEST_CASE("values: shortest round-trip form and the special ones", "[prometheus]") {
  CHECK(format_value(0) == "0");
  CHECK(format_value(42) == "42");
  CHECK(format_value(0.1) == "0.1");
  CHECK(format_value(1e21) == "1e+21");
  CHECK(format_value(std::numeric_limits<double>::infinity()) == "+Inf");
  CHECK(format_value(-std::numeric_limits<double>::infinity()) == "-Inf");
  CHECK(format_value(std::numeric_limits<double>::quiet_NaN()) == "NaN");
}

TEST_CASE("counters and gauges: HELP, TYPE, one line per series", "[prometheus]") {
  prometheus_family started{
    "ferry_transfers_started_total", "Transfers\nstarted.", prometheus_type::counter, {}, {}};
  started.samples.push_back({{{"direction", "copy"}, {"store", "s3"}}, 3});
  started.samples.push_back({{{"direction", "upload"}, {"store", "a\"b"}}, 1});
  prometheus_family in_flight{"ferry_transfers_in_flight", "Now.", prometheus_type::gauge, {}, {}};
  in_flight.samples.push_back({{}, 2.5});
  prometheus_family empty{"ferry_retries_total", "Retries.", prometheus_type::counter, {}, {}};
  CHECK(render({started, in_flight, empty}) ==
        "# HELP ferry_transfers_started_total Transfers\\nstarted.\n"
        "# TYPE ferry_transfers_started_total counter\n"
        "ferry_transfers_started_total{direction=\"copy\",store=\"s3\"} 3\n"
        "ferry_transfers_started_total{direction=\"upload\",store=\"a\\\"b\"} 1\n"
        "# HELP ferry_transfers_in_flight Now.\n"
        "# TYPE ferry_transfers_in_flight gauge\n"
        "ferry_transfers_in_flight 2.5\n"
        "# HELP ferry_retries_total Retries.\n"
        "# TYPE ferry_retries_total counter\n");
}

TEST_CASE("histograms: cumulative buckets ending in +Inf, _sum and _count", "[prometheus]") {
  prometheus_family duration{"d_seconds", "Durations.", prometheus_type::histogram, {}, {}};
  // 1 observation <= 0.1, 2 in (0.1, 1], 3 above 1.
  duration.histograms.push_back({{{"direction", "copy"}}, {0.1, 1}, {1, 2, 3}, 12.5});
  CHECK(render({duration}) == "# HELP d_seconds Durations.\n"
                              "# TYPE d_seconds histogram\n"
                              "d_seconds_bucket{direction=\"copy\",le=\"0.1\"} 1\n"
                              "d_seconds_bucket{direction=\"copy\",le=\"1\"} 3\n"
                              "d_seconds_bucket{direction=\"copy\",le=\"+Inf\"} 6\n"
                              "d_seconds_sum{direction=\"copy\"} 12.5\n"
                              "d_seconds_count{direction=\"copy\"} 6\n");
}

TEST_CASE("a histogram without counts still has every bucket, +Inf included", "[prometheus]") {
  prometheus_family duration{"d_seconds", "Durations.", prometheus_type::histogram, {}, {}};
  duration.histograms.push_back({{}, {1}, {}, 0});
  CHECK(render({duration}) == "# HELP d_seconds Durations.\n"
                              "# TYPE d_seconds histogram\n"
                              "d_seconds_bucket{le=\"1\"} 0\n"
                              "d_seconds_bucket{le=\"+Inf\"} 0\n"
                              "d_seconds_sum 0\n"
                              "d_seconds_count 0\n");
}
