#include "protocol/prometheus_text.hpp"

#include <charconv>
#include <cmath>

namespace ferry::protocol {

namespace {

std::string escaped(std::string_view text, bool quote) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else if (c == '"' && quote)
      out += "\\\"";
    else
      out += c;
  }
  return out;
}

/// `name{a="x",b="y"}`, with `extra` (le) last; no braces without labels.
std::string series(std::string_view name, const prometheus_labels& labels,
                   const std::pair<std::string, std::string>* extra = nullptr) {
  std::string out{name};
  if (labels.empty() && extra == nullptr)
    return out;
  out += '{';
  bool first = true;
  auto add = [&](const std::pair<std::string, std::string>& label) {
    if (!first)
      out += ',';
    first = false;
    out += label.first + "=\"" + escape_label_value(label.second) + '"';
  };
  for (auto& label : labels)
    add(label);
  if (extra != nullptr)
    add(*extra);
  out += '}';
  return out;
}

void line(std::string& out, const std::string& series_text, const std::string& value) {
  out += series_text;
  out += ' ';
  out += value;
  out += '\n';
}

} // namespace

std::string escape_label_value(std::string_view value) { return escaped(value, true); }

std::string escape_help(std::string_view text) { return escaped(text, false); }

std::string format_value(double value) {
  if (std::isnan(value))
    return "NaN";
  if (std::isinf(value))
    return value > 0 ? "+Inf" : "-Inf";
  char buffer[64];
  auto done = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string{buffer, done.ptr};
}

const char* to_string(prometheus_type type) {
  switch (type) {
    case prometheus_type::counter:
      return "counter";
    case prometheus_type::gauge:
      return "gauge";
    case prometheus_type::histogram:
      return "histogram";
  }
  return "untyped";
}

std::string render(const std::vector<prometheus_family>& families) {
  std::string out;
  for (auto& family : families) {
    out += "# HELP " + family.name + ' ' + escape_help(family.help) + '\n';
    out += "# TYPE " + family.name + ' ' + to_string(family.type) + '\n';
    for (auto& sample : family.samples)
      line(out, series(family.name, sample.labels), format_value(sample.value));
    for (auto& histogram : family.histograms) {
      uint64_t cumulative = 0;
      // One bucket per bound and +Inf, whatever `counts` holds.
      for (size_t i = 0; i <= histogram.bounds.size(); ++i) {
        cumulative += i < histogram.counts.size() ? histogram.counts[i] : 0;
        std::pair<std::string, std::string> le{
          "le", i < histogram.bounds.size() ? format_value(histogram.bounds[i]) : "+Inf"};
        line(out, series(family.name + "_bucket", histogram.labels, &le),
             std::to_string(cumulative));
      }
      line(out, series(family.name + "_sum", histogram.labels), format_value(histogram.sum));
      line(out, series(family.name + "_count", histogram.labels), std::to_string(cumulative));
    }
  }
  return out;
}

} // namespace ferry::protocol
