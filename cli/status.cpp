#include "cli/commands.hpp"

#include "config/git_config.hpp"
#include "config/settings.hpp"
#include "store/journal/journal_slots.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <ctime>
#include <iostream>

namespace ferry::cli {

namespace {

std::string local_time(int64_t ms) {
  if (ms <= 0)
    return "-";
  std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm parts{};
  localtime_r(&seconds, &parts);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &parts);
  return text;
}

std::string last_error(const transfer_record& record) {
  if (record.errors.empty())
    return {};
  auto& e = record.errors.back();
  return e.code + ": " + e.message;
}

void print_record(const transfer_record& record) {
  std::cout << "  " << to_string(record.dir) << " " << record.oid << "  " << record.committed << "/"
            << record.size << " bytes, " << record.attempts << " attempt(s), "
            << to_string(record.state) << ", " << local_time(record.updated_ms);
  // The id its log and trace lines carry (cid=..); older records have none.
  if (!record.cid.empty())
    std::cout << ", cid " << record.cid;
  std::cout << "\n";
  if (record.resumed_from > 0)
    std::cout << "      resumed from byte " << record.resumed_from << "\n";
  if (auto error = last_error(record); !error.empty())
    std::cout << "      last error: " << error << "\n";
}

/// Prints the status document; bytes that are not UTF-8 (a Latin-1 path,
/// say) are replaced rather than aborting the output.
void print_json(const std::filesystem::path& journal, nlohmann::json active,
                nlohmann::json history) {
  nlohmann::json doc{
    {"journal", journal.string()}, {"active", std::move(active)}, {"history", std::move(history)}};
  std::cout << doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
}

nlohmann::json to_json(const std::vector<transfer_record>& records) {
  auto list = nlohmann::json::array();
  for (auto& record : records)
    list.push_back(nlohmann::json::parse(encode(record)));
  return list;
}

} // namespace

int run_status(const flag_map& flags, bool json, size_t limit) {
  auto repo = config::discover_repo();
  auto git = config::read_git_config();
  if (!git) {
    std::cerr << "ferry status: cannot read git config: " << git.error().message() << "\n";
    return 1;
  }
  auto settings = config::resolve({*git, config::read_environment(), flags},
                                  repo ? repo->lfs_dir : std::filesystem::path{});
  if (!settings) {
    std::cerr << "ferry status: " << settings.error().message() << "\n";
    return 2;
  }
  // Read-only: works while agents are using the journal and its slots.
  journal_db::options options;
  options.read_only = true;
  std::vector<transfer_record> active, history;
  auto slots = used_slot_dirs(settings->journal_dir);
  size_t opened = 0;
  for (auto& dir : slots) {
    auto journal = journal_db::open(dir, options);
    if (!journal && journal.error().code() == errc::not_found)
      continue;
    if (!journal) {
      std::cerr << "ferry status: " << journal.error().message() << "\n";
      return 1;
    }
    auto in_flight = (*journal)->active();
    auto finished = (*journal)->history(limit);
    if (!in_flight || !finished) {
      auto& error = !in_flight ? in_flight.error() : finished.error();
      std::cerr << "ferry status: " << error.message() << "\n";
      return 1;
    }
    ++opened;
    active.insert(active.end(), in_flight->begin(), in_flight->end());
    history.insert(history.end(), finished->begin(), finished->end());
  }
  // Each slot's history is newest first; so is the merged one.
  std::stable_sort(history.begin(), history.end(),
                   [](auto& a, auto& b) { return a.updated_ms > b.updated_ms; });
  if (history.size() > limit)
    history.resize(limit);
  if (json) {
    print_json(settings->journal_dir, to_json(active), to_json(history));
    return 0;
  }
  if (opened == 0) {
    std::cout << "No transfers recorded yet (journal " << settings->journal_dir.string() << ").\n";
    return 0;
  }
  std::cout << "Journal: " << settings->journal_dir.string();
  if (slots.size() > 1)
    std::cout << " (and " << slots.size() - 1 << " slot(s) of agents that ran at once)";
  std::cout << "\n\n";
  std::cout << "In flight or waiting to resume: " << active.size() << "\n";
  for (auto& record : active)
    print_record(record);
  size_t failures = 0;
  for (auto& record : history)
    failures += record.state == transfer_state::failed ? 1 : 0;
  std::cout << "\nFailed (of the last " << history.size() << "): " << failures << "\n";
  for (auto& record : history)
    if (record.state == transfer_state::failed)
      print_record(record);
  std::cout << "\nRecent transfers, newest first:\n";
  for (auto& record : history)
    print_record(record);
  return 0;
}

} // namespace ferry::cli
