#include "store/http/http_stream.hpp"

#include "store/os/chunk_buffer.hpp"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ferry {

result<http_engine*> engine_on_demand::get() {
  std::call_once(once_, [&] {
    if (engine_)
      return;
    try {
      engine_ = std::make_shared<http_engine>();
    } catch (const std::exception& e) {
      failure_ = status{errc::internal, std::string{"cannot start the HTTP engine: "} + e.what()};
    }
  });
  if (!engine_)
    return failure_;
  return engine_.get();
}

namespace {

/// A fixed-capacity FIFO of bytes. Not thread-safe; its owner locks.
class byte_ring {
public:
  explicit byte_ring(size_t capacity) : capacity_(capacity) {}

  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  size_t room() const { return capacity_ - size_; }

  /// Appends `n` <= room() bytes.
  void push(const char* data, size_t n) {
    // Allocated on first use: a reader of an error response, or a writer
    // abandoned early, never needs the memory.
    if (bytes_.empty())
      bytes_ = chunk_buffer{capacity_};
    size_t tail = (head_ + size_) % capacity_;
    size_t first = std::min(n, capacity_ - tail);
    std::memcpy(bytes_.data() + tail, data, first);
    std::memcpy(bytes_.data(), data + first, n - first);
    size_ += n;
  }

  /// Moves up to `n` bytes to `out`; returns how many.
  size_t pop(char* out, size_t n) {
    n = std::min(n, size_);
    size_t first = std::min(n, capacity_ - head_);
    std::memcpy(out, bytes_.data() + head_, first);
    std::memcpy(out + first, bytes_.data(), n - first);
    head_ = (head_ + n) % capacity_;
    size_ -= n;
    return n;
  }

  /// Makes room for `n` bytes in an empty ring.
  void grow_to(size_t n) {
    capacity_ = n;
    bytes_ = chunk_buffer{};
    head_ = 0;
  }

private:
  chunk_buffer bytes_;
  size_t capacity_;
  size_t head_ = 0;
  size_t size_ = 0;
};

/// What the engine's callbacks and the blocked caller share. The callbacks
/// hold it too, so nothing they touch is freed before the completion.
struct transfer_state {
  std::mutex mutex;
  /// Signalled on every change a caller may wait for.
  std::condition_variable changed;
  /// Set by the consumer right after submit; 0 until then (engine ids
  /// start at 1).
  uint64_t id = 0;
  /// Set once, by the completion.
  std::optional<result<http_response>> outcome;
};

/// A completion that stores the outcome in `state` and wakes its waiter.
http_engine::completion store_outcome(std::shared_ptr<transfer_state> state) {
  return [state = std::move(state)](uint64_t, result<http_response> outcome) {
    std::lock_guard<std::mutex> lock(state->mutex);
    state->outcome.emplace(std::move(outcome));
    state->changed.notify_all();
  };
}

/// Submits `request` with a completion that fills in `state`.
void submit_to(http_engine& engine, const std::shared_ptr<transfer_state>& state,
               http_request request) {
  uint64_t id = engine.submit(std::move(request), store_outcome(state));
  std::lock_guard<std::mutex> lock(state->mutex);
  state->id = id;
}

void wait_for_outcome(transfer_state& state, std::unique_lock<std::mutex>& lock) {
  state.changed.wait(lock, [&] { return state.outcome.has_value(); });
}

} // namespace

result<http_response> http_fetch(http_engine& engine, http_request request) {
  std::vector<http_request> one;
  one.push_back(std::move(request));
  return std::move(http_fetch_all(engine, std::move(one)).front());
}

