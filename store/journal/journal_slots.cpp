#include "store/journal/journal_slots.hpp"

#include <string>

namespace ferry {

namespace fs = std::filesystem;

fs::path slot_dir(const fs::path& base, int n) {
  return n == 0 ? base : base / "slots" / std::to_string(n);
}

result<journal_slot> open_free_slot(const fs::path& journal, const journal_db::options& opts) {
  for (int n = 0; n < journal_slot_count; ++n) {
    auto dir = slot_dir(journal, n);
    auto db = journal_db::open(dir, opts);
    if (db)
      return journal_slot{n, dir, std::move(*db)};
    if (db.error().code() != errc::busy)
      return db.error();
  }
  return status{errc::busy, "all " + std::to_string(journal_slot_count) + " slots of journal " +
                              journal.string() + " are in use by other ferry processes"};
}

std::vector<fs::path> used_slot_dirs(const fs::path& journal) {
  std::vector<fs::path> dirs{journal};
  std::error_code ec;
  for (int n = 1; n < journal_slot_count; ++n) {
    auto dir = slot_dir(journal, n);
    if (fs::exists(dir / "CURRENT", ec))
      dirs.push_back(std::move(dir));
  }
  return dirs;
}

} // namespace ferry
