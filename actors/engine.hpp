#pragma once

#include "actors/engine_config.hpp"
#include "actors/protocol_io.hpp"
#include "store/journal_db.hpp"

#include <memory>
#include <string>

namespace ferry {

struct agent_options {
  engine_config config;
  /// The repository's journal, opened for writing.
  std::shared_ptr<journal_db> journal;
  /// Longest request line accepted; longer lines are answered with an error.
  size_t max_line_bytes = 1 << 20;
  /// Where requests come from (stdin in the agent).
  int input_fd = 0;
  /// Where replies go (stdout in the agent).
  line_writer write;
};

/// Runs the custom transfer agent until git-lfs sends terminate or closes
/// the input: recovers interrupted transfers from the journal, then starts
/// the journal, rate limiter, supervisor, protocol IO and coordinator actors
/// and a thread that reads request lines. Returns the process exit code.
int run_agent(agent_options options);

} // namespace ferry
