#include "fault_fs.hpp"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <vector>

namespace ferry::testing {

struct armed_fault {
  fault_plan plan;
  int calls = 0;
  int faults = 0;
};

namespace {

// Constant-initialised, so that calls made before main() or after it see
// an empty layer.
std::mutex armed_mutex;
std::atomic<int> armed_count{0};

std::vector<armed_fault*>& armed_list() {
  static auto* list = new std::vector<armed_fault*>; // never destroyed: writes may follow exit
  return *list;
}

std::string path_of(int fd) {
  char link[64];
  std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  char target[PATH_MAX];
  ssize_t n = ::readlink(link, target, sizeof target);
  return n > 0 ? std::string(target, static_cast<size_t>(n)) : std::string{};
}

// What a call on `fd` does instead of its work, if an armed fault says so.
std::optional<fault_effect> due(fault_call call, int fd) {
  if (armed_count.load(std::memory_order_acquire) == 0)
    return std::nullopt;
  std::string path = path_of(fd);
  std::lock_guard lock{armed_mutex};
  std::optional<fault_effect> effect;
  for (armed_fault* fault : armed_list()) {
    const fault_plan& plan = fault->plan;
    if (plan.call != call || path.find(plan.path_part) == std::string::npos)
      continue;
    int seen = fault->calls++;
    bool fires = seen >= plan.after && (plan.times == 0 || seen < plan.after + plan.times);
    if (fires && !effect) {
      effect = plan.effect;
      ++fault->faults;
    }
  }
  return effect;
}

// The C library's own function `name`, the next definition after ours.
template <class Function>
Function* next_definition(const char* name) {
  void* found = ::dlsym(RTLD_NEXT, name);
  if (found == nullptr) {
    std::fprintf(stderr, "fault_fs: no %s after the test's own: %s\n", name, ::dlerror());
    std::abort();
  }
  return reinterpret_cast<Function*>(found);
}

int fail_with(fault_effect effect) {
  errno = effect == fault_effect::no_space ? ENOSPC : EIO;
  return -1;
}

// A write's bytes: all of them, or half when the fault writes short.
template <class Write, class... Where>
ssize_t faulty_write(Write* write, int fd, const void* data, size_t size, Where... where) {
  auto effect = due(fault_call::write, fd);
  if (!effect)
    return write(fd, data, size, where...);
  if (*effect == fault_effect::short_write)
    return write(fd, data, size > 1 ? size / 2 : size, where...);
  return fail_with(*effect);
}

std::mutex recorder_mutex;
std::atomic<bool> recording{false};

std::vector<recorded_call>& recorded() {
  static auto* list = new std::vector<recorded_call>; // never destroyed, as armed_list()
  return *list;
}

void record(const char* what, std::string path, int result) {
  if (!recording.load(std::memory_order_acquire))
    return;
  std::lock_guard lock{recorder_mutex};
  recorded().push_back({what, std::move(path), result});
}

template <class Sync>
int faulty_sync(Sync* sync, const char* what, int fd) {
  int result = -1;
  if (auto effect = due(fault_call::sync, fd); effect && *effect != fault_effect::short_write)
    result = fail_with(*effect);
  else
    result = sync(fd);
  int saved = errno;
  record(what, path_of(fd), result);
  errno = saved;
  return result;
}

} // namespace

injected_fault::injected_fault(fault_plan plan) : armed_(new armed_fault{std::move(plan)}) {
  std::lock_guard lock{armed_mutex};
  armed_list().push_back(armed_);
  armed_count.fetch_add(1, std::memory_order_release);
}

injected_fault::~injected_fault() {
  {
    std::lock_guard lock{armed_mutex};
    auto& list = armed_list();
    list.erase(std::remove(list.begin(), list.end(), armed_), list.end());
    armed_count.fetch_sub(1, std::memory_order_release);
  }
  delete armed_;
}

call_recorder::call_recorder() {
  std::lock_guard lock{recorder_mutex};
  recorded().clear();
  recording.store(true, std::memory_order_release);
}

call_recorder::~call_recorder() { recording.store(false, std::memory_order_release); }

void call_recorder::note(const std::string& what, const std::string& path) {
  std::lock_guard lock{recorder_mutex};
  recorded().push_back({what, path, 0});
}

std::vector<recorded_call> call_recorder::calls() const {
  std::lock_guard lock{recorder_mutex};
  return recorded();
}

int injected_fault::calls() const {
  std::lock_guard lock{armed_mutex};
  return armed_->calls;
}

int injected_fault::faults() const {
  std::lock_guard lock{armed_mutex};
  return armed_->faults;
}

} // namespace ferry::testing

using ferry::testing::faulty_sync;
using ferry::testing::faulty_write;

// The process's definitions of the calls, which librocksdb.so binds to as
// well as the test's own code.
extern "C" {

ssize_t write(int fd, const void* data, size_t size) {
  static auto* real = ferry::testing::next_definition<ssize_t(int, const void*, size_t)>("write");
  return faulty_write(real, fd, data, size);
}

ssize_t pwrite(int fd, const void* data, size_t size, off_t offset) {
  static auto* real =
    ferry::testing::next_definition<ssize_t(int, const void*, size_t, off_t)>("pwrite");
  return faulty_write(real, fd, data, size, offset);
}

ssize_t pwrite64(int fd, const void* data, size_t size, off64_t offset) {
  static auto* real =
    ferry::testing::next_definition<ssize_t(int, const void*, size_t, off64_t)>("pwrite64");
  return faulty_write(real, fd, data, size, offset);
}

int fsync(int fd) {
  static auto* real = ferry::testing::next_definition<int(int)>("fsync");
  return faulty_sync(real, "fsync", fd);
}

int fdatasync(int fd) {
  static auto* real = ferry::testing::next_definition<int(int)>("fdatasync");
  return faulty_sync(real, "fdatasync", fd);
}

int syncfs(int fd) {
  static auto* real = ferry::testing::next_definition<int(int)>("syncfs");
  return faulty_sync(real, "syncfs", fd);
}

int renameat(int old_dir, const char* old_name, int new_dir, const char* new_name) {
  static auto* real =
    ferry::testing::next_definition<int(int, const char*, int, const char*)>("renameat");
  int result = real(old_dir, old_name, new_dir, new_name);
  int saved = errno;
  ferry::testing::record("renameat", ferry::testing::path_of(new_dir) + "/" + new_name, result);
  errno = saved;
  return result;
}

} // extern "C"
