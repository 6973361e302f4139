#include "store/folder/folder_store.hpp"

#include "protocol/transfer_protocol.hpp"
#include "store/os/file_io.hpp"
#include "store/os/partial_file.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <mutex>
#include <optional>
#include <system_error>
#include <utility>
#include <vector>

namespace ferry {

namespace fs = std::filesystem;

namespace {

// "cannot <what> <path>: <reason>"
status os_error(int err, const std::string& what, const fs::path& path) {
  return from_errno(err, "cannot " + what + " " + path.string());
}

status check_oid(const std::string& oid) {
  if (protocol::is_valid_oid(oid))
    return status::success();
  // Hostile input may be long; the start is enough to recognise it.
  std::string shown = oid.size() > 80 ? oid.substr(0, 80) + "..." : oid;
  return {errc::invalid_request,
          "invalid object id '" + shown + "': expected 64 lower-case hex characters"};
}

bool is_hex_pair(const std::string& name) {
  auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); };
  return name.size() == 2 && hex(name[0]) && hex(name[1]);
}

int close_fd(int fd) {
  // On Linux the descriptor is released even when close fails with EINTR,
  // so it must not be retried.
  return ::close(fd);
}

status fsync_dir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return os_error(errno, "open directory", dir);
  status result;
  if (::fsync(fd) != 0)
    result = os_error(errno, "sync directory", dir);
  close_fd(fd);
  return result;
}

// Why a path below the root is refused. Following a link there would let
// whoever can write into a shared store make Ferry read, or write, any file
// its user can.
std::string link_refused(const fs::path& path) {
  return path.string() + " is a symbolic link, which Ferry does not follow inside a store";
}

