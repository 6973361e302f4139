#pragma once

// What Ferry's two RocksDB databases (the transfer journal and a
// migration's inventory) share: options for a small database, and RocksDB
// statuses in Ferry's taxonomy.

#include "protocol/status.hpp"

#include <rocksdb/options.h>
#include <rocksdb/status.h>

#include <filesystem>
#include <string>

namespace ferry {

/// Options for a small database in `dir` (which exists) created on first
/// use, whose manifest and memtables stay small too. RocksDB's diagnostics go to
/// `<dir>/LOG` (and one `LOG.old`) through a logger that drops what it
/// cannot write: a full disk must not end the process (RocksDB's own logger
/// fails an assertion when it writes again after a failed write).
rocksdb::Options small_db_options(const std::filesystem::path& dir);

/// A RocksDB status as Ferry's: corruption is errc::corrupt_record, a full
/// disk errc::no_space, anything else errc::io_error; `context` leads the
/// message.
status from_rocksdb(const rocksdb::Status& s, const std::string& context);

/// Moves a damaged database out of the way, to `<dir>.damaged-<UTC time>`,
/// so that a new one can be created at `dir`; returns where it went. The
/// damaged one is kept for inspection, never deleted.
result<std::filesystem::path> set_aside_damaged(const std::filesystem::path& dir);

/// True when opening failed because another process holds the database
/// (RocksDB reports its held lock as an IOError naming the LOCK file).
bool held_by_another_process(const rocksdb::Status& s);

} // namespace ferry
