#include "store/journal/rocksdb_support.hpp"

#include <rocksdb/env.h>

#include <sys/time.h>

#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <memory>
#include <mutex>
#include <system_error>

namespace ferry {

namespace {

/// Keeps `<dir>/LOG` and one older `LOG.old` of about this size each.
constexpr uintmax_t log_file_limit = 1 << 20;

/// RocksDB's diagnostics, in `<dir>/LOG`, written through stdio. RocksDB's
/// own file logger stops the process with a failed assertion when it writes
/// again after a write failed, as on a full disk (Debian builds it with
/// assertions on); a write this one cannot make is dropped, so a full disk
/// is a status from the database, never an abort.
class stdio_logger final : public rocksdb::Logger {
public:
  stdio_logger(const std::filesystem::path& dir, rocksdb::InfoLogLevel level)
      : rocksdb::Logger(level) {
    auto path = dir / "LOG";
    std::error_code ec;
    if (std::filesystem::file_size(path, ec) > log_file_limit && !ec)
      std::filesystem::rename(path, dir / "LOG.old", ec);
    file_ = std::fopen(path.c_str(), "ae");
  }
  ~stdio_logger() override {
    if (file_ != nullptr)
      std::fclose(file_);
  }

  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    if (file_ == nullptr)
      return;
    ::timeval now{};
    ::gettimeofday(&now, nullptr);
    std::tm local{};
    ::localtime_r(&now.tv_sec, &local);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y/%m/%d-%H:%M:%S", &local);
    std::lock_guard lock{mutex_};
    std::fprintf(file_, "%s.%06ld ", stamp, static_cast<long>(now.tv_usec));
    std::vfprintf(file_, format, ap);
    std::fputc('\n', file_);
    std::fflush(file_);
    // A failed write leaves the stream's error flag set; the next line tries again.
    std::clearerr(file_);
  }

private:
  std::FILE* file_ = nullptr;
  std::mutex mutex_;
};

} // namespace

rocksdb::Options small_db_options(const std::filesystem::path& dir) {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.info_log_level = rocksdb::WARN_LEVEL;
  options.info_log = std::make_shared<stdio_logger>(dir, options.info_log_level);
  options.max_manifest_file_size = 4 << 20;
  // RocksDB's default memtable of 64 MiB, one filling and one flushing, let
  // a migration's two databases hold up to 256 MiB of records already
  // written (at 200,000 objects its peak RSS was 161 MiB); this halves it.
  options.write_buffer_size = 32 << 20;
  return options;
}

status from_rocksdb(const rocksdb::Status& s, const std::string& context) {
  if (s.ok())
    return status::success();
  errc code = errc::io_error;
  if (s.IsCorruption())
    code = errc::corrupt_record;
  else if (s.IsNoSpace())
    code = errc::no_space;
  return {code, context + ": " + s.ToString()};
}

result<std::filesystem::path> set_aside_damaged(const std::filesystem::path& dir) {
  std::time_t now = std::time(nullptr);
  std::tm utc{};
  ::gmtime_r(&now, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &utc);
  auto base = dir.string() + ".damaged-" + stamp;
  // Two set asides within a second get distinct names.
  for (int n = 1; n < 100; ++n) {
    std::filesystem::path aside = n == 1 ? base : base + "-" + std::to_string(n);
    std::error_code ec;
    if (std::filesystem::exists(aside, ec) || ec)
      continue;
    std::filesystem::rename(dir, aside, ec);
    if (ec)
      return from_errno(ec.value(), "cannot move " + dir.string() + " to " + aside.string());
    return aside;
  }
  return status{errc::io_error, "cannot find a free name to move " + dir.string() + " to"};
}

bool held_by_another_process(const rocksdb::Status& s) {
  return s.IsIOError() && s.ToString().find("/LOCK") != std::string::npos;
}

} // namespace ferry
