#include "actors/session.hpp"

#include <catch2/catch.hpp>

#include <caf/all.hpp>

#include <atomic>
#include <future>
#include <memory>
#include <optional>
#include <vector>

using namespace ferry;

namespace {

/// A credential helper that prompts the user: every repository's fill
/// waits until the test answers; `started` tells that one is prompting.
struct prompt {
  std::promise<void> started;
  std::atomic<bool> shown{false};
  std::promise<void> answered;
  std::shared_future<void> answer = answered.get_future().share();
};

/// `git credential` in one repository's context, counted.
struct repository_git {
  std::atomic<int> fills{0};
  std::atomic<int> approvals{0};
  std::atomic<int> rejections{0};
  std::optional<http_credential> answer;
  prompt* asks = nullptr;
};

class counting_source final : public credential_source {
public:
  explicit counting_source(repository_git& git) : git_(git) {}
  result<std::optional<http_credential>> fill(const std::string&) override {
    ++git_.fills;
    if (git_.asks) {
      if (!git_.asks->shown.exchange(true))
        git_.asks->started.set_value();
      git_.asks->answer.wait();
    }
    return git_.answer;
  }
  void approve(const std::string&, const http_credential&) override { ++git_.approvals; }
  void reject(const std::string&, const http_credential&) override { ++git_.rejections; }

private:
  repository_git& git_;
};

struct session_fixture {
  caf::actor_system_config config;
  std::unique_ptr<caf::actor_system> sys;
  session_actor shared;
  const std::string url = "http://127.0.0.1:1/repo.git/info/lfs";

  session_fixture() {
    config.set("scheduler.max-threads", 2);
    sys = std::make_unique<caf::actor_system>(config);
    shared = sys->spawn(session, std::string{"http://127.0.0.1:1/repo.git/info/lfs"});
  }
  ~session_fixture() {
    caf::anon_send_exit(shared, caf::exit_reason::user_shutdown);
    shared = nullptr;
  }

  std::unique_ptr<credential_source> store_of(repository_git& git) {
    return session_credentials(*sys, shared, std::make_unique<counting_source>(git));
  }
};

} // namespace

TEST_CASE("session: a second repository uses the credentials the first one's git gave",
          "[session]") {
  session_fixture f;
  repository_git a, b;
  a.answer = http_credential{"ann", "secret"};
  auto store_a = f.store_of(a);
  auto store_b = f.store_of(b);

  auto first = store_a->fill(f.url);
  REQUIRE(first.ok());
  REQUIRE(*first);
  auto second = store_b->fill(f.url);
  REQUIRE(second.ok());
  REQUIRE(*second);
  CHECK((*second)->password == "secret");
  CHECK(a.fills == 1);
  CHECK(b.fills == 0);

  // git hears once that they work, from whichever repository saw it first.
  store_b->approve(f.url, **second);
  store_a->approve(f.url, **first);
  CHECK(a.approvals + b.approvals == 1);
}

TEST_CASE("session: repositories asking during a fill wait for it instead of prompting",
          "[session]") {
  session_fixture f;
  prompt asks;
  std::vector<std::unique_ptr<repository_git>> gits;
  std::vector<std::unique_ptr<credential_source>> stores;
  for (int i = 0; i < 6; ++i) {
    gits.push_back(std::make_unique<repository_git>());
    gits.back()->answer = http_credential{"ann", "secret"};
    gits.back()->asks = &asks;
    stores.push_back(f.store_of(*gits.back()));
  }
  std::vector<std::future<result<std::optional<http_credential>>>> asked;
  for (auto& store : stores)
    asked.push_back(
      std::async(std::launch::async, [&f, each = store.get()] { return each->fill(f.url); }));
  // One repository's helper is prompting; the user answers.
  asks.started.get_future().wait();
  asks.answered.set_value();

  for (auto& each : asked) {
    auto got = each.get();
    REQUIRE(got.ok());
    REQUIRE(*got);
    CHECK((*got)->username == "ann");
  }
  int fills = 0;
  for (auto& git : gits)
    fills += git->fills;
  CHECK(fills == 1);
}

TEST_CASE("session: a refusal is told to git once, and the next fill asks git again", "[session]") {
  session_fixture f;
  repository_git a, b;
  a.answer = http_credential{"ann", "old"};
  b.answer = http_credential{"ann", "new"};
  auto store_a = f.store_of(a);
  auto store_b = f.store_of(b);
  auto old_a = *store_a->fill(f.url);
  auto old_b = *store_b->fill(f.url);
  REQUIRE(old_b);

  // Both repositories' requests were refused with the same credentials.
  store_b->reject(f.url, *old_b);
  store_a->reject(f.url, *old_a);
  CHECK(a.rejections + b.rejections == 1);

  auto renewed = *store_b->fill(f.url);
  REQUIRE(renewed);
  CHECK(renewed->password == "new");
  CHECK(b.fills == 1);
  // The repository still holding the refused ones gets the new ones.
  auto refreshed = *store_a->fill(f.url);
  REQUIRE(refreshed);
  CHECK(refreshed->password == "new");
  CHECK(a.fills == 1);
}

TEST_CASE("session: when one repository's git has no credentials, the next one asks its own",
          "[session]") {
  session_fixture f;
  repository_git a, b;
  b.answer = http_credential{"bob", "secret"};
  auto store_a = f.store_of(a);
  auto store_b = f.store_of(b);
  auto none = store_a->fill(f.url);
  REQUIRE(none.ok());
  CHECK_FALSE(*none);
  auto found = store_b->fill(f.url);
  REQUIRE(found.ok());
  REQUIRE(*found);
  CHECK((*found)->username == "bob");
}
