#include "protocol/transfer_events.hpp"

#include <nlohmann/json.hpp>

namespace ferry::protocol {

const char* to_string(event_kind kind) {
  switch (kind) {
    case event_kind::start:
      return "start";
    case event_kind::done:
      return "done";
    case event_kind::retry:
      return "retry";
    case event_kind::fail:
      return "fail";
  }
  return "?";
}

std::string encode_event(const transfer_event& event) {
  nlohmann::ordered_json line{{"t", event.t_ms},         {"ev", to_string(event.kind)},
                              {"dir", event.dir},        {"oid", event.oid},
                              {"cid", event.cid},        {"size", event.size},
                              {"attempt", event.attempt}};
  if (event.kind == event_kind::done)
    line["bytes"] = event.bytes;
  if (event.kind != event_kind::start)
    line["ms"] = event.ms;
  if (event.kind == event_kind::retry)
    line["delay_ms"] = event.delay_ms;
  if (event.kind == event_kind::retry || event.kind == event_kind::fail)
    line["error"] = event.error;
  // A peer's bytes never make the line invalid JSON.
  return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

} // namespace ferry::protocol
