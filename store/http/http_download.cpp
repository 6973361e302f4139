#include "store/http/http_download.hpp"

#include "protocol/http_range.hpp"
#include "store/http/http_stream.hpp"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace ferry {

namespace {

/// Bytes a streamed download may hold before it pauses the transfer.
constexpr size_t stream_buffer_bytes = 4 << 20;

std::string range_text(int64_t first, int64_t last, int64_t size) {
  return "bytes " + std::to_string(first) + "-" + std::to_string(last) + "/" + std::to_string(size);
}

std::string describe_content_range(const std::string* header) {
  return header == nullptr ? "no Content-Range" : "Content-Range '" + *header + "'";
}

/// True when a Content-Range header says exactly bytes first..last of an
/// object of `size` bytes.
bool exact_range(const std::string* header, int64_t first, int64_t last, int64_t size) {
  if (header == nullptr)
    return false;
  auto range = protocol::parse_content_range(*header);
  return range && range->first == first && range->last == last && range->complete_length &&
         *range->complete_length == size;
}

/// The object's size as a Content-Range header tells it, if it does.
std::optional<int64_t> range_total(const std::string* header) {
  if (header == nullptr)
    return std::nullopt;
  auto range = protocol::parse_content_range(*header);
  return range ? range->complete_length : std::nullopt;
}

status beyond_end(const std::string& what, int64_t offset, int64_t size) {
  return {errc::size_mismatch, what + ": offset " + std::to_string(offset) +
                                 " is beyond the object's " + std::to_string(size) + " bytes"};
}

/// Checks that a 206 answers exactly bytes first..last of an object of
/// `size` bytes; misaligned bytes must never be handed out.
status check_content_range(const std::string& what, const std::string* header, int64_t first,
                           int64_t last, int64_t size) {
  if (exact_range(header, first, last, size))
    return status::success();
  if (auto total = range_total(header); total && *total != size)
    return download_size_mismatch(what, size, *total);
  return {errc::unavailable,
          what + ": the server answered 206 with " + describe_content_range(header) + " where '" +
            range_text(first, last, size) + "' was asked for; its bytes were not used"};
}

/// Opens a streamed GET, answering a 401 once with new credentials when the
/// source has them.
result<std::unique_ptr<http_body_reader>> open_body(download_source& source, http_engine& engine,
                                                    const std::string& what,
                                                    const std::optional<std::string>& range) {
  for (bool retried = false;; retried = true) {
    auto built = source.request(range);
    if (!built)
      return built.error().with_context(what);
    auto body = http_body_reader::open(engine, std::move(built->request), stream_buffer_bytes);
    if (!body)
      return body.error().with_context(what);
    const auto& credentials = built->credentials;
    if (credentials && (*body)->status() == 401) {
      if (auto again = credentials->refused(what, failed_response(**body), retried); !again)
        return again;
      continue;
    }
    if (credentials && is_success((*body)->status()))
      credentials->accepted();
    return body;
  }
}

/// One GET from an offset to the end of the object, or to the end of a
/// range, read through a bounded buffer.
class stream_reader final : public object_reader {
public:
  /// Opens bytes `offset`..`last` (to the end without `last`) of an object of
  /// `size` bytes, or of a size the answer tells.
  static result<std::unique_ptr<stream_reader>> open(std::shared_ptr<download_source> source,
                                                     const std::string& what,
                                                     std::optional<int64_t> size, int64_t offset,
                                                     std::optional<int64_t> last) {
    std::unique_ptr<stream_reader> reader{new stream_reader(std::move(source), what, offset)};
    if (size && offset >= *size) {
      reader->size_ = *size;
      reader->end_ = offset;
      return reader;
    }
    if (auto started = reader->start(size, last); !started)
      return started;
    return reader;
  }

  int64_t size() const override { return size_; }

  /// Where the bytes this reader hands out end: the object's size unless
  /// the server answered a bounded range.
  int64_t end() const { return end_; }