// Opens the directory `name` in `parent`; a symbolic link there fails
// (ENOTDIR) instead of being followed.
int open_subdir(int parent, const std::string& name) {
  return ::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

bool is_symlink_at(int parent, const std::string& name) {
  struct ::stat info {};
  return ::fstatat(parent, name.c_str(), &info, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(info.st_mode);
}

// An object's directory <root>/<oid[0:2]>/<oid[2:4]>, open.
struct object_dir {
  fd_guard fd;
  fs::path path;
};

// Opens an object's directory level by level from the root, following no
// symbolic link below the root (the root itself may be one: stores live on
// symlinked mounts). A level that is a link is errc::path_rejected. Without
// `create`, a missing level or one that is not a directory is
// errc::not_found. With `create`, missing levels are made (with the mode
// shared stores always had); their entries become durable with the objects
// written into them, in folder_store::sync_published() or a writer's first
// sync().
result<object_dir> open_object_dir(const fs::path& root, const std::string& oid, bool create) {
  fd_guard dir{::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (dir.get() < 0) {
    if (!create && (errno == ENOENT || errno == ENOTDIR))
      return status{errc::not_found, "no store folder " + root.string()};
    return os_error(errno, "open store folder", root);
  }
  fs::path path = root;
  for (const std::string& name : {oid.substr(0, 2), oid.substr(2, 2)}) {
    path /= name;
    fd_guard level{open_subdir(dir.get(), name)};
    int err = level.get() < 0 ? errno : 0;
    bool made = false;
    if (err == ENOENT && create) {
      made = ::mkdirat(dir.get(), name.c_str(), 0755) == 0;
      if (!made && errno != EEXIST)
        return os_error(errno, "create directory", path);
      level = fd_guard{open_subdir(dir.get(), name)};
      err = level.get() < 0 ? errno : 0;
    }
    if (level.get() < 0) {
      // ENOENT: nothing is there, not even a link.
      if (err != ENOENT && is_symlink_at(dir.get(), name))
        return status{errc::path_rejected, link_refused(path)};
      if (!create && (err == ENOENT || err == ENOTDIR))
        return status{errc::not_found, "no directory " + path.string()};
      return os_error(err, "open directory", path);
    }
    if (made)
      (void)::fchmod(level.get(), shared_mode(0755)); // best effort, as in open_or_create
    dir = std::move(level);
  }
  return object_dir{std::move(dir), std::move(path)};
}

// Which file an open descriptor is: fixed for as long as it stays open, so
// one fstat() serves every later check.
struct file_identity {
  dev_t device = 0;
  ino_t inode = 0;
};

file_identity identity_of(const struct ::stat& info) { return {info.st_dev, info.st_ino}; }

// Whether `name` in `dir` still names the file `file`; false when it names
// nothing or another file.
result<bool> names_file(int dir, const std::string& name, const fs::path& path,
                        file_identity file) {
  struct ::stat at_path {};
  if (::fstatat(dir, name.c_str(), &at_path, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT)
      return false;
    return os_error(errno, "stat", path);
  }
  return file.device == at_path.st_dev && file.inode == at_path.st_ino;
}

// The names in a directory, read through a descriptor it takes over.
class directory_names {
public:
  explicit directory_names(int fd) : dir_(::fdopendir(fd)) {
    if (dir_ == nullptr) {
      error_ = errno;
      close_fd(fd);
    }
  }
  ~directory_names() {
    if (dir_ != nullptr)
      ::closedir(dir_);
  }
  directory_names(const directory_names&) = delete;
  directory_names& operator=(const directory_names&) = delete;

  int fd() const { return ::dirfd(dir_); }

  // The next name but "." and ".."; false at the end or on a failure,
  // whose errno error() then holds.
  bool next(std::string& name) {
    if (dir_ == nullptr)
      return false;
    for (;;) {
      errno = 0;
      const ::dirent* entry = ::readdir(dir_);
      if (entry == nullptr) {
        error_ = errno;
        return false;
      }
      name = entry->d_name;
      if (name != "." && name != "..")
        return true;
    }
  }

  int error() const { return error_; }

private:
  DIR* dir_;
  int error_ = 0;
};

// Entries can vanish while list() walks (a concurrent remove); that is not
// an error.
status listing_error(int err, const fs::path& path) {
  if (err == 0 || err == ENOENT)
    return status::success();
  return os_error(err, "list", path);
}

// Opens the shard directory `name` that list() found in `parent`; -1 when
// the walk skips it: not a hex pair, gone, or not a directory (a file, or a
// symbolic link, which is not followed).
result<int> open_listed_shard(directory_names& parent, const std::string& name,
                              const fs::path& path) {
  if (!is_hex_pair(name))
    return -1;
  int fd = open_subdir(parent.fd(), name);
  if (fd < 0 && errno != ENOTDIR && errno != ENOENT)
    return os_error(errno, "list", path);
  return fd;
}

class folder_reader final : public object_reader {
public:
  folder_reader(int fd, int64_t size, int64_t offset, fs::path path)
      : fd_(fd), size_(size), position_(offset), path_(std::move(path)) {}
  ~folder_reader() override { close_fd(fd_); }
  folder_reader(const folder_reader&) = delete;
  folder_reader& operator=(const folder_reader&) = delete;

  int64_t size() const override { return size_; }

  result<size_t> read(char* buffer, size_t capacity) override {
    for (;;) {
      ssize_t n = ::pread(fd_, buffer, capacity, position_);
      if (n >= 0) {
        position_ += n;
        return static_cast<size_t>(n);
      }
      if (errno != EINTR)
        return os_error(errno, "read", path_);
    }
  }

private:
  int fd_;
  int64_t size_;
  int64_t position_;
  fs::path path_;
};

// An object's partial file, open and locked, in its directory. Works through
// the directory's descriptor, so a level of the path replaced by a symbolic
// link after open_write cannot redirect the rename, the unlink or the checks.
class partial_object {
public:
  partial_object(partial_file file, file_identity identity, std::string oid, object_dir dir,
                 std::string partial_name)
      : file_(std::move(file)), identity_(identity), oid_(std::move(oid)), dir_(std::move(dir)),
        partial_name_(std::move(partial_name)), partial_(dir_.path / partial_name_) {}

  partial_file& file() { return file_; }
  const partial_file& file() const { return file_; }
  const std::string& oid() const { return oid_; }
  const fs::path& dir_path() const { return dir_.path; }
  int dir_fd() const { return dir_.fd.get(); }
  const fs::path& partial_path() const { return partial_; }
  /// The filesystem the file, and so its directory, is on.
  dev_t device() const { return identity_.device; }

  // Renames the verified partial file onto the object's name. The lock is
  // held until after the rename: a writer waiting for it then finds the
  // name gone or new instead of truncating the published file. A symbolic
  // link at the object's name is replaced, never written through.
  status publish() {
    // rename() works on the name, so the name must still be the verified file.
    if (auto st = still_ours(); !st.ok()) {
      file_.close();
      return st;
    }
    if (::renameat(dir_fd(), partial_name_.c_str(), dir_fd(), oid_.c_str()) != 0) {
      status st = os_error(errno, "rename " + partial_.string() + " to", dir_.path / oid_);
      discard();
      return st;
    }
    file_.close();
    return status::success();
  }

  // Unlinks before closing so no other writer can lock the file in between
  // and then lose it; a file that replaced ours at the name is left alone.
  void discard() {
    if (still_ours().ok())
      ::unlinkat(dir_fd(), partial_name_.c_str(), 0);
    file_.close();
  }

  status still_ours() const {
    auto ours = names_file(dir_fd(), partial_name_, partial_, identity_);
    if (!ours.ok())
      return ours.error();
    if (*ours)
      return status::success();
    return {errc::io_error, "object " + oid_ + ": " + partial_.string() +
                              " was removed or replaced while being written; nothing published"};
  }

private:
  partial_file file_;
  file_identity identity_;
  std::string oid_;
  object_dir dir_;
  std::string partial_name_;
  fs::path partial_;
};

} // namespace

// Verified objects waiting for folder_store::sync_published(); filled by
// writers on any thread.
class folder_publish_queue {
public:
  void add(partial_object object) {
    std::lock_guard<std::mutex> guard{mutex_};
    objects_.push_back(std::move(object));
  }

  std::vector<partial_object> take() {
    std::lock_guard<std::mutex> guard{mutex_};
    return std::exchange(objects_, {});
  }

private:
  std::mutex mutex_;
  std::vector<partial_object> objects_;
};

namespace {

class folder_writer final : public object_writer {
public:
  folder_writer(partial_object object, int64_t size, std::shared_ptr<folder_publish_queue> queue)
      : object_(std::move(object)), size_(size), queue_(std::move(queue)) {}

  // Without commit() or abort() the partial file stays for a later resume.
  ~folder_writer() override = default;
  folder_writer(const folder_writer&) = delete;
  folder_writer& operator=(const folder_writer&) = delete;

  // After commit() the whole object is held.
  int64_t offset() const override { return object_ ? object_->file().offset() : size_; }

  status write(const char* data, size_t size) override {
    if (!open())
      return finished_error();
    return object_->file().append(data, size);
  }

  result<int64_t> sync() override {
    if (!open())
      return finished_error();
    if (auto st = object_->file().sync_data(); !st) {
      // The kernel may have dropped the pages it failed to write while a
      // read still finds them cached, so the file can no longer be trusted:
      // a resume starts over rather than build on it.
      object_->discard();
      return st;
    }
    // The partial file's own entry, and the directories just made for it,
    // must survive a crash too: one filesystem sync covers them all.
    if (!dir_synced_) {
      if (::syncfs(object_->dir_fd()) != 0)
        return os_error(errno, "sync the filesystem of", object_->dir_path());
      dir_synced_ = true;
    }
    return object_->file().offset();
  }

  // Verifies, then leaves the file, still locked, to the store's next
  // sync_published(), which syncs the bytes of a whole group at once before
  // it renames them.
  status commit() override {
    if (!open())
      return finished_error();
    auto& file = object_->file();
    // The exclusive lock means nobody else wrote through this file, so the
    // running hash describes its content.
    if (auto st = file.verify(); !st) {
      object_->discard();
      return st;
    }
    // flock is advisory: a tool outside Ferry may still have cut the file short.
    auto on_disk = file.file_size();
    if (!on_disk) {
      object_->discard();
      return on_disk.error();
    }
    if (*on_disk != size_) {
      object_->discard();
      return {errc::size_mismatch,
              "object " + object_->oid() + ": " + object_->partial_path().string() + " holds " +
                std::to_string(*on_disk) + " bytes, expected " + std::to_string(size_)};
    }
    // Checked again at the rename; a file replaced already is refused now.
    if (auto st = object_->still_ours(); !st.ok()) {
      object_->file().close();
      return st;
    }
    queue_->add(std::move(*object_));
    object_.reset();
    return status::success();
  }

  void abort() override {
    if (open())
      object_->discard();
  }

private:
  bool open() { return object_ && object_->file().is_open(); }

  status finished_error() const { return {errc::internal, "writer already committed or aborted"}; }

  std::optional<partial_object> object_;
  int64_t size_;
  std::shared_ptr<folder_publish_queue> queue_;
  bool dir_synced_ = false;
};

} // namespace

result<std::unique_ptr<folder_store>> folder_store::open(const fs::path& root, bool create) {
  if (!root.is_absolute())
    return status{errc::config_error,
                  "store folder '" + root.string() + "' must be an absolute path"};
  std::error_code ec;
  auto type = fs::status(root, ec).type();
  if (type != fs::file_type::not_found && type != fs::file_type::directory && !ec)
    return status{errc::config_error,
                  "store folder " + root.string() + " exists but is not a directory"};
  // "/srv/lfs/" and "/srv/lfs" are one store and must describe alike.
  fs::path normal = root.lexically_normal();
  if (!normal.has_filename() && normal != normal.root_path())
    normal = normal.parent_path();
  if (!create) {
    if (type == fs::file_type::not_found || type == fs::file_type::directory)
      return std::unique_ptr<folder_store>(new folder_store(normal, true));
    // Hidden from us (EACCES): whether it exists cannot be told.
    return os_error(ec.value(), "open store folder", root);
  }
  // A store is shared on purpose: its folders get the user's umask.
  if (auto st = make_directories(root, shared_mode(0777)); !st)
    return st.with_context("cannot create store folder " + root.string());
  // A root created here must itself be durable before objects are reported
  // stored in it.
  if (type == fs::file_type::not_found && normal != normal.root_path())
    if (auto st = fsync_dir(normal.parent_path()); !st)
      return st;
  return std::unique_ptr<folder_store>(new folder_store(normal, false));
}

folder_store::folder_store(fs::path root, bool root_may_be_missing)
    : root_(std::move(root)), root_may_be_missing_(root_may_be_missing),
      publish_queue_(std::make_shared<folder_publish_queue>()) {}

std::string folder_store::describe() const { return "file://" + root_.string(); }

namespace {

// The filesystems of the store's root and of each object in `group` (the
// same one, unless something is mounted inside the store), each with a
// descriptor on it to sync through.
class group_filesystems {
public:
  status open(const fs::path& root, const std::vector<partial_object>& group) {
    root_ = fd_guard{::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
    if (root_.get() < 0)
      return os_error(errno, "open store folder", root);
    struct ::stat info {};
    if (::fstat(root_.get(), &info) != 0)
      return os_error(errno, "stat store folder", root);
    add(info.st_dev, root_.get());
    for (auto& object : group)
      add(object.device(), object.dir_fd());
    return status::success();
  }

  status sync(const fs::path& root) const {
    for (auto& [device, fd] : filesystems_)
      if (::syncfs(fd) != 0)
        return os_error(errno, "sync the filesystem of store folder", root);
    return status::success();
  }

private:
  void add(dev_t device, int fd) {
    for (auto& known : filesystems_)
      if (known.first == device)
        return;
    filesystems_.emplace_back(device, fd);
  }

  fd_guard root_;
  std::vector<std::pair<dev_t, int>> filesystems_;
};

} // namespace

result<publish_failures> folder_store::sync_published() {
  auto group = publish_queue_->take();
  // Cleared first: names left unsynced by a failed call are synced now.
  bool names_owed = names_unsynced_.exchange(false, std::memory_order_acq_rel);
  if (group.empty() && !names_owed)
    return publish_failures{};
  // Found once for both syncs below; the objects' descriptors keep them open.
  group_filesystems filesystems;
  if (auto st = filesystems.open(root_, group); !st) {
    names_unsynced_.store(names_owed, std::memory_order_release);
    for (auto& object : group)
      object.discard();
    return st;
  }
  // First the bytes of the whole group: a name must never stand for bytes
  // not on disk. A lone object (an agent's upload) syncs its own file, as a
  // filesystem sync would also wait for every other writer's data there.
  if (!group.empty()) {
    auto bytes_synced = group.size() == 1 ? group.front().file().sync() : filesystems.sync(root_);
    if (auto st = bytes_synced; !st) {
      names_unsynced_.store(names_owed, std::memory_order_release);
      // The kernel may have dropped pages it failed to write (see sync()).
      for (auto& object : group)
        object.discard();
      return st;
    }
  }
  publish_failures failed;
  for (auto& object : group)
    if (auto st = object.publish(); !st)
      failed.emplace_back(object.oid(), std::move(st));
  // Then the names.
  if (auto st = filesystems.sync(root_); !st) {
    names_unsynced_.store(true, std::memory_order_release);
    return st;
  }
  return failed;
}

fs::path folder_store::object_path(const std::string& oid) const {
  // An invalid oid has no path: nothing outside the root can be formed.
  if (!protocol::is_valid_oid(oid))
    return {};
  return root_ / oid.substr(0, 2) / oid.substr(2, 2) / oid;
}

fs::path folder_store::partial_path(const std::string& oid) const {
  if (!protocol::is_valid_oid(oid))
    return {};
  return root_ / oid.substr(0, 2) / oid.substr(2, 2) / partial_name(oid);
}

std::string folder_store::partial_name(const std::string& oid) {
  return "." + oid + ".ferry-partial";
}

status folder_store::not_found(const std::string& oid, const std::string& why) const {
  return {errc::not_found,
          "object " + oid + " not found in " + describe() + (why.empty() ? "" : " (" + why + ")")};
}

result<std::optional<object_info>> folder_store::stat(const std::string& oid) {
  if (auto st = check_oid(oid); !st.ok())
    return st;
  auto dir = open_object_dir(root_, oid, false);
  if (!dir) {
    // A missing level or one that is a link or junk: the object cannot be there.
    if (dir.error().code() == errc::not_found || dir.error().code() == errc::path_rejected)
      return std::optional<object_info>{};
    return dir.error();
  }
  struct ::stat info {};
  if (::fstatat(dir->fd.get(), oid.c_str(), &info, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT)
      return std::optional<object_info>{};
    return os_error(errno, "stat", dir->path / oid);
  }
  // A link is no object, whatever it leads to; its target's size stays unknown.
  if (!S_ISREG(info.st_mode))
    return std::optional<object_info>{};
  return std::optional<object_info>{object_info{oid, static_cast<int64_t>(info.st_size)}};
}

result<std::unique_ptr<object_reader>> folder_store::open_read(const std::string& oid,
                                                               int64_t offset) {
  if (auto st = check_oid(oid); !st.ok())
    return st;
  auto dir = open_object_dir(root_, oid, false);
  if (!dir) {
    if (dir.error().code() == errc::not_found)
      return not_found(oid);
    if (dir.error().code() == errc::path_rejected)
      return not_found(oid, dir.error().message());
    return dir.error();
  }
  fs::path path = dir->path / oid;
  // O_NONBLOCK: a FIFO planted at the name must not hang the open; regular
  // files ignore it.
  int fd = ::openat(dir->fd.get(), oid.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ELOOP)
      return not_found(oid, link_refused(path));
    if (errno == ENOENT)
      return not_found(oid);
    return os_error(errno, "open", path);
  }
  struct ::stat info {};
  if (::fstat(fd, &info) != 0) {
    status st = os_error(errno, "stat", path);
    close_fd(fd);
    return st;
  }
  if (!S_ISREG(info.st_mode)) {
    close_fd(fd);
    return not_found(oid, path.string() + " is not a regular file");
  }
  auto size = static_cast<int64_t>(info.st_size);
  if (offset < 0) {
    close_fd(fd);
    return status{errc::invalid_request,
                  "object " + oid + ": negative offset " + std::to_string(offset)};
  }
  if (offset > size) {
    close_fd(fd);
    return status{errc::size_mismatch, "object " + oid + " has " + std::to_string(size) +
                                         " bytes, fewer than the " + std::to_string(offset) +
                                         " already read (truncated or corrupt)"};
  }
  return std::unique_ptr<object_reader>(new folder_reader(fd, size, offset, path));
}

result<std::unique_ptr<object_writer>>
folder_store::open_write(const std::string& oid, int64_t size,
                         const std::optional<std::string>& resume) {
  if (auto st = check_oid(oid); !st.ok())
    return st;
  if (size < 0)
    return status{errc::invalid_request,
                  "object " + oid + ": negative size " + std::to_string(size)};
  auto dir = open_object_dir(root_, oid, true);
  if (!dir)
    return dir.error().with_context("cannot store object " + oid);

  const std::string name = partial_name(oid);
  const fs::path partial = dir->path / name;
  // No O_TRUNC: the file may belong to a live writer until we hold its lock.
  int fd = -1;
  file_identity identity;
  for (int attempt = 0; fd < 0; ++attempt) {
    if (attempt == 3)
      return status{errc::busy, "object " + oid + ": " + partial.string() +
                                  " keeps being replaced by another writer; try again"};
    // Objects are renamed from here, so the file gets the mode they always had.
    fd = open_or_create(dir->fd.get(), name.c_str(), O_RDWR, shared_mode(0644));
    if (fd < 0) {
      if (errno == ELOOP)
        return status{errc::path_rejected,
                      "cannot store object " + oid + ": " + link_refused(partial)};
      return os_error(errno, "open", partial);
    }
    struct ::stat info {};
    if (::fstat(fd, &info) != 0) {
      status st = os_error(errno, "stat", partial);
      close_fd(fd);
      return st;
    }
    if (!S_ISREG(info.st_mode)) {
      close_fd(fd);
      return status{errc::path_rejected, "cannot store object " + oid + ": " + partial.string() +
                                           " is not a regular file"};
    }
    identity = identity_of(info);
    int locked;
    do
      locked = ::flock(fd, LOCK_EX | LOCK_NB);
    while (locked != 0 && errno == EINTR);
    if (locked != 0) {
      int err = errno;
      close_fd(fd);
      if (err == EWOULDBLOCK)
        return status{errc::busy, "object " + oid + " is being written to " + describe() +
                                    " by another process; try again"};
      return os_error(err, "lock", partial);
    }
    // Between our open and our lock, the previous holder may have renamed the
    // file to its final name (or removed it); writing there would alter a
    // published object.
    auto ours = names_file(dir->fd.get(), name, partial, identity);
    if (!ours.ok() || !*ours) {
      close_fd(fd);
      fd = -1;
      if (!ours.ok())
        return ours.error();
    }
  }

  partial_file file(fd_guard(fd), partial.string(), oid, size);
  int64_t kept = 0;
  if (resume) {
    auto on_disk = file.file_size();
    if (!on_disk)
      return on_disk.error();
    // Bytes beyond the declared size cannot belong to this object.
    kept = std::min(*on_disk, size);
  }
  if (auto st = file.resume(kept); !st.ok())
    return st;
  return std::unique_ptr<object_writer>(new folder_writer(
    partial_object{std::move(file), identity, oid, std::move(*dir), name}, size, publish_queue_));
}

status folder_store::list(const std::function<bool(const object_info&)>& visit) {
  int root = ::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) {
    // ENOTDIR: the missing root lies below a file.
    if (root_may_be_missing_ && (errno == ENOENT || errno == ENOTDIR))
      return status::success();
    return os_error(errno, "list", root_);
  }
  directory_names top(root);
  for (std::string first; top.next(first);) {
    auto first_fd = open_listed_shard(top, first, root_ / first);
    if (!first_fd)
      return first_fd.error();
    if (*first_fd < 0)
      continue;
    directory_names mid(*first_fd);
    for (std::string second; mid.next(second);) {
      auto second_fd = open_listed_shard(mid, second, root_ / first / second);
      if (!second_fd)
        return second_fd.error();
      if (*second_fd < 0)
        continue;
      std::string prefix = first + second;
      directory_names leaf(*second_fd);
      for (std::string name; leaf.next(name);) {
        if (!protocol::is_valid_oid(name) || name.compare(0, 4, prefix) != 0)
          continue;
        // Links are skipped: the size of what they lead to is no object's.
        struct ::stat info {};
        if (::fstatat(leaf.fd(), name.c_str(), &info, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISREG(info.st_mode))
          continue;
        if (!visit(object_info{name, static_cast<int64_t>(info.st_size)}))
          return status::success();
      }
      if (auto st = listing_error(leaf.error(), root_ / first / second); !st.ok())
        return st;
    }
    if (auto st = listing_error(mid.error(), root_ / first); !st.ok())
      return st;
  }
  return listing_error(top.error(), root_);
}

status folder_store::remove(const std::string& oid) {
  if (auto st = check_oid(oid); !st.ok())
    return st;
  auto dir = open_object_dir(root_, oid, false);
  if (!dir) {
    // Nothing there, or nothing Ferry would read as the object.
    if (dir.error().code() == errc::not_found || dir.error().code() == errc::path_rejected)
      return status::success();
    return dir.error();
  }
  // A link at the name is removed itself, never its target.
  if (::unlinkat(dir->fd.get(), oid.c_str(), 0) != 0 && errno != ENOENT)
    return os_error(errno, "remove", dir->path / oid);
  return status::success();
}

} // namespace ferry
