#include "actors/policy/migration_shard.hpp"

#include <catch2/catch.hpp>

#include <cstdio>
#include <string>

using ferry::migration_shard;

TEST_CASE("a shard is parsed from I/N with 1 <= I <= N <= 4096", "[migration_shard]") {
  auto whole = migration_shard::parse("");
  REQUIRE(whole);
  CHECK(whole->count == 1);
  CHECK(whole->describe().empty());

  auto second = migration_shard::parse("2/4");
  REQUIRE(second);
  CHECK(second->index == 1);
  CHECK(second->count == 4);
  CHECK(second->describe() == "2/4");

  auto last = migration_shard::parse("4096/4096");
  REQUIRE(last);
  CHECK(last->index == 4095);

  for (auto text : {"0/4", "5/4", "4", "/4", "4/", "a/b", "1/4097", "-1/2", "1/0", " 1/2",
                    "000000000001/2", "1/2/3", "1//2"}) {
    INFO(text);
    CHECK_FALSE(migration_shard::parse(text));
  }
}

TEST_CASE("the shards of a split take every oid exactly once, by its first 32 bits",
          "[migration_shard]") {
  auto oid = [](uint32_t first_bits) {
    char hex[9];
    std::snprintf(hex, sizeof hex, "%08x", first_bits);
    return std::string{hex} + std::string(56, 'f');
  };
  CHECK(migration_shard::parse("2/4")->takes(oid(5)));
  CHECK_FALSE(migration_shard::parse("1/4")->takes(oid(5)));
  // The bits beyond the first 32 do not matter.
  CHECK(migration_shard::parse("1/3")->takes("00000003" + std::string(56, '1')));
  CHECK(migration_shard{}.takes(oid(12345)));

  for (uint32_t count : {1u, 2u, 3u, 7u, 4096u}) {
    for (uint32_t bits : {0u, 1u, 4095u, 4096u, 0x7fffffffu, 0xfffffffeu, 0xffffffffu}) {
      int takers = 0;
      for (uint32_t index = 0; index < count; ++index)
        takers += migration_shard{index, count}.takes(oid(bits)) ? 1 : 0;
      INFO(count << " shards, first bits " << bits);
      CHECK(takers == 1);
    }
  }
}
