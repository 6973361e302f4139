#pragma once

// Small parsing helpers shared by Ferry's codecs and the simulator. Pure:
// no I/O, no clocks.

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <optional>
#include <string_view>

namespace ferry::protocol {

/// Deepest JSON nesting accepted from untrusted input. nlohmann's parser
/// recurses per level, so unbounded nesting could exhaust the stack.
inline constexpr int max_json_nesting = 64;

/// True when `text` nests JSON arrays/objects deeper than max_json_nesting
/// (brackets inside strings do not count). Checked before parsing.
bool nests_too_deep(std::string_view text);

/// An integer JSON value as int64_t; nullopt for non-integers (including
/// 1.0) and values beyond int64_t.
std::optional<int64_t> as_int64(const nlohmann::json& value);

/// Gregorian leap year.
bool is_leap_year(int64_t year);

/// Days in `month` (1-12) of `year`.
int days_in_month(int64_t year, int month);

/// Days since 1970-01-01 of a proleptic Gregorian date; pure arithmetic,
/// independent of time_t's range and the time zone.
int64_t days_from_civil(int64_t year, int64_t month, int64_t day);

} // namespace ferry::protocol
