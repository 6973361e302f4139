// ferry-bridge-sim against the bridge's v1 contract: commands, payloads,
// field rules, envelopes, exit codes, auth states, faults, the shared
// rate-limit cooldown and the log.

#include "proton_sim_support.hpp"

#include "simulations/bridge_sim/contract.hpp"
#include "store/os/sha256.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <signal.h>

#include <cctype>
#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

using ferry::testing::bridge_sim_fixture;
using ferry::testing::bridge_sim_options;
using ferry::testing::bridge_sim_run;
using ferry::testing::read_whole_file;
using ferry::testing::run_bridge_sim;
using nlohmann::json;
namespace contract = ferry::bridge_sim;

namespace {

std::string oid_of(const std::string& content) {
  return ferry::sha256::of(content.data(), content.size());
}

const std::string absent_oid = oid_of("never stored anywhere");

std::set<std::string> keys_of(const json& object) {
  std::set<std::string> keys;
  for (const auto& item : object.items())
    keys.insert(item.key());
  return keys;
}

/// The run answered with exactly one valid envelope line and exit 0.
json answered(const bridge_sim_run& run) {
  INFO("stdout: " << run.out << "\nstderr: " << run.err);
  REQUIRE(run.exit_code == 0);
  REQUIRE(run.out_lines().size() == 1);
  const json envelope = run.envelope();
  const auto problem = contract::check_envelope(envelope);
  INFO("envelope problem: " << problem.value_or(""));
  REQUIRE_FALSE(problem);
  return envelope;
}

/// The payload of a successful run.
json payload_of(const bridge_sim_run& run) {
  const json envelope = answered(run);
  INFO("envelope: " << envelope.dump());
  REQUIRE(envelope["ok"] == true);
  return envelope["payload"];
}

/// A failed run's envelope, with its code checked.
json failure_of(const bridge_sim_run& run, int code) {
  const json envelope = answered(run);
  INFO("envelope: " << envelope.dump());
  REQUIRE(envelope["ok"] == false);
  REQUIRE(envelope["code"] == code);
  return envelope;
}

/// How many bytes two equally long strings differ in.
size_t bytes_differing(const std::string& a, const std::string& b) {
  REQUIRE(a.size() == b.size());
  size_t differing = 0;
  for (size_t i = 0; i < a.size(); ++i)
    differing += a[i] != b[i] ? 1 : 0;
  return differing;
}

std::string upper(std::string text) {
  for (auto& c : text)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return text;
}

std::string patterned(size_t size) {
  std::string content(size, '\0');
  for (size_t i = 0; i < size; ++i)
    content[i] = static_cast<char>('a' + i % 23);
  return content;
}

} // namespace

TEST_CASE("every command answers with the payload drive-cli documents", "[sim]") {
  bridge_sim_fixture sim;
  const std::string content = "hello, proton drive";
  const std::string oid = oid_of(content);
  const auto source = sim.write_file("a.bin", content);
  const auto output = sim.files() / "out.bin";

  CHECK(payload_of(sim.run("init", json::object())) ==
        json({{"storageBase", "LFS"}, {"path", "/LFS"}, {"initialized", true}}));

  const json uploaded = payload_of(sim.run("upload", {{"oid", oid}, {"path", source}}));
  CHECK(keys_of(uploaded) ==
        std::set<std::string>{"oid", "fileId", "revisionId", "uploaded", "cached"});
  CHECK(uploaded["oid"] == oid);
  CHECK(uploaded["uploaded"] == true);
  CHECK(uploaded["cached"] == false);
  CHECK(uploaded["revisionId"] == "");
  CHECK(uploaded["fileId"].get<std::string>().rfind("sim-", 0) == 0);
  CHECK(read_whole_file(sim.object_path(oid)) == content);

  const json again = payload_of(sim.run("upload", {{"oid", oid}, {"path", source}}));
  CHECK(keys_of(again) ==
        std::set<std::string>{"oid", "fileId", "revisionId", "uploaded", "cached", "deduplicated"});
  CHECK(again["uploaded"] == false);
  CHECK(again["deduplicated"] == true);
  CHECK(again["fileId"] == uploaded["fileId"]);

  CHECK(payload_of(sim.run("exists", {{"oid", oid}})) == json({{"oid", oid}, {"exists", true}}));
  CHECK(payload_of(sim.run("exists", {{"oid", absent_oid}})) ==
        json({{"oid", absent_oid}, {"exists", false}}));

  const json downloaded =
    payload_of(sim.run("download", {{"oid", oid}, {"outputPath", output.string()}}));
  CHECK(downloaded == json({{"oid", oid},
                            {"outputPath", output.string()},
                            {"size", content.size()},
                            {"downloaded", true}}));
  CHECK(read_whole_file(output) == content);

  const json base = payload_of(sim.run("list", json::object()));
  REQUIRE(base["files"].size() == 1);
  CHECK(base["files"][0]["name"] == oid.substr(0, 2));
  CHECK(base["files"][0]["type"] == "folder");
  const std::string leaf = "/LFS/" + oid.substr(0, 2) + "/" + oid.substr(2, 2);
  const json listed = payload_of(sim.run("list", {{"folder", leaf}}));
  REQUIRE(listed["files"].size() == 1);
  const json& file = listed["files"][0];
  CHECK(keys_of(file) == std::set<std::string>{"name", "type", "size", "modifiedTime"});
  CHECK(file["name"] == oid);
  CHECK(file["type"] == "file");
  CHECK(file["size"] == content.size());
  CHECK(file["modifiedTime"].get<int64_t>() > 1600000000);

  const json both = {{"oids", {oid, absent_oid}}};
  CHECK(payload_of(sim.run("batch-exists", both)) ==
        json({{"results", {{oid, true}, {absent_oid, false}}}}));
  CHECK(payload_of(sim.run("batch-delete", both)) ==
        json({{"results", {{oid, true}, {absent_oid, false}}}}));
  CHECK_FALSE(std::filesystem::exists(sim.object_path(oid)));

  payload_of(sim.run("upload", {{"oid", oid}, {"path", source}}));
  CHECK(payload_of(sim.run("delete", {{"oid", oid}})) == json({{"oid", oid}, {"deleted", true}}));
  const json gone = failure_of(sim.run("delete", {{"oid", oid}}), 404);
  CHECK(gone["error"] == "File not found: " + leaf + "/" + oid);

  CHECK(payload_of(sim.run("refresh", json::object())) ==
        json({{"refreshed", true}, {"uid", "sim-uid"}}));

  const json state = payload_of(sim.run("auth-state", json::object()));
  CHECK(state["state"] == "ready");
  CHECK(state["hasSession"] == true);
  CHECK(state["sessionValid"] == true);
  CHECK(state["sessionExpired"] == false);
  CHECK(state["sessionUidPresent"] == true);
  CHECK(state["hasExplicitDataPassword"] == false);
  CHECK(state["willAttemptNetwork"] == false);
  CHECK(state["errors"] == json::array());
  CHECK(state["actions"] == json::array());
}

