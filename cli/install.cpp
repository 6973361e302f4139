#include "cli/commands.hpp"

#include "config/git_config.hpp"
#include "store/open_store.hpp"

#include <array>
#include <filesystem>
#include <iostream>
#include <utility>

namespace ferry::cli {

namespace {

constexpr const char* agent_name = "ferry";

/// The absolute path of this executable, so git-lfs finds it without PATH.
std::string self_path() {
  std::error_code ec;
  auto path = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string{"ferry"} : path.string();
}

const char* scope(bool global) {
  return global ? "global git config" : "this repository's git config";
}

} // namespace

int run_install(const std::string& store_url, bool global) {
  if (!global) {
    if (auto repo = config::discover_repo(); !repo) {
      std::cerr << "ferry install: " << repo.error().message()
                << "\nRun it inside a repository, or use --global.\n";
      return 2;
    }
  }
  // Opening the store validates the URL and creates the folder, so a typo
  // shows up now rather than on the first push.
  auto store = open_store(store_url);
  if (!store) {
    std::cerr << "ferry install: " << store.error().message() << "\n";
    return 2;
  }
  const std::array<std::pair<const char*, std::string>, 5> entries = {{
    {"lfs.standalonetransferagent", agent_name},
    {"lfs.customtransfer.ferry.path", self_path()},
    {"lfs.customtransfer.ferry.args", "agent"},
    // One agent process per repository: the journal is per repository and
    // the engine schedules its own work.
    {"lfs.customtransfer.ferry.concurrent", "false"},
    {"ferry.store", store_url},
  }};
  for (auto& [key, value] : entries) {
    if (auto st = config::set_git_config(key, value, global); !st) {
      std::cerr << "ferry install: cannot set " << key << ": " << st.message() << "\n";
      return 1;
    }
  }
  std::cout << "ferry is now the git-lfs transfer agent (" << scope(global) << ").\n"
            << "  store: " << (*store)->describe() << "\n"
            << "  agent: " << entries[1].second << " agent\n"
            << "git lfs push / pull move objects through ferry; 'ferry status' shows transfers.\n";
  return 0;
}

int run_uninstall(bool global) {
  auto git = config::read_git_config();
  if (git) {
    auto agent = git->find("lfs.standalonetransferagent");
    if (agent != git->end() && agent->second != agent_name) {
      std::cerr << "ferry uninstall: lfs.standalonetransferagent is '" << agent->second
                << "', not ferry; leaving git config unchanged\n";
      return 1;
    }
  }
  for (const char* key : {"lfs.standalonetransferagent", "lfs.customtransfer.ferry.path",
                          "lfs.customtransfer.ferry.args", "lfs.customtransfer.ferry.concurrent",
                          "ferry.store"}) {
    if (auto st = config::unset_git_config(key, global); !st) {
      std::cerr << "ferry uninstall: cannot remove " << key << ": " << st.message() << "\n";
      return 1;
    }
  }
  std::cout << "ferry removed from " << scope(global) << ".\n";
  return 0;
}

} // namespace ferry::cli
