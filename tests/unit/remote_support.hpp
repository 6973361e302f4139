#pragma once

// Helpers for the remote-store tests: a simulated LFS server with stores
// talking to it, object contents, streaming through a store, and a
// credential source that counts what it is asked.

#include "store/http/http_engine.hpp"
#include "store/lfs/lfs_store.hpp"
#include "store/object_store.hpp"
#include "store/os/sha256.hpp"

#include <catch2/catch.hpp>

#include "lfs_sim_process.hpp"
#include "loopback_server.hpp"

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <optional>
#include <random>
#include <string>

namespace ferry::testing {

/// `size` pseudo-random bytes; different seeds give different objects.
inline std::string random_content(size_t size, uint32_t seed) {
  std::mt19937 generator(seed);
  std::string out(size, '\0');
  for (char& c : out)
    c = static_cast<char>(generator() & 0xff);
  return out;
}

inline std::string oid_of(const std::string& content) {
  return sha256::of(content.data(), content.size());
}

inline object_info info_of(const std::string& content) {
  return {oid_of(content), static_cast<int64_t>(content.size())};
}

/// An S3 `<Error>` body with error code `code`.
inline std::string s3_error_xml(const std::string& code) {
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>" + code +
         "</Code><Message>injected</Message><RequestId>tx-test</RequestId></Error>";
}

/// Writes `content` through open_write in uneven pieces, then commits.
inline status put_object(object_store& store, const std::string& content, const std::string& oid) {
  auto writer = store.open_write(oid, static_cast<int64_t>(content.size()), std::nullopt);
  if (!writer)
    return writer.error();
  size_t done = 0;
  while (done < content.size()) {
    size_t piece = std::min<size_t>(content.size() - done, 70001);
    if (auto written = (*writer)->write(content.data() + done, piece); !written)
      return written;
    done += piece;
  }
  if (auto committed = (*writer)->commit(); !committed)
    return committed;
  // As the journal does once a group of transfers is finished.
  auto published = store.sync_published();
  if (!published)
    return published.error();
  return published->empty() ? status::success() : published->front().second;
}

inline status put_object(object_store& store, const std::string& content) {
  return put_object(store, content, oid_of(content));
}

/// Reads until the reader reports the end (or fails).
inline result<std::string> read_rest(object_reader& reader) {
  std::string out;
  std::string buffer(100003, '\0');
  while (true) {
    auto got = reader.read(buffer.data(), buffer.size());
    if (!got)
      return got.error();
    if (*got == 0)
      return out;
    out.append(buffer.data(), *got);
  }
}

/// Opens `oid` at `offset` and reads everything from there.
inline result<std::string> get_object(object_store& store, const std::string& oid,
                                      int64_t offset = 0) {
  auto reader = store.open_read(oid, offset);
  if (!reader)
    return reader.error();
  return read_rest(**reader);
}

/// A credential source that hands out fixed credentials (or none) and
/// counts every call.
class counting_credentials final : public credential_source {
public:
  struct counts {
    int fills = 0;
    int approves = 0;
    int rejects = 0;
    std::string last_url;
  };

  counting_credentials(std::optional<http_credential> answer, std::shared_ptr<counts> seen)
      : answer_(std::move(answer)), seen_(std::move(seen)) {}

  result<std::optional<http_credential>> fill(const std::string& url) override {
    std::lock_guard<std::mutex> lock(mutex_);
    ++seen_->fills;
    seen_->last_url = url;
    return answer_;
  }
  void approve(const std::string& url, const http_credential& credential) override {
    std::lock_guard<std::mutex> lock(mutex_);
    CHECK(credential.username == answer_->username);
    ++seen_->approves;
    seen_->last_url = url;
  }
  void reject(const std::string& url, const http_credential& credential) override {
    std::lock_guard<std::mutex> lock(mutex_);
    CHECK(credential.username == answer_->username);
    ++seen_->rejects;
    seen_->last_url = url;
  }

private:
  std::mutex mutex_;
  std::optional<http_credential> answer_;
  std::shared_ptr<counts> seen_;
};

/// A sim, an engine, and lfs_stores talking to the sim.
struct sim_fixture {
  explicit sim_fixture(const std::string& scenario = {}) : sim(scenario) {}

  lfs_store_options options() const {
    lfs_store_options options;
    options.endpoint = sim.url("/team/repo.git/info/lfs");
    return options;
  }

  std::unique_ptr<lfs_store> store(std::unique_ptr<credential_source> credentials = {}) const {
    return store(options(), std::move(credentials));
  }

  std::unique_ptr<lfs_store> store(const lfs_store_options& options,
                                   std::unique_ptr<credential_source> credentials = {}) const {
    return std::make_unique<lfs_store>(http, options, std::move(credentials));
  }

  no_proxy proxy;
  lfs_sim_process sim;
  std::shared_ptr<http_engine> http = std::make_shared<http_engine>();
};

} // namespace ferry::testing
