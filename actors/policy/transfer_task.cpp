#include "actors/policy/transfer_task.hpp"

#include "store/object_store.hpp"
#include "store/os/chunk_buffer.hpp"
#include "store/os/file_io.hpp"
#include "store/os/hash_worker.hpp"
#include "store/os/partial_file.hpp"

#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <optional>
#include <system_error>

namespace fs = std::filesystem;

namespace ferry {

namespace {

/// Reads up to `size` bytes, retrying on EINTR and short reads; fewer bytes
/// only at end of file.
result<size_t> read_full(int fd, char* buffer, size_t size, const std::string& what) {
  size_t done = 0;
  while (done < size) {
    auto n = ::read(fd, buffer + done, size - done);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return from_errno(errno, "cannot read " + what);
    }
    if (n == 0)
      break;
    done += static_cast<size_t>(n);
  }
  return done;
}

/// Objects from this size on are hashed on a second thread while they are
/// written; below it a thread handover costs more than it saves.
constexpr int64_t overlap_bytes = int64_t{8} << 20;

bool is_within(const fs::path& path, const fs::path& root) {
  auto p = path.begin();
  for (auto r = root.begin(); r != root.end(); ++r, ++p) {
    if (r->empty() && std::next(r) == root.end())
      break; // a trailing separator in root
    if (p == path.end() || *p != *r)
      return false;
  }
  return true;
}

// -- sources of a write to the store -----------------------------------------

/// Where the bytes of a write come from, read once from byte 0 to the end.
class byte_source {
public:
  virtual ~byte_source() = default;
  /// Opens the source and checks it has `size` bytes.
  virtual status open() = 0;
  /// Reads up to `capacity` bytes; fewer only at the end.
  virtual result<size_t> read(char* buffer, size_t capacity) = 0;
  /// "local file /x", "object <oid> in <store>", for messages.
  const std::string& name() const { return name_; }

protected:
  std::string name_;
};

/// An upload's file in the repository.
class local_file_source final : public byte_source {
public:
  local_file_source(const engine_config& config, std::string oid, int64_t size, std::string path)
      : config_(config), oid_(std::move(oid)), size_(size), path_(std::move(path)) {
    name_ = "local file " + path_;
  }

  status open() override {
    auto checked = check_upload_path(path_, config_.upload_roots);
    if (!checked)
      return checked.error();
    name_ = "local file " + checked->string();
    fd_.reset(::open(checked->c_str(), O_RDONLY | O_CLOEXEC));
    if (fd_.get() < 0)
      return from_errno(errno, "cannot open " + name_);
    struct stat info {};
    if (::fstat(fd_.get(), &info) != 0)
      return from_errno(errno, "cannot stat " + name_);
    if (info.st_size != size_)
      return status{errc::size_mismatch, name_ + " has " + std::to_string(info.st_size) +
                                           " bytes but git-lfs announced " + std::to_string(size_) +
                                           " for " + oid_ + "; nothing was stored"};
    return status::success();
  }

  result<size_t> read(char* buffer, size_t capacity) override {
    return read_full(fd_.get(), buffer, capacity, name_);
  }

private:
  const engine_config& config_;
  std::string oid_;
  int64_t size_;
  std::string path_;
  fd_guard fd_;
};

/// A migration's source: the object as another store holds it.
class store_source final : public byte_source {
public:
  store_source(std::shared_ptr<object_store> store, std::string oid, int64_t size)
      : store_(std::move(store)), oid_(std::move(oid)), size_(size) {
    name_ = "object " + oid_ + " in " + store_->describe();
  }

  status open() override {
    if (auto announced = store_->expect_reads({{oid_, size_}}); !announced)
      return announced;
    auto reader = store_->open_read(oid_, 0);
    if (!reader) {
      if (reader.error().code() == errc::not_found)
        return {errc::not_found,
                reader.error().message() + " (it was listed, so it vanished since)"};
      return reader.error();
    }
    reader_ = std::move(*reader);
    if (reader_->size() != size_)
      return status{errc::size_mismatch, name_ + " has " + std::to_string(reader_->size()) +
                                           " bytes, not the " + std::to_string(size_) +
                                           " it was listed with; nothing was stored"};
    return status::success();
  }

