#include "store/lfs_transfer.hpp"

#include "actors/http_classify.hpp"
#include "actors/retry_policy.hpp"
#include "protocol/batch_api.hpp"
#include "protocol/http_range.hpp"
#include "store/sha256.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <utility>

namespace ferry {

status lfs_http_failure(const std::string& what, const http_response& response,
                        std::chrono::seconds max_retry_wait) {
  std::optional<std::string> retry_after;
  if (const std::string* value = response.header("retry-after"))
    retry_after = *value;
  http_decision decision =
      classify_http(response.status, retry_after, std::chrono::system_clock::now(), max_retry_wait);
  std::string message = what + ": " + decision.message;
  if (decision.verdict == http_verdict::refresh_auth)
    message += "; check the credentials git's credential helper gives for this server";
  if (!response.body.empty())
    message += "; server said: " + protocol::decode_error_message(response.body);

  errc code = decision.verdict == http_verdict::success ? errc::internal : decision.code;
  // The verdict decides, but the retry policy only sees the code: a
  // permanent verdict must not carry a code it would retry. Waiting longer
  // than ferry.maxRetryWait allows is a matter of that setting.
  if (decision.verdict == http_verdict::permanent && classify(code) == retry_class::transient)
    code = (response.status == 429 || response.status == 503) ? errc::config_error
                                                              : errc::invalid_request;
  status failure{code, message};
  if (decision.verdict == http_verdict::retry_after)
    failure = failure.with_retry_after(decision.wait);
  return failure;
}

namespace lfs {

namespace {

/// Bytes a streamed download may hold before it pauses the transfer.
constexpr size_t stream_buffer_bytes = 4 << 20;

/// True when a Content-Range header says exactly bytes first..last of an
/// object of `size` bytes.
bool exact_range(const std::string* header, int64_t first, int64_t last, int64_t size) {
  if (header == nullptr)
    return false;
  auto range = protocol::parse_content_range(*header);
  return range && range->first == first && range->last == last && range->complete_length &&
         *range->complete_length == size;
}

/// Checks that a 206 answers exactly bytes first..last of an object of
/// `size` bytes; misaligned bytes must never be appended to a download.
status check_content_range(const std::string& what, const std::string* header, int64_t first,
                           int64_t last, int64_t size) {
  if (exact_range(header, first, last, size))
    return status::success();
  std::string expected = "bytes " + std::to_string(first) + "-" + std::to_string(last) + "/" +
                         std::to_string(size);
  std::string got = header == nullptr ? "no Content-Range" : "Content-Range '" + *header + "'";
  return {errc::unavailable, what + ": the server answered 206 with " + got + " where '" +
                               expected + "' was asked for; its bytes were not used"};
}

/// Adds a header unless the action's headers already set it.
void add_default_header(http_request& request, const std::string& name, std::string value) {
  if (!has_header(request, name))
    request.headers.emplace_back(name, std::move(value));
}

http_request get_request(const lfs_action& action) {
  http_request request;
  request.method = "GET";
  request.url = action.href;
  add_action_headers(request, action);
  return request;
}

/// One GET from `offset` to the end, read through a bounded buffer.
class stream_reader final : public object_reader {
public:
  static result<std::unique_ptr<object_reader>> open(std::shared_ptr<session> http,
                                                     const std::string& oid, int64_t size,
                                                     const lfs_action& action, int64_t offset) {
    std::unique_ptr<stream_reader> reader{new stream_reader(http, oid, size, offset)};
    if (offset >= size)
      return std::unique_ptr<object_reader>(std::move(reader));
    if (auto opened = reader->start(action); !opened)
      return opened;
    return std::unique_ptr<object_reader>(std::move(reader));
  }

  int64_t size() const override { return size_; }

