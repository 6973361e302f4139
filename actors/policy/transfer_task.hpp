#pragma once

#include "actors/policy/engine_config.hpp"
#include "protocol/status.hpp"
#include "store/journal/transfer_record.hpp"
#include "store/os/sha256.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace ferry {

/// The work of one attempt at one object, in steps, without actors: a worker
/// calls start(), then step() until it reports `finished`, then complete().
/// Every byte is counted and hashed as it moves; complete() reports success
/// only for content that has the object's exact size and SHA-256.
class transfer_task {
public:
  struct step_result {
    /// Bytes moved by this step.
    int64_t bytes = 0;
    /// Set when this step made more data durable: the new resume point.
    std::optional<int64_t> synced;
    /// All bytes moved; call complete().
    bool finished = false;
  };

  virtual ~transfer_task() = default;

  /// Prepares the attempt. `resume_from` and `resume_state` are the
  /// journal's resume point and the store's state kept with it; returns the
  /// offset the attempt actually continues from.
  virtual result<int64_t> start(int64_t resume_from, const std::string& resume_state) = 0;

  /// The store's state for resuming this attempt's write, for the journal
  /// (object_writer::resume_state); empty for downloads.
  virtual std::string resume_state() const { return {}; }

  /// Moves the next chunk.
  virtual result<step_result> step() = 0;

  /// Verifies and publishes the object. For downloads, returns the path of
  /// the verified file; for uploads, an empty string.
  virtual result<std::string> complete() = 0;

  /// True when start() found the store already holding the object, so
  /// this attempt wrote nothing (a copy counts it as present, not copied).
  virtual bool found_present() const { return false; }

  /// True when the partial data of this attempt must not be resumed (it
  /// failed verification); the next attempt starts from byte 0.
  bool discard_partial() const { return discard_partial_; }

protected:
  bool discard_partial_ = false;
};

/// Creates the task for one object that moves it to or from `store` (the
/// engine's store, or the store for the job's server action): an upload
/// from the local file `path`, a download, or a copy from config.source.
/// `known_absent` (copies only): this run found `store` without the object,
/// so the copy writes without asking it again. `named_in` (downloads
/// only): the directory the verified file is renamed into (same
/// filesystem); empty: config.download_dir.
std::unique_ptr<transfer_task>
make_transfer_task(const engine_config& config, std::shared_ptr<object_store> store,
                   const std::string& oid, direction dir, int64_t size, const std::string& path,
                   bool known_absent = false, const std::filesystem::path& named_in = {});

/// Clears what earlier agents left in `download_dir`: verified files git-lfs
/// never picked up (it died after `complete`) and partial downloads nothing
/// will resume. Keeps `<oid>.part` for each oid in `resumable` (downloads
/// the journal still has active). Call it only while holding the
/// repository's journal, so no other agent is using the directory.
/// Returns how many entries were removed.
size_t prune_download_dir(const std::filesystem::path& download_dir,
                          const std::set<std::string>& resumable);

/// Checks an upload source path: it must resolve (after symlinks) to a
/// regular file under one of `roots`. Returns the resolved path.
result<std::filesystem::path> check_upload_path(const std::string& path,
                                                const std::vector<std::filesystem::path>& roots);

} // namespace ferry
