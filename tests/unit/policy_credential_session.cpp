#include "actors/policy/credential_session.hpp"

#include <catch2/catch.hpp>

using ferry::credential_session;
using ferry::http_credential;

TEST_CASE("credential session: the first caller fills, the others wait for it",
          "[credential_session]") {
  credential_session session;
  auto first = session.ask();
  REQUIRE(first);
  CHECK(first->fill);
  CHECK(session.filling());
  // A second caller must not ask git (and the user) again.
  CHECK_FALSE(session.ask());

  auto generation = session.filled(http_credential{"ann", "secret"});
  CHECK(generation == 1);
  auto later = session.ask();
  REQUIRE(later);
  CHECK_FALSE(later->fill);
  CHECK(later->credential.username == "ann");
  CHECK(later->generation == 1);
}

TEST_CASE("credential session: a fill that found nothing hands the turn to the next caller",
          "[credential_session]") {
  credential_session session;
  REQUIRE(session.ask()->fill);
  CHECK(session.filled(std::nullopt) == 0);
  CHECK_FALSE(session.held());
  auto next = session.ask();
  REQUIRE(next);
  CHECK(next->fill);
}

TEST_CASE("credential session: git is told once that credentials work", "[credential_session]") {
  credential_session session;
  session.ask();
  auto generation = session.filled(http_credential{"ann", "secret"});
  CHECK(session.approve(generation));
  CHECK(session.approved());
  CHECK_FALSE(session.approve(generation));
  // An answer to credentials of an older fill approves nothing.
  CHECK_FALSE(session.approve(generation - 1));
}

TEST_CASE("credential session: a refusal drops credentials only when they are still current",
          "[credential_session]") {
  credential_session session;
  session.ask();
  auto old_generation = session.filled(http_credential{"ann", "old"});
  CHECK(session.reject(old_generation));
  CHECK_FALSE(session.held());
  REQUIRE(session.ask()->fill);
  auto new_generation = session.filled(http_credential{"ann", "new"});
  CHECK(new_generation == old_generation + 1);

  // Another repository's request still carried the old credentials: its
  // 401 must not throw away the new ones (nor reject them in git).
  CHECK_FALSE(session.reject(old_generation));
  auto current = session.ask();
  REQUIRE(current);
  CHECK_FALSE(current->fill);
  CHECK(current->credential.password == "new");
  // A repository that never had credentials rejects nothing.
  CHECK_FALSE(session.reject(0));
}
