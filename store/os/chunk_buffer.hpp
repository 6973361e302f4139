#pragma once

#include <cstddef>
#include <memory>

namespace ferry {

/// Heap bytes left uninitialised: a 1-4 MiB transfer buffer is filled by a
/// read before any use, so zeroing it (as std::vector does) only cost time
/// for every small object.
class chunk_buffer {
public:
  chunk_buffer() = default;
  explicit chunk_buffer(size_t size) : bytes_(size ? new char[size] : nullptr), size_(size) {}

  char* data() { return bytes_.get(); }
  const char* data() const { return bytes_.get(); }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

private:
  std::unique_ptr<char[]> bytes_;
  size_t size_ = 0;
};

/// The buffer one object needs: its size, up to `chunk`, at least one byte.
inline size_t buffer_size_for(int64_t object_size, size_t chunk) {
  if (object_size <= 0)
    return 1;
  return static_cast<size_t>(object_size) < chunk ? static_cast<size_t>(object_size) : chunk;
}

} // namespace ferry