std::vector<result<http_response>> http_fetch_all(http_engine& engine,
                                                  std::vector<http_request> requests) {
  struct pending {
    std::mutex mutex;
    std::condition_variable done;
    std::vector<std::optional<result<http_response>>> results;
    size_t remaining = 0;
  };
  auto state = std::make_shared<pending>();
  state->results.resize(requests.size());
  state->remaining = requests.size();
  for (size_t i = 0; i < requests.size(); ++i) {
    engine.submit(std::move(requests[i]), [state, i](uint64_t, result<http_response> outcome) {
      std::lock_guard<std::mutex> lock(state->mutex);
      state->results[i] = std::move(outcome);
      if (--state->remaining == 0)
        state->done.notify_all();
    });
  }
  std::unique_lock<std::mutex> lock(state->mutex);
  state->done.wait(lock, [&] { return state->remaining == 0; });
  std::vector<result<http_response>> out;
  out.reserve(state->results.size());
  for (auto& outcome : state->results)
    out.push_back(std::move(*outcome));
  return out;
}

// ---- http_body_reader ----

struct http_body_reader::shared : transfer_state {
  explicit shared(size_t buffer_bytes) : body(buffer_bytes) {}

  /// Set once by on_headers, before open() returns; read-only afterwards.
  bool head_seen = false;
  long status = 0;
  std::vector<std::pair<std::string, std::string>> headers;

  byte_ring body;
  /// The sink returned pause and the loop thread waits for resume().
  bool paused = false;
  /// Size of the piece the sink paused on: it must fit before resuming.
  size_t refused = 0;

  /// Whether read() has made enough room to resume a paused transfer.
  /// Waiting for half the buffer saves a pause and wake-up per piece.
  bool worth_resuming() const {
    return body.size() == 0 ||
           (body.size() <= body.capacity() / 2 && body.size() + refused <= body.capacity());
  }
};

result<std::unique_ptr<http_body_reader>>
http_body_reader::open(http_engine& engine, http_request request, size_t buffer_bytes) {
  // Spelled out: inside the class, `status` names the member function.
  if (request.body_sink || request.on_headers || request.sink_error)
    return ferry::status(errc::invalid_request,
                         "http_body_reader installs its own body sink and header callbacks");
  if (buffer_bytes == 0)
    return ferry::status(errc::invalid_request, "http_body_reader needs a buffer");
  auto state = std::make_shared<shared>(buffer_bytes);
  // The callbacks run on the loop thread and never block: they only move
  // bytes under the mutex and wake the reader.
  request.on_headers = [state](long code, const auto& headers) {
    std::lock_guard<std::mutex> lock(state->mutex);
    state->head_seen = true;
    state->status = code;
    state->headers = headers;
    state->changed.notify_all();
    return true;
  };
  request.body_sink = [state](const char* data, size_t n) {
    std::lock_guard<std::mutex> lock(state->mutex);
    byte_ring& body = state->body;
    if (n > body.room()) {
      if (body.size() > 0) {
        // The paused flag is set under the mutex the reader checks, so the
        // reader resumes only a transfer that really waits for it.
        state->paused = true;
        state->refused = n;
        return sink_action::pause;
      }
      body.grow_to(n); // a piece larger than the whole buffer
    }
    body.push(data, n);
    state->changed.notify_all();
    return sink_action::accept;
  };
  submit_to(engine, state, std::move(request));

  std::unique_lock<std::mutex> lock(state->mutex);
  state->changed.wait(lock, [&] { return state->head_seen || state->outcome.has_value(); });
  if (!state->head_seen) {
    if (!state->outcome->ok())
      return state->outcome->error();
    // Finished without a head reaching on_headers; the response has one.
    state->head_seen = true;
    state->status = (*state->outcome)->status;
    state->headers = (*state->outcome)->headers;
  }
  lock.unlock();
  return std::unique_ptr<http_body_reader>(new http_body_reader(engine, std::move(state)));
}

http_body_reader::http_body_reader(http_engine& engine, std::shared_ptr<shared> state)
    : engine_(engine), state_(std::move(state)) {}

http_body_reader::~http_body_reader() {
  std::unique_lock<std::mutex> lock(state_->mutex);
  if (state_->outcome)
    return;
  lock.unlock();
  engine_.cancel(state_->id);
  lock.lock();
  wait_for_outcome(*state_, lock);
}

long http_body_reader::status() const { return state_->status; }

