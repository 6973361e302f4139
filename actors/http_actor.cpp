#include "actors/http_actor.hpp"

#include <caf/all.hpp>

#include <utility>

namespace ferry {

http_state::~http_state() {
  if (engine && loop_thread->load() == std::this_thread::get_id()) {
    // The last reference to the actor was dropped by a completion on the
    // curl thread; the engine cannot join its own thread, so another one
    // takes it down.
    std::thread([doomed = std::move(engine)] {}).detach();
  }
  // Cancels in-flight transfers; their completions then go to a dead actor.
  engine.reset();
  for (auto& [id, promise] : pending)
    if (promise.pending())
      promise.deliver(to_error({errc::cancelled, "the HTTP actor stopped"}));
}

http_actor::behavior_type http(http_actor::stateful_pointer<http_state> self,
                               http_engine::options opts) {
  self->state.engine = std::make_unique<http_engine>(std::move(opts));
  return {
    [=](atom::fetch, http_request& request) -> caf::result<http_response> {
      auto promise = self->make_response_promise<http_response>();
      // Weak: a strong handle in the engine would keep an abandoned actor
      // (and so the engine) alive until its transfers end.
      auto weak = caf::actor_cast<caf::weak_actor_ptr>(self);
      auto loop_thread = self->state.loop_thread;
      auto id = self->state.engine->submit(
        std::move(request), [weak, loop_thread](uint64_t id, result<http_response> outcome) {
          // On the curl thread: only messages reach the actor.
          loop_thread->store(std::this_thread::get_id());
          auto strong = weak.lock();
          if (!strong)
            return;
          http_completion done;
          done.id = id;
          if (outcome)
            done.response = std::move(*outcome);
          else
            done.error = outcome.error();
          caf::anon_send(caf::actor_cast<http_actor>(std::move(strong)), atom::fetched_v,
                         std::move(done));
        });
      // The completion is handled by this actor, so it cannot arrive before
      // the promise is stored.
      self->state.pending.emplace(id, promise);
      return promise;
    },
    [=](atom::fetched, http_completion& done) {
      auto i = self->state.pending.find(done.id);
      if (i == self->state.pending.end())
        return;
      auto promise = std::move(i->second);
      self->state.pending.erase(i);
      if (done.error.ok())
        promise.deliver(std::move(done.response));
      else
        promise.deliver(to_error(done.error));
    },
  };
}

} // namespace ferry
