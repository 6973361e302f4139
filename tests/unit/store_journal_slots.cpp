#include "store/journal/journal_slots.hpp"

#include <catch2/catch.hpp>

#include "test_support.hpp"

#include <filesystem>
#include <fstream>
#include <vector>

namespace fs = std::filesystem;
using namespace ferry;
using ferry::testing::temp_dir;

TEST_CASE("journal slots: each writer takes the first free slot", "[journal][slots]") {
  temp_dir tmp;
  auto journal = tmp.path / "ferry";
  auto first = open_free_slot(journal, {});
  auto second = open_free_slot(journal, {});
  auto third = open_free_slot(journal, {});
  REQUIRE(first.ok());
  REQUIRE(second.ok());
  REQUIRE(third.ok());
  CHECK(first->number == 0);
  CHECK(first->dir == journal);
  CHECK(second->number == 1);
  CHECK(second->dir == journal / "slots" / "1");
  CHECK(third->number == 2);
  CHECK(used_slot_dirs(journal) ==
        std::vector<fs::path>{journal, journal / "slots" / "1", journal / "slots" / "2"});

  // A slot given back is the next one taken; the others stay held.
  first->db.reset();
  auto again = open_free_slot(journal, {});
  REQUIRE(again.ok());
  CHECK(again->number == 0);
}

TEST_CASE("journal slots: a record stays in the slot that wrote it", "[journal][slots]") {
  temp_dir tmp;
  auto journal = tmp.path / "ferry";
  auto held = open_free_slot(journal, {});
  REQUIRE(held.ok());
  {
    auto other = open_free_slot(journal, {});
    REQUIRE(other.ok());
    REQUIRE(other->number == 1);
    transfer_record record;
    record.dir = direction::upload;
    record.oid = std::string(64, 'a');
    record.size = 3;
    record.state = transfer_state::in_flight;
    REQUIRE(other->db->put(record).ok());
  }
  // Slot 1 is free again: the next writer there finds the record.
  auto reopened = open_free_slot(journal, {});
  REQUIRE(reopened.ok());
  CHECK(reopened->number == 1);
  auto active = reopened->db->active();
  REQUIRE(active.ok());
  REQUIRE(active->size() == 1);
  CHECK(active->front().oid == std::string(64, 'a'));
  auto in_zero = held->db->active();
  REQUIRE(in_zero.ok());
  CHECK(in_zero->empty());
}

TEST_CASE("journal slots: busy only when every slot is held", "[journal][slots]") {
  temp_dir tmp;
  auto journal = tmp.path / "ferry";
  std::vector<journal_slot> held;
  for (int n = 0; n < journal_slot_count; ++n) {
    auto slot = open_free_slot(journal, {});
    REQUIRE(slot.ok());
    REQUIRE(slot->number == n);
    held.push_back(std::move(*slot));
  }
  auto none = open_free_slot(journal, {});
  REQUIRE_FALSE(none.ok());
  CHECK(none.error().code() == errc::busy);
  CHECK(none.error().message() ==
        "all 64 slots of journal " + journal.string() + " are in use by other ferry processes");
}

TEST_CASE("journal slots: an error other than busy is not passed over", "[journal][slots]") {
  temp_dir tmp;
  auto journal = tmp.path / "ferry";
  std::ofstream{journal} << "not a directory";
  auto slot = open_free_slot(journal, {});
  REQUIRE_FALSE(slot.ok());
  CHECK(slot.error().code() != errc::busy);
  CHECK_FALSE(fs::exists(journal / "slots"));
}

TEST_CASE("journal slots: readers see only the slots that were used", "[journal][slots]") {
  temp_dir tmp;
  auto journal = tmp.path / "ferry";
  CHECK(used_slot_dirs(journal) == std::vector<fs::path>{journal});
  fs::create_directories(journal / "slots" / "3"); // made, never opened
  CHECK(used_slot_dirs(journal) == std::vector<fs::path>{journal});
  CHECK(slot_dir(tmp.path / "downloads", 0) == tmp.path / "downloads");
  CHECK(slot_dir(tmp.path / "downloads", 5) == tmp.path / "downloads" / "slots" / "5");
}
