#pragma once

#include "store/object_store.hpp"

#include <atomic>
#include <filesystem>
#include <memory>

namespace ferry {

class folder_publish_queue;

/// Objects as files under a root folder, laid out as
/// `<root>/<oid[0:2]>/<oid[2:4]>/<oid>` (the layout of git-lfs's own object
/// directory, lfs-folderstore and the Proton Drive bridge).
///
/// A write goes to `<dir>/.<oid>.ferry-partial` in the object's directory
/// and is verified by commit(), which leaves it to sync_published(): that
/// syncs the bytes of every object committed since the last call at once
/// (one syncfs(); a lone object fsyncs its file), renames each over its
/// `<oid>`, then syncs the names (and the directories made for them) with a
/// syncfs(). Readers never see
/// a half-written object, and a name never stands for bytes not yet on disk;
/// a committed object is visible once sync_published() has returned. Names
/// starting with '.' are never listed as objects. A failed sync of a partial
/// file (in sync() or sync_published()) removes it: after one, the kernel may
/// have dropped bytes a read still finds cached, so a resume could not trust
/// them. A
/// failed write keeps it, with the writer's offset at what reached it.
///
/// Nothing below the root is followed when it is a symbolic link: not the
/// two directory levels, not an object, not a partial file (the root itself
/// may be one). Whoever can write into a shared store could otherwise make
/// Ferry read, or write, any file its user can. Such a link is no object:
/// stat() and list() pass over it, open_read() is errc::not_found saying it
/// is a link, and open_write() through a linked level or onto a linked
/// partial file is errc::path_rejected. A commit replaces a link at the
/// object's own name.
///
/// A store is shared on purpose, so what it creates keeps the user's umask
/// (shared_mode()), not Ferry's private one: objects 0644, the two shard
/// levels 0755 and a missing root (with its parents) 0777, each less the umask.
///
/// A writer holds an exclusive flock() on its partial file from open_write
/// until commit, abort or destruction, so a second writer of the same oid (in
/// this or another process) gets errc::busy instead of overwriting its bytes.
class folder_store final : public object_store {
public:
  /// Opens a store rooted at `root`, creating the folder when it is missing.
  /// With `create` false a missing root is left missing, for commands that
  /// must change nothing: the store then holds nothing (stat() and sizes_of()
  /// find no object, list() visits none, open_read() is errc::not_found)
  /// until something else creates the folder.
  static result<std::unique_ptr<folder_store>> open(const std::filesystem::path& root,
                                                    bool create = true);

  std::string describe() const override;
  result<publish_failures> sync_published() override;
  result<std::optional<object_info>> stat(const std::string& oid) override;
  result<std::unique_ptr<object_reader>> open_read(const std::string& oid, int64_t offset) override;
  result<std::unique_ptr<object_writer>>
  open_write(const std::string& oid, int64_t size,
             const std::optional<std::string>& resume) override;
  status list(const std::function<bool(const object_info&)>& visit) override;
  status remove(const std::string& oid) override;

  /// Final path of an object (whether or not it exists).
  std::filesystem::path object_path(const std::string& oid) const;

  /// Path of an object's partial write.
  std::filesystem::path partial_path(const std::string& oid) const;

  const std::filesystem::path& root() const { return root_; }

private:
  static std::string partial_name(const std::string& oid);
  /// errc::not_found for `oid`, with `why` in parentheses when given.
  status not_found(const std::string& oid, const std::string& why = {}) const;

  folder_store(std::filesystem::path root, bool root_may_be_missing);
  std::filesystem::path root_;
  /// Opened without creating a missing root: list() finds it empty.
  bool root_may_be_missing_;
  /// Committed objects, verified and waiting for sync_published().
  std::shared_ptr<folder_publish_queue> publish_queue_;
  /// Published names a failed sync_published() could not make durable.
  std::atomic<bool> names_unsynced_{false};
};

} // namespace ferry
