#include "cli/commands.hpp"

#include "actors/policy/report_merge.hpp"
#include "store/os/file_io.hpp"

#include <algorithm>
#include <fstream>
#include <iostream>
#include <sstream>

namespace ferry::cli {

namespace {

namespace fs = std::filesystem;

int refuse(const std::string& message) {
  std::cerr << "ferry report merge: " << message << "\n";
  return exit_usage;
}

} // namespace

int run_report_merge(const std::string& dir, const std::string& json_file) {
  std::error_code error;
  std::vector<std::string> names;
  for (fs::directory_iterator entry{dir, error}, end; !error && entry != end;
       entry.increment(error))
    if (looks_like_report_name(entry->path().filename().string()))
      names.push_back(entry->path().filename().string());
  if (error)
    return refuse("cannot read " + dir + ": " + error.message());
  std::sort(names.begin(), names.end());

  report_merge merge;
  for (auto& name : names) {
    auto path = fs::path{dir} / name;
    std::ifstream in{path, std::ios::binary};
    std::ostringstream text;
    text << in.rdbuf();
    if (!in)
      return refuse("cannot read " + path.string());
    if (auto added = merge.add(name, text.str()); !added)
      return refuse((fs::path{dir} / added.message()).string());
  }
  auto merged = merge.merge();
  if (!merged)
    return refuse(merged.error().message() + " in " + dir);
  std::cout << merged->text;
  if (!json_file.empty()) {
    if (auto written = write_file_atomically(json_file, merged->json.dump(2) + "\n"); !written) {
      std::cerr << "ferry report merge: " << written.message() << "\n";
      return exit_incomplete;
    }
  }
  if (merged->outcome == "incomplete") {
    for (auto index : merged->missing)
      std::cerr << "ferry report merge: shard " << index << " of " << merged->json["shard_count"]
                << " is missing: no "
                << shard_report_name(
                     migration_shard{index - 1, merged->json["shard_count"].get<uint32_t>()})
                << " in " << dir << "\n";
    return exit_incomplete;
  }
  return merged->outcome == "completed_with_failures" ? exit_with_failures : 0;
}

} // namespace ferry::cli
