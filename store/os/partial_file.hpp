#pragma once

// The file an object is written into before it is published.

#include "protocol/status.hpp"
#include "store/os/file_io.hpp"
#include "store/os/sha256.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

namespace ferry {

/// An object's bytes on their way into a file: appended while they are
/// hashed, synced, and checked against the object's size and SHA-256 at the
/// end. Who owns the file decides its name, place, locking and publishing;
/// this keeps the descriptor, the running hash and the count of bytes in it.
/// Writes and syncs are plain pwrite, fdatasync and fsync calls.
class partial_file {
public:
  /// Takes over `fd`, open for reading and writing, of the file that is to
  /// hold object `oid` of `size` bytes. `name` names the file in messages
  /// ("/x/.<oid>.ferry-partial", "download file /y/<oid>.part").
  partial_file(fd_guard fd, std::string name, std::string oid, int64_t size);

  /// Keeps the first `length` bytes of the file (0: none) and cuts off the
  /// rest; they are hashed, and appending continues after them. A file
  /// shorter than `length` is errc::io_error ("cannot resume: ...").
  status resume(int64_t length);

  /// Writes `size` bytes after those already there. Bytes beyond the
  /// object's size are errc::size_mismatch and nothing is written. On a
  /// failed write, offset() and the hash count exactly what reached the file.
  status append(const char* data, size_t size);

  /// Makes the bytes durable (fdatasync): enough for a resume point.
  status sync_data();
  /// Makes the bytes and the file's metadata durable (fsync): before publishing.
  status sync();

  /// Whether exactly the object's size was written and it hashes to the
  /// oid: errc::size_mismatch or errc::hash_mismatch otherwise. Ends the hash.
  status verify();
  /// The SHA-256 of the bytes written, in hex. Ends the hash.
  std::string hex_digest() { return hash_.hex_digest(); }

  /// The size of the file itself, as fstat sees it.
  result<int64_t> file_size() const;

  /// Bytes in the file: those kept by resume() and those appended since.
  int64_t offset() const { return offset_; }
  int fd() const { return fd_.get(); }
  bool is_open() const { return fd_.get() >= 0; }
  /// Closes the file (it stays on disk).
  void close() { fd_.reset(); }
  const std::string& name() const { return name_; }

private:
  fd_guard fd_;
  std::string name_;
  std::string oid_;
  int64_t size_;
  int64_t offset_ = 0;
  sha256 hash_;
};

} // namespace ferry