  result<size_t> read(char* buffer, size_t capacity) override {
    if (capacity == 0)
      return size_t{0};
    while (skip_ > 0) {
      auto got = pull(buffer, static_cast<size_t>(std::min<int64_t>(skip_, capacity)));
      if (!got)
        return got;
      skip_ -= static_cast<int64_t>(*got);
    }
    if (position_ >= size_)
      return size_t{0};
    auto got = pull(buffer, static_cast<size_t>(std::min<int64_t>(size_ - position_, capacity)));
    if (!got)
      return got;
    position_ += static_cast<int64_t>(*got);
    // The caller stops at the size, so a body that runs long must be noticed now.
    if (position_ == size_) {
      if (auto ended = expect_end(); !ended)
        return ended;
    }
    return got;
  }

private:
  stream_reader(std::shared_ptr<session> http, const std::string& oid, int64_t size,
                int64_t offset)
    : http_(std::move(http)), what_("download of " + oid), size_(size), position_(offset) {}

  status start(const lfs_action& action) {
    http_request request = get_request(action);
    bool ranged = position_ > 0;
    if (ranged)
      request.headers.emplace_back("Range", protocol::range_header(position_, std::nullopt));
    auto opened = http_->open(request, what_, stream_buffer_bytes);
    if (!opened)
      return opened.error();
    body_ = std::move(*opened);
    if (ranged && body_->status() == 416) {
      // The server cannot serve the range: take the whole object and skip.
      body_.reset();
      auto full = http_->open(get_request(action), what_, stream_buffer_bytes);
      if (!full)
        return full.error();
      body_ = std::move(*full);
      ranged = false;
    }
    long code = body_->status();
    if (!is_success(code))
      return lfs_http_failure(what_, failed_response(*body_), http_->max_retry_wait());
    if (code == 206) {
      if (!ranged)
        return {errc::unavailable, what_ + ": the server answered 206 to a request without Range"};
      return check_content_range(what_, body_->header("content-range"), position_, size_ - 1,
                                 size_);
    }
    // Any other 2xx carries the whole object: skip what the caller has.
    skip_ = position_;
    return status::success();
  }

  result<size_t> pull(char* buffer, size_t capacity) {
    auto got = body_->read(buffer, capacity);
    if (!got)
      return got.error().with_context(what_);
    if (*got == 0) {
      int64_t delivered = position_ - skip_;
      return status{errc::unavailable, what_ + ": the response ended after " +
                                         std::to_string(std::max<int64_t>(delivered, 0)) +
                                         " of " + std::to_string(size_) + " bytes"};
    }
    return got;
  }

  status expect_end() {
    char extra = 0;
    auto more = body_->read(&extra, 1);
    if (!more)
      return more.error().with_context(what_);
    if (*more != 0)
      return {errc::size_mismatch, what_ + ": the server sent more than the " +
                                     std::to_string(size_) +
                                     " bytes the batch response announced"};
    return status::success();
  }

  std::shared_ptr<session> http_;
  std::unique_ptr<http_body_reader> body_;
  std::string what_;
  int64_t size_;
  int64_t position_;
  int64_t skip_ = 0;
};

/// Concurrent range GETs of one object, consumed in order: at most
/// `parallel_streams` ranges of `range_bytes` are in flight or buffered.
class range_reader final : public object_reader {
public:
  range_reader(std::shared_ptr<session> http, http_engine& engine, std::string oid, int64_t size,
               lfs_action action, int64_t offset, const range_plan& plan)
    : http_(std::move(http)), engine_(engine), oid_(std::move(oid)),
      what_("download of " + oid_), action_(std::move(action)), size_(size),
      position_(offset), next_first_(offset), plan_(plan),
      state_(std::make_shared<shared_state>()) {
    fill_window();
  }

  ~range_reader() override { cancel_window(); }

  int64_t size() const override { return size_; }

  result<size_t> read(char* buffer, size_t capacity) override {
    if (fallback_)
      return fallback_->read(buffer, capacity);
    if (position_ >= size_ || capacity == 0)
      return size_t{0};
    auto ready = wait_for_head();
    if (!ready)
      return ready;
    if (fallback_)
      return fallback_->read(buffer, capacity);
    part& head = *window_.front();
    size_t n = std::min(capacity, head.data.size() - consumed_);
    std::memcpy(buffer, head.data.data() + consumed_, n);
    consumed_ += n;
    position_ += static_cast<int64_t>(n);
    if (consumed_ == head.data.size()) {
      window_.pop_front();
      consumed_ = 0;
      fill_window();
    }
    return n;
  }

private:
  struct part {
    int64_t first = 0;
    int64_t last = 0;
    uint64_t id = 0;
    std::optional<sent_credential> sent;
    bool auth_refreshed = false;
    // Written on the engine's loop thread until `done`.
    std::string data;
    long head_status = 0;
    std::optional<std::string> content_range;
    bool done = false;
    std::optional<result<http_response>> outcome;

