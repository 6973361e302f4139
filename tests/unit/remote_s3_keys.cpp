// s3::key_holder: keys read again when the server refuses them, once for
// all requests refused at once; and s3::client::call() signing a refused
// request again with changed keys, against a loopback server that accepts
// only the new access key.

#include "store/http/http_engine.hpp"
#include "store/s3/s3_client.hpp"
#include "store/s3/s3_keys.hpp"

#include <catch2/catch.hpp>

#include "remote_support.hpp"

#include <atomic>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using ferry::errc;
using ferry::s3::credentials;
using ferry::s3::found_credentials;
using ferry::s3::key_holder;
using namespace ferry::testing;

namespace {

const credentials old_keys{"OLDKEY", "old-secret", ""};
const credentials new_keys{"NEWKEY", "new-secret", ""};
const std::string source = "/home/u/.aws/credentials [profile default]";

/// The keys a lookup finds, and how many lookups there were.
struct key_file {
  std::mutex mutex;
  credentials keys = old_keys;
  std::atomic<int> lookups{0};

  std::shared_ptr<key_holder> holder() {
    return std::make_shared<key_holder>(found_credentials{old_keys, source}, [this] {
      ++lookups;
      std::lock_guard<std::mutex> lock(mutex);
      return ferry::result<found_credentials>(found_credentials{keys, source});
    });
  }

  void rotate() {
    std::lock_guard<std::mutex> lock(mutex);
    keys = new_keys;
  }
};

} // namespace

TEST_CASE("s3 keys: a refusal reads the keys again once per generation", "[s3_keys]") {
  key_file file;
  auto holder = file.holder();
  const uint64_t first = holder->current().generation;

  // Unchanged: the original failure stands, and a second refusal of the same
  // keys does not read them again.
  CHECK_FALSE(holder->reread(first));
  CHECK_FALSE(holder->reread(first));
  CHECK(file.lookups == 1);
  CHECK(holder->current().keys.access_key_id == "OLDKEY");

  // A request signed after that read may read them again.
  file.rotate();
  const uint64_t second = holder->current().generation;
  CHECK(second != first);
  CHECK(holder->reread(second));
  CHECK(file.lookups == 2);
  CHECK(holder->current().keys.access_key_id == "NEWKEY");
  CHECK(holder->current().keys.secret_access_key == "new-secret");

  // Requests signed with the old keys are told to resend, without a lookup.
  CHECK(holder->reread(first));
  CHECK(holder->reread(second));
  CHECK(file.lookups == 2);
}

TEST_CASE("s3 keys: requests refused at once read the keys once", "[s3_keys]") {
  key_file file;
  auto holder = file.holder();
  const uint64_t signed_with = holder->current().generation;
  file.rotate();

  constexpr int requests = 8;
  std::promise<void> go;
  std::shared_future<void> started = go.get_future().share();
  std::vector<std::future<bool>> resend;
  for (int i = 0; i < requests; ++i)
    resend.push_back(std::async(std::launch::async, [&] {
      started.wait();
      return holder->reread(signed_with);
    }));
  go.set_value();
  for (auto& each : resend)
    CHECK(each.get());
  CHECK(file.lookups == 1);
}

TEST_CASE("s3 keys: fixed keys are never read again", "[s3_keys]") {
  auto holder = key_holder::fixed(old_keys);
  CHECK_FALSE(holder->reread(holder->current().generation));
  CHECK(holder->refused_note() == "the keys from given keys were refused");
}

namespace {

/// A bucket that accepts requests signed with NEWKEY and refuses every other
/// key with InvalidAccessKeyId, as radosgw does for a deleted key.
class rotated_bucket {
public:
  rotated_bucket() {
    server_.http().Get(
      R"(/bucket/(.*))", [this](const httplib::Request& req, httplib::Response& res) {
        const bool accepted =
          req.get_header_value("Authorization").find("Credential=NEWKEY/") != std::string::npos;
        ++requests;
        res.status = accepted ? 200 : 403;
        res.set_content(accepted ? "ok" : s3_error_xml("InvalidAccessKeyId"), "application/xml");
      });
    server_.start();
  }

  std::shared_ptr<ferry::s3::client> client(std::shared_ptr<key_holder> keys) {
    auto url = ferry::s3::parse_s3_url("s3://bucket/lfs?endpoint=" + server_.url(""));
    REQUIRE(url.ok());
    return std::make_shared<ferry::s3::client>(http_, *url, std::move(keys),
                                               std::chrono::seconds(120));
  }

  std::atomic<int> requests{0};

private:
  no_proxy proxy_;
  test_server server_;
  std::shared_ptr<ferry::http_engine> http_ = std::make_shared<ferry::http_engine>();
};

} // namespace

TEST_CASE("s3 client: a call refused for keys that were rotated is signed again and succeeds",
          "[s3_keys]") {
  rotated_bucket bucket;
  key_file file;
  auto client = bucket.client(file.holder());
  file.rotate();

  auto got = client->call("stat of x", "GET", "lfs/x", {});
  REQUIRE(got.ok());
  CHECK(got->body == "ok");
  CHECK(bucket.requests == 2);
  CHECK(file.lookups == 1);

  // Signed with the new keys from now on.
  REQUIRE(client->call("stat of y", "GET", "lfs/y", {}).ok());
  CHECK(bucket.requests == 3);
  CHECK(file.lookups == 1);
}

TEST_CASE("s3 client: keys refused and unchanged give the original error naming their source",
          "[s3_keys]") {
  rotated_bucket bucket;
  key_file file;
  auto client = bucket.client(file.holder());

  auto got = client->call("stat of x", "GET", "lfs/x", {});
  REQUIRE_FALSE(got.ok());
  CHECK(got.error().code() == errc::permission_denied);
  CHECK_THAT(got.error().message(), Catch::StartsWith("stat of x: "));
  CHECK_THAT(got.error().message(), Catch::Contains("InvalidAccessKeyId"));
  CHECK_THAT(got.error().message(), Catch::Contains("the keys from " + source + " were refused"));
  CHECK_THAT(got.error().message(), !Catch::Contains("old-secret"));
  CHECK(bucket.requests == 1);
  CHECK(file.lookups == 1);
}

TEST_CASE("s3 client: a streamed request refused for rotated keys fails retryably", "[s3_keys]") {
  key_file file;
  auto holder = file.holder();
  auto url = ferry::s3::parse_s3_url("s3://bucket/lfs?endpoint=http://127.0.0.1:1");
  REQUIRE(url.ok());
  ferry::s3::client client(nullptr, *url, holder, std::chrono::seconds(120));
  ferry::http_response refused;
  refused.status = 403;
  refused.body = s3_error_xml("SignatureDoesNotMatch");
  const uint64_t signed_with = holder->current().generation;

  ferry::status unchanged = client.streamed_failure("upload of x", refused, signed_with);
  CHECK(unchanged.code() == errc::permission_denied);

  // Signed after that read, with keys rotated since.
  file.rotate();
  ferry::status changed =
    client.streamed_failure("upload of x", refused, holder->current().generation);
  CHECK(changed.code() == errc::unavailable);
  CHECK_THAT(changed.message(), Catch::Contains("SignatureDoesNotMatch"));
  CHECK(file.lookups == 2);
}
