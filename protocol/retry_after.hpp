#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace ferry {

/// The longest wait parse_retry_after() reports. RFC 9111 §1.2.2 asks
/// recipients to treat delta-seconds they cannot represent as 2^31 seconds;
/// far-future dates are clamped to the same value, so callers can add the
/// result to a time point without overflowing.
inline constexpr std::chrono::seconds max_retry_after{2147483648LL};

/// Parses the value of a Retry-After header (RFC 9110 §10.2.3) into how long
/// to wait from `now`.
///
/// Accepts delta-seconds ("120"; larger than max_retry_after is clamped) and
/// an HTTP-date in any of the three forms of RFC 9110 §5.6.7: IMF-fixdate
/// ("Sun, 06 Nov 1994 08:49:37 GMT"), obsolete RFC 850 ("Sunday, 06-Nov-94
/// 08:49:37 GMT") and asctime ("Sun Nov  6 08:49:37 1994"). A date in the past
/// gives 0; a date in the future gives the wait rounded up to whole seconds,
/// so the caller never retries early. Surrounding spaces and tabs are ignored.
/// Anything else (empty, negative, fractional, trailing junk, impossible
/// dates) gives nullopt. Day and month names and "GMT" are matched without
/// regard to ASCII case; parsing is locale-independent.
std::optional<std::chrono::seconds> parse_retry_after(std::string_view header,
                                                      std::chrono::system_clock::time_point now);

} // namespace ferry