    int64_t length() const { return last - first + 1; }
  };

  struct shared_state {
    std::mutex mutex;
    std::condition_variable changed;
  };

  void fill_window() {
    while (next_first_ < size_ && static_cast<int>(window_.size()) < plan_.parallel_streams) {
      auto next = std::make_shared<part>();
      next->first = next_first_;
      next->last = std::min(size_, next_first_ + plan_.range_bytes) - 1;
      next_first_ = next->last + 1;
      submit(next);
      window_.push_back(std::move(next));
    }
  }

  void submit(const std::shared_ptr<part>& p) {
    http_request request = get_request(action_);
    request.headers.emplace_back("Range", protocol::range_header(p->first, p->last));
    p->sent = http_->authorize(request);
    p->data.clear();
    p->data.reserve(static_cast<size_t>(p->length()));
    p->done = false;
    p->outcome.reset();
    p->head_status = 0;
    p->content_range.reset();
    const int64_t size = size_;
    // A body that is not exactly the range asked for is stopped at once.
    request.on_headers = [p, size](long code, const auto& headers) {
      p->head_status = code;
      if (const std::string* value = find_header(headers, "content-range"))
        p->content_range = *value;
      if (!is_success(code))
        return true; // its body is the error message
      return code == 206 &&
             exact_range(p->content_range ? &*p->content_range : nullptr, p->first, p->last, size);
    };
    request.body_sink = [p](const char* data, size_t n) {
      if (static_cast<int64_t>(p->data.size() + n) > p->length())
        return sink_action::abort;
      p->data.append(data, n);
      return sink_action::accept;
    };
    request.sink_error = [p, what = what_] {
      return status{errc::unavailable, what + ": the answer to Range bytes=" +
                                         std::to_string(p->first) + "-" + std::to_string(p->last) +
                                         " was not exactly that range; its bytes were not used"};
    };
    auto state = state_;
    p->id = engine_.submit(std::move(request), [p, state](uint64_t, result<http_response> done) {
      std::lock_guard<std::mutex> lock(state->mutex);
      p->outcome = std::move(done);
      p->done = true;
      state->changed.notify_all();
    });
  }

  void cancel_window() {
    for (const auto& p : window_)
      engine_.cancel(p->id);
    window_.clear();
  }

  /// Waits until the first range has arrived complete and checked; may
  /// switch to a single GET when the server ignores ranges.
  status wait_for_head() {
    while (true) {
      std::shared_ptr<part> head = window_.front();
      {
        std::unique_lock<std::mutex> lock(state_->mutex);
        state_->changed.wait(lock, [&] { return head->done; });
      }
      if (consumed_ > 0)
        return status::success();
      if (head->head_status == 200 && !head->outcome->ok()) {
        // The server ignores Range: one GET from here, skipping what was read.
        cancel_window();
        auto single = stream_reader::open(http_, oid_, size_, action_, position_);
        if (!single)
          return single.error();
        fallback_ = std::move(*single);
        return status::success();
      }
      if (!head->outcome->ok())
        return head->outcome->error().with_context(what_);
      const http_response& response = head->outcome->value();
      if (response.status == 401 && http_->may_authenticate(action_.href)) {
        if (head->auth_refreshed)
          return http_->denied(head->sent, what_, response);
        if (auto refreshed = http_->refresh(head->sent, what_); !refreshed)
          return refreshed;
        head->auth_refreshed = true;
        submit(head);
        continue;
      }
      if (!is_success(response.status))
        return lfs_http_failure(what_, response, http_->max_retry_wait());
      http_->succeeded(head->sent);
      if (response.status != 206)
        return {errc::unavailable, what_ + ": the server answered " +
                                     std::to_string(response.status) + " to a range request"};
      if (auto aligned = check_content_range(what_, response.header("content-range"),
                                             head->first, head->last, size_);
          !aligned)
        return aligned;
      if (static_cast<int64_t>(head->data.size()) != head->length())
        return {errc::unavailable, what_ + ": range " + std::to_string(head->first) + "-" +
                                     std::to_string(head->last) + " ended after " +
                                     std::to_string(head->data.size()) + " bytes"};
      return status::success();
    }
  }

