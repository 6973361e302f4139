#pragma once

// git-lfs runs lfs.concurrenttransfers agents per repository at once unless
// lfs.customtransfer.ferry.concurrent is false, and a journal has one writer.
// The first agent takes the repository's journal; each other one takes the
// first free numbered slot inside it (<journal>/slots/<n>).

#include "protocol/status.hpp"
#include "store/journal/journal_db.hpp"

#include <filesystem>
#include <memory>
#include <vector>

namespace ferry {

/// Slots per journal, the repository's own (slot 0) included: enough for
/// a push and a fetch at once at git-lfs's default of 8 agents each, and
/// then some.
constexpr int journal_slot_count = 64;

/// The directory of slot `n` under `base` (a journal, or an agent's download
/// directory); slot 0 is `base` itself.
std::filesystem::path slot_dir(const std::filesystem::path& base, int n);

struct journal_slot {
  int number = 0;
  std::filesystem::path dir;
  std::unique_ptr<journal_db> db;
};

/// Opens the first slot of `journal` no other writer holds. errc::busy only
/// when every slot is held.
result<journal_slot> open_free_slot(const std::filesystem::path& journal,
                                    const journal_db::options& opts);

/// The slots of `journal` that have been used (slot 0 first), for readers.
std::vector<std::filesystem::path> used_slot_dirs(const std::filesystem::path& journal);

} // namespace ferry
