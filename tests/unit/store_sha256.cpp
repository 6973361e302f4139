#include "store/os/sha256.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

using ferry::sha256;

namespace {

constexpr const char* empty_digest =
  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr const char* abc_digest =
  "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

std::string hash_of(const std::string& text) { return sha256::of(text.data(), text.size()); }

std::vector<char> patterned_bytes(size_t size) {
  std::vector<char> bytes(size);
  uint32_t state = 12345;
  for (auto& b : bytes) {
    state = state * 1103515245u + 12345u;
    b = static_cast<char>(state >> 24);
  }
  return bytes;
}

} // namespace

TEST_CASE("sha256 matches the FIPS 180-2 test vectors", "[sha256]") {
  CHECK(hash_of("") == empty_digest);
  CHECK(hash_of("abc") == abc_digest);
  CHECK(hash_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  std::string million_a(1000000, 'a');
  CHECK(hash_of(million_a) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("sha256 of a fresh object is the empty digest", "[sha256]") {
  sha256 hash;
  CHECK(hash.bytes() == 0);
  CHECK(hash.hex_digest() == empty_digest);
}

TEST_CASE("sha256 fed in odd-sized pieces equals the one-shot digest", "[sha256]") {
  auto data = patterned_bytes(1 << 20);
  std::string expected = sha256::of(data.data(), data.size());
  REQUIRE(expected.size() == 64);

  sha256 hash;
  size_t done = 0;
  size_t piece = 1;
  while (done < data.size()) {
    size_t n = std::min(piece, data.size() - done);
    hash.update(data.data() + done, n);
    done += n;
    piece = piece * 3 + 7; // 1, 10, 37, 118, ... never aligned to the block size
    if (piece > 100000)
      piece = 13;
  }
  CHECK(hash.bytes() == static_cast<int64_t>(data.size()));
  CHECK(hash.hex_digest() == expected);

  // A changed byte must change the digest.
  data[data.size() / 2] ^= 1;
  CHECK(sha256::of(data.data(), data.size()) != expected);
}

TEST_CASE("sha256 can be reused after hex_digest", "[sha256]") {
  sha256 hash;
  hash.update("abc", 3);
  CHECK(hash.bytes() == 3);
  CHECK(hash.hex_digest() == abc_digest);
  CHECK(hash.bytes() == 0);

  // The previous stream must not leak into the next one.
  hash.update("abc", 3);
  CHECK(hash.hex_digest() == abc_digest);
  CHECK(hash.hex_digest() == empty_digest);
}

TEST_CASE("sha256 moves carry the running state", "[sha256]") {
  sha256 first;
  first.update("ab", 2);

  sha256 second(std::move(first));
  CHECK(second.bytes() == 2);
  second.update("c", 1);
  CHECK(second.hex_digest() == abc_digest);

  sha256 third;
  third.update("unrelated", 9);
  second.update("a", 1);
  third = std::move(second);
  CHECK(third.bytes() == 1);
  third.update("bc", 2);
  CHECK(third.hex_digest() == abc_digest);

  // A moved-from object is usable again and starts a fresh stream.
  CHECK(first.bytes() == 0); // NOLINT(bugprone-use-after-move)
  first.update("abc", 3);
  CHECK(first.hex_digest() == abc_digest);
  CHECK(second.hex_digest() == empty_digest); // NOLINT(bugprone-use-after-move)
}