const std::vector<std::pair<std::string, std::string>>& http_body_reader::headers() const {
  return state_->headers;
}

const std::string* http_body_reader::header(const std::string& name) const {
  return find_header(state_->headers, name);
}

std::string http_body_reader::error_body() {
  if (is_success(state_->status))
    return {};
  std::unique_lock<std::mutex> lock(state_->mutex);
  wait_for_outcome(*state_, lock);
  return state_->outcome->ok() ? (*state_->outcome)->body : std::string();
}

result<size_t> http_body_reader::read(char* buffer, size_t capacity) {
  shared& s = *state_;
  if (!is_success(s.status))
    return size_t{0};
  if (capacity == 0)
    return ferry::status(errc::invalid_request, "read into a buffer of 0 bytes");
  size_t n = 0;
  {
    std::unique_lock<std::mutex> lock(s.mutex);
    // A paused transfer always has bytes buffered (the sink pauses only
    // then), so this wait cannot miss a resume of its own.
    s.changed.wait(lock, [&] { return s.body.size() > 0 || s.outcome.has_value(); });
    if (s.body.size() == 0)
      return s.outcome->ok() ? result<size_t>(size_t{0}) : result<size_t>(s.outcome->error());
    n = s.body.pop(buffer, capacity);
    if (!s.paused || !s.worth_resuming())
      return n;
    s.paused = false;
  }
  engine_.resume(s.id);
  return n;
}

// ---- http_body_writer ----

struct http_body_writer::shared : transfer_state {
  shared(size_t buffer_bytes, int64_t size) : pending(buffer_bytes), size(size) {}

  byte_ring pending;
  const int64_t size;
  /// Bytes accepted by write().
  int64_t written = 0;
  /// Bytes handed to the engine.
  int64_t sent = 0;
  /// finish() let the last byte go.
  bool released = false;
  /// abort() was called before the transfer ended.
  bool abandoned = false;
  /// The source returned pause_upload and the loop thread waits for resume().
  bool paused = false;
  /// An empty upload, submitted by finish(). Without its upload source, which
  /// would hold this state: a cycle.
  std::optional<http_request> deferred;

  /// How much of the body may go before finish(): all but the last byte.
  int64_t limit() const { return released ? size : size - 1; }

  /// Bytes the source may hand out now.
  int64_t sendable() const {
    return std::min(static_cast<int64_t>(pending.size()), limit() - sent);
  }

  /// Whether enough is buffered to resume a paused upload: half the buffer,
  /// or all that may go. Waiting saves a pause and wake-up per small write.
  bool worth_resuming() const {
    int64_t ready = sendable();
    return ready > 0 &&
           ready >= std::min(static_cast<int64_t>(pending.capacity() / 2), limit() - sent);
  }

  /// Whether no more bytes can go (see ended()).
  bool over() const { return abandoned || outcome.has_value(); }

  /// Why no more bytes can go, or success.
  ferry::status ended() const {
    if (abandoned)
      return {errc::cancelled, "upload aborted"};
    if (!outcome)
      return ferry::status::success();
    if (!outcome->ok())
      return outcome->error();
    return {errc::unavailable, "the server answered HTTP " + std::to_string((*outcome)->status) +
                                 " before the upload was complete"};
  }
};

result<std::unique_ptr<http_body_writer>>
http_body_writer::start(http_engine& engine, http_request request, size_t buffer_bytes) {
  if (request.upload_size < 0)
    return status(errc::invalid_request, "http_body_writer needs the upload size");
  if (request.body || request.upload_source)
    return status(errc::invalid_request, "http_body_writer installs its own upload source");
  if (buffer_bytes == 0)
    return status(errc::invalid_request, "http_body_writer needs a buffer");
  auto state = std::make_shared<shared>(buffer_bytes, request.upload_size);
  if (request.upload_size == 0)
    state->deferred.emplace(std::move(request));
  else
    submit_upload(engine, state, std::move(request));
  return std::unique_ptr<http_body_writer>(new http_body_writer(engine, std::move(state)));
}

