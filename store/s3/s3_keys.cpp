#include "store/s3/s3_keys.hpp"

#include <utility>

namespace ferry::s3 {

namespace {

bool same_keys(const credentials& a, const credentials& b) {
  return a.access_key_id == b.access_key_id && a.secret_access_key == b.secret_access_key &&
         a.session_token == b.session_token;
}

} // namespace

key_holder::key_holder(found_credentials first, lookup_function lookup)
    : lookup_(std::move(lookup)), keys_(std::move(first.keys)), source_(std::move(first.source)) {}

std::shared_ptr<key_holder> key_holder::fixed(credentials keys) {
  return std::make_shared<key_holder>(found_credentials{std::move(keys), "given keys"}, nullptr);
}

signing_keys key_holder::current() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return {keys_, generation_};
}

bool key_holder::reread(uint64_t generation) {
  std::lock_guard<std::mutex> lock(mutex_);
  // The lookup runs under the lock: requests refused meanwhile wait for its
  // outcome instead of reading again.
  if (generation == generation_ && lookup_) {
    ++generation_;
    auto found = lookup_();
    read_problem_ = found ? std::string{} : found.error().message();
    if (found && !same_keys(found->keys, keys_)) {
      keys_ = std::move(found->keys);
      source_ = std::move(found->source);
      changed_at_ = generation_;
    }
  }
  return changed_at_ > generation;
}

std::string key_holder::refused_note() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string note = "the keys from " + source_ + " were refused";
  if (!read_problem_.empty())
    return note + "; reading them again failed: " + read_problem_;
  return note;
}

} // namespace ferry::s3
