#include "simulations/bridge_sim/drive.hpp"

#include "simulations/bridge_sim/contract.hpp"

#include "protocol/parsing.hpp"
#include "store/os/file_io.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

namespace ferry::bridge_sim {

using nlohmann::json;

namespace {

namespace fs = std::filesystem;

constexpr const char* default_storage_base = "LFS";
constexpr const char* default_data_host = "proton-data.proton-lfs-cli.local";
constexpr const char* key_password_host = "proton-drive-key.proton-lfs-cli.local";
constexpr const char* login_action = "run: proton-drive login";
/// The simulator's own folder at the top of the drive; no Drive path reaches it.
constexpr const char* sim_folder = ".sim";

json session_expired_details() {
  return {{"errorCode", "SESSION_EXPIRED"}, {"authMode", "browser-fork"}};
}

answer failure_with_code(const std::string& error, const char* error_code) {
  return answer::failure(error, status_for_error_code(error_code).value_or(500),
                         {{"errorCode", error_code}});
}

std::string string_field(const json& request, const char* key) {
  const auto it = request.find(key);
  return it != request.end() && it->is_string() ? it->get<std::string>() : std::string();
}

/// Why the request's data credential provider is unusable, if it is.
std::optional<std::string> provider_problem(const json& request) {
  const auto it = request.find("dataCredentialProvider");
  if (it == request.end() || !it->is_string() ||
      is_known_credential_provider(it->get<std::string>()))
    return std::nullopt;
  return "Unknown credential provider: " + it->get<std::string>();
}

bool has_data_password_source(const json& request) {
  return !string_field(request, "dataPassword").empty() ||
         request.contains("dataCredentialProvider");
}

/// The state the request's account is in once the request's own data
/// password source is taken into account.
std::string effective_state(const std::string& scenario_state, const json& request) {
  if (provider_problem(request))
    return "configuration_error";
  if ((scenario_state == "needs_data_password" || scenario_state == "needs_key_password") &&
      has_data_password_source(request))
    return "ready";
  return scenario_state;
}

// ---- the folder playing the Drive ------------------------------------------

/// A Drive path split into folder names; nullopt when a segment is "." or
/// "..", or when it would reach the simulator's own folder.
std::optional<std::vector<std::string>> drive_segments(std::string_view path) {
  std::vector<std::string> segments;
  size_t start = 0;
  while (start <= path.size()) {
    const auto end = std::min(path.find('/', start), path.size());
    const std::string segment(path.substr(start, end - start));
    if (segment == "." || segment == "..")
      return std::nullopt;
    if (!segment.empty())
      segments.push_back(segment);
    start = end + 1;
  }
  if (!segments.empty() && segments.front() == sim_folder)
    return std::nullopt;
  return segments;
}

fs::path local_path(const fs::path& drive, const std::vector<std::string>& segments) {
  fs::path path = drive;
  for (const auto& segment : segments)
    path /= segment;
  return path;
}

/// The request's storage base: its name as given (default LFS), its Drive
/// path and where it lives in the drive folder.
struct storage_base {
  std::string name;
  std::string drive_path;
  fs::path local;
};

std::optional<answer> resolve_base(const fs::path& drive, const json& request, storage_base& out) {
  out.name = string_field(request, "storageBase");
  if (out.name.empty())
    out.name = default_storage_base;
  const auto segments = drive_segments(out.name);
  if (!segments || segments->empty())
    return failure_with_code("Invalid storage base: " + out.name, "INVALID_PATH");
  out.drive_path = "/" + normalize_storage_base(out.name);
  out.local = local_path(drive, *segments);
  return std::nullopt;
}

fs::path object_path(const storage_base& base, const std::string& oid) {
  const std::string lower = protocol::lower_ascii(oid);
  return base.local / lower.substr(0, 2) / lower.substr(2, 2) / lower;
}

std::string file_id(const std::string& oid) {
  return "sim-" + protocol::lower_ascii(oid).substr(0, 16);
}

answer io_failure(const std::string& what, int error_number) {
  return answer::failure(what + ": " + std::strerror(error_number), 500);
}

/// Copies `from` to `to`; with `flip_at`, the byte at that offset is
/// inverted on the way. Returns the number of bytes copied, or -1 (errno set).
int64_t copy_bytes(int from, int to, std::optional<int64_t> flip_at) {
  std::vector<char> buffer(1 << 20);
  int64_t copied = 0;
  for (;;) {
    const ssize_t n = ::read(from, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -1;
    if (n == 0)
      return copied;
    if (flip_at && *flip_at >= copied && *flip_at < copied + n)
      buffer[static_cast<size_t>(*flip_at - copied)] ^= static_cast<char>(0xff);
    for (ssize_t written = 0; written < n;) {
      const ssize_t w = ::write(to, buffer.data() + written, static_cast<size_t>(n - written));
      if (w < 0 && errno == EINTR)
        continue;
      if (w < 0)
        return -1;
      written += w;
    }
    copied += n;
  }
}

/// The offset corrupt flips: the middle byte; none for an empty file.
std::optional<int64_t> flip_offset(int fd, bool corrupt) {
  struct stat info {};
  if (!corrupt || ::fstat(fd, &info) != 0 || info.st_size == 0)
    return std::nullopt;
  return static_cast<int64_t>(info.st_size / 2);
}

bool is_file(const fs::path& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode);
}

// ---- the handlers ------------------------------------------------------------

answer upload(const fs::path& drive, const json& request, bool corrupt) {
  storage_base base;
  if (auto bad = resolve_base(drive, request, base))
    return *bad;
  const std::string oid = request["oid"].get<std::string>();
  const auto target = object_path(base, oid);
  if (is_file(target))
    return answer::success({{"oid", oid},
                            {"fileId", file_id(oid)},
                            {"revisionId", ""},
                            {"uploaded", false},
                            {"cached", false},
                            {"deduplicated", true}});

  const std::string source_path = request["path"].get<std::string>();
  fd_guard source(::open(source_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (source.get() < 0 && errno == ENOENT)
    return failure_with_code("File not found: " + source_path, "FILE_NOT_FOUND");
  if (source.get() < 0)
    return io_failure("Cannot read " + source_path, errno);
  struct stat info {};
  if (::fstat(source.get(), &info) != 0 || !S_ISREG(info.st_mode))
    return failure_with_code("Not a file: " + source_path, "INVALID_FILE");

  std::error_code ec;
  fs::create_directories(target.parent_path(), ec);
  const auto temp_folder = drive / sim_folder / "tmp";
  fs::create_directories(temp_folder, ec);
  if (ec)
    return answer::failure("Cannot create folders for " + oid + ": " + ec.message(), 500);
  const auto temp = temp_folder / ("upload-" + std::to_string(::getpid()) + "-" + oid);
  fd_guard out(::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (out.get() < 0)
    return io_failure("Cannot create " + temp.string(), errno);
  if (copy_bytes(source.get(), out.get(), flip_offset(source.get(), corrupt)) < 0) {
    const int error = errno;
    ::unlink(temp.c_str());
    return io_failure("Cannot store " + oid, error);
  }
  out.reset();
  // link() refuses to replace: two uploads racing for one oid end like the
  // bridge's, the later one failing on the name the earlier one created.
  const int linked = ::link(temp.c_str(), target.c_str());
  const int error = errno;
  ::unlink(temp.c_str());
  if (linked != 0 && error == EEXIST)
    return answer::failure("A file or folder with that name already exists", 400);
  if (linked != 0)
    return io_failure("Cannot store " + oid, error);
  return answer::success({{"oid", oid},
                          {"fileId", file_id(oid)},
                          {"revisionId", ""},
                          {"uploaded", true},
                          {"cached", false}});
}

answer download(const fs::path& drive, const json& request, bool corrupt) {
  storage_base base;
  if (auto bad = resolve_base(drive, request, base))
    return *bad;
  const std::string oid = request["oid"].get<std::string>();
  const std::string output_path = request["outputPath"].get<std::string>();
  fd_guard source(::open(object_path(base, oid).c_str(), O_RDONLY | O_CLOEXEC));
  if (source.get() < 0 && (errno == ENOENT || errno == ENOTDIR))
    return failure_with_code("File not found: " + drive_path_for_oid(base.name, oid),
                             "FILE_NOT_FOUND");
  if (source.get() < 0)
    return io_failure("Cannot read " + oid, errno);

  const std::string temp = output_path + ".sim-tmp-" + std::to_string(::getpid());
  fd_guard out(::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (out.get() < 0)
    return io_failure("Cannot write " + output_path, errno);
  const int64_t size = copy_bytes(source.get(), out.get(), flip_offset(source.get(), corrupt));
  if (size < 0) {
    const int error = errno;
    ::unlink(temp.c_str());
    return io_failure("Cannot write " + output_path, error);
  }
  out.reset();
  if (::rename(temp.c_str(), output_path.c_str()) != 0) {
    const int error = errno;
    ::unlink(temp.c_str());
    return io_failure("Cannot write " + output_path, error);
  }
  return answer::success(
    {{"oid", oid}, {"outputPath", output_path}, {"size", size}, {"downloaded", true}});
}

answer list(const fs::path& drive, const json& request) {
  storage_base base;
  std::string folder = string_field(request, "folder");
  if (folder.empty()) {
    if (auto bad = resolve_base(drive, request, base))
      return *bad;
    folder = base.drive_path;
  }
  const auto segments = drive_segments(folder);
  if (!segments)
    return failure_with_code("Invalid path: " + folder, "INVALID_PATH");
  const auto local = local_path(drive, *segments);
  struct stat info {};
  if (::stat(local.c_str(), &info) != 0)
    return failure_with_code("Path not found: " + folder, "PATH_NOT_FOUND");
  if (!S_ISDIR(info.st_mode))
    return failure_with_code("Not a folder: " + folder, "NOT_A_FOLDER");

  std::vector<json> files;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(local, ec)) {
    const std::string name = entry.path().filename().string();
    if (segments->empty() && name == sim_folder)
      continue;
    struct stat child {};
    if (::stat(entry.path().c_str(), &child) != 0)
      continue;
    const bool is_folder = S_ISDIR(child.st_mode);
    files.push_back({{"name", name},
                     {"type", is_folder ? "folder" : "file"},
                     {"size", is_folder ? 0 : static_cast<int64_t>(child.st_size)},
                     {"modifiedTime", static_cast<int64_t>(child.st_mtime)}});
  }
  if (ec)
    return answer::failure("Cannot list " + folder + ": " + ec.message(), 500);
  std::sort(files.begin(), files.end(),
            [](const json& a, const json& b) { return a["name"] < b["name"]; });
  return answer::success({{"files", files}});
}

answer exists(const fs::path& drive, const json& request) {
  storage_base base;
  if (auto bad = resolve_base(drive, request, base))
    return *bad;
  const std::string oid = request["oid"].get<std::string>();
  return answer::success({{"oid", oid}, {"exists", is_file(object_path(base, oid))}});
}

answer remove(const fs::path& drive, const json& request) {
  storage_base base;
  if (auto bad = resolve_base(drive, request, base))
    return *bad;
  const std::string oid = request["oid"].get<std::string>();
  const auto target = object_path(base, oid);
  if (!is_file(target) || ::unlink(target.c_str()) != 0)
    return failure_with_code("File not found: " + drive_path_for_oid(base.name, oid),
                             "FILE_NOT_FOUND");
  return answer::success({{"oid", oid}, {"deleted", true}});
}

answer batch(const fs::path& drive, const json& request, bool delete_them) {
  storage_base base;
  if (auto bad = resolve_base(drive, request, base))
    return *bad;
  json results = json::object();
  for (const auto& item : request["oids"]) {
    const std::string oid = item.get<std::string>();
    const auto target = object_path(base, oid);
    const bool present = is_file(target);
    results[oid] = delete_them ? present && ::unlink(target.c_str()) == 0 : present;
  }
  return answer::success({{"results", results}});
}

answer init(const fs::path& drive, const json& request) {
  storage_base base;
  if (auto bad = resolve_base(drive, request, base))
    return *bad;
  std::error_code ec;
  fs::create_directories(base.local, ec);
  if (ec || !fs::is_directory(base.local))
    return failure_with_code("Not a folder: " + base.drive_path, "NOT_A_FOLDER");
  return answer::success(
    {{"storageBase", base.name}, {"path", base.drive_path}, {"initialized", true}});
}

} // namespace

answer answer::success(json payload) {
  answer result;
  result.payload = std::move(payload);
  return result;
}

answer answer::failure(std::string error, int code, json details) {
  answer result;
  result.ok = false;
  result.error = std::move(error);
  result.code = code;
  result.details = std::move(details);
  return result;
}

std::string answer::envelope() const {
  return ok ? success_envelope(payload) : failure_envelope(error, code, details);
}

bool touches_drive(std::string_view command) {
  return command != "auth-state" && command != "refresh" && field_rule_for(command).has_value();
}

std::optional<answer> check_local_paths(std::string_view command, const json& request) {
  const char* field = command == "upload" ? "path" : command == "download" ? "outputPath" : nullptr;
  if (field == nullptr)
    return std::nullopt;
  if (auto problem = check_local_path(string_field(request, field)))
    return answer::failure(*problem, 500);
  return std::nullopt;
}

answer auth_state_answer(const std::string& scenario_state, const json& request) {
  const std::string state = effective_state(scenario_state, request);
  // The session behind the state: the scenario's, also when the request's
  // own configuration is what is wrong.
  const std::string session = state == "configuration_error" && provider_problem(request)
                                ? effective_state(scenario_state, json::object())
                                : state;
  const bool has_session = session != "needs_login";
  const bool expired = session == "session_expired";
  const bool valid = has_session && !expired && session != "session_invalid";
  json payload = {{"state", state},
                  {"hasSession", has_session},
                  {"sessionValid", valid},
                  {"sessionExpired", expired},
                  {"sessionUidPresent", has_session},
                  {"hasExplicitDataPassword", !string_field(request, "dataPassword").empty()},
                  {"willAttemptNetwork", false},
                  {"errors", json::array()},
                  {"actions", json::array()}};
  if (has_session) {
    const bool key_password = session != "needs_key_password";
    payload["passwordMode"] = session == "needs_data_password" ? 2 : 1;
    payload["authMode"] = "browser-fork";
    payload["keyPasswordPersisted"] = key_password;
    payload["keyPasswordAvailable"] = key_password;
    if (key_password) {
      payload["keyPasswordProvider"] = "git-credential";
      payload["keyPasswordHost"] = key_password_host;
    }
  }
  if (request.contains("dataCredentialProvider")) {
    payload["dataCredentialProvider"] = string_field(request, "dataCredentialProvider");
    payload["dataCredentialHost"] = default_data_host;
  }
  if (request.contains("dataCredentialHost"))
    payload["dataCredentialHost"] = string_field(request, "dataCredentialHost");

  auto& actions = payload["actions"];
  if (state == "needs_login" || state == "session_expired" || state == "session_invalid") {
    actions.push_back(login_action);
  } else if (state == "needs_data_password") {
    actions.push_back(std::string("Provide the mailbox/data password: set dataCredentialProvider "
                                  "(git-credential or pass-cli) and store the password for ") +
                      default_data_host);
  } else if (state == "needs_key_password") {
    actions.push_back(std::string(login_action) + " (the stored key password is missing or "
                                                  "unreadable)");
  } else if (state == "configuration_error") {
    payload["errors"].push_back(provider_problem(request).value_or("Invalid bridge configuration"));
    actions.push_back("Fix dataCredentialProvider: use git-credential, pass-cli, stdin or "
                      "interactive");
  }
  return answer::success(payload);
}

std::optional<answer> session_gate(std::string_view command, const std::string& scenario_state,
                                   const json& request) {
  const std::string state = effective_state(scenario_state, request);
  if (command == "auth-state" || state == "ready")
    return std::nullopt;
  if (command == "refresh")
    return state == "needs_login" ? std::optional<answer>(answer::failure(
                                      "Token refresh failed: No session to refresh", 500))
                                  : std::nullopt;
  if (state == "needs_login")
    return answer::failure(std::string("Not logged in — ") + login_action, 401,
                           session_expired_details());
  if (state == "session_expired" || state == "session_invalid")
    return answer::failure(std::string("Session expired — ") + login_action, 401,
                           session_expired_details());
  if (state == "needs_data_password")
    return failure_with_code("Data password required — set dataCredentialProvider",
                             "DATA_PASSWORD_REQUIRED");
  if (state == "needs_key_password")
    return failure_with_code(std::string("Key password required — ") + login_action,
                             "KEY_PASSWORD_REQUIRED");
  return answer::failure(provider_problem(request).value_or("Invalid bridge configuration"), 500);
}

answer run_command(std::string_view command, const json& request, const fs::path& drive,
                   bool corrupt) {
  if (command == "upload")
    return upload(drive, request, corrupt);
  if (command == "download")
    return download(drive, request, corrupt);
  if (command == "list")
    return list(drive, request);
  if (command == "exists")
    return exists(drive, request);
  if (command == "delete")
    return remove(drive, request);
  if (command == "batch-exists" || command == "batch-delete")
    return batch(drive, request, command == "batch-delete");
  if (command == "init")
    return init(drive, request);
  if (command == "refresh")
    return answer::success({{"refreshed", true}, {"uid", "sim-uid"}});
  return answer::failure("Unknown bridge command: " + std::string(command), 400);
}

} // namespace ferry::bridge_sim
