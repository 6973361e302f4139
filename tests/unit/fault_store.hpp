#pragma once

// A store wrapper for unit tests only: injects failures into a real folder
// store so the engine's retry and resume paths can be driven exactly.

#include "store/folder_store.hpp"

#include <memory>
#include <vector>

namespace ferry::testing {

/// Fails the first `failing_streams` writers (or readers) opened with
/// errc::io_error once they have moved `fail_after_bytes` bytes.
class fault_store final : public object_store {
public:
  fault_store(std::shared_ptr<object_store> inner, int failing_streams, int64_t fail_after_bytes)
    : inner_(std::move(inner)), failing_streams_(failing_streams), fail_after_(fail_after_bytes) {}

  std::string describe() const override { return "fault+" + inner_->describe(); }
  result<std::optional<object_info>> stat(const std::string& oid) override {
    return inner_->stat(oid);
  }
  result<std::unique_ptr<object_reader>> open_read(const std::string& oid,
                                                   int64_t offset) override {
    read_offsets.push_back(offset);
    auto reader = inner_->open_read(oid, offset);
    if (!reader || failing_streams_ <= 0)
      return reader;
    failing_streams_ -= 1;
    return std::unique_ptr<object_reader>{
      std::make_unique<failing_reader>(std::move(*reader), fail_after_)};
  }
  result<std::unique_ptr<object_writer>> open_write(const std::string& oid, int64_t size,
                                                    bool resume) override {
    opened += 1;
    auto writer = inner_->open_write(oid, size, resume);
    if (!writer || failing_streams_ <= 0)
      return writer;
    failing_streams_ -= 1;
    return std::unique_ptr<object_writer>{
      std::make_unique<failing_writer>(std::move(*writer), fail_after_)};
  }
  status list(const std::function<bool(const object_info&)>& visit) override {
    return inner_->list(visit);
  }
  status remove(const std::string& oid) override { return inner_->remove(oid); }

  /// Writers opened so far (one per upload attempt).
  int opened = 0;
  /// The offset of every open_read so far (one per download attempt).
  std::vector<int64_t> read_offsets;

private:
  class failing_reader final : public object_reader {
  public:
    failing_reader(std::unique_ptr<object_reader> inner, int64_t budget)
      : inner_(std::move(inner)), budget_(budget) {}
    int64_t size() const override { return inner_->size(); }
    result<size_t> read(char* buffer, size_t capacity) override {
      if (static_cast<int64_t>(capacity) > budget_)
        return status{errc::io_error, "injected read failure"};
      auto got = inner_->read(buffer, capacity);
      if (got)
        budget_ -= static_cast<int64_t>(*got);
      return got;
    }

  private:
    std::unique_ptr<object_reader> inner_;
    int64_t budget_;
  };

  class failing_writer final : public object_writer {
  public:
    failing_writer(std::unique_ptr<object_writer> inner, int64_t budget)
      : inner_(std::move(inner)), budget_(budget) {}
    int64_t offset() const override { return inner_->offset(); }
    status write(const char* data, size_t size) override {
      if (static_cast<int64_t>(size) > budget_)
        return {errc::io_error, "injected write failure"};
      budget_ -= static_cast<int64_t>(size);
      return inner_->write(data, size);
    }
    status sync() override { return inner_->sync(); }
    status commit() override { return inner_->commit(); }
    void abort() override { inner_->abort(); }

  private:
    std::unique_ptr<object_writer> inner_;
    int64_t budget_;
  };

  std::shared_ptr<object_store> inner_;
  int failing_streams_;
  int64_t fail_after_;
};

} // namespace ferry::testing
