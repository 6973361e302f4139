#pragma once

// The SESSION actor (interfaces.hpp) and the credential source through which
// a repository's store uses it.

#include "actors/interfaces.hpp"
#include "actors/policy/credential_session.hpp"

#include <caf/typed_response_promise.hpp>

#include <memory>
#include <string>
#include <vector>

namespace ferry {

struct session_state {
  /// The store's endpoint without secrets: what this session is for, when
  /// the actor is looked at in a debugger. (The actor is spawned with it also
  /// because CAF 0.17.6 binds a reference to a null std::tuple<> when a
  /// function-based actor is spawned without arguments; UBSan reports it.)
  std::string store;
  credential_session credentials;
  /// Callers that asked while a fill was under way.
  std::vector<caf::typed_response_promise<credential_session::turn>> waiting;

  static inline const char* name = "session";
};

/// Spawns the SESSION of the store at `store` (its endpoint without
/// secrets).
session_actor::behavior_type session(session_actor::stateful_pointer<session_state> self,
                                     std::string store);

/// A credential source for one repository's store that shares the
/// credentials `shared` holds with every other repository using the same
/// store: a fill is answered from the session when it has credentials, and
/// `own` (`git credential` in this repository's context) runs only when it
/// is this caller's turn. Approve and reject reach git once per fill.
/// Blocks its caller (a store's thread, never an actor's); the store calls
/// it under its own lock, one call at a time.
std::unique_ptr<credential_source> session_credentials(caf::actor_system& sys, session_actor shared,
                                                       std::unique_ptr<credential_source> own);

} // namespace ferry
