#pragma once

// A store wrapper for unit tests only: injects failures into a real folder
// store so the engine's retry and resume paths can be driven exactly.

#include "store/folder/folder_store.hpp"

#include <chrono>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace ferry::testing {

/// Fails the first `failing_streams` writers (or readers) opened with
/// `failure_code` (errc::io_error unless set) once they have moved
/// `fail_after_bytes` bytes.
class fault_store final : public object_store {
public:
  fault_store(std::shared_ptr<object_store> inner, int failing_streams, int64_t fail_after_bytes)
      : inner_(std::move(inner)), failing_streams_(failing_streams), fail_after_(fail_after_bytes) {
  }

  std::string describe() const override { return "fault+" + inner_->describe(); }
  result<publish_failures> sync_published() override { return inner_->sync_published(); }
  std::string endpoint() const override { return host; }
  result<std::optional<object_info>> stat(const std::string& oid) override {
    return inner_->stat(oid);
  }
  result<std::unique_ptr<object_reader>> open_read(const std::string& oid,
                                                   int64_t offset) override {
    // Workers open streams from several threads at once.
    std::lock_guard<std::mutex> guard{mutex_};
    read_offsets.push_back(offset);
    auto reader = inner_->open_read(oid, offset);
    bool corrupt = corrupt_streams > 0;
    if (!reader || (failing_streams_ <= 0 && !corrupt))
      return reader;
    auto budget = std::numeric_limits<int64_t>::max();
    if (failing_streams_ > 0) {
      failing_streams_ -= 1;
      budget = fail_after_;
    }
    corrupt_streams -= corrupt ? 1 : 0;
    return std::unique_ptr<object_reader>{std::make_unique<failing_reader>(
      std::move(*reader), budget, failure("injected read failure"), corrupt)};
  }
  result<std::unique_ptr<object_writer>>
  open_write(const std::string& oid, int64_t size,
             const std::optional<std::string>& resume) override {
    std::lock_guard<std::mutex> guard{mutex_};
    opened += 1;
    auto writer = inner_->open_write(oid, size, resume);
    if (!writer || failing_streams_ <= 0)
      return writer;
    failing_streams_ -= 1;
    return std::unique_ptr<object_writer>{std::make_unique<failing_writer>(
      std::move(*writer), fail_after_, failure("injected write failure"))};
  }
  status list(const std::function<bool(const object_info&)>& visit) override {
    return inner_->list(visit);
  }
  status remove(const std::string& oid) override { return inner_->remove(oid); }

  /// From now on, no stream fails (the store recovered).
  void heal() {
    std::lock_guard<std::mutex> guard{mutex_};
    failing_streams_ = 0;
  }

  /// Writers opened so far (one per upload attempt).
  int opened = 0;
  /// The offset of every open_read so far (one per download attempt).
  std::vector<int64_t> read_offsets;
  /// What endpoint() reports: non-empty makes the store's jobs network jobs
  /// (rate limiter, circuit breaker).
  std::string host;
  /// The injected failure (its message gets "injected read/write failure").
  errc failure_code = errc::io_error;
  /// Carried by injected failures as status::retry_after().
  std::chrono::milliseconds failure_retry_after{0};
  /// Readers opened while this is positive flip a bit of the first byte
  /// they return (damage on the way), then count it down.
  int corrupt_streams = 0;

private:
  status failure(const char* what) const {
    return status{failure_code, what}.with_retry_after(failure_retry_after);
  }

  class failing_reader final : public object_reader {
  public:
    failing_reader(std::unique_ptr<object_reader> inner, int64_t budget, status failure,
                   bool corrupt)
        : inner_(std::move(inner)), budget_(budget), failure_(std::move(failure)),
          corrupt_(corrupt) {}
    int64_t size() const override { return inner_->size(); }
    result<size_t> read(char* buffer, size_t capacity) override {
      if (static_cast<int64_t>(capacity) > budget_)
        return failure_;
      auto got = inner_->read(buffer, capacity);
      if (got)
        budget_ -= static_cast<int64_t>(*got);
      if (got && *got > 0 && std::exchange(corrupt_, false))
        buffer[0] ^= 0x01;
      return got;
    }

  private:
    std::unique_ptr<object_reader> inner_;
    int64_t budget_;
    status failure_;
    bool corrupt_;
  };

  class failing_writer final : public object_writer {
  public:
    failing_writer(std::unique_ptr<object_writer> inner, int64_t budget, status failure)
        : inner_(std::move(inner)), budget_(budget), failure_(std::move(failure)) {}
    int64_t offset() const override { return inner_->offset(); }
    status write(const char* data, size_t size) override {
      if (static_cast<int64_t>(size) > budget_)
        return failure_;
      budget_ -= static_cast<int64_t>(size);
      return inner_->write(data, size);
    }
    result<int64_t> sync() override { return inner_->sync(); }
    std::string resume_state() const override { return inner_->resume_state(); }
    int64_t sync_every() const override { return inner_->sync_every(); }
    status check_resumed(const char* data, size_t size) override {
      return inner_->check_resumed(data, size);
    }
    status commit() override { return inner_->commit(); }
    void abort() override { inner_->abort(); }

  private:
    std::unique_ptr<object_writer> inner_;
    int64_t budget_;
    status failure_;
  };

  std::shared_ptr<object_store> inner_;
  std::mutex mutex_;
  int failing_streams_;
  int64_t fail_after_;
};

} // namespace ferry::testing
