#include "store/folder_store.hpp"

#include "protocol/transfer_protocol.hpp"
#include "store/file_io.hpp"
#include "store/sha256.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>
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

// Creates `dir` if needed and makes its entry durable in the parent, so a
// committed object's path survives a crash. Also when it already exists:
// another writer may have created it and not synced the parent yet.
status ensure_dir(const fs::path& dir) {
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
    return os_error(errno, "create directory", dir);
  return fsync_dir(dir.parent_path());
}

// Whether `path` still names the file open as `fd`; false when it names
// nothing or another file.
result<bool> names_file(const fs::path& path, int fd) {
  struct ::stat own {};
  struct ::stat at_path {};
  if (::fstat(fd, &own) != 0)
    return os_error(errno, "stat", path);
  if (::lstat(path.c_str(), &at_path) != 0) {
    if (errno == ENOENT)
      return false;
    return os_error(errno, "stat", path);
  }
  return own.st_dev == at_path.st_dev && own.st_ino == at_path.st_ino;
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

class folder_writer final : public object_writer {
public:
  folder_writer(int fd, std::string oid, int64_t size, int64_t offset, sha256 hash,
                fs::path partial, fs::path final_path)
      : fd_(fd), oid_(std::move(oid)), size_(size), written_(offset), hash_(std::move(hash)),
        partial_(std::move(partial)), final_(std::move(final_path)) {}

  // Without commit() or abort() the partial file stays for a later resume.
  ~folder_writer() override {
    if (fd_ >= 0)
      close_fd(fd_);
  }
  folder_writer(const folder_writer&) = delete;
  folder_writer& operator=(const folder_writer&) = delete;

  int64_t offset() const override { return written_; }

  status write(const char* data, size_t size) override {
    if (fd_ < 0)
      return finished_error();
    if (static_cast<uint64_t>(size) > static_cast<uint64_t>(size_ - written_))
      return {errc::size_mismatch, "object " + oid_ + ": writing " + std::to_string(size) +
                                       " bytes at offset " + std::to_string(written_) +
                                       " exceeds its declared size of " +
                                       std::to_string(size_) + " bytes"};
    while (size > 0) {
      ssize_t n = ::pwrite(fd_, data, size, written_);
      if (n < 0) {
        if (errno == EINTR)
          continue;
        return os_error(errno, "write", partial_);
      }
      // Hash exactly what reached the file so a failed write leaves both in step.
      hash_.update(data, static_cast<size_t>(n));
      written_ += n;
      data += n;
      size -= static_cast<size_t>(n);
    }
    return status::success();
  }

  result<int64_t> sync() override {
    if (fd_ < 0)
      return finished_error();
    if (::fdatasync(fd_) != 0)
      return os_error(errno, "sync", partial_);
    // The partial file's own directory entry must survive a crash too.
    if (!dir_synced_) {
      if (auto st = fsync_dir(partial_.parent_path()); !st.ok())
        return st;
      dir_synced_ = true;
    }
    return written_;
  }

  status commit() override {
    if (fd_ < 0)
      return finished_error();
    if (written_ != size_) {
      discard();
      return {errc::size_mismatch, "object " + oid_ + ": received " +
                                       std::to_string(written_) + " bytes, expected " +
                                       std::to_string(size_)};
    }
    // The exclusive lock means nobody else wrote through this file, so the
    // running hash describes its content.
    std::string digest = hash_.hex_digest();
    if (digest != oid_) {
      discard();
      return {errc::hash_mismatch, "object " + oid_ + ": content hashes to " + digest};
    }
    if (::fsync(fd_) != 0) {
      status st = os_error(errno, "sync", partial_);
      discard();
      return st;
    }
    // flock is advisory: a tool outside Ferry may still have cut the file short.
    struct ::stat own {};
    if (::fstat(fd_, &own) != 0) {
      status st = os_error(errno, "stat", partial_);
      discard();
      return st;
    }
    if (static_cast<int64_t>(own.st_size) != size_) {
      discard();
      return {errc::size_mismatch, "object " + oid_ + ": " + partial_.string() + " holds " +
                                       std::to_string(own.st_size) + " bytes, expected " +
                                       std::to_string(size_)};
    }
    // rename() works on the path, so the path must still name the verified file.
    if (auto st = check_still_ours(); !st.ok()) {
      close_fd(fd_);
      fd_ = -1;
      return st;
    }
    // The lock is held until after the rename: a writer waiting for it then
    // finds the path gone or new instead of truncating the published file.
    if (::rename(partial_.c_str(), final_.c_str()) != 0) {
      status st = os_error(errno, "rename " + partial_.string() + " to", final_);
      discard();
      return st;
    }
    // fsync above already reported any write-back error; close adds nothing.
    close_fd(fd_);
    fd_ = -1;
    return fsync_dir(final_.parent_path());
  }

  void abort() override {
    if (fd_ >= 0)
      discard();
  }

private:
  // Unlinks before closing so no other writer can lock the file in between
  // and then lose it; a file that replaced ours at the path is left alone.
  void discard() {
    if (check_still_ours().ok())
      ::unlink(partial_.c_str());
    close_fd(fd_);
    fd_ = -1;
  }

  status check_still_ours() const {
    auto ours = names_file(partial_, fd_);
    if (!ours.ok())
      return ours.error();
    if (*ours)
      return status::success();
    return {errc::io_error, "object " + oid_ + ": " + partial_.string() +
                                " was removed or replaced while being written; nothing published"};
  }

  status finished_error() const {
    return {errc::internal, "object " + oid_ + ": writer already committed or aborted"};
  }

  int fd_;
  std::string oid_;
  int64_t size_;
  int64_t written_;
  sha256 hash_;
  fs::path partial_;
  fs::path final_;
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
  fs::create_directories(root, ec);
  if (ec)
    return os_error(ec.value(), "create store folder", root);
  // A root created here must itself be durable before objects are reported
  // stored in it.
  if (type == fs::file_type::not_found && normal != normal.root_path())
    if (auto st = fsync_dir(normal.parent_path()); !st)
      return st;
  return std::unique_ptr<folder_store>(new folder_store(normal, false));
}

std::string folder_store::describe() const {
  return "file://" + root_.string();
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
  return root_ / oid.substr(0, 2) / oid.substr(2, 2) / ("." + oid + ".ferry-partial");
}

result<std::optional<object_info>> folder_store::stat(const std::string& oid) {
  if (auto st = check_oid(oid); !st.ok())
    return st;
  fs::path path = object_path(oid);
  struct ::stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    // ENOTDIR: junk where a directory should be; the object cannot be there.
    if (errno == ENOENT || errno == ENOTDIR)
      return std::optional<object_info>{};
    return os_error(errno, "stat", path);
  }
  if (!S_ISREG(info.st_mode))
    return std::optional<object_info>{};
  return std::optional<object_info>{object_info{oid, static_cast<int64_t>(info.st_size)}};
}

