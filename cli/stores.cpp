#include "cli/commands.hpp"

#include "actors/policy/retry_policy.hpp"
#include "config/git_config.hpp"
#include "store/inventory_sources.hpp"

#include <iostream>
#include <string_view>

namespace ferry::cli {

namespace {

/// Objects handed on from the listing at once.
constexpr size_t listing_batch = 1000;

} // namespace

status list_objects(object_store& source, const oid_origin& origin,
                    const std::function<bool(const std::string& oid)>& takes,
                    const std::function<status(const std::vector<object_info>&)>& take) {
  std::vector<object_info> batch;
  status taken;
  auto visit = [&](const object_info& object) {
    if (!takes(object.oid))
      return true;
    batch.push_back(object);
    if (batch.size() < listing_batch)
      return true;
    taken = take(batch);
    batch.clear();
    return taken.ok();
  };
  status listed;
  if (!origin.from_repo.empty())
    listed = read_repo_pointers(origin.from_repo, visit);
  else if (!origin.inventory_file.empty())
    listed = read_inventory_file(origin.inventory_file, visit);
  else
    listed = source.list(visit);
  if (!taken)
    return taken;
  if (!listed) {
    if (listed.code() == errc::invalid_request && origin.from_repo.empty() &&
        origin.inventory_file.empty())
      return {errc::config_error,
              listed.message() + "; name the objects with --from-repo PATH (every LFS pointer in "
                                 "a repository's history) or --inventory FILE (lines of 'oid "
                                 "size')"};
    return listed;
  }
  return batch.empty() ? status::success() : take(batch);
}

result<config::settings> settings_outside_repository() {
  auto git = config::read_git_config();
  return config::resolve({git ? *git : std::map<std::string, std::string>{},
                          config::read_environment(),
                          {{"journal", "/"}}},
                         {});
}

result<std::shared_ptr<object_store>> open_named_store(const std::string& url, const char* role,
                                                       const store_context& context) {
  // Opening a folder store can create it; a source folder must exist already.
  bool folder_url = !url.empty() && (url.front() == '/' || url.rfind("file://", 0) == 0);
  if (std::string_view{role} == "from" && folder_url) {
    std::filesystem::path folder = url.front() == '/' ? url : url.substr(7);
    if (!std::filesystem::is_directory(folder))
      return status{errc::not_found, "--from: there is no folder " + folder.string()};
  }
  auto store = open_store(url, context);
  if (!store)
    return store.error().with_context(std::string{"--"} + role);
  // A store that cannot work (a Proton login, an endpoint that is not S3,
  // no such bucket) stops the command now; a failure that may pass is left
  // to the transfers, which retry, as in the agent.
  if (auto ready = (*store)->prepare(); !ready) {
    auto failure = ready.with_context(std::string{"--"} + role + " " + (*store)->describe());
    if (classify(ready.code()) != retry_class::transient)
      return failure;
    std::cerr << "ferry: warning: " << failure.message() << " (the transfers try again)\n";
  }
  return store;
}

} // namespace ferry::cli