  result<size_t> read(char* buffer, size_t capacity) override {
    // Nothing left to hand out: whatever a whole-object answer holds before
    // the offset need not be fetched.
    if (capacity == 0 || position_ >= end_)
      return size_t{0};
    while (skip_ > 0) {
      auto got = pull(buffer, static_cast<size_t>(std::min<int64_t>(skip_, capacity)));
      if (!got)
        return got;
      skip_ -= static_cast<int64_t>(*got);
    }
    auto got = pull(buffer, static_cast<size_t>(std::min<int64_t>(end_ - position_, capacity)));
    if (!got)
      return got;
    position_ += static_cast<int64_t>(*got);
    // The caller stops at the end, so a body that runs long must be noticed now.
    if (position_ == end_) {
      if (auto ended = expect_end(); !ended)
        return ended;
    }
    return got;
  }

private:
  stream_reader(std::shared_ptr<download_source> source, std::string what, int64_t offset)
      : source_(std::move(source)), what_(std::move(what)), position_(offset), start_(offset) {}

  status start(std::optional<int64_t> size, std::optional<int64_t> last) {
    auto engine = source_->engine();
    if (!engine)
      return engine.error().with_context(what_);
    bool ranged = position_ > 0 || last;
    std::optional<std::string> range;
    if (ranged)
      range = protocol::range_header(position_, last);
    auto opened = open_body(*source_, **engine, what_, range);
    if (!opened)
      return opened.error();
    body_ = std::move(*opened);
    if (ranged && body_->status() == 416) {
      // The server cannot serve the range (some refuse any range of an
      // empty object): take the whole object, which tells its size, and skip.
      body_.reset();
      auto full = open_body(*source_, **engine, what_, std::nullopt);
      if (!full)
        return full.error();
      body_ = std::move(*full);
      ranged = false;
    }
    long code = body_->status();
    if (!is_success(code))
      return source_->failure(what_, failed_response(*body_));
    if (code != 206)
      return accept_whole(size);
    if (!ranged)
      return {errc::unavailable, what_ + ": the server answered 206 to a request without Range"};
    return accept_range(size, last);
  }

  /// A 206 must be exactly the range asked for, of an object of the
  /// announced size when there is one.
  status accept_range(std::optional<int64_t> size, std::optional<int64_t> last) {
    const std::string* header = body_->header("content-range");
    std::optional<int64_t> total = size ? size : range_total(header);
    if (!total)
      return {errc::unavailable, what_ + ": the server answered 206 with " +
                                   describe_content_range(header) +
                                   ", which does not tell the object's size; its bytes were not "
                                   "used"};
    if (position_ >= *total)
      return beyond_end(what_, position_, *total);
    int64_t end = last ? std::min(*last + 1, *total) : *total;
    if (auto aligned = check_content_range(what_, header, position_, end - 1, *total); !aligned)
      return aligned;
    size_ = *total;
    end_ = end;
    return status::success();
  }

  /// Any other 2xx carries the whole object: skip what the caller has.
  status accept_whole(std::optional<int64_t> size) {
    auto length = content_length(body_->headers());
    if (!size && !length)
      return {errc::unavailable, what_ + ": the server answered " +
                                   std::to_string(body_->status()) +
                                   " without a Content-Length, so the object's size is unknown"};
    if (size && length && *length != *size && source_->content_length_is_size())
      return download_size_mismatch(what_, *size, *length);
    size_ = size ? *size : *length;
    if (position_ > size_)
      return beyond_end(what_, position_, size_);
    skip_ = position_;
    start_ = 0;
    end_ = size_;
    return status::success();
  }

  result<size_t> pull(char* buffer, size_t capacity) {
    auto got = body_->read(buffer, capacity);
    if (!got)
      return got.error().with_context(what_);
    if (*got == 0) {
      int64_t delivered = position_ - skip_ - start_;
      return status{errc::unavailable, what_ + ": the response ended after " +
                                         std::to_string(std::max<int64_t>(delivered, 0)) + " of " +
                                         std::to_string(end_ - start_) + " bytes"};
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
                                     std::to_string(end_ - start_) + " bytes it announced"};
    return status::success();
  }

