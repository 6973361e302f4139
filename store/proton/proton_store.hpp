#pragma once

// Proton Drive as an object store, `proton://<storageBase>`, through the
// proton-drive-cli bridge (docs/proton.md). Every call blocks its caller
// (the engine runs each transfer of a store with an endpoint on a thread of
// its own).

#include "store/object_store.hpp"
#include "store/proton/proton_bridge.hpp"
#include "store/request_gatherer.hpp"

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace ferry {

struct proton_store_options {
  proton_bridge_options bridge;
  /// Where uploads are staged and downloads land before Ferry reads them
  /// (the bridge reads and writes files by path). Created when missing.
  std::filesystem::path scratch_dir;
  /// Told when the store refreshed an expired session, or tried and failed
  /// (for the log; the bridge's error text, never a token).
  std::function<void(const std::string&)> notice;
};

/// Parses `proton://<storageBase>`: the base is one or more folder names of
/// letters, digits, '.', '_', '-' and ' ', separated by '/'; `proton://`
/// alone means `LFS`. Anything else is errc::config_error.
result<std::string> parse_proton_url(const std::string& url);

/// Proton Drive through the bridge. Objects live at
/// `/<base>/<oid[0:2]>/<oid[2:4]>/<oid>`, as every bridge client lays them
/// out. The bridge does not check content against the oid, so Ferry does:
/// an upload is staged in a private file whose size and SHA-256 are checked
/// before the bridge sends it, and a download is read back through the
/// engine's verification before anything is published.
class proton_store final : public object_store {
public:
  proton_store(std::string storage_base, proton_store_options options);
  ~proton_store() override;

  /// "proton://<base>".
  std::string describe() const override;
  /// "proton-drive": the per-host limits and the cooldown cover every call
  /// through the bridge (Proton limits per session, not per server).
  std::string endpoint() const override;

  /// auth-state must be `ready`, else errc::permission_denied whose message
  /// lists the bridge's errors and actions ("run: proton-drive login") and
  /// no transfer is tried; then `init` of the base, once. `session_expired`
  /// is first renewed with the bridge's `refresh`, one at a time for all the
  /// stores of the process that use the same session (the account's
  /// session_refresh); a refresh that fails, or leaves the session not
  /// ready, stops every later call with the login action. Done again
  /// after a Drive command found the session expired
  /// (proton_account::session_lost). Also removes staging files that dead
  /// Ferry processes left in the scratch directory.
  status prepare() override;

  /// Lists the object's folder and reads its size there; absent when the
  /// folder or the file is missing.
  result<std::optional<object_info>> stat(const std::string& oid) override;
  /// holds_each() for one object.
  result<bool> holds(const object_info& object) override;
  /// batch-exists, oids_per_process oids per process; a 404 means absent.
  /// A call about no more than that many objects (a transfer's own) waits
  /// while another thread's batch-exists runs, then goes in one process
  /// with every question that arrived meanwhile (request_gatherer).
  result<std::vector<bool>> holds_each(const std::vector<object_info>& objects) override;
  /// holds_each(), answering the asked size for each object the Drive
  /// holds: batch-exists tells no size, and a size would cost a list each.
  result<std::vector<std::optional<int64_t>>>
  sizes_of(const std::vector<object_info>& objects) override;
  /// Downloads the whole object into a scratch file (the bridge cannot send
  /// ranges), checks its size against expect_reads(), and streams it from
  /// `offset`; the file is removed when the reader goes.
  result<std::unique_ptr<object_reader>> open_read(const std::string& oid, int64_t offset) override;
  /// A writer that stages the bytes in a scratch file; commit() checks size
  /// and SHA-256 and then uploads it. Nothing resumes (offset() is 0).
  result<std::unique_ptr<object_writer>>
  open_write(const std::string& oid, int64_t size,
             const std::optional<std::string>& resume) override;
  /// Remembers the sizes, for the download time limit and size check.
  status expect_reads(const std::vector<object_info>& objects) override;
  /// Lists `/<base>`, then each two-character folder and its sub-folders;
  /// names that are not oids in this layout are skipped.
  status list(const std::function<bool(const object_info&)>& visit) override;
  /// delete; an absent object (404) is no error.
  status remove(const std::string& oid) override;

  /// The bridge caller, for tests and `ferry status`.
  proton_bridge& bridge() { return bridge_; }

  /// Oids per batch-exists process: one process walks the tree once for all.
  static constexpr size_t oids_per_process = 100;

  /// Presence questions waiting for a batch-exists process (for tests).
  size_t presence_questions_waiting() const;

private:
  /// The oids among `objects` (at most oids_per_process) the Drive
  /// holds: one batch-exists process.
  result<std::set<std::string>> held_among(const std::vector<object_info>& objects);

  std::string base_;
  proton_store_options options_;
  proton_bridge bridge_;
  std::mutex mutex_;
  bool prepared_ = false;
  std::map<std::string, int64_t> expected_sizes_;
  /// Each question gets the whole answer of its process: at most 100 oids.
  request_gatherer<object_info, std::set<std::string>> presence_questions_{
    oids_per_process,
    [](const std::set<std::string>& held, const std::vector<object_info>&) { return held; }};
};

} // namespace ferry
