#include "store/http/verified_put.hpp"

#include <utility>

namespace ferry {

status object_digest::add(const char* data, size_t n) {
  if (static_cast<uint64_t>(size_ - count_) < n)
    return {errc::size_mismatch, "upload of " + oid_ + ": more than the declared " +
                                   std::to_string(size_) + " bytes were written"};
  hash_.update(data, n);
  count_ += static_cast<int64_t>(n);
  return status::success();
}

status object_digest::verify() {
  if (count_ != size_)
    return {errc::size_mismatch, "upload of " + oid_ + ": " + std::to_string(count_) +
                                   " bytes were written, the object has " + std::to_string(size_) +
                                   "; nothing was stored"};
  std::string digest = hash_.hex_digest();
  if (digest != oid_)
    return {errc::hash_mismatch,
            "upload of " + oid_ + ": the bytes written hash to " + digest + "; nothing was stored"};
  return status::success();
}

verified_put::verified_put(std::string oid, int64_t size, std::string what, judge_fn judge)
    : digest_(std::move(oid), size), size_(size), what_(std::move(what)), judge_(std::move(judge)) {
}

status verified_put::start(http_engine& engine, http_request request) {
  request.upload_size = size_;
  auto started = http_body_writer::start(engine, std::move(request));
  if (!started)
    return started.error().with_context(what_);
  body_ = std::move(*started);
  return status::success();
}

status verified_put::write(const char* data, size_t size) {
  if (auto counted = digest_.add(data, size); !counted) {
    abort();
    return counted;
  }
  if (auto sent = body_->write(data, size); !sent) {
    // A server that answered before the body was complete is judged by
    // its answer.
    auto early = body_->finish();
    if (!early || is_success(early->status))
      return sent.with_context(what_);
    return judge_(*early);
  }
  return status::success();
}

status verified_put::finish() {
  if (auto checked = digest_.verify(); !checked) {
    abort();
    return checked;
  }
  auto response = body_->finish();
  if (!response)
    return response.error().with_context(what_);
  return judge_(*response);
}

void verified_put::abort() {
  if (body_)
    body_->abort();
}

} // namespace ferry
