#pragma once

// Shared by the harnesses in this directory (docs/fuzzing.md).
//
// FUZZ_CHECK(condition) states a promise of the code under test. When it
// does not hold, the harness names the promise and aborts: libFuzzer saves
// the input as a crash, and the replay test (fuzz.<area>) fails.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace ferry::fuzz {

/// Exact arithmetic for reference computations (__extension__: no
/// -Wpedantic warning under gcc).
__extension__ typedef __int128 int128;

[[noreturn]] inline void broken_promise(const char* what, const char* file, int line) {
  std::fprintf(stderr, "\n*** promise broken: %s\n*** at %s:%d\n", what, file, line);
  std::fflush(stderr);
  std::abort();
}

/// A day of the proleptic Gregorian calendar.
struct civil_date {
  int64_t year;
  int64_t month; // 1-12
  int64_t day;   // 1-31
};

/// The date `days` after 1970-01-01 (negative: before it), by H. Hinnant's
/// civil_from_days: the reference the harnesses check date codecs against.
inline civil_date civil_from_days(int64_t days) {
  const int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int64_t day = doy - (153 * mp + 2) / 5 + 1;
  const int64_t month = mp < 10 ? mp + 3 : mp - 9;
  return {yoe + era * 400 + (month <= 2 ? 1 : 0), month, day};
}

/// The fuzz input as text, without a copy: a read past its end reaches
/// ASan's redzone instead of a terminating NUL.
inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

/// True when every byte is printable ASCII (0x20-0x7e): what the codecs
/// promise for text they pass on to terminals and logs.
inline bool printable_ascii(std::string_view text) {
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte > 0x7e)
      return false;
  }
  return true;
}

/// True for text that looks like a credential: 8 or more of [A-Za-z0-9:+_-]
/// with a letter and a digit. Harnesses check that messages never repeat such
/// text from their input; text that is not secret-like ("password",
/// "s3://bucket") may also be a fixed part of a message.
inline bool secret_like(std::string_view text) {
  bool letter = false, digit = false, plain = text.size() >= 8;
  for (char c : text) {
    letter = letter || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    digit = digit || (c >= '0' && c <= '9');
    plain = plain && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == ':' || c == '+' || c == '_' || c == '-');
  }
  return plain && letter && digit;
}

/// Takes the first byte off `text` (0 when empty): harnesses that test more
/// than one entry point, or need a small parameter, read it from there.
inline unsigned char take_byte(std::string_view& text) {
  if (text.empty())
    return 0;
  const auto byte = static_cast<unsigned char>(text.front());
  text.remove_prefix(1);
  return byte;
}

} // namespace ferry::fuzz

#define FUZZ_CHECK(condition)                                                                      \
  ((condition) ? static_cast<void>(0)                                                              \
               : ::ferry::fuzz::broken_promise(#condition, __FILE__, __LINE__))
