#pragma once

#include <spdlog/logger.h>

#include <filesystem>
#include <memory>
#include <string>

namespace ferry {

/// The process-wide logger. Logs go to stderr and, once configured, a log
/// file; never to stdout, which carries the transfer protocol.
std::shared_ptr<spdlog::logger> log();

/// Sends warnings and worse to stderr and everything at `level` or worse to
/// `file` (rotated at 5 MiB, 3 files kept). An empty path logs to stderr only.
/// Returns an error message, empty on success.
std::string configure_logging(const std::string& level, const std::filesystem::path& file);

} // namespace ferry