  std::shared_ptr<download_source> source_;
  std::unique_ptr<http_body_reader> body_;
  std::string what_;
  int64_t size_ = 0;
  int64_t position_;
  /// Where the body starts in the object, and where its bytes end.
  int64_t start_;
  int64_t end_ = 0;
  int64_t skip_ = 0;
};

/// Concurrent range GETs of one object, consumed in order: at most
/// `parallel_streams` ranges of `range_bytes` are in flight or buffered.
class range_reader final : public object_reader {
public:
  range_reader(std::shared_ptr<download_source> source, http_engine& engine, std::string what,
               int64_t size, int64_t offset, const range_plan& plan)
      : source_(std::move(source)), engine_(engine), what_(std::move(what)), size_(size),
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
    const std::string& data = window_.front().got->data;
    size_t n = std::min(capacity, data.size() - consumed_);
    std::memcpy(buffer, data.data() + consumed_, n);
    consumed_ += n;
    position_ += static_cast<int64_t>(n);
    if (consumed_ == data.size()) {
      // Done arriving, so the engine no longer writes it: the next range
      // fills the same buffer, whose pages are already mapped. (A fresh
      // 8 MiB buffer per range cost a page fault per 4 KiB.)
      spare_.push_back(std::move(window_.front().got->data));
      window_.pop_front();
      consumed_ = 0;
      fill_window();
    }
    return n;
  }

  /// Waits until the first range has arrived complete and checked; may
  /// switch to a single GET when the server ignores ranges.
  status wait_for_head() {
    while (true) {
      part& head = window_.front();
      std::shared_ptr<arrival> got = head.got;
      {
        std::unique_lock<std::mutex> lock(state_->mutex);
        state_->changed.wait(lock, [&] { return got->done; });
      }
      if (head.checked)
        return status::success();
      if (got->head_status == 200 && !got->outcome->ok()) {
        // The server ignores Range: one GET from here, skipping what was read.
        cancel_window();
        auto single = stream_reader::open(source_, what_, size_, position_, std::nullopt);
        if (!single)
          return single.error();
        fallback_ = std::move(*single);
        return status::success();
      }
      if (got->head_status == 206) {
        const std::string* header = got->content_range ? &*got->content_range : nullptr;
        if (auto aligned = check_content_range(what_, header, got->first, got->last, size_);
            !aligned)
          return aligned;
      }
      if (!got->outcome->ok())
        return got->outcome->error().with_context(what_);
      const http_response& response = got->outcome->value();
      if (response.status == 401 && head.credentials) {
        if (auto again = head.credentials->refused(what_, response, head.auth_refreshed); !again)
          return again;
        head.auth_refreshed = true;
        submit(head);
        continue;
      }
      if (!is_success(response.status))
        return source_->failure(what_, response);
      if (head.credentials)
        head.credentials->accepted();
      if (response.status != 206)
        return {errc::unavailable, what_ + ": the server answered " +
                                     std::to_string(response.status) + " to a range request"};
      if (static_cast<int64_t>(got->data.size()) != got->length())
        return {errc::unavailable, what_ + ": range " + std::to_string(got->first) + "-" +
                                     std::to_string(got->last) + " ended after " +
                                     std::to_string(got->data.size()) + " bytes"};
      head.checked = true;
      return status::success();
    }
  }

private:
  /// What one GET of a range brought. Only this is shared with the engine's
  /// callbacks: nothing they hold may keep the engine itself alive, or its
  /// loop thread could end up destroying it.
  struct arrival {
    arrival(int64_t first, int64_t last) : first(first), last(last) {}

