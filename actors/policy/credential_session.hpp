#pragma once

#include "store/http/git_credentials.hpp"

#include <cstdint>
#include <optional>

namespace ferry {

/// What authenticates requests to one store for every repository that uses
/// it: the credentials `git credential fill` last gave, which fill they came
/// from (the generation), and whether git was told they work. One fill at a
/// time: a caller that asks while another fills waits for that fill's
/// result instead of asking the user again.
///
/// The SESSION actor owns it; the git credential calls themselves run in
/// the caller's context (its repository, its agent's terminal). Not
/// thread-safe.
class credential_session {
public:
  /// The answer to ask(): use `credential` (from fill `generation`), or,
  /// with `fill` set, run `git credential fill` and report it to filled().
  struct turn {
    bool fill = false;
    http_credential credential;
    uint64_t generation = 0;
  };

  /// A caller needs credentials. std::nullopt: a fill is under way; ask
  /// again once it has ended (filled()).
  std::optional<turn> ask();

  /// The fill ask() handed out ended with `credential` (std::nullopt: git
  /// had none, or failed). Returns the new generation, 0 without credential.
  uint64_t filled(std::optional<http_credential> credential);

  /// A request that carried the credentials of `generation` succeeded.
  /// True once per fill: the caller then runs `git credential approve`.
  bool approve(uint64_t generation);

  /// The server refused the credentials of `generation`. True when they are
  /// still the ones held: they are dropped and the caller runs `git
  /// credential reject`; false when a later fill already replaced them.
  bool reject(uint64_t generation);

  bool filling() const { return filling_; }
  /// Whether credentials are held (and, then, approved).
  bool held() const { return current_.has_value(); }
  bool approved() const { return approved_; }

private:
  std::optional<http_credential> current_;
  uint64_t generation_ = 0;
  bool approved_ = false;
  bool filling_ = false;
};

} // namespace ferry
