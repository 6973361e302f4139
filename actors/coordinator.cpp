#include "actors/coordinator.hpp"

#include "actors/logging.hpp"

#include <caf/all.hpp>

namespace ferry {

namespace {

using coordinator_pointer = coordinator_actor::stateful_pointer<coordinator_state>;

void reply(coordinator_pointer self, std::string line) {
  self->send(self->state.io, atom::reply_v, std::move(line));
}

void stop_if_idle(coordinator_pointer self) {
  if (self->state.terminating && self->state.in_flight == 0)
    self->quit(caf::exit_reason::user_shutdown);
}

const char* direction_name(protocol::operation op) {
  return op == protocol::operation::upload ? "upload" : "download";
}

} // namespace

int protocol_code(errc code) {
  switch (code) {
    case errc::invalid_request:
    case errc::path_rejected:
      return protocol::code::bad_request;
    case errc::not_found:
      return protocol::code::not_found;
    case errc::size_mismatch:
    case errc::hash_mismatch:
      return protocol::code::conflict;
    case errc::cancelled:
      return protocol::code::unavailable;
    default:
      return protocol::code::failed;
  }
}

coordinator_actor::behavior_type coordinator(coordinator_pointer self,
                                             std::shared_ptr<const engine_config> config,
                                             supervisor_actor supervisor, protocol_io_actor io,
                                             uint64_t first_job_id) {
  auto& st = self->state;
  st.first_id = first_job_id;
  st.next_id = first_job_id;
  st.config = std::move(config);
  st.supervisor = std::move(supervisor);
  st.io = std::move(io);
  return {
    [=](atom::progress, const progress_note& note) {
      reply(self, protocol::encode_progress(note.oid, note.bytes_so_far, note.bytes_since_last));
    },
    // git-lfs hears of an object only once it is durable: its outcome.
    [=](atom::stored, uint64_t) {},
    [=](const protocol::init_request& init) {
      auto& st = self->state;
      // One agent serves one direction for its whole life, as git-lfs
      // starts it: a second init is a confused or hostile peer.
      if (st.operation)
        return reply(self, protocol::encode_error(protocol::code::bad_request,
                                                  std::string{"init was already received (for "} +
                                                    direction_name(*st.operation) +
                                                    "); a second one is refused"));
      st.operation = init.op;
      log()->info("init: {} {} {} (remote '{}')", direction_name(init.op),
                  init.op == protocol::operation::upload ? "to" : "from",
                  st.config->store ? st.config->store->describe()
                                   : std::string{"the LFS server's actions"},
                  init.remote);
      reply(self, protocol::encode_init_ok());
    },
    [=](const protocol::transfer_request& request) {
      auto& st = self->state;
      if (!st.operation)
        return reply(self, protocol::encode_complete_error(
                             request.oid, protocol::code::bad_request,
                             "the agent was not initialised: init must come first"));
      if (request.op != *st.operation)
        return reply(self,
                     protocol::encode_complete_error(request.oid, protocol::code::bad_request,
                                                     std::string{"the agent was initialised for "} +
                                                       direction_name(*st.operation) + ", not " +
                                                       direction_name(request.op)));
      if (st.terminating)
        return reply(self, protocol::encode_complete_error(request.oid, protocol::code::unavailable,
                                                           "the agent is shutting down"));
      transfer_job job;
      job.id = st.next_id++;
      job.dir = request.op == protocol::operation::upload ? direction::upload : direction::download;
      job.oid = request.oid;
      job.size = request.size;
      job.path = request.path;
      // This agent's own directory (the engine's, unless it shares one).
      if (job.dir == direction::download)
        job.download_dir = st.config->download_dir.string();
      if (request.action)
        job.action = {request.action->href, request.action->headers};
      st.in_flight += 1;
      if (st.config->watch_object)
        st.watches.emplace(job.id, st.config->watch_object(job.oid));
      log_event(spdlog::level::debug, {request.oid, {}}, "{} request received: {} bytes{}",
                direction_name(request.op), request.size,
                request.action ? ", with the server's action" : "");
      self
        ->request(st.supervisor, caf::infinite, atom::run_v, job,
                  caf::actor_cast<progress_sink_actor>(self))
        .then(
          [=](const transfer_outcome& outcome) {
            self->state.in_flight -= 1;
            log_event(spdlog::level::debug, {outcome.oid, outcome.cid}, "complete sent: {}",
                      outcome.ok() ? std::string{"ok"} : "error: " + outcome.message);
            if (outcome.ok())
              reply(self, outcome.dir == direction::download
                            ? protocol::encode_complete(outcome.oid, outcome.path)
                            : protocol::encode_complete(outcome.oid));
            else
              reply(self, protocol::encode_complete_error(outcome.oid, protocol_code(outcome.code),
                                                          outcome.message));
            self->state.watches.erase(job.id);
            stop_if_idle(self);
          },
          [=](const caf::error& err) {
            self->state.in_flight -= 1;
            auto failure = to_status(err);
            reply(self, protocol::encode_complete_error(job.oid, protocol_code(failure.code()),
                                                        failure.to_string()));
            self->state.watches.erase(job.id);
            stop_if_idle(self);
          });
    },
    [=](atom::terminate) {
      self->state.terminating = true;
      stop_if_idle(self);
    },
    [=](atom::eof) {
      auto& st = self->state;
      // After terminate, git-lfs closing the input is the normal end.
      if (st.terminating)
        return;
      st.terminating = true;
      // Nobody waits for these transfers any more: the user pressed Ctrl-C
      // or git-lfs died. Their answers (errc::cancelled) end this actor.
      if (st.in_flight > 0) {
        log()->info("input ended without terminate: cancelling {} transfer(s) in flight",
                    st.in_flight);
        self->send(st.supervisor, atom::cancel_v, st.first_id, st.next_id - 1);
      }
      stop_if_idle(self);
    },
  };
}

} // namespace ferry
