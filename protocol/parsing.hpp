#pragma once

// Small parsing helpers shared by Ferry's codecs and the simulator. Pure:
// no I/O, no clocks.

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <optional>
#include <string>
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

/// A validation failure inside a codec's field decoder; the codec's entry
/// point catches it and reports `message`.
struct field_error {
  std::string message;
};

/// The member `key` of a JSON object, or nullptr when it is absent (or when
/// `object` is not an object).
const nlohmann::json* find_member(const nlohmann::json& object, const char* key);

/// Compact JSON text of `value`; invalid UTF-8 is replaced instead of thrown.
std::string dump(const nlohmann::ordered_json& value);

/// `text` without leading and trailing spaces and tabs (HTTP's optional
/// whitespace around header values and list items).
std::string_view trim_ows(std::string_view text);

/// `text` with ASCII letters in lower case (header names, schemes, hosts).
std::string lower_ascii(std::string_view text);

/// True when `text` equals `lower` ignoring ASCII case; `lower` must be
/// written in lower case.
bool equals_ci(std::string_view text, std::string_view lower);

/// True when `name` is a non-empty RFC 9110 token, the only form a header
/// field name may take.
bool is_http_token(std::string_view name);

/// True when a header field value holds no control bytes other than HTAB:
/// CR and LF above all would let a server smuggle extra header lines (or a
/// second request) into ours.
bool is_safe_header_value(std::string_view value);

/// Gregorian leap year.
bool is_leap_year(int64_t year);

/// Days in `month` (1-12) of `year`.
int days_in_month(int64_t year, int month);

/// Days since 1970-01-01 of a proleptic Gregorian date; pure arithmetic,
/// independent of time_t's range and the time zone.
int64_t days_from_civil(int64_t year, int64_t month, int64_t day);

} // namespace ferry::protocol
