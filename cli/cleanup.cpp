#include "cli/commands.hpp"

#include "actors/logging.hpp"
#include "config/git_config.hpp"
#include "config/settings.hpp"
#include "store/open_store.hpp"
#include "store/s3/s3_store.hpp"

#include <iostream>

namespace ferry::cli {

int run_cleanup(const flag_map& flags, const std::string& older_than, bool dry_run) {
  auto age = config::parse_duration(older_than);
  if (!age) {
    std::cerr << "ferry cleanup: --older-than '" << older_than << "': " << age.error().message()
              << "\n";
    return 2;
  }
  auto repo = config::discover_repo();
  std::filesystem::path lfs_dir = repo ? repo->lfs_dir : std::filesystem::path{};
  auto git = config::read_git_config();
  if (!git) {
    std::cerr << "ferry cleanup: cannot read git config: " << git.error().message() << "\n";
    return 1;
  }
  // Outside a repository only the store matters; the journal is not opened.
  flag_map given = flags;
  if (!repo && given.count("journal") == 0)
    given["journal"] = "/";
  auto settings = config::resolve({*git, config::read_environment(), given}, lfs_dir);
  if (!settings) {
    std::cerr << "ferry cleanup: " << settings.error().message() << "\n";
    return 2;
  }
  log()->set_level(spdlog::level::warn);
  auto cwd = repo ? repo->root() : std::filesystem::current_path();
  auto store = open_store(settings->store_url, store_context_for(*settings, nullptr, cwd));
  if (!store) {
    std::cerr << "ferry cleanup: " << store.error().message() << "\n";
    return 2;
  }
  auto* bucket = dynamic_cast<s3_store*>(store->get());
  if (bucket == nullptr) {
    std::cout << "nothing to clean up: " << (*store)->describe()
              << " keeps no partial uploads on the server\n";
    return 0;
  }
  auto before = std::chrono::system_clock::now() - *age;
  auto found = bucket->abort_stale_uploads(
    before, dry_run, [&](const std::string& key, const std::string& upload_id) {
      std::cout << (dry_run ? "would abort " : "aborting ") << key << " (upload " << upload_id
                << ")\n";
    });
  if (!found) {
    std::cerr << "ferry cleanup: " << found.error().message() << "\n";
    return 1;
  }
  std::cout << *found << " multipart upload(s) older than " << older_than << " under "
            << (*store)->describe() << (dry_run ? " would be aborted" : " aborted") << "\n";
  return 0;
}

} // namespace ferry::cli