  std::shared_ptr<session> http_;
  http_engine& engine_;
  std::string oid_;
  std::string what_;
  lfs_action action_;
  int64_t size_;
  int64_t position_;
  int64_t next_first_;
  range_plan plan_;
  std::shared_ptr<shared_state> state_;
  std::deque<std::shared_ptr<part>> window_;
  /// Bytes of the first range already handed out.
  size_t consumed_ = 0;
  std::unique_ptr<object_reader> fallback_;
};

/// Size and SHA-256 of everything written, checked before anything is
/// published.
class written_bytes {
public:
  written_bytes(std::string oid, int64_t size) : oid_(std::move(oid)), size_(size) {}

  status add(const char* data, size_t n) {
    if (count_ + static_cast<int64_t>(n) > size_)
      return {errc::size_mismatch, "upload of " + oid_ + ": more than the declared " +
                                     std::to_string(size_) + " bytes were written"};
    hash_.update(data, n);
    count_ += static_cast<int64_t>(n);
    return status::success();
  }

  status verify() {
    if (count_ != size_)
      return {errc::size_mismatch, "upload of " + oid_ + ": " + std::to_string(count_) +
                                     " bytes were written, the object has " +
                                     std::to_string(size_) + "; nothing was stored"};
    std::string digest = hash_.hex_digest();
    if (digest != oid_)
      return {errc::hash_mismatch, "upload of " + oid_ + ": the bytes written hash to " + digest +
                                     "; nothing was stored"};
    return status::success();
  }

private:
  std::string oid_;
  int64_t size_;
  int64_t count_ = 0;
  sha256 hash_;
};

class skipping_writer final : public object_writer {
public:
  skipping_writer(const std::string& oid, int64_t size) : written_(oid, size) {}
  int64_t offset() const override { return 0; }
  status write(const char* data, size_t size) override { return written_.add(data, size); }
  result<int64_t> sync() override { return int64_t{0}; }
  status commit() override { return written_.verify(); }
  void abort() override {}

private:
  written_bytes written_;
};

class put_writer final : public object_writer {
public:
  put_writer(std::shared_ptr<session> http, const std::string& oid, int64_t size,
             std::optional<lfs_action> verify, std::function<void()> stored)
    : http_(std::move(http)), oid_(oid), size_(size), what_("upload of " + oid),
      verify_(std::move(verify)), stored_(std::move(stored)), written_(oid, size) {}

  status start(http_engine& engine, const lfs_action& upload) {
    http_request request;
    request.method = "PUT";
    request.url = upload.href;
    add_action_headers(request, upload);
    add_default_header(request, "Content-Type", "application/octet-stream");
    request.upload_size = size_;
    url_ = request.url;
    sent_ = http_->authorize(request);
    auto started = http_body_writer::start(engine, std::move(request));
    if (!started)
      return started.error().with_context(what_);
    body_ = std::move(*started);
    return status::success();
  }

  int64_t offset() const override { return 0; }

  status write(const char* data, size_t size) override {
    if (auto counted = written_.add(data, size); !counted) {
      abort();
      return counted;
    }
    if (auto sent = body_->write(data, size); !sent) {
      // A server that answered before the body was complete (a 401, a
      // full disk) is judged by its answer.
      auto early = body_->finish();
      if (!early || is_success(early->status))
        return sent.with_context(what_);
      return judge(*early);
    }
    return status::success();
  }

