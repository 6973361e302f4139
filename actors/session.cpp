#include "actors/session.hpp"

#include <caf/all.hpp>

#include <utility>

namespace ferry {

session_actor::behavior_type session(session_actor::stateful_pointer<session_state> self,
                                     std::string store) {
  self->state.store = std::move(store);
  return {
    [=](atom::fill) -> caf::result<credential_session::turn> {
      if (auto turn = self->state.credentials.ask())
        return *turn;
      auto promise = self->make_response_promise<credential_session::turn>();
      self->state.waiting.push_back(promise);
      return promise;
    },
    [=](atom::filled, std::optional<http_credential>& credential) {
      auto& state = self->state;
      auto generation = state.credentials.filled(std::move(credential));
      // Each waiting caller asks again: it gets the new credentials, or,
      // when git had none here, the first of them fills in its own context.
      auto waiting = std::move(state.waiting);
      state.waiting.clear();
      for (auto& promise : waiting) {
        if (auto turn = state.credentials.ask())
          promise.deliver(*turn);
        else
          state.waiting.push_back(std::move(promise));
      }
      return generation;
    },
    [=](atom::approve, uint64_t generation) { return self->state.credentials.approve(generation); },
    [=](atom::reject, uint64_t generation) { return self->state.credentials.reject(generation); },
  };
}

namespace {

class shared_credentials final : public credential_source {
public:
  shared_credentials(caf::actor_system& sys, session_actor shared,
                     std::unique_ptr<credential_source> own)
      : sys_(sys), shared_(std::move(shared)), own_(std::move(own)) {}

  result<std::optional<http_credential>> fill(const std::string& url) override {
    auto turn = ask<credential_session::turn>(atom::fill_v);
    if (!turn)
      return turn.error();
    if (!turn->fill) {
      generation_ = turn->generation;
      return std::optional<http_credential>{std::move(turn->credential)};
    }
    auto filled = own_->fill(url);
    // The fill must end in the session even when it failed, or the callers
    // waiting for it would wait forever.
    auto generation =
      ask<uint64_t>(atom::filled_v, filled ? *filled : std::optional<http_credential>{});
    generation_ = generation ? *generation : 0;
    return filled;
  }

  void approve(const std::string& url, const http_credential& credential) override {
    if (auto ours = ask<bool>(atom::approve_v, generation_); ours && *ours)
      own_->approve(url, credential);
  }

  void reject(const std::string& url, const http_credential& credential) override {
    if (auto ours = ask<bool>(atom::reject_v, generation_); ours && *ours)
      own_->reject(url, credential);
  }

private:
  template <class T, class... Ts>
  result<T> ask(Ts&&... xs) {
    caf::scoped_actor self{sys_};
    result<T> answer = status{errc::internal, "no answer from the credential session"};
    self->request(shared_, caf::infinite, std::forward<Ts>(xs)...)
      .receive([&](T& value) { answer = std::move(value); },
               [&](const caf::error& err) { answer = to_status(err); });
    return answer;
  }

  caf::actor_system& sys_;
  session_actor shared_;
  std::unique_ptr<credential_source> own_;
  /// The generation of the credentials this repository's store holds.
  uint64_t generation_ = 0;
};

} // namespace

std::unique_ptr<credential_source> session_credentials(caf::actor_system& sys, session_actor shared,
                                                       std::unique_ptr<credential_source> own) {
  return std::make_unique<shared_credentials>(sys, std::move(shared), std::move(own));
}

} // namespace ferry