  result<size_t> read(char* buffer, size_t capacity) override {
    size_t done = 0;
    while (done < capacity) {
      auto got = reader_->read(buffer + done, capacity - done);
      if (!got)
        return got.error();
      if (*got == 0)
        break;
      done += *got;
    }
    return done;
  }

private:
  std::shared_ptr<object_store> store_;
  std::string oid_;
  int64_t size_;
  std::unique_ptr<object_reader> reader_;
};

// -- upload and copy: a source into the store ---------------------------------

class store_write_task final : public transfer_task {
public:
  store_write_task(const engine_config& config, std::shared_ptr<object_store> store,
                   std::string oid, int64_t size, std::unique_ptr<byte_source> source,
                   bool known_absent = false)
      : config_(config), store_(std::move(store)), oid_(std::move(oid)), size_(size),
        source_(std::move(source)), known_absent_(known_absent),
        buffer_(buffer_size_for(size, config.chunk_bytes)) {}

  result<int64_t> start(int64_t resume_from, const std::string& resume_state) override {
    if (auto opened = source_->open(); !opened)
      return opened;
    // A folder's holds() reads back and hashes a present object: asked
    // once per run is enough.
    result<bool> present = false;
    if (!known_absent_)
      present = store_->holds({oid_, size_});
    if (!present)
      return present.error();
    if (*present) {
      // Another writer finished the object; what an interrupted write of
      // ours kept (an S3 multipart upload) is let go rather than left behind.
      if (!resume_state.empty()) {
        if (auto stale = store_->open_write(oid_, size_, resume_state); stale)
          (*stale)->abort();
      }
      present_ = true;
      offset_ = size_;
      return offset_;
    }
    std::optional<std::string> resume;
    if (resume_from > 0 || !resume_state.empty())
      resume = resume_state;
    auto writer = store_->open_write(oid_, size_, resume);
    if (!writer)
      return writer.error();
    writer_ = std::move(*writer);
    offset_ = std::min(writer_->offset(), size_);
    synced_ = offset_;
    if (writer_->sync_every() > 0)
      sync_bytes_ = std::min(sync_bytes_, writer_->sync_every());
    // The store may check what it kept against the source while we hash it.
    if (auto st = hash_kept_prefix(); !st) {
      if (st.code() != errc::hash_mismatch)
        return st;
      writer_->abort();
      discard_partial_ = true;
      return status{errc::io_error, "the data kept from an interrupted upload of " + oid_ +
                                      " does not match " + source_->name() +
                                      "; starting over from byte 0: " + st.message()};
    }
    return offset_;
  }

  std::string resume_state() const override { return writer_ ? writer_->resume_state() : ""; }

  bool found_present() const override { return present_; }

  result<step_result> step() override {
    step_result out;
    auto want =
      static_cast<size_t>(std::min<int64_t>(size_ - offset_, static_cast<int64_t>(buffer_.size())));
    if (want > 0) {
      auto got = source_->read(buffer_.data(), want);
      if (!got)
        return got.error();
      if (*got < want)
        return status{errc::size_mismatch, source_->name() + " shrank while being read"};
      if (auto st = hash_and_write(*got); !st)
        return st;
      offset_ += static_cast<int64_t>(*got);
      unsynced_ += static_cast<int64_t>(*got);
      out.bytes = static_cast<int64_t>(*got);
    }
    if (unsynced_ >= sync_bytes_ && offset_ < size_) {
      auto durable = writer_->sync();
      if (!durable)
        return durable.error();
      unsynced_ = 0;
      if (*durable > synced_) {
        synced_ = *durable;
        out.synced = synced_;
      }
    }
    out.finished = offset_ >= size_;
    return out;
  }

  result<std::string> complete() override {
    if (present_)
      return std::string{};
    // The source must end exactly at the announced size and hash to the oid;
    // otherwise nothing may be published.
    char extra = 0;
    auto more = source_->read(&extra, 1);
    if (!more)
      return more.error();
    auto digest = hash_.hex_digest();
    if (*more != 0 || digest != oid_) {
      writer_->abort();
      if (*more != 0)
        return status{errc::size_mismatch, source_->name() + " is longer than the " +
                                             std::to_string(size_) +
                                             " bytes announced; nothing was stored"};
      return status{errc::hash_mismatch, source_->name() + " does not match oid " + oid_ +
                                           " (its content hashes to " + digest +
                                           "); nothing was stored"};
    }
    auto st = writer_->commit();
    if (st.code() == errc::hash_mismatch || st.code() == errc::size_mismatch) {
      // The source verified, so the store's copy went bad (for example an
      // interrupted write's partial data). Retry from byte 0.
      discard_partial_ = true;
      return status{errc::io_error,
                    "stored bytes failed verification, retrying from the start: " + st.message()};
    }
    if (!st)
      return st;
    return std::string{};
  }

private:
  /// Hashes the first `size` bytes of the buffer and writes them to the
  /// store; a large object's chunk is hashed on a second thread while it is
  /// written. Returns once both are done, so offset_ (and any synced point
  /// after it) covers only bytes written and hashed.
  status hash_and_write(size_t size) {
    if (size_ < overlap_bytes) {
      hash_.update(buffer_.data(), size);
      return writer_->write(buffer_.data(), size);
    }
    if (!hasher_)
      hasher_ = std::make_unique<hash_worker>(hash_);
    hasher_->start(buffer_.data(), size);
    auto written = writer_->write(buffer_.data(), size);
    hasher_->wait();
    return written;
  }