TEST_CASE("a storage base may nest folders but never leaves the drive", "[sim]") {
  bridge_sim_fixture sim;
  const std::string content = "nested";
  const std::string oid = oid_of(content);
  const auto source = sim.write_file("n.bin", content);

  CHECK(payload_of(sim.run("init", {{"storageBase", "/team/LFS/"}})) ==
        json({{"storageBase", "/team/LFS/"}, {"path", "/team/LFS"}, {"initialized", true}}));
  payload_of(sim.run("upload", {{"storageBase", "team/LFS"}, {"oid", oid}, {"path", source}}));
  CHECK(read_whole_file(sim.object_path(oid, "team/LFS")) == content);
  const json missing = failure_of(
    sim.run("download", {{"storageBase", "team/LFS"}, {"oid", absent_oid}, {"outputPath", "x"}}),
    404);
  CHECK(missing["error"] ==
        "File not found: " + contract::drive_path_for_oid("team/LFS", absent_oid));

  for (const char* escaping : {"../outside", "LFS/../..", ".sim", "/"}) {
    INFO(escaping);
    const json refused = failure_of(sim.run("init", {{"storageBase", escaping}}), 400);
    CHECK(sim.run("init", {{"storageBase", escaping}}).details()["errorCode"] == "INVALID_PATH");
    CHECK_FALSE(refused["error"].get<std::string>().empty());
  }
  CHECK_FALSE(std::filesystem::exists(sim.drive().parent_path() / "outside"));
}