void http_body_writer::submit_upload(http_engine& engine, const std::shared_ptr<shared>& state,
                                     http_request request) {
  // Runs on the loop thread and never blocks.
  request.upload_source = [state](char* buf, size_t cap) -> result<size_t> {
    std::lock_guard<std::mutex> lock(state->mutex);
    if (state->abandoned)
      return ferry::status(errc::cancelled, "upload aborted");
    int64_t ready = state->sendable();
    if (ready <= 0) {
      // Set under the writer's mutex: write() and finish() resume only an
      // upload that really waits for them.
      state->paused = true;
      return http_request::pause_upload;
    }
    size_t n = state->pending.pop(buf, std::min(cap, static_cast<size_t>(ready)));
    state->sent += static_cast<int64_t>(n);
    state->changed.notify_all();
    return n;
  };
  submit_to(engine, state, std::move(request));
}

http_body_writer::http_body_writer(http_engine& engine, std::shared_ptr<shared> state)
    : engine_(engine), state_(std::move(state)) {}

http_body_writer::~http_body_writer() {
  abort();
  std::unique_lock<std::mutex> lock(state_->mutex);
  if (state_->id != 0)
    wait_for_outcome(*state_, lock);
}

status http_body_writer::write(const char* data, size_t size) {
  shared& s = *state_;
  std::unique_lock<std::mutex> lock(s.mutex);
  if (s.released && !s.abandoned)
    return {errc::invalid_request, "write after finish()"};
  if (auto why = s.ended(); !why.ok())
    return why;
  if (size > static_cast<uint64_t>(s.size - s.written))
    return {errc::invalid_request, "writing " + std::to_string(size) + " more bytes after " +
                                     std::to_string(s.written) + " exceeds the upload size of " +
                                     std::to_string(s.size)};
  while (size > 0) {
    s.changed.wait(lock, [&] { return s.pending.room() > 0 || s.over(); });
    if (auto why = s.ended(); !why.ok())
      return why;
    size_t n = std::min(size, s.pending.room());
    s.pending.push(data, n);
    s.written += static_cast<int64_t>(n);
    data += n;
    size -= n;
    // A full buffer is always worth resuming, so the wait above never
    // waits for an upload that is paused itself.
    if (s.paused && s.worth_resuming()) {
      s.paused = false;
      lock.unlock();
      engine_.resume(s.id);
      lock.lock();
    }
  }
  return status::success();
}

result<http_response> http_body_writer::finish() {
  shared& s = *state_;
  std::unique_lock<std::mutex> lock(s.mutex);
  if (s.abandoned)
    return status(errc::cancelled, "upload aborted");
  if (s.released)
    return status(errc::invalid_request, "finish() called twice");
  if (!s.outcome && s.written != s.size) {
    std::string why = "upload finished after " + std::to_string(s.written) + " of " +
                      std::to_string(s.size) + " bytes";
    lock.unlock();
    abort();
    return status(errc::size_mismatch, why);
  }
  s.released = true;
  if (s.deferred) {
    http_request request = std::move(*s.deferred);
    s.deferred.reset();
    lock.unlock();
    submit_upload(engine_, state_, std::move(request));
    lock.lock();
  } else if (s.paused && s.sendable() > 0) {
    s.paused = false;
    lock.unlock();
    engine_.resume(s.id);
    lock.lock();
  }
  wait_for_outcome(s, lock);
  return std::move(*s.outcome);
}

void http_body_writer::abort() {
  shared& s = *state_;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    if (s.abandoned || s.outcome)
      return;
    s.abandoned = true;
    s.changed.notify_all();
    // Not submitted (an empty upload before finish()): nothing to cancel.
    if (s.id == 0)
      return;
  }
  engine_.cancel(s.id);
}

http_response failed_response(http_body_reader& reader) {
  http_response response;
  response.status = reader.status();
  response.headers = reader.headers();
  response.body = reader.error_body();
  return response;
}

} // namespace ferry
