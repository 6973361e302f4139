#include "actors/policy/credential_session.hpp"

#include <utility>

namespace ferry {

std::optional<credential_session::turn> credential_session::ask() {
  if (current_)
    return turn{false, *current_, generation_};
  if (filling_)
    return std::nullopt;
  filling_ = true;
  return turn{true, {}, 0};
}

uint64_t credential_session::filled(std::optional<http_credential> credential) {
  filling_ = false;
  approved_ = false;
  current_ = std::move(credential);
  if (!current_)
    return 0;
  return ++generation_;
}

bool credential_session::approve(uint64_t generation) {
  if (approved_ || !current_ || generation != generation_)
    return false;
  approved_ = true;
  return true;
}

bool credential_session::reject(uint64_t generation) {
  if (!current_ || generation != generation_)
    return false;
  current_.reset();
  approved_ = false;
  return true;
}

} // namespace ferry
