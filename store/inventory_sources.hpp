#pragma once

// Where a migration learns which objects exist when the source store cannot
// list them (an LFS server has no listing): a repository's history, or a
// file of `oid size` lines. Both stream: memory stays bounded however many
// objects there are.

#include "protocol/status.hpp"
#include "store/object_store.hpp"

#include <filesystem>
#include <functional>

namespace ferry {

/// Calls `visit` for every LFS object a pointer names in any blob reachable
/// from any ref of the repository at `repo` (a working tree or a bare
/// repository): `git rev-list --objects --all`, blobs of at most
/// protocol::max_pointer_bytes by `git cat-file --batch-check`, their
/// contents by `git cat-file --batch`, each parsed as a pointer. The same
/// oid may be visited more than once. Git runs without a shell; its failure
/// is errc::config_error with git's message. Stops early when `visit`
/// returns false.
status read_repo_pointers(const std::filesystem::path& repo,
                          const std::function<bool(const object_info&)>& visit);

/// Calls `visit` for each line `<oid> <size>` of `file` (blank lines and
/// lines starting with '#' skipped; oids in any case, reported lower-case).
/// A malformed line is errc::config_error naming the file and the line
/// number, and nothing after it is visited.
status read_inventory_file(const std::filesystem::path& file,
                           const std::function<bool(const object_info&)>& visit);

} // namespace ferry