TEST_CASE("every field rule gives the bridge's 400 message", "[sim]") {
  bridge_sim_fixture sim;
  const std::string oid = oid_of("x");
  struct refused {
    const char* command;
    json request;
    std::string message;
  };
  const std::vector<refused> cases{
    {"upload",
     {{"credentialProvider", "pass-cli"}, {"oid", oid}, {"path", "/f"}},
     R"(Unknown bridge request field "credentialProvider")"},
    {"auth-state", {{"username", "u"}}, R"(Unknown bridge request field "username")"},
    {"auth-state",
     {{"storageBase", "LFS"}, {"oid", oid}},
     R"(Field "oid" is not allowed for bridge auth-state)"},
    {"upload",
     {{"oid", oid}, {"path", "/f"}, {"outputPath", "/o"}},
     R"(Field "outputPath" is not allowed for bridge upload)"},
    {"download",
     {{"oid", oid}, {"outputPath", "/o"}, {"path", "/f"}},
     R"(Field "path" is not allowed for bridge download)"},
    {"list", {{"oid", oid}}, R"(Field "oid" is not allowed for bridge list)"},
    {"exists",
     {{"oid", oid}, {"folder", "/LFS"}},
     R"(Field "folder" is not allowed for bridge exists)"},
    {"delete", {{"oid", oid}, {"oids", {oid}}}, R"(Field "oids" is not allowed for bridge delete)"},
    {"init", {{"folder", "/LFS"}}, R"(Field "folder" is not allowed for bridge init)"},
    {"batch-exists",
     {{"oids", {oid}}, {"oid", oid}},
     R"(Field "oid" is not allowed for bridge batch-exists)"},
    {"refresh",
     {{"storageBase", "LFS"}},
     R"(Field "storageBase" is not allowed for bridge refresh)"},
    {"refresh",
     {{"dataPassword", "pw"}},
     R"(Field "dataPassword" is not allowed for bridge refresh)"},
    {"upload", {{"oid", oid}}, R"(Field "path" is required for bridge upload)"},
    {"upload", {{"path", "/f"}}, R"(Field "oid" is required for bridge upload)"},
    {"download", {{"oid", oid}}, R"(Field "outputPath" is required for bridge download)"},
    {"exists", json::object(), R"(Field "oid" is required for bridge exists)"},
    {"delete", {{"storageBase", "LFS"}}, R"(Field "oid" is required for bridge delete)"},
    {"batch-exists", json::object(), R"(Field "oids" is required for bridge batch-exists)"},
    {"batch-delete", json::object(), R"(Field "oids" is required for bridge batch-delete)"},
    {"exists", {{"oid", 5}}, R"(Field "oid" must be a string)"},
    {"upload", {{"oid", oid}, {"path", nullptr}}, R"(Field "path" must be a string)"},
    {"auth-state", {{"storageBase", {"LFS"}}}, R"(Field "storageBase" must be a string)"},
    {"batch-exists", {{"oids", oid}}, R"(Field "oids" must be an array of strings)"},
    {"batch-delete", {{"oids", {1}}}, R"(Field "oids" must be an array of strings)"},
    {"exists", {{"oid", "abc"}}, "Invalid OID format: expected 64-character hex string"},
    {"exists",
     {{"oid", oid.substr(1) + "g"}},
     "Invalid OID format: expected 64-character hex string"},
    {"download",
     {{"oid", oid + "0"}, {"outputPath", "/o"}},
     "Invalid OID format: expected 64-character hex string"},
    {"batch-exists",
     {{"oids", {oid, "xyz"}}},
     "Invalid OID format: expected 64-character hex string"},
    {"batch-exists", {{"oids", json::array()}}, "oids array is required for batch-exists"},
    {"batch-delete", {{"oids", json::array()}}, "oids array is required for batch-delete"},
  };
  for (const auto& c : cases) {
    INFO(c.command << " " << c.request.dump());
    CHECK(contract::check_request(c.command, c.request) == c.message);
    const json envelope = failure_of(sim.run(c.command, c.request), 400);
    CHECK(envelope["error"] == c.message);
    CHECK(envelope["details"] == "");
  }

  // appVersion: two or three lower-case words joined by '-', '@', a version.
  for (const char* good :
       {"external-drive-protonlfscli@0.1.2", "cli-drive@1.0.0-beta+x", "ab-cd@v"}) {
    INFO(good);
    CHECK(contract::is_valid_app_version(good));
    CHECK_FALSE(contract::check_request("refresh", {{"appVersion", good}}));
  }
  for (const char* bad : {"Ferry-x@1", "a-b-c-d@1", "ab@1", "a-b@", "a-b@1 2", "a-b@1@2",
                          "a-b@1\xc2\xa0", "-a-b@1", "a--b@1"}) {
    INFO(bad);
    CHECK_FALSE(contract::is_valid_app_version(bad));
    const auto message = contract::check_request("auth-state", {{"appVersion", bad}});
    REQUIRE(message);
    CHECK(message->find("appVersion") != std::string::npos);
    CHECK(failure_of(sim.run("auth-state", {{"appVersion", bad}}), 400)["error"] == *message);
  }

  // What passes: oids in either case, names in any case, empty requests.
  CHECK_FALSE(contract::check_request("EXISTS", {{"oid", upper(oid)}}));
  CHECK_FALSE(contract::check_request("auth-state", json::object()));
  CHECK_FALSE(contract::check_request("list", {{"folder", "/LFS"}, {"storageBase", "LFS"}}));
  CHECK(contract::check_request("foo", json::object()) == "Unknown bridge command: foo");
}

TEST_CASE("exit codes: 1 when the input cannot be read as a request, else 0", "[sim]") {
  bridge_sim_fixture sim;
  const std::string oid = oid_of("exit");

  for (const char* empty : {"", " \n\t"}) {
    const auto run = sim.run_raw("exists", empty);
    CHECK(run.exit_code == 1);
    CHECK(run.envelope() == json::parse(contract::failure_envelope("Empty input received", 500)));
  }
  const auto not_json = sim.run_raw("exists", "not json");
  CHECK(not_json.exit_code == 1);
  CHECK(not_json.envelope()["code"] == 500);
  CHECK(not_json.envelope()["error"].get<std::string>().rfind("Failed to parse JSON: ", 0) == 0);
  CHECK_FALSE(contract::check_envelope(not_json.envelope()));

  const auto array = sim.run_raw("exists", "[1, 2]");
  CHECK(array.exit_code == 1);
  CHECK(array.envelope()["code"] == 400);
  CHECK_FALSE(contract::check_envelope(array.envelope()));

  const json unknown = failure_of(sim.run("Foo", json::object()), 400);
  CHECK(unknown == json::parse(contract::failure_envelope("Unknown bridge command: foo", 400)));

  // Command names are matched in lower case.
  CHECK(payload_of(sim.run("EXISTS", {{"oid", oid}}))["exists"] == false);

  // A Drive command without --drive is a misconfigured simulator.
  bridge_sim_options no_drive;
  const auto undriven = run_bridge_sim("exists", json({{"oid", oid}}).dump(), no_drive);
  CHECK(undriven.exit_code == 1);
  CHECK(undriven.envelope()["code"] == 500);
  CHECK(payload_of(run_bridge_sim("auth-state", "{}", no_drive))["state"] == "ready");
}

