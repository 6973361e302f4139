#include "actors/protocol_io.hpp"

#include "actors/coordinator.hpp"
#include "actors/logging.hpp"

#include <caf/all.hpp>

namespace ferry {

namespace {

using io_pointer = protocol_io_actor::stateful_pointer<protocol_io_state>;

/// Forwards one decoded request to the coordinator.
struct forward {
  io_pointer self;
  void operator()(const protocol::init_request& x) const { self->send(self->state.coordinator, x); }
  void operator()(const protocol::transfer_request& x) const {
    self->send(self->state.coordinator, x);
  }
  void operator()(const protocol::terminate_request&) const {
    self->send(self->state.coordinator, atom::terminate_v);
  }
};

} // namespace

protocol_io_actor::behavior_type protocol_io(io_pointer self, line_writer write,
                                             size_t max_line_bytes,
                                             std::shared_ptr<const engine_config> config,
                                             supervisor_actor supervisor, uint64_t first_job_id) {
  auto& st = self->state;
  st.write = std::move(write);
  st.max_line_bytes = max_line_bytes;
  st.coordinator = self->spawn<caf::linked>(coordinator, std::move(config), std::move(supervisor),
                                            caf::actor_cast<protocol_io_actor>(self), first_job_id);
  return {
    [=](atom::input, const std::string& line) {
      auto decoded = protocol::decode_request(line);
      if (auto* error = std::get_if<protocol::decode_error>(&decoded)) {
        log()->warn("rejected request: {}", error->message);
        self->state.write(protocol::encode_decode_error(*error));
        return;
      }
      std::visit(forward{self}, std::get<protocol::request>(decoded));
    },
    [=](atom::too_long) {
      auto limit = std::to_string(self->state.max_line_bytes);
      log()->warn("rejected a request line longer than {} bytes", limit);
      self->state.write(protocol::encode_error(
        protocol::code::too_large, "request line longer than " + limit + " bytes was ignored"));
    },
    [=](atom::eof) { self->send(self->state.coordinator, atom::eof_v); },
    [=](atom::reply, const std::string& line) { self->state.write(line); },
  };
}

} // namespace ferry
