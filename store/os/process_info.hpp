#pragma once

// What /proc tells about another process of the same user (Linux only).

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>

namespace ferry {

/// The value of `name` in the environment process `pid` started with, if
/// set there (and readable).
std::optional<std::string> environment_of(pid_t pid, const std::string& name);

/// The parent of process `pid`; 0 if unknown.
pid_t parent_of(pid_t pid);

/// The program process `pid` runs; empty if unknown.
std::filesystem::path executable_of(pid_t pid);

} // namespace ferry