TEST_CASE("local paths with a '..' segment or a NUL are refused with 500", "[sim]") {
  bridge_sim_fixture sim;
  const std::string oid = oid_of("paths");
  const auto source = sim.write_file("p.bin", "paths");
  struct refused {
    const char* command;
    json request;
    const char* message;
  };
  const std::vector<refused> cases{
    {"upload",
     {{"oid", oid}, {"path", (sim.files() / ".." / "files" / "p.bin").string()}},
     "Path traversal not allowed"},
    {"upload", {{"oid", oid}, {"path", "files\\..\\p.bin"}}, "Path traversal not allowed"},
    {"download", {{"oid", oid}, {"outputPath", "../out"}}, "Path traversal not allowed"},
    {"upload",
     {{"oid", oid}, {"path", std::string("p\0.bin", 6)}},
     "Null bytes not allowed in path"},
    {"upload", {{"oid", oid}, {"path", ""}}, "File path is required"},
  };
  for (const auto& c : cases) {
    INFO(c.request.dump());
    CHECK(failure_of(sim.run(c.command, c.request), 500)["error"] == c.message);
    CHECK(contract::check_local_path(c.request.value(
            c.command == std::string("upload") ? "path" : "outputPath", "")) == c.message);
  }
  CHECK_FALSE(std::filesystem::exists(sim.object_path(oid)));
  CHECK_FALSE(contract::check_local_path("/tmp/a..b/..c"));
  // A harmless path still works.
  CHECK(payload_of(sim.run("upload", {{"oid", oid}, {"path", source}}))["uploaded"] == true);
}

TEST_CASE("missing objects, files and folders are 404s with the bridge's errorCode", "[sim]") {
  bridge_sim_fixture sim;
  const auto output = (sim.files() / "o").string();

  CHECK(failure_of(sim.run("list", json::object()), 404)["error"] == "Path not found: /LFS");
  CHECK(sim.run("list", json::object()).details() == json({{"errorCode", "PATH_NOT_FOUND"}}));
  CHECK(sim.run("list", {{"folder", "/nowhere"}}).details()["errorCode"] == "PATH_NOT_FOUND");

  const auto download = sim.run("download", {{"oid", absent_oid}, {"outputPath", output}});
  CHECK(failure_of(download, 404)["error"] ==
        "File not found: " + contract::drive_path_for_oid("LFS", absent_oid));
  CHECK(download.details() == json({{"errorCode", "FILE_NOT_FOUND"}}));
  CHECK_FALSE(std::filesystem::exists(output));

  const auto missing_source = (sim.files() / "missing.bin").string();
  const auto upload = sim.run("upload", {{"oid", absent_oid}, {"path", missing_source}});
  CHECK(failure_of(upload, 404)["error"] == "File not found: " + missing_source);
  CHECK(upload.details() == json({{"errorCode", "FILE_NOT_FOUND"}}));

  const auto removed = sim.run("delete", {{"oid", absent_oid}});
  CHECK(failure_of(removed, 404)["error"] ==
        "File not found: " + contract::drive_path_for_oid("LFS", absent_oid));
  CHECK(removed.details()["errorCode"] == "FILE_NOT_FOUND");
}

TEST_CASE("upload stores what it is given without checking it against the oid", "[sim]") {
  bridge_sim_fixture sim;
  const std::string content = "these bytes do not hash to the oid";
  const std::string oid = oid_of("something else entirely");
  REQUIRE(oid_of(content) != oid);
  const auto source = sim.write_file("mismatch.bin", content);
  const auto output = sim.files() / "back.bin";

  CHECK(payload_of(sim.run("upload", {{"oid", oid}, {"path", source}}))["uploaded"] == true);
  CHECK(read_whole_file(sim.object_path(oid)) == content);
  CHECK(payload_of(sim.run("download", {{"oid", upper(oid)}, {"outputPath", output}}))["size"] ==
        content.size());
  CHECK(read_whole_file(output) == content);
}

