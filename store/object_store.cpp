#include "store/object_store.hpp"

#include "store/sha256.hpp"

#include <vector>

namespace ferry {

status object_writer::check_resumed(const char*, size_t) {
  return status::success();
}

status object_store::prepare() {
  return status::success();
}

result<bool> read_back_matches(object_store& store, const object_info& object) {
  auto info = store.stat(object.oid);
  if (!info)
    return info.error();
  if (!*info || (*info)->size != object.size)
    return false;
  auto reader = store.open_read(object.oid, 0);
  if (!reader)
    return reader.error();
  std::vector<char> buffer(1 << 20);
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

status object_store::expect_reads(const std::vector<object_info>&) {
  return status::success();
}

} // namespace ferry