result<std::unique_ptr<object_reader>> folder_store::open_read(const std::string& oid,
                                                               int64_t offset) {
  if (auto st = check_oid(oid); !st.ok())
    return st;
  fs::path path = object_path(oid);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR)
      return status{errc::not_found, "object " + oid + " not found in " + describe()};
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
    return status{errc::not_found, "object " + oid + " not found in " + describe() + " (" +
                                       path.string() + " is not a regular file)"};
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

result<std::unique_ptr<object_writer>> folder_store::open_write(const std::string& oid,
                                                                int64_t size,
                                                                const std::optional<std::string>& resume) {
  if (auto st = check_oid(oid); !st.ok())
    return st;
  if (size < 0)
    return status{errc::invalid_request,
                  "object " + oid + ": negative size " + std::to_string(size)};
  fs::path final_path = object_path(oid);
  fs::path dir = final_path.parent_path();
  if (auto st = ensure_dir(dir.parent_path()); !st.ok())
    return st;
  if (auto st = ensure_dir(dir); !st.ok())
    return st;

  fs::path partial = partial_path(oid);
  // No O_TRUNC: the file may belong to a live writer until we hold its lock.
  int fd = -1;
  for (int attempt = 0; fd < 0; ++attempt) {
    if (attempt == 3)
      return status{errc::busy, "object " + oid + ": " + partial.string() +
                                    " keeps being replaced by another writer; try again"};
    fd = ::open(partial.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
      return os_error(errno, "open", partial);
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
    auto ours = names_file(partial, fd);
    if (!ours.ok() || !*ours) {
      close_fd(fd);
      fd = -1;
      if (!ours.ok())
        return ours.error();
    }
  }

  if (!resume && ::ftruncate(fd, 0) != 0) {
    status st = os_error(errno, "truncate", partial);
    close_fd(fd);
    return st;
  }

  sha256 hash;
  int64_t offset = 0;
  if (resume) {
    auto fail = [&](status st) {
      close_fd(fd);
      return st;
    };
    struct ::stat info {};
    if (::fstat(fd, &info) != 0)
      return fail(os_error(errno, "stat", partial));
    offset = std::min<int64_t>(static_cast<int64_t>(info.st_size), size);
    // Bytes beyond the declared size cannot belong to this object.
    if (info.st_size > size && ::ftruncate(fd, size) != 0)
      return fail(os_error(errno, "truncate", partial));
    if (auto st = hash_file_prefix(fd, offset, hash, "partial file " + partial.string()); !st.ok())
      return fail(st);
  }
  return std::unique_ptr<object_writer>(
      new folder_writer(fd, oid, size, offset, std::move(hash), partial, final_path));
}

status folder_store::list(const std::function<bool(const object_info&)>& visit) {
  std::error_code ec;
  const fs::directory_iterator end;
  // Entries can vanish while we walk (a concurrent remove); that is not an error.
  auto walk_error = [](const std::error_code& e, const fs::path& path) {
    if (!e || e.value() == ENOENT)
      return status::success();
    return os_error(e.value(), "list", path);
  };

  fs::directory_iterator top(root_, ec);
  // ENOTDIR: the missing root lies below a file.
  if (root_may_be_missing_ && (ec.value() == ENOENT || ec.value() == ENOTDIR))
    return status::success();
  for (; !ec && top != end; top.increment(ec)) {
    std::string first = top->path().filename().string();
    std::error_code sub_ec;
    if (!is_hex_pair(first) || !top->is_directory(sub_ec))
      continue;
    for (fs::directory_iterator mid(top->path(), sub_ec); !sub_ec && mid != end;
         mid.increment(sub_ec)) {
      std::string second = mid->path().filename().string();
      std::error_code leaf_ec;
      if (!is_hex_pair(second) || !mid->is_directory(leaf_ec))
        continue;
      std::string prefix = first + second;
      for (fs::directory_iterator leaf(mid->path(), leaf_ec); !leaf_ec && leaf != end;
           leaf.increment(leaf_ec)) {
        std::string name = leaf->path().filename().string();
        if (!protocol::is_valid_oid(name) || name.compare(0, 4, prefix) != 0)
          continue;
        std::error_code file_ec;
        if (!leaf->is_regular_file(file_ec))
          continue;
        auto size = leaf->file_size(file_ec);
        if (file_ec)
          continue;
        if (!visit(object_info{name, static_cast<int64_t>(size)}))
          return status::success();
      }
      if (auto st = walk_error(leaf_ec, mid->path()); !st.ok())
        return st;
    }
    if (auto st = walk_error(sub_ec, top->path()); !st.ok())
      return st;
  }
  if (ec)
    return os_error(ec.value(), "list", root_);
  return status::success();
}

status folder_store::remove(const std::string& oid) {
  if (auto st = check_oid(oid); !st.ok())
    return st;
  fs::path path = object_path(oid);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT && errno != ENOTDIR)
    return os_error(errno, "remove", path);
  return status::success();
}

} // namespace ferry