TEST_CASE("auth states: what auth-state reports and what the Drive commands get", "[sim]") {
  const std::string oid = oid_of("auth");
  const json session_expired = {{"errorCode", "SESSION_EXPIRED"}, {"authMode", "browser-fork"}};
  struct expectation {
    const char* state;
    bool has_session;
    bool session_valid;
    bool session_expired;
    json drive_details;
  };
  const std::vector<expectation> cases{
    {"needs_login", false, false, false, session_expired},
    {"session_expired", true, false, true, session_expired},
    {"session_invalid", true, false, false, session_expired},
    {"needs_data_password", true, true, false, {{"errorCode", "DATA_PASSWORD_REQUIRED"}}},
    {"needs_key_password", true, true, false, {{"errorCode", "KEY_PASSWORD_REQUIRED"}}},
  };
  for (const auto& c : cases) {
    INFO(c.state);
    bridge_sim_fixture sim({{"auth_state", c.state}});
    const json state = payload_of(sim.run("auth-state", {{"storageBase", "LFS"}}));
    CHECK(state["state"] == c.state);
    CHECK(state["hasSession"] == c.has_session);
    CHECK(state["sessionUidPresent"] == c.has_session);
    CHECK(state["sessionValid"] == c.session_valid);
    CHECK(state["sessionExpired"] == c.session_expired);
    CHECK(state["willAttemptNetwork"] == false);
    REQUIRE(state["actions"].size() == 1);
    const std::string action = state["actions"][0];
    if (c.drive_details == session_expired)
      CHECK(action == "run: proton-drive login");
    else
      CHECK_FALSE(action.empty());

    const auto exists = sim.run("exists", {{"oid", oid}});
    failure_of(exists, 401);
    CHECK(exists.details() == c.drive_details);
    CHECK(contract::status_for_error_code(c.drive_details["errorCode"].get<std::string>()) == 401);
  }

  SECTION("a data password source in the request makes a locked account ready") {
    bridge_sim_fixture sim({{"auth_state", "needs_data_password"}});
    CHECK(payload_of(sim.run("auth-state", json::object()))["actions"][0].get<std::string>().find(
            "mailbox/data password") != std::string::npos);
    const json request = {{"dataCredentialProvider", "git-credential"}};
    const json state = payload_of(sim.run("auth-state", request));
    CHECK(state["state"] == "ready");
    CHECK(state["dataCredentialProvider"] == "git-credential");
    CHECK(state["dataCredentialHost"] == "proton-data.proton-lfs-cli.local");
    json exists = request;
    exists["oid"] = oid;
    CHECK(payload_of(sim.run("exists", exists))["exists"] == false);
    CHECK(payload_of(sim.run("auth-state",
                             {{"dataPassword", "secret"}}))["hasExplicitDataPassword"] == true);
  }
  SECTION("an unknown credential provider is a configuration error") {
    bridge_sim_fixture sim;
    const json state = payload_of(sim.run("auth-state", {{"dataCredentialProvider", "bogus"}}));
    CHECK(state["state"] == "configuration_error");
    CHECK(state["errors"] == json({"Unknown credential provider: bogus"}));
    CHECK(failure_of(sim.run("exists", {{"oid", oid}, {"dataCredentialProvider", "bogus"}}),
                     500)["error"] == "Unknown credential provider: bogus");
  }
  SECTION("refresh needs a session, not a valid one") {
    bridge_sim_fixture logged_out({{"auth_state", "needs_login"}});
    CHECK(failure_of(logged_out.run("refresh", json::object()), 500)["error"] ==
          "Token refresh failed: No session to refresh");
    bridge_sim_fixture expired({{"auth_state", "session_expired"}});
    CHECK(payload_of(expired.run("refresh", json::object()))["refreshed"] == true);
  }
}

TEST_CASE("a renewing refresh makes an expired session ready until it expires again", "[sim]") {
  bridge_sim_fixture sim(
    {{"auth_state", "session_expired"},
     {"refresh", "renews"},
     {"rules", {{{"command", "exists"}, {"times", 1}, {"fault", "session_expired"}}}}});
  CHECK(payload_of(sim.run("auth-state", json::object()))["state"] == "session_expired");
  failure_of(sim.run("exists", {{"oid", absent_oid}}), 401);
  CHECK(payload_of(sim.run("refresh", json::object()))["refreshed"] == true);
  // Every later process sees the renewed session.
  CHECK(payload_of(sim.run("auth-state", json::object()))["state"] == "ready");
  // The rule's 401 says the session expired again, and so it has.
  failure_of(sim.run("exists", {{"oid", absent_oid}}), 401);
  CHECK(payload_of(sim.run("auth-state", json::object()))["state"] == "session_expired");
  CHECK(payload_of(sim.run("refresh", json::object()))["refreshed"] == true);
  CHECK(payload_of(sim.run("exists", {{"oid", absent_oid}}))["exists"] == false);
  size_t refreshes = 0;
  for (const auto& event : sim.log_events())
    refreshes += event["event"] == "start" && event["command"] == "refresh";
  CHECK(refreshes == 2);

  // Another scenario in the same drive starts with its own session.
  sim.set_scenario({{"auth_state", "session_expired"}, {"refresh", "keeps"}});
  CHECK(payload_of(sim.run("refresh", json::object()))["refreshed"] == true);
  CHECK(payload_of(sim.run("auth-state", json::object()))["state"] == "session_expired");
}

TEST_CASE("a rejected refresh token fails the refresh as drive-cli does", "[sim]") {
  bridge_sim_fixture sim({{"auth_state", "session_expired"}, {"refresh", "invalid_token"}});
  const json failure = failure_of(sim.run("refresh", json::object()), 500);
  CHECK(failure["error"] == "Token refresh failed: Invalid refresh token");
  CHECK(failure["details"] == "");
  CHECK(payload_of(sim.run("auth-state", json::object()))["state"] == "session_expired");
  sim.set_scenario({{"refresh", "sometimes"}});
  CHECK(sim.run("auth-state", json::object()).err.find("scenario.refresh") != std::string::npos);
}

