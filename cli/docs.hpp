#pragma once

// Man pages and shell completions written from the command line's own
// definition (CLI11), so they cannot drift from --help. The build runs
// `ferry --write-docs DIR`; the results are installed (CMakeLists.txt).

#include <CLI/CLI.hpp>

#include <filesystem>

namespace ferry::cli {

/// Writes DIR/man1/ferry.1, DIR/man1/ferry-<command>.1 for each visible
/// command, DIR/completions/ferry.bash and DIR/completions/_ferry (zsh).
/// The pages carry the date of SOURCE_DATE_EPOCH when it is set, so two
/// builds of one commit write the same bytes. Returns the exit code.
int write_docs(const CLI::App& app, const std::filesystem::path& dir);

} // namespace ferry::cli