    const int64_t first;
    const int64_t last;
    // Written on the engine's loop thread until `done`.
    std::string data;
    long head_status = 0;
    std::optional<std::string> content_range;
    bool done = false;
    std::optional<result<http_response>> outcome;

    int64_t length() const { return last - first + 1; }
  };

  struct part {
    int64_t first = 0;
    int64_t last = 0;
    /// The current GET of the range, and its engine id (0 when none runs).
    std::shared_ptr<arrival> got;
    uint64_t id = 0;
    std::shared_ptr<download_credentials> credentials;
    bool auth_refreshed = false;
    /// Complete and checked: its bytes may be handed out.
    bool checked = false;
  };

  struct shared_state {
    std::mutex mutex;
    std::condition_variable changed;
  };

  void fill_window() {
    while (next_first_ < size_ && static_cast<int>(window_.size()) < plan_.parallel_streams) {
      part next;
      next.first = next_first_;
      next.last = std::min(size_, next_first_ + plan_.range_bytes) - 1;
      next_first_ = next.last + 1;
      submit(next);
      window_.push_back(std::move(next));
    }
  }

  void submit(part& p) {
    auto got = std::make_shared<arrival>(p.first, p.last);
    p.got = got;
    p.id = 0;
    // Built now, not once per reader: each GET carries a fresh signature.
    auto built = source_->request(protocol::range_header(p.first, p.last));
    if (!built) {
      got->outcome = built.error();
      got->done = true;
      return;
    }
    p.credentials = std::move(built->credentials);
    http_request request = std::move(built->request);
    if (!spare_.empty()) {
      got->data = std::move(spare_.back());
      got->data.clear();
      spare_.pop_back();
    }
    got->data.reserve(static_cast<size_t>(got->length()));
    const int64_t size = size_;
    // A body that is not exactly the range asked for is stopped at once.
    request.on_headers = [got, size](long code, const auto& headers) {
      got->head_status = code;
      if (const std::string* value = find_header(headers, "content-range"))
        got->content_range = *value;
      if (!is_success(code))
        return true; // its body is the error message
      return code == 206 && exact_range(got->content_range ? &*got->content_range : nullptr,
                                        got->first, got->last, size);
    };
    request.body_sink = [got](const char* data, size_t n) {
      if (static_cast<int64_t>(got->data.size() + n) > got->length())
        return sink_action::abort;
      got->data.append(data, n);
      return sink_action::accept;
    };
    request.sink_error = [got, what = what_] {
      return status{errc::unavailable,
                    what + ": the answer to Range bytes=" + std::to_string(got->first) + "-" +
                      std::to_string(got->last) +
                      " was not exactly that range; its bytes were not used"};
    };
    auto state = state_;
    p.id = engine_.submit(std::move(request), [got, state](uint64_t, result<http_response> done) {
      std::lock_guard<std::mutex> lock(state->mutex);
      got->outcome = std::move(done);
      got->done = true;
      state->changed.notify_all();
    });
  }

  void cancel_window() {
    for (const auto& p : window_) {
      if (p.id != 0)
        engine_.cancel(p.id);
    }
    window_.clear();
  }

  std::shared_ptr<download_source> source_;
  http_engine& engine_;
  std::string what_;
  int64_t size_;
  int64_t position_;
  int64_t next_first_;
  range_plan plan_;
  std::shared_ptr<shared_state> state_;
  std::deque<part> window_;
  /// Buffers of ranges handed out, for the next ranges.
  std::vector<std::string> spare_;
  /// Bytes of the first range already handed out.
  size_t consumed_ = 0;
  std::unique_ptr<object_reader> fallback_;
};

bool parallel_planned(const range_plan& plan) {
  return plan.parallel_streams > 1 && plan.range_bytes > 0;
}