TEST_CASE("each fault kind answers with its documented envelope", "[sim]") {
  const std::string oid = oid_of("faults");
  const json captcha_details = {
    {"captchaUrl", "https://verify.proton.me/captcha?token=sim-captcha"},
    {"captchaToken", "sim-captcha"},
    {"verificationMethods", {"captcha"}},
    {"action", "run: proton-drive login"}};
  struct expectation {
    json rule;
    int code;
    std::string error;
    json details;
  };
  const std::vector<expectation> cases{
    {{{"fault", "rate_limited"}, {"retry_after", 7}},
     429,
     "Rate limited by Proton API — wait 7s and retry",
     {{"errorCode", "RATE_LIMITED"}, {"retryAfter", 7}}},
    {{{"fault", "rate_limited"}},
     429,
     "Rate limited by Proton API — wait 60s and retry",
     {{"errorCode", "RATE_LIMITED"}, {"retryAfter", 60}}},
    {{{"fault", "captcha"}},
     407,
     "CAPTCHA verification required — run: proton-drive login",
     captcha_details},
    {{{"fault", "session_expired"}},
     401,
     "Session expired — run: proton-drive login",
     {{"errorCode", "SESSION_EXPIRED"}, {"authMode", "browser-fork"}}},
    {{{"fault", "insufficient_scope"}},
     403,
     "Access token does not have sufficient scope",
     {{"errorCode", "INSUFFICIENT_SCOPE"},
      {"protonCode", 9101},
      {"action", "stop: app/session scope is insufficient; do not retry login loops"}}},
    {{{"fault", "bad_gateway"}},
     502,
     "Network error: connection reset by Proton API",
     {{"errorCode", "NETWORK_ERROR"}}},
    {{{"fault", "server_error"}}, 500, "Internal server error", nullptr},
    {{{"fault", "quota"}}, 507, "Storage quota exceeded", {{"errorCode", "QUOTA_EXCEEDED"}}},
    {{{"fault", "invalid"}, {"message", "Invalid content length (Code=2022)"}},
     400,
     "Invalid content length (Code=2022)",
     nullptr},
  };
  for (const auto& c : cases) {
    INFO(c.rule.dump());
    json rule = c.rule;
    rule["command"] = "exists";
    bridge_sim_fixture sim({{"rules", {rule}}});
    const auto run = sim.run("exists", {{"oid", oid}});
    CHECK(failure_of(run, c.code)["error"] == c.error);
    CHECK(run.details() == c.details);
    if (c.details.contains("errorCode"))
      CHECK(contract::status_for_error_code(c.details["errorCode"].get<std::string>()) == c.code);
    // The rule names exists only: other commands are untouched (but for
    // the cooldown a rate limit leaves behind).
    if (c.code != 429)
      CHECK(payload_of(sim.run("init", json::object()))["initialized"] == true);
  }
}

TEST_CASE("skip and times count matching invocations across processes", "[sim]") {
  const std::string a = oid_of("a");
  const std::string b = oid_of("b");
  bridge_sim_fixture sim(
    {{"rules",
      {{{"command", "exists"}, {"skip", 2}, {"times", 2}, {"fault", "server_error"}},
       {{"oid", a}, {"times", 1}, {"fault", "bad_gateway"}}}}});

  std::vector<int> codes;
  for (int i = 0; i < 6; ++i) {
    const json envelope = answered(sim.run("exists", {{"oid", b}}));
    codes.push_back(envelope["ok"] == true ? 0 : envelope["code"].get<int>());
  }
  CHECK(codes == std::vector<int>{0, 0, 500, 500, 0, 0});

  // The oid rule looks at oid and oids alike, and at nothing else.
  CHECK(payload_of(sim.run("batch-exists", {{"oids", {b}}}))["results"][b] == false);
  failure_of(sim.run("batch-exists", {{"oids", {b, upper(a)}}}), 502);
  CHECK(payload_of(sim.run("exists", {{"oid", a}}))["exists"] == false);

  std::vector<json> faults;
  for (const auto& event : sim.log_events())
    if (event["event"] == "end")
      faults.push_back(event["fault"]);
  CHECK(faults == std::vector<json>{nullptr, nullptr, "server_error", "server_error", nullptr,
                                    nullptr, nullptr, "bad_gateway", nullptr});

  // Another scenario in the same drive counts afresh.
  sim.set_scenario({{"rules", {{{"command", "exists"}, {"times", 1}, {"fault", "quota"}}}}});
  failure_of(sim.run("exists", {{"oid", b}}), 507);
  CHECK(payload_of(sim.run("exists", {{"oid", b}}))["exists"] == false);
}

