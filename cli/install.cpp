#include "cli/commands.hpp"

#include "config/git_config.hpp"
#include "config/settings.hpp"
#include "store/open_store.hpp"
#include "store/s3/s3_url.hpp"

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

/// Writes `entries` to git config; false (after saying why) on the first
/// failure.
template <size_t N>
bool write_entries(const std::array<std::pair<const char*, std::string>, N>& entries, bool global) {
  for (auto& [key, value] : entries) {
    if (auto st = config::set_git_config(key, value, global); !st) {
      std::cerr << "ferry install: cannot set " << key << ": " << st.message() << "\n";
      return false;
    }
  }
  return true;
}

/// The standalone agent git-lfs would use, as seen from here (any scope);
/// empty when there is none.
std::string standalone_agent() {
  auto git = config::read_git_config();
  if (!git)
    return {};
  auto agent = git->find("lfs.standalonetransferagent");
  return agent == git->end() ? std::string{} : agent->second;
}

constexpr const char* concurrent_key = "lfs.customtransfer.ferry.concurrent";

/// Leaves git-lfs's default for concurrency (lfs.concurrenttransfers agents
/// at once, which share one engine through the daemon): removes the
/// `concurrent=false` that earlier installs wrote, and says so when one set
/// elsewhere still holds git-lfs to one agent. False (after saying why)
/// when git config cannot be changed.
bool leave_concurrency_default(bool global) {
  if (auto st = config::unset_git_config(concurrent_key, global); !st) {
    std::cerr << "ferry install: cannot remove " << concurrent_key << ": " << st.message() << "\n";
    return false;
  }
  if (auto git = config::read_git_config(); git) {
    auto found = git->find(concurrent_key);
    if (found != git->end() && found->second == "false")
      std::cerr << "ferry install: note: " << concurrent_key
                << " is false in another git config, so git-lfs runs one agent at a time; "
                   "remove it where it is set (git config --show-origin --get "
                << concurrent_key << ")\n";
  }
  return true;
}

/// `--server-offered`: ferry becomes a custom transfer git-lfs offers to the
/// LFS server, not the standalone agent, so git-lfs keeps using the server.
int install_server_offered(bool global) {
  const std::array<std::pair<const char*, std::string>, 2> entries = {{
    {"lfs.customtransfer.ferry.path", self_path()},
    {"lfs.customtransfer.ferry.args", "agent"},
  }};
  // An earlier standalone install would keep git-lfs from ever asking the
  // server; another agent's setting is not ours to remove.
  if (standalone_agent() == agent_name) {
    if (auto st = config::unset_git_config("lfs.standalonetransferagent", global); !st) {
      std::cerr << "ferry install: cannot remove lfs.standalonetransferagent: " << st.message()
                << "\n";
      return 1;
    }
  }
  if (!write_entries(entries, global) || !leave_concurrency_default(global))
    return 1;
  std::cout << "ferry is registered as the git-lfs transfer 'ferry' (" << scope(global) << ").\n"
            << "  agent: " << entries[0].second << " agent\n"
            << "git-lfs offers it to the LFS server with every batch request; when the server\n"
            << "picks it, ferry moves the objects the server points it to. Otherwise git-lfs\n"
            << "transfers as before.\n";
  if (auto agent = standalone_agent(); !agent.empty())
    std::cerr << "ferry install: note: lfs.standalonetransferagent is '" << agent
              << "', so git-lfs hands every transfer to that agent and never asks the server; "
                 "remove it where it is set (git config --show-origin --get "
                 "lfs.standalonetransferagent)\n";
  return 0;
}

} // namespace

int run_install(const std::string& store_url, bool server_offered, bool global) {
  if (!global) {
    if (auto repo = config::discover_repo(); !repo) {
      std::cerr << "ferry install: " << repo.error().message()
                << "\nRun it inside a repository, or use --global.\n";
      return 2;
    }
  }
  if (server_offered)
    return install_server_offered(global);
  if (store_url.empty()) {
    std::cerr << "ferry install: say where objects go: --store <url> (ferry keeps them in that "
                 "store), or --server-offered (the LFS server keeps them and may pick ferry to "
                 "move them)\n";
    return 2;
  }
  // Opening the store validates the URL and creates the folder, so a typo
  // shows up now rather than on the first push. The settings already in
  // place (ferry.proton.command, say) are used for that.
  store_context context;
  if (auto git = config::read_git_config(); git) {
    auto repo = config::discover_repo();
    auto settings = config::resolve({*git, config::read_environment(), {{"journal", "/"}}},
                                    repo ? repo->lfs_dir : std::filesystem::path{});
    if (settings)
      context = store_context_for(*settings, nullptr, std::filesystem::current_path());
  }
  std::string shown_store;
  if (auto store = open_store(store_url, context); store) {
    shown_store = (*store)->describe();
    // A Proton session that is not ready is worth knowing now; the install
    // stands, since logging in later fixes it.
    if (auto ready = (*store)->prepare(); !ready)
      std::cerr << "ferry install: warning: " << ready.message() << "\n";
  } else if (auto bucket = s3::parse_s3_url(store_url); bucket) {
    // A valid S3 URL whose keys only the pushing environment has (CI
    // secrets, say) is still worth installing.
    shown_store = bucket->describe();
    std::cerr << "ferry install: warning: " << store.error().message() << "\n";
  } else if (auto base = parse_proton_url(store_url); base) {
    // Likewise a Proton store whose bridge is configured afterwards.
    shown_store = "proton://" + *base;
    std::cerr << "ferry install: warning: " << store.error().message() << "\n";
  } else {
    std::cerr << "ferry install: " << store.error().message() << "\n";
    return 2;
  }
  const std::array<std::pair<const char*, std::string>, 4> entries = {{
    {"lfs.standalonetransferagent", agent_name},
    {"lfs.customtransfer.ferry.path", self_path()},
    {"lfs.customtransfer.ferry.args", "agent"},
    {"ferry.store", store_url},
  }};
  if (!write_entries(entries, global) || !leave_concurrency_default(global))
    return 1;
  std::cout << "ferry is now the git-lfs transfer agent (" << scope(global) << ").\n"
            << "  store: " << shown_store << "\n"
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
                          "lfs.customtransfer.ferry.args", concurrent_key, "ferry.store"}) {
    if (auto st = config::unset_git_config(key, global); !st) {
      std::cerr << "ferry uninstall: cannot remove " << key << ": " << st.message() << "\n";
      return 1;
    }
  }
  std::cout << "ferry removed from " << scope(global) << ".\n";
  return 0;
}

} // namespace ferry::cli