/// open_download for an object whose size is known.
result<std::unique_ptr<object_reader>> open_sized(std::shared_ptr<download_source> source,
                                                  const std::string& what, int64_t size,
                                                  int64_t offset, const range_plan& plan) {
  bool parallel =
    parallel_planned(plan) && size >= plan.parallel_threshold && size - offset > plan.range_bytes;
  if (!parallel) {
    auto single = stream_reader::open(std::move(source), what, size, offset, std::nullopt);
    if (!single)
      return single.error();
    return std::unique_ptr<object_reader>(std::move(*single));
  }
  auto engine = source->engine();
  if (!engine)
    return engine.error().with_context(what);
  auto reader =
    std::make_unique<range_reader>(std::move(source), **engine, what, size, offset, plan);
  // Failures of the first range (an absent object) show up here, as for a
  // single GET.
  if (auto ready = reader->wait_for_head(); !ready)
    return ready;
  return std::unique_ptr<object_reader>(std::move(reader));
}

/// The first range of an object whose size was unknown, then the rest. The
/// rest is opened once the first range is read: a paused first GET must not
/// hold a connection the rest's ranges wait for.
class chained_reader final : public object_reader {
public:
  chained_reader(std::unique_ptr<stream_reader> first, std::shared_ptr<download_source> source,
                 std::string what, const range_plan& plan)
      : first_(std::move(first)), source_(std::move(source)), what_(std::move(what)), plan_(plan),
        size_(first_->size()) {}

  int64_t size() const override { return size_; }

  result<size_t> read(char* buffer, size_t capacity) override {
    if (capacity == 0)
      return size_t{0};
    if (first_) {
      auto got = first_->read(buffer, capacity);
      if (!got || *got > 0)
        return got;
      int64_t rest_from = first_->end();
      first_.reset();
      auto rest = open_sized(source_, what_, size_, rest_from, plan_);
      if (!rest)
        return rest.error();
      rest_ = std::move(*rest);
    }
    return rest_->read(buffer, capacity);
  }

private:
  std::unique_ptr<stream_reader> first_;
  std::shared_ptr<download_source> source_;
  std::string what_;
  range_plan plan_;
  int64_t size_;
  std::unique_ptr<object_reader> rest_;
};

} // namespace

// The same object cannot have two sizes, so no retry will help.
status download_size_mismatch(const std::string& what, int64_t announced, int64_t reported) {
  return {errc::size_mismatch, what + ": the server's copy has " + std::to_string(reported) +
                                 " bytes, but the object was announced with " +
                                 std::to_string(announced)};
}

std::optional<int64_t>
content_length(const std::vector<std::pair<std::string, std::string>>& headers) {
  const std::string* value = find_header(headers, "content-length");
  // 18 digits cannot overflow int64_t.
  if (value == nullptr || value->empty() || value->size() > 18)
    return std::nullopt;
  int64_t length = 0;
  for (char c : *value) {
    if (c < '0' || c > '9')
      return std::nullopt;
    length = length * 10 + (c - '0');
  }
  return length;
}

result<std::unique_ptr<object_reader>> open_download(std::shared_ptr<download_source> source,
                                                     const std::string& what,
                                                     std::optional<int64_t> size, int64_t offset,
                                                     const range_plan& plan) {
  if (offset < 0)
    return status{errc::invalid_request, what + ": negative offset " + std::to_string(offset)};
  if (size) {
    if (offset > *size)
      return beyond_end(what, offset, *size);
    return open_sized(std::move(source), what, *size, offset, plan);
  }
  // The first answer tells the size; when the object may be large, it is
  // only the first range, so the rest can still come in parallel.
  std::optional<int64_t> last;
  if (parallel_planned(plan))
    last = offset + plan.range_bytes - 1;
  auto first = stream_reader::open(source, what, std::nullopt, offset, last);
  if (!first)
    return first.error();
  if ((*first)->end() == (*first)->size())
    return std::unique_ptr<object_reader>(std::move(*first));
  return std::unique_ptr<object_reader>(
    std::make_unique<chained_reader>(std::move(*first), std::move(source), what, plan));
}

} // namespace ferry
