#include "store/os/partial_file.hpp"

#include "store/os/chunk_buffer.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

namespace ferry {

partial_file::partial_file(fd_guard fd, std::string name, std::string oid, int64_t size)
    : fd_(std::move(fd)), name_(std::move(name)), oid_(std::move(oid)), size_(size) {}

status partial_file::resume(int64_t length) {
  sha256 hash;
  // Sized to the prefix and left unzeroed: zeroing 1 MiB for each of many
  // small objects costs more than the copy.
  chunk_buffer buffer{buffer_size_for(length, size_t{1} << 20)};
  int64_t done = 0;
  while (done < length) {
    auto want =
      static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(buffer.size()), length - done));
    ssize_t n = ::pread(fd_.get(), buffer.data(), want, done);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return from_errno(errno, "cannot read " + name_);
    }
    if (n == 0)
      return {errc::io_error, "cannot resume: " + name_ + " has fewer than the " +
                                std::to_string(length) + " bytes already transferred"};
    hash.update(buffer.data(), static_cast<size_t>(n));
    done += n;
  }
  if (::ftruncate(fd_.get(), length) != 0)
    return from_errno(errno, "cannot truncate " + name_);
  hash_ = std::move(hash);
  offset_ = length;
  return status::success();
}

status partial_file::append(const char* data, size_t size) {
  if (static_cast<uint64_t>(size) > static_cast<uint64_t>(size_ - offset_))
    return {errc::size_mismatch, "object " + oid_ + ": writing " + std::to_string(size) +
                                   " bytes at offset " + std::to_string(offset_) +
                                   " exceeds its declared size of " + std::to_string(size_) +
                                   " bytes"};
  while (size > 0) {
    ssize_t n = ::pwrite(fd_.get(), data, size, offset_);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return from_errno(errno, "cannot write " + name_);
    }
    // Hash exactly what reached the file so a failed write leaves both in step.
    hash_.update(data, static_cast<size_t>(n));
    offset_ += n;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return status::success();
}

status partial_file::sync_data() {
  if (::fdatasync(fd_.get()) != 0)
    return from_errno(errno, "cannot sync " + name_);
  return status::success();
}

status partial_file::sync() {
  if (::fsync(fd_.get()) != 0)
    return from_errno(errno, "cannot sync " + name_);
  return status::success();
}

status partial_file::verify() {
  if (offset_ != size_)
    return {errc::size_mismatch, "object " + oid_ + ": received " + std::to_string(offset_) +
                                   " bytes, expected " + std::to_string(size_)};
  std::string digest = hash_.hex_digest();
  if (digest != oid_)
    return {errc::hash_mismatch, "object " + oid_ + ": content hashes to " + digest};
  return status::success();
}

result<int64_t> partial_file::file_size() const {
  struct ::stat info {};
  if (::fstat(fd_.get(), &info) != 0)
    return from_errno(errno, "cannot stat " + name_);
  return static_cast<int64_t>(info.st_size);
}

} // namespace ferry
