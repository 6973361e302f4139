#include "protocol/log_line.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <strings.h>

namespace ferry {

namespace {

using sys_clock = std::chrono::system_clock;

bool is_control(unsigned char byte) { return byte < 0x20 || byte == 0x7f; }

// Appends `text` with control characters escaped; with `quoted`, quotes and
// backslashes too (the inside of a quoted value).
void append_escaped(std::string& out, std::string_view text, bool quoted) {
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    if (quoted && (c == '"' || c == '\\')) {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (is_control(byte)) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", byte);
      out += escaped;
    } else {
      out += c;
    }
  }
}

// ` name=value`, the value quoted when it is empty or holds anything that
// could end it early: spaces, quotes, '=', backslashes, control characters.
void append_field(std::string& out, std::string_view name, std::string_view value) {
  if (!out.empty())
    out += ' ';
  out += name;
  out += '=';
  bool plain = !value.empty() && std::none_of(value.begin(), value.end(), [](char c) {
    auto byte = static_cast<unsigned char>(c);
    return byte <= 0x20 || byte == 0x7f || c == '"' || c == '=' || c == '\\';
  });
  if (plain) {
    out += value;
    return;
  }
  out += '"';
  append_escaped(out, value, true);
  out += '"';
}

std::tm broken_down(sys_clock::time_point time, bool utc) {
  std::time_t seconds = sys_clock::to_time_t(time);
  std::tm parts{};
  if (utc)
    gmtime_r(&seconds, &parts);
  else
    localtime_r(&seconds, &parts);
  return parts;
}

// The fraction of a second, in `unit`s (milliseconds, microseconds).
template <class Unit>
long long fraction(sys_clock::time_point time) {
  auto since = time.time_since_epoch();
  auto whole = std::chrono::duration_cast<std::chrono::seconds>(since);
  if (whole > since)
    whole -= std::chrono::seconds{1};
  return std::chrono::duration_cast<Unit>(since - whole).count();
}

// 2026-12-05T12:00:00.123Z
std::string utc_timestamp(sys_clock::time_point time) {
  std::tm parts = broken_down(time, true);
  char text[96];
  std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03lldZ", parts.tm_year + 1900,
                parts.tm_mon + 1, parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec,
                fraction<std::chrono::milliseconds>(time));
  return text;
}

} // namespace

std::optional<log_format> parse_log_format(std::string_view name) {
  if (name == "text")
    return log_format::text;
  if (name == "json")
    return log_format::json;
  return std::nullopt;
}

std::string format_log_line(log_format format, const log_entry& entry) {
  std::string time = utc_timestamp(entry.time);
  if (format == log_format::json) {
    nlohmann::ordered_json line{{"time", time}, {"level", entry.level}, {"pid", entry.pid}};
    if (!entry.fields.cid.empty())
      line["cid"] = entry.fields.cid;
    if (!entry.fields.oid.empty())
      line["oid"] = entry.fields.oid;
    line["msg"] = entry.message;
    return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  std::string out;
  out.reserve(96 + entry.message.size());
  append_field(out, "time", time);
  append_field(out, "level", entry.level);
  append_field(out, "pid", std::to_string(entry.pid));
  if (!entry.fields.cid.empty())
    append_field(out, "cid", entry.fields.cid);
  if (!entry.fields.oid.empty())
    append_field(out, "oid", entry.fields.oid);
  append_field(out, "msg", entry.message);
  return out;
}

std::string format_trace_line(sys_clock::time_point time, const log_fields& fields,
                              std::string_view message) {
  std::tm parts = broken_down(time, false);
  char stamp[64];
  std::snprintf(stamp, sizeof stamp, "%02d:%02d:%02d.%06lld", parts.tm_hour, parts.tm_min,
                parts.tm_sec, fraction<std::chrono::microseconds>(time));
  std::string out = stamp;
  out += " trace ferry: ";
  append_escaped(out, message, false);
  std::string rest;
  if (!fields.oid.empty())
    append_field(rest, "oid", fields.oid);
  if (!fields.cid.empty())
    append_field(rest, "cid", fields.cid);
  if (!rest.empty())
    out += ' ' + rest;
  return out;
}

git_trace_target parse_git_trace(const char* value) {
  if (value == nullptr)
    return {};
  std::string_view text{value};
  if (text.empty() || text == "0" || strcasecmp(value, "false") == 0)
    return {};
  if (strcasecmp(value, "true") == 0 ||
      (text.size() == 1 && std::isdigit(static_cast<unsigned char>(text[0])) != 0))
    return {git_trace_target::kind::stderr_stream, {}};
  if (text.front() == '/')
    return {git_trace_target::kind::file, std::string{text}};
  return {};
}

} // namespace ferry
