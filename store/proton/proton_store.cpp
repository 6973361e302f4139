#include "store/proton/proton_store.hpp"

#include "store/os/file_io.hpp"
#include "store/os/partial_file.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ferry {

namespace fs = std::filesystem;

namespace {

constexpr const char* url_help =
  "expected proton://<folder>[/<folder>...] with folder names of letters, digits, '.', '_', "
  "'-' and spaces, e.g. proton://LFS";

// Scratch files carry the pid of the Ferry process that made them, so a
// later process can tell which ones a crash left behind.
constexpr std::string_view scratch_prefix = "ferry-proton-";

bool is_oid(std::string_view text) {
  return text.size() == 64 && std::all_of(text.begin(), text.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

bool is_hex_pair(const bridge::list_entry& entry) {
  return entry.folder && entry.name.size() == 2 &&
         std::all_of(entry.name.begin(), entry.name.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

status answer_error(const char* command, const std::string& problem) {
  return {errc::unavailable,
          std::string{"Proton Drive bridge "} + command + " gave an unexpected answer: " + problem};
}

status not_ready(const bridge::auth_state& auth, const std::optional<status>& refresh_failure) {
  std::string text = "Proton Drive is not ready (auth-state: " + auth.state + ")";
  for (auto& error : auth.errors)
    text += "; " + error;
  if (refresh_failure)
    text += "; refreshing the session did not help: " + refresh_failure->message();
  std::string actions;
  for (auto& action : auth.actions)
    actions += (actions.empty() ? "" : "; ") + action;
  if (actions.empty())
    actions = "run: proton-drive login";
  return {errc::permission_denied, text + ". To fix: " + actions};
}

fs::path scratch_file(const fs::path& dir, const std::string& oid, const char* kind) {
  static std::atomic<uint64_t> counter{0};
  return dir / (std::string{scratch_prefix} + std::to_string(::getpid()) + "-" +
                std::to_string(counter++) + "-" + oid + "." + kind);
}

// Removes scratch files whose Ferry process is gone (killed mid-transfer).
void remove_orphaned_scratch(const fs::path& dir) {
  std::error_code ignored;
  for (auto it = fs::directory_iterator(dir, ignored); !ignored && it != fs::directory_iterator();
       it.increment(ignored)) {
    std::string name = it->path().filename().string();
    if (name.rfind(scratch_prefix, 0) != 0)
      continue;
    auto pid = std::atol(name.c_str() + scratch_prefix.size());
    if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH)
      fs::remove(it->path(), ignored);
  }
}

class scratch_reader final : public object_reader {
public:
  scratch_reader(int fd, int64_t size, int64_t offset, std::string oid)
      : fd_(fd), size_(size), position_(offset), oid_(std::move(oid)) {}
  int64_t size() const override { return size_; }

  result<size_t> read(char* buffer, size_t capacity) override {
    for (;;) {
      ssize_t n = ::pread(fd_.get(), buffer, capacity, position_);
      if (n >= 0) {
        position_ += n;
        return static_cast<size_t>(n);
      }
      if (errno != EINTR)
        return from_errno(errno, "read the downloaded copy of " + oid_);
    }
  }

private:
  fd_guard fd_;
  int64_t size_;
  int64_t position_;
  std::string oid_;
};

// Stages an upload in a private file; the bridge reads it by path once its
// size and SHA-256 are known to match the oid.
class staging_writer final : public object_writer {
public:
  staging_writer(proton_bridge& bridge, fd_guard fd, fs::path path, std::string oid, int64_t size)
      : bridge_(bridge), file_(std::move(fd), "staging file " + path.string(), oid, size),
        path_(std::move(path)), oid_(std::move(oid)), size_(size) {}
  ~staging_writer() override { discard(); }

  int64_t offset() const override { return 0; }

  status write(const char* data, size_t size) override {
    if (!file_.is_open())
      return {errc::internal, "object " + oid_ + ": write after commit or abort"};
    return file_.append(data, size);
  }

  // The bridge uploads whole files only, so nothing is durable before commit.
  result<int64_t> sync() override { return int64_t{0}; }

  status commit() override {
    if (!file_.is_open())
      return {errc::internal, "object " + oid_ + ": commit after commit or abort"};
    if (auto st = file_.verify(); !st) {
      discard();
      return st;
    }
    file_.close();
    bridge::request_fields fields;
    fields.oid = oid_;
    fields.path = path_.string();
    auto sent = bridge_.call(bridge::command::upload, fields, size_);
    discard();
    if (!sent)
      return sent.error();
    auto outcome = bridge::decode_upload(*sent, oid_);
    if (auto* problem = std::get_if<std::string>(&outcome))
      return answer_error("upload", *problem);
    if (std::get<bridge::upload_outcome>(outcome) != bridge::upload_outcome::cached)
      return status::success();
    // The bridge's change-token cache ignores remote deletions: ask the Drive.
    bridge::request_fields ask;
    ask.oid = oid_;
    auto present = bridge_.call(bridge::command::exists, ask);
    if (!present)
      return present.error();
    auto exists = bridge::decode_exists(*present, oid_);
    if (auto* problem = std::get_if<std::string>(&exists))
      return answer_error("exists", *problem);
    if (!std::get<bool>(exists))
      return {errc::unavailable, "Proton Drive bridge upload of " + oid_ +
                                   " answered from its local cache, but the Drive does not "
                                   "have the object"};
    return status::success();
  }

  void abort() override { discard(); }

private:
  void discard() {
    file_.close();
    if (!path_.empty()) {
      std::error_code ignored;
      fs::remove(path_, ignored);
      path_.clear();
    }
  }

  proton_bridge& bridge_;
  partial_file file_;
  fs::path path_;
  std::string oid_;
  int64_t size_;
};

} // namespace

result<std::string> parse_proton_url(const std::string& url) {
  constexpr std::string_view scheme = "proton://";
  if (url.size() < scheme.size() ||
      !std::equal(scheme.begin(), scheme.end(), url.begin(),
                  [](char a, char b) { return a == std::tolower(static_cast<unsigned char>(b)); }))
    return status{errc::config_error, "'" + url + "' is not a proton:// URL (" + url_help + ")"};
  std::string base = url.substr(scheme.size());
  while (!base.empty() && base.back() == '/')
    base.pop_back();
  if (base.empty())
    return std::string{"LFS"};
  size_t start = 0;
  for (;;) {
    auto end = base.find('/', start);
    std::string_view name{base.data() + start,
                          (end == std::string::npos ? base.size() : end) - start};
    bool plain = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' ||
             c == ' ';
    });
    if (!plain || name == "." || name == ".." || name.front() == ' ' || name.back() == ' ')
      return status{errc::config_error, "Proton storage folder '" + base + "' in '" + url +
                                          "' is not valid (" + url_help + ")"};
    if (end == std::string::npos)
      return base;
    start = end + 1;
  }
}

proton_store::proton_store(std::string storage_base, proton_store_options options)
    : base_(std::move(storage_base)), options_(std::move(options)), bridge_([&] {
        auto bridge_options = options_.bridge;
        bridge_options.common.storage_base = base_;
        return bridge_options;
      }()) {}

proton_store::~proton_store() = default;

std::string proton_store::describe() const { return "proton://" + base_; }

std::string proton_store::endpoint() const { return "proton-drive"; }

status proton_store::prepare() {
  std::lock_guard lock{mutex_};
  if (prepared_ && !bridge_.account().session_lost())
    return status::success();
  prepared_ = false;
  // Private also where Ferry keeps the user's umask (ferry install): it
  // holds objects on their way.
  if (auto made = make_directories(options_.scratch_dir, 0700); !made)
    return made.with_context("Proton scratch directory");
  remove_orphaned_scratch(options_.scratch_dir);

  auto check = [&]() -> result<bridge::auth_state> {
    auto answer = bridge_.call(bridge::command::auth_state, {});
    if (!answer)
      return answer.error();
    auto decoded = bridge::decode_auth_state(*answer);
    if (auto* problem = std::get_if<std::string>(&decoded))
      return answer_error("auth-state", *problem);
    return std::get<bridge::auth_state>(std::move(decoded));
  };
  auto auth = check();
  if (!auth)
    return auth.error();
  if (auth->state == "ready")
    bridge_.account().refresher().session_ready();
  if (auth->state == "session_expired") {
    auto renewal = bridge_.account().refresher().renew(check, [&] {
      auto refreshed = bridge_.call(bridge::command::refresh, {});
      return refreshed ? status::success() : refreshed.error();
    });
    if (!renewal)
      return renewal.error();
    auto notice = [&](const std::string& text) {
      if (options_.notice)
        options_.notice(text);
    };
    if (renewal->refresh_failure) {
      notice("Proton Drive session expired; " +
             std::string{renewal->refreshed ? "refreshing it failed: "
                                            : "an earlier refresh of it failed: "} +
             renewal->refresh_failure->message());
      // The session needs the user now: nothing more is tried, no refresh
      // either, until Ferry runs again.
      auto failure = not_ready(renewal->state, renewal->refresh_failure);
      bridge_.account().stop(failure);
      return failure;
    }
    if (renewal->refreshed)
      notice("Proton Drive session expired; refreshed it (auth-state now: " + renewal->state.state +
             ")");
    *auth = std::move(renewal->state);
  }
  if (auth->state != "ready")
    return not_ready(*auth, std::nullopt);

  auto initialized = bridge_.call(bridge::command::init, {});
  if (!initialized)
    return initialized.error();
  auto& payload = *initialized;
  if (!payload.is_object() || payload.value("initialized", false) != true)
    return answer_error("init", "no \"initialized\":true in " + payload.dump());
  bridge_.account().session_ready();
  prepared_ = true;
  return status::success();
}

result<std::optional<object_info>> proton_store::stat(const std::string& oid) {
  if (auto ready = prepare(); !ready)
    return ready;
  bridge::request_fields fields;
  auto path = bridge::object_path(base_, oid);
  fields.folder = path.substr(0, path.rfind('/'));
  auto answer = bridge_.call(bridge::command::list, fields);
  if (!answer) {
    if (answer.error().code() == errc::not_found)
      return std::optional<object_info>{};
    return answer.error();
  }
  auto entries = bridge::decode_list(*answer);
  if (auto* problem = std::get_if<std::string>(&entries))
    return answer_error("list", *problem);
  for (auto& entry : std::get<std::vector<bridge::list_entry>>(entries))
    if (!entry.folder && entry.name == oid)
      return std::optional<object_info>{object_info{oid, entry.size}};
  return std::optional<object_info>{};
}

result<bool> proton_store::holds(const object_info& object) {
  auto held = holds_each({object});
  if (!held)
    return held.error();
  return bool{held->front()};
}

result<std::vector<bool>> proton_store::holds_each(const std::vector<object_info>& objects) {
  if (auto ready = prepare(); !ready)
    return ready;
  auto send = [this](const std::vector<object_info>& some) { return held_among(some); };
  std::vector<bool> held;
  held.reserve(objects.size());
  for (size_t start = 0; start < objects.size(); start += oids_per_process) {
    std::vector<object_info> chunk(objects.begin() + static_cast<std::ptrdiff_t>(start),
                                   objects.begin() + static_cast<std::ptrdiff_t>(std::min(
                                                       objects.size(), start + oids_per_process)));
    // The daemon's agents each ask about their own object: one process
    // answers the questions that arrive while another runs.
    auto answer =
      objects.size() <= oids_per_process ? presence_questions_.ask(chunk, send) : send(chunk);
    if (!answer)
      return answer.error();
    for (const auto& object : chunk)
      held.push_back(answer->count(object.oid) > 0);
  }
  return held;
}

result<std::set<std::string>> proton_store::held_among(const std::vector<object_info>& objects) {
  bridge::request_fields fields;
  for (const auto& object : objects)
    fields.oids.push_back(object.oid);
  auto answer = bridge_.call(bridge::command::batch_exists, fields);
  // A 404 (no base folder yet) means none of them is there.
  if (!answer && answer.error().code() == errc::not_found)
    return std::set<std::string>{};
  if (!answer)
    return answer.error();
  auto decoded = bridge::decode_batch_results(*answer, fields.oids);
  if (auto* problem = std::get_if<std::string>(&decoded))
    return answer_error("batch-exists", *problem);
  std::set<std::string> held;
  auto& results = std::get<std::vector<bool>>(decoded);
  for (size_t i = 0; i < results.size(); ++i)
    if (results[i])
      held.insert(fields.oids[i]);
  return held;
}

size_t proton_store::presence_questions_waiting() const { return presence_questions_.waiting(); }

result<std::vector<std::optional<int64_t>>>
proton_store::sizes_of(const std::vector<object_info>& objects) {
  return sizes_from_holds(*this, objects);
}

result<std::unique_ptr<object_reader>> proton_store::open_read(const std::string& oid,
                                                               int64_t offset) {
  if (auto ready = prepare(); !ready)
    return ready;
  std::optional<int64_t> expected;
  {
    std::lock_guard lock{mutex_};
    if (auto found = expected_sizes_.find(oid); found != expected_sizes_.end())
      expected = found->second;
  }
  auto path = scratch_file(options_.scratch_dir, oid, "download");
  bridge::request_fields fields;
  fields.oid = oid;
  fields.output_path = path.string();
  auto answer = bridge_.call(bridge::command::download, fields, expected.value_or(0));
  // Open, then unlink at once: the reader keeps the bytes, and no crash
  // leaves the file behind.
  fd_guard fd{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  int open_error = errno;
  std::error_code ignored;
  fs::remove(path, ignored);
  if (!answer)
    return answer.error();
  auto size = bridge::decode_download(*answer, oid);
  if (auto* problem = std::get_if<std::string>(&size))
    return answer_error("download", *problem);
  if (fd.get() < 0)
    return from_errno(open_error, "open the bridge's download of " + oid);
  struct ::stat info {};
  if (::fstat(fd.get(), &info) != 0)
    return from_errno(errno, "stat the bridge's download of " + oid);
  if (info.st_size != std::get<int64_t>(size))
    return status{errc::unavailable, "Proton Drive bridge download of " + oid + " reported " +
                                       std::to_string(std::get<int64_t>(size)) +
                                       " bytes but wrote " + std::to_string(info.st_size)};
  if (offset > info.st_size)
    return status{errc::size_mismatch, "object " + oid + " in " + describe() + " has " +
                                         std::to_string(info.st_size) + " bytes, fewer than " +
                                         std::to_string(offset)};
  return std::unique_ptr<object_reader>(
    std::make_unique<scratch_reader>(fd.release(), info.st_size, offset, oid));
}

result<std::unique_ptr<object_writer>>
proton_store::open_write(const std::string& oid, int64_t size, const std::optional<std::string>&) {
  if (auto ready = prepare(); !ready)
    return ready;
  auto path = scratch_file(options_.scratch_dir, oid, "upload");
  fd_guard fd{::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600)};
  if (fd.get() < 0)
    return from_errno(errno, "create staging file " + path.string());
  return std::unique_ptr<object_writer>(
    std::make_unique<staging_writer>(bridge_, std::move(fd), path, oid, size));
}

status proton_store::expect_reads(const std::vector<object_info>& objects) {
  std::lock_guard lock{mutex_};
  for (auto& object : objects)
    expected_sizes_[object.oid] = object.size;
  return status::success();
}

status proton_store::list(const std::function<bool(const object_info&)>& visit) {
  if (auto ready = prepare(); !ready)
    return ready;
  // Returns the folder's entries; a missing folder has none.
  auto entries_of = [&](const std::string& folder) -> result<std::vector<bridge::list_entry>> {
    bridge::request_fields fields;
    fields.folder = folder;
    auto answer = bridge_.call(bridge::command::list, fields);
    if (!answer) {
      if (answer.error().code() == errc::not_found)
        return std::vector<bridge::list_entry>{};
      return answer.error();
    }
    auto decoded = bridge::decode_list(*answer);
    if (auto* problem = std::get_if<std::string>(&decoded))
      return answer_error("list", *problem);
    return std::get<std::vector<bridge::list_entry>>(std::move(decoded));
  };
  std::string root = "/" + base_;
  auto level1 = entries_of(root);
  if (!level1)
    return level1.error();
  for (auto& first : *level1) {
    if (!is_hex_pair(first))
      continue;
    auto level2 = entries_of(root + "/" + first.name);
    if (!level2)
      return level2.error();
    for (auto& second : *level2) {
      if (!is_hex_pair(second))
        continue;
      auto files = entries_of(root + "/" + first.name + "/" + second.name);
      if (!files)
        return files.error();
      for (auto& file : *files) {
        if (file.folder || !is_oid(file.name) || file.name.compare(0, 2, first.name) != 0 ||
            file.name.compare(2, 2, second.name) != 0)
          continue;
        if (!visit({file.name, file.size}))
          return status::success();
      }
    }
  }
  return status::success();
}

status proton_store::remove(const std::string& oid) {
  if (auto ready = prepare(); !ready)
    return ready;
  bridge::request_fields fields;
  fields.oid = oid;
  auto answer = bridge_.call(bridge::command::remove, fields);
  if (!answer && answer.error().code() != errc::not_found)
    return answer.error();
  return status::success();
}

} // namespace ferry
