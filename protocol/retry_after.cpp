#include "protocol/retry_after.hpp"

#include "protocol/parsing.hpp"

#include <array>
#include <cstdint>

namespace ferry {

namespace {

constexpr std::array<std::string_view, 7> short_days{"Mon", "Tue", "Wed", "Thu",
                                                     "Fri", "Sat", "Sun"};
constexpr std::array<std::string_view, 7> long_days{"Monday", "Tuesday",  "Wednesday", "Thursday",
                                                    "Friday", "Saturday", "Sunday"};
constexpr std::array<std::string_view, 12> months{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// ASCII-only comparison: names in HTTP dates are ASCII, and the C library's
// tolower() would consult the locale.
char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size())
    return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (ascii_lower(a[i]) != ascii_lower(b[i]))
      return false;
  return true;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// A cursor over the header that consumes the grammar's pieces one by one.
class scanner {
public:
  explicit scanner(std::string_view text) : text_(text) {}

  bool done() const { return text_.empty(); }

  bool literal(std::string_view expected) {
    if (text_.size() < expected.size() || !iequals(text_.substr(0, expected.size()), expected))
      return false;
    text_.remove_prefix(expected.size());
    return true;
  }

  /// Exactly `count` digits.
  bool digits(int count, int& out) {
    if (text_.size() < static_cast<size_t>(count))
      return false;
    int value = 0;
    for (int i = 0; i < count; ++i) {
      if (!is_digit(text_[static_cast<size_t>(i)]))
        return false;
      value = value * 10 + (text_[static_cast<size_t>(i)] - '0');
    }
    text_.remove_prefix(static_cast<size_t>(count));
    out = value;
    return true;
  }

  /// One of `names`, returning its index.
  template <size_t N>
  bool one_of(const std::array<std::string_view, N>& names, int& index) {
    // Longest match first is not needed: no name is a prefix of another
    // within the same table.
    for (size_t i = 0; i < N; ++i)
      if (literal(names[i])) {
        index = static_cast<int>(i);
        return true;
      }
    return false;
  }

  /// time-of-day = hour ":" minute ":" second
  bool time_of_day(int& h, int& m, int& s) {
    return digits(2, h) && literal(":") && digits(2, m) && literal(":") && digits(2, s);
  }

private:
  std::string_view text_;
};

struct civil_time {
  int64_t year = 0;
  int month = 0; // 1-12
  int day = 0;
  int hour = 0;
  int minute = 0;
  int second = 0;
};

// "Sun, 06 Nov 1994 08:49:37 GMT"
std::optional<civil_time> parse_imf_fixdate(std::string_view text) {
  scanner in{text};
  civil_time t;
  int ignored = 0;
  int year = 0;
  if (!(in.one_of(short_days, ignored) && in.literal(", ") && in.digits(2, t.day) &&
        in.literal(" ") && in.one_of(months, t.month) && in.literal(" ") && in.digits(4, year) &&
        in.literal(" ") && in.time_of_day(t.hour, t.minute, t.second) && in.literal(" GMT") &&
        in.done()))
    return std::nullopt;
  t.month += 1;
  t.year = year;
  return t;
}

// "Sunday, 06-Nov-94 08:49:37 GMT"
std::optional<civil_time> parse_rfc850(std::string_view text, int64_t current_year) {
  scanner in{text};
  civil_time t;
  int ignored = 0;
  int yy = 0;
  if (!(in.one_of(long_days, ignored) && in.literal(", ") && in.digits(2, t.day) &&
        in.literal("-") && in.one_of(months, t.month) && in.literal("-") && in.digits(2, yy) &&
        in.literal(" ") && in.time_of_day(t.hour, t.minute, t.second) && in.literal(" GMT") &&
        in.done()))
    return std::nullopt;
  t.month += 1;
  // RFC 9110 §5.6.7: a two-digit year that would be more than 50 years in
  // the future means the most recent past year with those last two digits.
  int64_t century = current_year - (current_year % 100 + 100) % 100;
  t.year = century + yy;
  if (t.year > current_year + 50)
    t.year -= 100;
  return t;
}

// "Sun Nov  6 08:49:37 1994" (the day is space-padded to two characters)
std::optional<civil_time> parse_asctime(std::string_view text) {
  scanner in{text};
  civil_time t;
  int ignored = 0;
  int year = 0;
  if (!(in.one_of(short_days, ignored) && in.literal(" ") && in.one_of(months, t.month) &&
        in.literal(" ")))
    return std::nullopt;
  if (in.literal(" ")) {
    if (!in.digits(1, t.day))
      return std::nullopt;
  } else if (!in.digits(2, t.day)) {
    return std::nullopt;
  }
  if (!(in.literal(" ") && in.time_of_day(t.hour, t.minute, t.second) && in.literal(" ") &&
        in.digits(4, year) && in.done()))
    return std::nullopt;
  t.month += 1;
  t.year = year;
  return t;
}

// Seconds since the epoch, or nullopt for an impossible date such as 31 Feb.
std::optional<int64_t> to_epoch_seconds(const civil_time& t) {
  if (t.month < 1 || t.month > 12 || t.day < 1 || t.day > protocol::days_in_month(t.year, t.month))
    return std::nullopt;
  // 60 is allowed: a leap second, which counts as the next minute's first.
  if (t.hour > 23 || t.minute > 59 || t.second > 60)
    return std::nullopt;
  int64_t days = protocol::days_from_civil(t.year, t.month, t.day);
  return days * 86400 + t.hour * 3600 + t.minute * 60 + t.second;
}

int64_t year_of(int64_t epoch_seconds) {
  // civil_from_days, year only.
  int64_t z = (epoch_seconds >= 0 ? epoch_seconds : epoch_seconds - 86399) / 86400 + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return static_cast<int64_t>(yoe) + era * 400 + (m <= 2 ? 1 : 0);
}

std::optional<std::chrono::seconds> parse_delta_seconds(std::string_view text) {
  if (text.empty())
    return std::nullopt;
  const int64_t cap = max_retry_after.count();
  int64_t value = 0;
  for (char c : text) {
    if (!is_digit(c))
      return std::nullopt;
    // Keep scanning after the cap so junk later on is still rejected.
    if (value < cap)
      value = value * 10 + (c - '0');
  }
  return std::chrono::seconds{value < cap ? value : cap};
}

} // namespace

std::optional<std::chrono::seconds> parse_retry_after(std::string_view header,
                                                      std::chrono::system_clock::time_point now) {
  header = protocol::trim_ows(header);
  if (!header.empty() && is_digit(header.front()))
    return parse_delta_seconds(header);

  // Whole seconds, rounded down: with a date in whole seconds, date - floor(now)
  // equals the exact difference rounded up.
  const int64_t now_s = std::chrono::floor<std::chrono::seconds>(now.time_since_epoch()).count();

  std::optional<civil_time> parsed = parse_imf_fixdate(header);
  if (!parsed)
    parsed = parse_rfc850(header, year_of(now_s));
  if (!parsed)
    parsed = parse_asctime(header);
  if (!parsed)
    return std::nullopt;
  auto date_s = to_epoch_seconds(*parsed);
  if (!date_s)
    return std::nullopt;

  // Both values are within a few hundred billion seconds: no overflow.
  const int64_t wait = *date_s - now_s;
  if (wait <= 0)
    return std::chrono::seconds{0};
  return std::chrono::seconds{wait < max_retry_after.count() ? wait : max_retry_after.count()};
}

} // namespace ferry