  // Basic uploads cannot resume, so nothing is ever durable before commit().
  result<int64_t> sync() override { return int64_t{0}; }

  status commit() override {
    if (auto checked = written_.verify(); !checked) {
      abort();
      return checked;
    }
    auto response = body_->finish();
    if (!response)
      return response.error().with_context(what_);
    if (auto accepted = judge(*response); !accepted)
      return accepted;
    http_->succeeded(sent_);
    if (verify_) {
      if (auto verified = run_verify(); !verified)
        return verified;
    }
    if (stored_)
      stored_();
    return status::success();
  }

  void abort() override {
    if (body_)
      body_->abort();
  }

private:
  /// The PUT's answer as a status.
  status judge(const http_response& response) {
    if (response.status == 401 && http_->may_authenticate(url_)) {
      // The body is gone, so the retry of the whole transfer sends the credentials.
      if (sent_)
        return http_->denied(sent_, what_, response);
      if (auto refreshed = http_->refresh(sent_, what_); !refreshed)
        return refreshed;
      return {errc::unavailable,
              what_ + ": the server asked for credentials (HTTP 401); retrying with them"};
    }
    if (!is_success(response.status))
      return lfs_http_failure(what_, response, http_->max_retry_wait());
    return status::success();
  }

  status run_verify() {
    http_request request;
    request.method = "POST";
    request.url = verify_->href;
    add_action_headers(request, *verify_);
    add_default_header(request, "Accept", std::string(protocol::batch_media_type));
    add_default_header(request, "Content-Type", std::string(protocol::batch_media_type));
    request.body = nlohmann::json{{"oid", oid_}, {"size", size_}}.dump();
    const std::string what = "verify of " + oid_;
    auto response = http_->send(std::move(request), what);
    if (!response)
      return response.error().with_context(what);
    if (!is_success(response->status))
      return lfs_http_failure(what, *response, http_->max_retry_wait());
    return status::success();
  }

  std::shared_ptr<session> http_;
  std::string oid_;
  int64_t size_;
  std::string what_;
  std::string url_;
  std::optional<lfs_action> verify_;
  std::function<void()> stored_;
  written_bytes written_;
  std::optional<sent_credential> sent_;
  std::unique_ptr<http_body_writer> body_;
};

} // namespace

void add_action_headers(http_request& request, const lfs_action& action) {
  for (const auto& [name, value] : action.headers)
    request.headers.emplace_back(name, value);
}

result<std::unique_ptr<object_reader>> open_download(std::shared_ptr<session> http,
                                                     const std::string& oid, int64_t size,
                                                     const lfs_action& download, int64_t offset,
                                                     const range_plan& plan) {
  if (offset < 0 || offset > size)
    return status{errc::size_mismatch, "download of " + oid + ": offset " +
                                         std::to_string(offset) + " is beyond the object's " +
                                         std::to_string(size) + " bytes"};
  bool parallel = plan.parallel_streams > 1 && plan.range_bytes > 0 &&
                  size >= plan.parallel_threshold && size - offset > plan.range_bytes;
  if (!parallel)
    return stream_reader::open(std::move(http), oid, size, download, offset);
  auto engine = http->engine();
  if (!engine)
    return engine.error();
  return std::unique_ptr<object_reader>(
      new range_reader(std::move(http), **engine, oid, size, download, offset, plan));
}

result<std::unique_ptr<object_writer>> open_upload(std::shared_ptr<session> http,
                                                   const std::string& oid, int64_t size,
                                                   const lfs_action& upload,
                                                   std::optional<lfs_action> verify,
                                                   std::function<void()> stored) {
  auto engine = http->engine();
  if (!engine)
    return engine.error();
  auto writer = std::make_unique<put_writer>(std::move(http), oid, size, std::move(verify),
                                             std::move(stored));
  if (auto started = writer->start(**engine, upload); !started)
    return started;
  return std::unique_ptr<object_writer>(std::move(writer));
}

std::unique_ptr<object_writer> skipped_upload(const std::string& oid, int64_t size) {
  return std::make_unique<skipping_writer>(oid, size);
}

} // namespace lfs

} // namespace ferry
