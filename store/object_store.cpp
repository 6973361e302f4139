#include "store/object_store.hpp"

#include "store/os/chunk_buffer.hpp"
#include "store/os/sha256.hpp"

#include <vector>

namespace ferry {

status object_writer::check_resumed(const char*, size_t) { return status::success(); }

status object_store::prepare() { return status::success(); }

result<publish_failures> object_store::sync_published() { return publish_failures{}; }

result<bool> read_back_matches(object_store& store, const object_info& object) {
  auto info = store.stat(object.oid);
  if (!info)
    return info.error();
  if (!*info || (*info)->size != object.size)
    return false;
  auto reader = store.open_read(object.oid, 0);
  if (!reader)
    return reader.error();
  // Sized to the object: a present 4 KiB object costs no 1 MiB buffer.
  chunk_buffer buffer{buffer_size_for(object.size, size_t{1} << 20)};
  sha256 check;
  for (;;) {
    auto got = (*reader)->read(buffer.data(), buffer.size());
    if (!got)
      return got.error();
    if (*got == 0)
      break;
    check.update(buffer.data(), *got);
  }
  return check.bytes() == object.size && check.hex_digest() == object.oid;
}

result<bool> object_store::holds(const object_info& object) {
  return read_back_matches(*this, object);
}

result<std::vector<bool>> object_store::holds_each(const std::vector<object_info>& objects) {
  std::vector<bool> held;
  held.reserve(objects.size());
  for (auto& object : objects) {
    auto answer = holds(object);
    if (!answer)
      return answer.error();
    held.push_back(*answer);
  }
  return held;
}

result<std::vector<std::optional<int64_t>>>
object_store::sizes_of(const std::vector<object_info>& objects) {
  std::vector<std::optional<int64_t>> sizes;
  sizes.reserve(objects.size());
  for (auto& object : objects) {
    auto info = stat(object.oid);
    if (!info)
      return info.error();
    sizes.push_back(*info ? std::optional<int64_t>{(*info)->size} : std::nullopt);
  }
  return sizes;
}

result<std::vector<std::optional<int64_t>>>
sizes_from_holds(object_store& store, const std::vector<object_info>& objects) {
  auto held = store.holds_each(objects);
  if (!held)
    return held.error();
  std::vector<std::optional<int64_t>> sizes;
  sizes.reserve(objects.size());
  for (size_t i = 0; i < objects.size(); ++i)
    sizes.push_back((*held)[i] ? std::optional<int64_t>{objects[i].size} : std::nullopt);
  return sizes;
}

status object_store::expect_reads(const std::vector<object_info>&) { return status::success(); }

} // namespace ferry
