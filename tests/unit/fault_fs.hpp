#pragma once

// A failing disk, for tests. The test executable that links fault_fs.cpp
// defines write, pwrite, pwrite64, fsync, fdatasync, syncfs and renameat
// itself, so every call
// to them in the process, from Ferry's stores and from librocksdb.so alike
// (ELF symbol interposition), passes through this layer on its way to the C
// library's own functions (found with dlsym(RTLD_NEXT)). While an
// injected_fault is alive, the calls it matches fail as a full or failing
// disk would: ENOSPC, EIO, or a write that stores only part of its bytes.
//
// A call matches when it is of the planned kind and the path of its
// descriptor (/proc/self/fd/N) contains the planned text, so a test can fail
// one store's partial files, or one database's files only. Calls made
// through stdio (RocksDB's info LOG) do not pass here. Only test_store
// links it; ferry never does, and production code has no seam for it.

#include <string>
#include <vector>

namespace ferry::testing {

/// The calls a fault applies to.
enum class fault_call {
  /// write, pwrite, pwrite64.
  write,
  /// fsync, fdatasync, syncfs.
  sync,
};

/// What a matched call does instead of its work.
enum class fault_effect {
  /// Fails with ENOSPC.
  no_space,
  /// Fails with EIO.
  io_error,
  /// Writes the first half of its bytes (all of a single byte) and returns
  /// that count, as a write that reaches the end of the free space does.
  /// Write calls only.
  short_write,
};

struct fault_plan {
  fault_call call = fault_call::write;
  /// Only descriptors whose path contains this (empty: every descriptor).
  std::string path_part;
  fault_effect effect = fault_effect::no_space;
  /// Matching calls let through before the first fault.
  int after = 0;
  /// How many matching calls fault before the rest pass again; 0: every
  /// one from then on (a full disk stays full until the fault is disarmed).
  int times = 0;
};

/// The counters of one armed fault (defined in fault_fs.cpp).
struct armed_fault;

/// Arms one fault for its lifetime. Several may be armed at once; each
/// counts every call it matches, and of those due to fault, the one armed
/// first decides what the call does.
class injected_fault {
public:
  explicit injected_fault(fault_plan plan);
  ~injected_fault();
  injected_fault(const injected_fault&) = delete;
  injected_fault& operator=(const injected_fault&) = delete;

  /// Matching calls so far, faulted or not.
  int calls() const;
  /// Matching calls it made fail or write short.
  int faults() const;

private:
  armed_fault* armed_;
};

/// One call seen by a call_recorder, or an event the test noted itself.
struct recorded_call {
  /// "fsync", "fdatasync", "syncfs", "renameat", or the test's own word.
  std::string what;
  /// The descriptor's path; for renameat the new name.
  std::string path;
  /// The call's return value (0 for noted events).
  int result = 0;
};

/// Records, in order, every sync call and every renameat the process makes
/// while it lives, each once the call has returned, so a test can prove
/// what was durable before something else happened. One at a time.
class call_recorder {
public:
  call_recorder();
  ~call_recorder();
  call_recorder(const call_recorder&) = delete;
  call_recorder& operator=(const call_recorder&) = delete;

  /// Adds an event of the test's own to the same sequence.
  void note(const std::string& what, const std::string& path);

  std::vector<recorded_call> calls() const;
};

} // namespace ferry::testing