  /// Reads the first offset_ bytes of the source into the hash, showing
  /// them to the writer, so the resumed write continues at offset_.
  status hash_kept_prefix() {
    int64_t left = offset_;
    while (left > 0) {
      auto want =
        static_cast<size_t>(std::min<int64_t>(left, static_cast<int64_t>(buffer_.size())));
      auto got = source_->read(buffer_.data(), want);
      if (!got)
        return got.error();
      if (*got < want)
        return {errc::size_mismatch, source_->name() + " is shorter than the " +
                                       std::to_string(offset_) + " bytes kept"};
      hash_.update(buffer_.data(), *got);
      if (auto st = writer_->check_resumed(buffer_.data(), *got); !st)
        return st;
      left -= static_cast<int64_t>(*got);
    }
    return status::success();
  }

  const engine_config& config_;
  std::shared_ptr<object_store> store_;
  std::string oid_;
  int64_t size_;
  std::unique_ptr<byte_source> source_;
  /// This run found the store without the object: start() does not ask.
  bool known_absent_ = false;
  bool present_ = false;
  chunk_buffer buffer_;
  std::unique_ptr<object_writer> writer_;
  sha256 hash_;
  /// Hashes into hash_ beside the writes of an object of overlap_bytes or
  /// more; declared after hash_, so it stops first.
  std::unique_ptr<hash_worker> hasher_;
  int64_t offset_ = 0;
  /// The store's durable point, as its last sync() reported.
  int64_t synced_ = 0;
  /// Bytes between syncs: the engine's interval, or less when the writer asks.
  int64_t sync_bytes_ = config_.sync_bytes;
  int64_t unsynced_ = 0;
};

// -- download -----------------------------------------------------------------

class download_task final : public transfer_task {
public:
  download_task(const engine_config& config, std::shared_ptr<object_store> store, std::string oid,
                int64_t size, const fs::path& named_in)
      : config_(config), store_(std::move(store)), oid_(std::move(oid)), size_(size),
        buffer_(buffer_size_for(size, config.chunk_bytes)) {
    partial_ = config_.download_dir / (oid_ + ".part");
    final_ = (named_in.empty() ? config_.download_dir : named_in) / oid_;
    partial_name_ = "download file " + partial_.string();
  }

  result<int64_t> start(int64_t resume_from, const std::string& /*resume_state*/) override {
    std::error_code ec;
    for (const auto& dir : {config_.download_dir, final_.parent_path()}) {
      fs::create_directories(dir, ec);
      if (ec)
        return status{errc::io_error,
                      "cannot create download directory " + dir.string() + ": " + ec.message()};
    }
    // The file goes to git-lfs, into .git/lfs/objects: it gets the mode it
    // always had, not Ferry's private umask.
    fd_guard fd(open_or_create(AT_FDCWD, partial_.c_str(), O_RDWR, shared_mode(0644)));
    if (fd.get() < 0)
      return from_errno(errno, "cannot open " + partial_name_);
    file_.emplace(std::move(fd), partial_name_, oid_, size_);
    auto local = file_->file_size();
    if (!local)
      return local.error();
    // Keep only what the journal recorded as durable.
    int64_t kept = (resume_from > 0 && *local >= resume_from) ? std::min(resume_from, size_) : 0;
    if (auto st = file_->resume(kept); !st)
      return st;
    auto reader = store_->open_read(oid_, kept);
    if (!reader) {
      // Bytes already kept stay for the next attempt; an empty file goes.
      if (kept == 0 || reader.error().code() == errc::not_found)
        drop_partial();
      // The store's own words: which store, and what its server answered.
      return reader.error();
    }
    reader_ = std::move(*reader);
    if (reader_->size() != size_) {
      drop_partial();
      return status{errc::size_mismatch, "the store's copy of " + oid_ + " has " +
                                           std::to_string(reader_->size()) + " bytes, expected " +
                                           std::to_string(size_) + " (truncated or corrupt)"};
    }
    return kept;
  }