TEST_CASE("a rate limit holds every later command but auth-state until it has passed", "[sim]") {
  bridge_sim_fixture sim(
    {{"rules",
      {{{"command", "exists"}, {"times", 1}, {"fault", "rate_limited"}, {"retry_after", 2}}}}});
  const std::string oid = oid_of("cooldown");
  const auto source = sim.write_file("c.bin", "cooldown");
  payload_of(sim.run("init", json::object()));

  const auto before_fault = std::chrono::steady_clock::now();
  const auto limited = sim.run("exists", {{"oid", oid}});
  CHECK(failure_of(limited, 429)["error"] == "Rate limited by Proton API — wait 2s and retry");

  // Other processes, other commands: held, with what is left of the 2 s.
  for (const auto& [command, request] :
       std::vector<std::pair<std::string, json>>{{"list", json::object()},
                                                 {"upload", {{"oid", oid}, {"path", source}}},
                                                 {"refresh", json::object()}}) {
    INFO(command);
    const auto held = sim.run(command, request);
    const json envelope = failure_of(held, 429);
    const int64_t left = held.details()["retryAfter"];
    CHECK(left >= 1);
    CHECK(left <= 2);
    CHECK(envelope["error"] ==
          "Rate limited by Proton API — wait " + std::to_string(left) + "s and retry");
    CHECK(held.details()["errorCode"] == "RATE_LIMITED");
  }
  CHECK_FALSE(std::filesystem::exists(sim.object_path(oid)));
  // auth-state makes no network call, and field checks come first.
  CHECK(payload_of(sim.run("auth-state", json::object()))["state"] == "ready");
  failure_of(sim.run("exists", {{"oid", "short"}}), 400);

  // Poll (bounded) until the cooldown is over: not before 2 s have passed.
  std::optional<std::chrono::steady_clock::time_point> released;
  const auto give_up = before_fault + std::chrono::seconds(8);
  while (!released && std::chrono::steady_clock::now() < give_up) {
    const json envelope = answered(sim.run("exists", {{"oid", oid}}));
    if (envelope["ok"] == true)
      released = std::chrono::steady_clock::now();
    else
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  REQUIRE(released);
  CHECK(*released - before_fault >= std::chrono::milliseconds(2000));

  // Answers from the cooldown are logged as such, with no fault of their own.
  int held_in_log = 0;
  for (const auto& event : sim.log_events())
    if (event["event"] == "end" && event["cooldown"] == true) {
      ++held_in_log;
      CHECK(event["code"] == 429);
      CHECK(event["fault"] == nullptr);
    }
  CHECK(held_in_log >= 3);
}

TEST_CASE("noise lines come before the envelope", "[sim]") {
  bridge_sim_fixture sim({{"rules", {{{"command", "list"}, {"fault", "noise"}}}}});
  payload_of(sim.run("init", json::object()));
  const auto run = sim.run("list", json::object());
  REQUIRE(run.exit_code == 0);
  const auto lines = run.out_lines();
  REQUIRE(lines.size() >= 3);
  for (size_t i = 0; i + 1 < lines.size(); ++i) {
    INFO(lines[i]);
    CHECK_FALSE(lines[i].empty());
    CHECK(lines[i][0] != '{');
    CHECK(json::parse(lines[i], nullptr, false).is_discarded());
  }
  CHECK_FALSE(contract::check_envelope(run.envelope()));
  CHECK(run.envelope()["payload"] == json({{"files", json::array()}}));
}

TEST_CASE("a bad_envelope fault prints JSON that is no valid envelope", "[sim]") {
  bridge_sim_fixture sim({{"rules", {{{"fault", "bad_envelope"}}}}});
  const auto run = sim.run("exists", {{"oid", absent_oid}});
  CHECK(run.exit_code == 0);
  REQUIRE(run.out_lines().size() == 1);
  REQUIRE_FALSE(run.envelope().is_discarded());
  CHECK(contract::check_envelope(run.envelope()));
}

TEST_CASE("a crash exits 137 with a word on stderr and no envelope", "[sim]") {
  bridge_sim_fixture sim({{"rules", {{{"command", "upload"}, {"fault", "crash"}}}}});
  const auto source = sim.write_file("crash.bin", "crash");
  const std::string oid = oid_of("crash");
  const auto run = sim.run("upload", {{"oid", oid}, {"path", source}});
  CHECK(run.exit_code == 137);
  CHECK(run.out.empty());
  CHECK_FALSE(run.err.empty());
  CHECK_FALSE(std::filesystem::exists(sim.object_path(oid)));
  const auto events = sim.log_events();
  REQUIRE(events.size() == 2);
  CHECK(events[1]["event"] == "end");
  CHECK(events[1]["fault"] == "crash");
  CHECK(events[1]["exit"] == 137);
}

TEST_CASE("a hang reads the request, then never answers until it is killed", "[sim]") {
  bridge_sim_fixture sim({{"rules", {{{"command", "download"}, {"fault", "hang"}}}}});
  const json request = {{"oid", absent_oid}, {"outputPath", (sim.files() / "h").string()}};
  const auto run = sim.run("download", request, std::chrono::milliseconds(400));
  CHECK(run.timed_out);
  CHECK(run.signal == SIGKILL);
  CHECK(run.out.empty());
  CHECK(run.elapsed >= std::chrono::milliseconds(400));
  const auto events = sim.log_events();
  REQUIRE(events.size() == 1);
  CHECK(events[0]["event"] == "start");
  CHECK(events[0]["request"] == request);
}

TEST_CASE("corrupt flips one byte of what upload stores or download writes", "[sim]") {
  const std::string content = patterned(100000);
  const std::string oid = oid_of(content);
  bridge_sim_fixture sim(
    {{"rules", {{{"command", "upload"}, {"times", 1}, {"fault", "corrupt"}}}}});
  const auto source = sim.write_file("big.bin", content);

  CHECK(payload_of(sim.run("upload", {{"oid", oid}, {"path", source}}))["uploaded"] == true);
  const std::string stored = read_whole_file(sim.object_path(oid));
  CHECK(bytes_differing(stored, content) == 1);

  payload_of(sim.run("delete", {{"oid", oid}}));
  payload_of(sim.run("upload", {{"oid", oid}, {"path", source}}));
  REQUIRE(read_whole_file(sim.object_path(oid)) == content);

  sim.set_scenario({{"rules", {{{"command", "download"}, {"fault", "corrupt"}}}}});
  const auto output = sim.files() / "corrupt.out";
  CHECK(payload_of(sim.run("download", {{"oid", oid}, {"outputPath", output}}))["size"] ==
        content.size());
  CHECK(bytes_differing(read_whole_file(output), content) == 1);
  CHECK(read_whole_file(sim.object_path(oid)) == content);
}

TEST_CASE("delay holds the answer back, alone or before a fault", "[sim]") {
  bridge_sim_fixture sim(
    {{"rules",
      {{{"command", "exists"}, {"times", 1}, {"fault", "delay"}, {"delay_ms", 300}},
       {{"command", "list"}, {"fault", "server_error"}, {"delay_ms", 200}}}}});
  const auto delayed = sim.run("exists", {{"oid", absent_oid}});
  CHECK(payload_of(delayed)["exists"] == false);
  CHECK(delayed.elapsed >= std::chrono::milliseconds(300));
  const auto failed = sim.run("list", json::object());
  failure_of(failed, 500);
  CHECK(failed.elapsed >= std::chrono::milliseconds(200));
}

TEST_CASE("the log has a start and an end line for every run", "[sim]") {
  bridge_sim_fixture sim;
  payload_of(sim.run("auth-state", {{"dataPassword", "hunter2"}}));
  failure_of(sim.run("exists", {{"oid", "nope"}}), 400);
  CHECK(sim.run_raw("list", "{broken").exit_code == 1);

  const auto events = sim.log_events();
  REQUIRE(events.size() == 6);
  for (size_t i = 0; i < events.size(); i += 2) {
    const json& start = events[i];
    const json& end = events[i + 1];
    CHECK(start["event"] == "start");
    CHECK(end["event"] == "end");
    CHECK(start["pid"] == end["pid"]);
    CHECK(start["command"] == end["command"]);
    CHECK(start["at_ms"].get<int64_t>() <= end["at_ms"].get<int64_t>());
  }
  CHECK(events[0]["request"] == json({{"dataPassword", "<redacted>"}}));
  CHECK(read_whole_file(sim.log_path()).find("hunter2") == std::string::npos);
  CHECK(events[1]["ok"] == true);
  CHECK(events[1]["valid"] == true);
  CHECK(events[1]["fault"] == nullptr);
  CHECK(events[2]["request"] == json({{"oid", "nope"}}));
  CHECK(events[3]["ok"] == false);
  CHECK(events[3]["code"] == 400);
  CHECK(events[3]["valid"] == false);
  CHECK(events[4]["request"] == "{broken");
  CHECK(events[5]["code"] == 500);
  CHECK(events[5]["exit"] == 1);
  CHECK(events[5]["valid"] == false);
}

TEST_CASE("a bad scenario is refused with a message naming the field", "[sim]") {
  bridge_sim_fixture sim({{"rules", {{{"command", "exists"}, {"fault", "melt"}}}}});
  const auto run = sim.run("exists", {{"oid", absent_oid}});
  CHECK(run.exit_code == 1);
  CHECK(run.envelope()["code"] == 500);
  CHECK(run.err.find("rules[0].fault") != std::string::npos);
  sim.set_scenario({{"auth_state", "dazed"}});
  CHECK(sim.run("auth-state", json::object()).err.find("auth_state") != std::string::npos);
}

TEST_CASE("check_envelope accepts the documented shapes and rejects the rest", "[sim]") {
  for (const char* good :
       {R"({"ok":true,"payload":{"a":1}})", R"({"ok":true,"payload":null})",
        R"({"ok":false,"error":"x","code":404,"details":""})",
        R"({"ok":false,"error":"x","code":401,"details":"{\"errorCode\":\"SESSION_EXPIRED\"}"})"}) {
    INFO(good);
    CHECK_FALSE(contract::check_envelope(json::parse(good)));
  }
  for (const char* bad :
       {R"([])", R"({"payload":{}})", R"({"ok":"true","payload":{}})",
        R"({"ok":true,"payload":{},"error":"x"})", R"({"ok":true,"payload":{},"details":""})",
        R"({"ok":true})", R"({"ok":false,"error":"","code":500,"details":""})",
        R"({"ok":false,"error":"x","code":99,"details":""})",
        R"({"ok":false,"error":"x","code":"500","details":""})",
        R"({"ok":false,"error":"x","code":500,"details":{}})",
        R"({"ok":false,"error":"x","code":500})",
        R"({"ok":false,"error":"x","code":500,"details":"not json"})",
        R"({"ok":false,"error":"x","code":500,"details":"","payload":{}})",
        R"({"ok":true,"payload":{},"extra":1})"}) {
    INFO(bad);
    CHECK(contract::check_envelope(json::parse(bad)));
  }
  const std::string line = contract::failure_envelope("gone", 404, {{"errorCode", "NOT_FOUND"}});
  CHECK(line.rfind("{\"ok\":false,", 0) == 0);
  CHECK(line.back() == '\n');
  CHECK(json::parse(line)["details"] == R"({"errorCode":"NOT_FOUND"})");
  CHECK(contract::success_envelope(json::object()) == "{\"ok\":true,\"payload\":{}}\n");
  CHECK(contract::status_for_error_code("TIMEOUT") == 504);
  CHECK(contract::status_for_error_code("PATH_NOT_FOUND") == 404);
  CHECK_FALSE(contract::status_for_error_code("SOMETHING_ELSE"));
}

TEST_CASE("the example scenarios are valid", "[sim]") {
  const std::filesystem::path folder = FERRY_BRIDGE_SCENARIOS;
  int examples = 0;
  for (const auto& entry : std::filesystem::directory_iterator(folder)) {
    const std::string name = entry.path().filename().string();
    INFO(name);
    ++examples;
    bridge_sim_options options;
    options.scenario = entry.path();
    const auto run = run_bridge_sim("auth-state", "{}", options);
    CHECK(run.err.empty());
    CHECK(payload_of(run)["willAttemptNetwork"] == false);
  }
  CHECK(examples >= 5);
}
