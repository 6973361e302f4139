#pragma once

// The Prometheus text exposition format, version 0.0.4: metric families to
// the text a scraper reads. Pure: no I/O.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ferry::protocol {

/// What a metrics endpoint answers with in its Content-Type header.
inline constexpr const char* prometheus_content_type = "text/plain; version=0.0.4; charset=utf-8";

/// Label names and values, in the order they are written.
using prometheus_labels = std::vector<std::pair<std::string, std::string>>;

enum class prometheus_type { counter, gauge, histogram };

/// One series of a counter or gauge.
struct prometheus_sample {
  prometheus_labels labels;
  double value = 0;
};

/// One series of a histogram. `counts` has one entry per bound and a last
/// one for what is above every bound: observations v with
/// bounds[i-1] < v <= bounds[i] are in counts[i]. render() writes them as
/// the cumulative buckets the format asks for.
struct prometheus_histogram {
  prometheus_labels labels;
  /// Upper bounds, ascending.
  std::vector<double> bounds;
  std::vector<uint64_t> counts;
  double sum = 0;
};

struct prometheus_family {
  /// snake_case, in base units; counters end in _total.
  std::string name;
  std::string help;
  prometheus_type type = prometheus_type::counter;
  /// counter, gauge.
  std::vector<prometheus_sample> samples;
  /// histogram.
  std::vector<prometheus_histogram> histograms;
};

/// A label value with \, " and newline escaped.
std::string escape_label_value(std::string_view value);

/// HELP text with \ and newline escaped.
std::string escape_help(std::string_view text);

/// A sample value: shortest form that reads back the same, "+Inf", "-Inf"
/// or "NaN".
std::string format_value(double value);

/// Each family as # HELP, # TYPE and its samples, one per line; a family
/// without samples is written with its HELP and TYPE only. Histograms get
/// cumulative _bucket lines ending in le="+Inf" (equal to _count), then
/// _sum and _count. Every line ends in a newline.
std::string render(const std::vector<prometheus_family>& families);

const char* to_string(prometheus_type type);

} // namespace ferry::protocol