  result<step_result> step() override {
    step_result out;
    int64_t offset = file_->offset();
    if (offset < size_) {
      auto want = static_cast<size_t>(
        std::min<int64_t>(size_ - offset, static_cast<int64_t>(buffer_.size())));
      auto got = reader_->read(buffer_.data(), want);
      if (!got)
        return got.error();
      if (*got == 0)
        return status{errc::io_error, "the store's copy of " + oid_ + " ended after " +
                                        std::to_string(offset) + " of " + std::to_string(size_) +
                                        " bytes"};
      if (auto st = file_->append(buffer_.data(), *got); !st)
        return st;
      unsynced_ += static_cast<int64_t>(*got);
      out.bytes = static_cast<int64_t>(*got);
    }
    if (unsynced_ >= config_.sync_bytes && file_->offset() < size_) {
      if (auto st = file_->sync_data(); !st)
        return st;
      unsynced_ = 0;
      out.synced = file_->offset();
    }
    out.finished = file_->offset() >= size_;
    return out;
  }

  result<std::string> complete() override {
    auto digest = file_->hex_digest();
    if (digest != oid_) {
      drop_partial();
      // Bytes from a server may have been damaged on the way, so another
      // attempt can succeed; a local copy reads the same every time.
      if (!store_->endpoint().empty())
        return status{errc::io_error, "the bytes received for " + oid_ + " from " +
                                        store_->describe() + " hash to " + digest +
                                        " (damaged on the way?); retrying from the start"};
      return status{errc::hash_mismatch, "the store's copy of " + oid_ +
                                           " is corrupt (its content hashes to " + digest +
                                           "); nothing was written"};
    }
    if (auto st = file_->sync(); !st)
      return st;
    file_->close();
    if (::rename(partial_.c_str(), final_.c_str()) != 0)
      return from_errno(errno, "cannot rename " + partial_name_);
    return final_.string();
  }

private:
  /// Removes the partial download: nothing of it may be resumed.
  void drop_partial() {
    file_->close();
    ::unlink(partial_.c_str());
    discard_partial_ = true;
  }

  const engine_config& config_;
  std::shared_ptr<object_store> store_;
  std::string oid_;
  int64_t size_;
  chunk_buffer buffer_;
  fs::path partial_;
  fs::path final_;
  std::string partial_name_;
  /// Open from start() on.
  std::optional<partial_file> file_;
  std::unique_ptr<object_reader> reader_;
  int64_t unsynced_ = 0;
};

} // namespace

size_t prune_download_dir(const fs::path& download_dir, const std::set<std::string>& resumable) {
  std::error_code ec;
  size_t removed = 0;
  for (fs::directory_iterator it{download_dir, ec}, end; !ec && it != end; it.increment(ec)) {
    auto name = it->path().filename().string();
    constexpr std::string_view suffix = ".part";
    bool part = name.size() > suffix.size() &&
                name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
    if (part && resumable.count(name.substr(0, name.size() - suffix.size())) != 0)
      continue;
    std::error_code ignored;
    if (fs::is_regular_file(it->path(), ignored) && fs::remove(it->path(), ignored))
      ++removed;
  }
  return removed;
}

result<fs::path> check_upload_path(const std::string& path, const std::vector<fs::path>& roots) {
  if (path.empty())
    return status{errc::path_rejected, "upload request has an empty path"};
  std::error_code ec;
  auto resolved = fs::canonical(fs::path{path}, ec);
  if (ec)
    return status{errc::not_found, "upload source " + path + " cannot be opened: " + ec.message()};
  bool allowed = false;
  for (auto& root : roots) {
    if (root.empty())
      continue; // an empty root would contain everything
    auto canonical_root = fs::weakly_canonical(root, ec);
    if (!ec && is_within(resolved, canonical_root)) {
      allowed = true;
      break;
    }
  }
  if (!allowed)
    return status{errc::path_rejected,
                  "upload source " + path + " is outside the repository; refusing to read it"};
  if (!fs::is_regular_file(resolved, ec))
    return status{errc::path_rejected, "upload source " + path + " is not a regular file"};
  return resolved;
}

std::unique_ptr<transfer_task> make_transfer_task(const engine_config& config,
                                                  std::shared_ptr<object_store> store,
                                                  const std::string& oid, direction dir,
                                                  int64_t size, const std::string& path,
                                                  bool known_absent, const fs::path& named_in) {
  switch (dir) {
    case direction::upload:
      return std::make_unique<store_write_task>(
        config, std::move(store), oid, size,
        std::make_unique<local_file_source>(config, oid, size, path));
    case direction::copy:
      return std::make_unique<store_write_task>(
        config, std::move(store), oid, size,
        std::make_unique<store_source>(config.source, oid, size), known_absent);
    case direction::download:
      break;
  }
  return std::make_unique<download_task>(config, std::move(store), oid, size, named_in);
}

} // namespace ferry
