#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "protocol/line_splitter.hpp"
#include "protocol/transfer_protocol.hpp"

using namespace ferry::protocol;

namespace {

std::vector<std::string> texts(const std::vector<line_splitter::line>& lines) {
  std::vector<std::string> out;
  for (const auto& l : lines) {
    CHECK_FALSE(l.too_long);
    out.push_back(l.text);
  }
  return out;
}

} // namespace

TEST_CASE("line_splitter returns every completed line and keeps the rest") {
  line_splitter splitter{100};
  CHECK(texts(splitter.feed("one\ntwo\nthr")) == std::vector<std::string>{"one", "two"});
  CHECK(splitter.feed("ee").empty());
  CHECK(texts(splitter.feed("\n")) == std::vector<std::string>{"three"});
  CHECK(splitter.feed("").empty());
  CHECK(splitter.finish().empty());
  CHECK(splitter.max_line_bytes() == 100);
}

TEST_CASE("line_splitter reassembles a line fed byte by byte") {
  const std::string line = R"({"event":"init","operation":"upload","remote":"origin"})";
  line_splitter splitter{1024};
  for (char c : line)
    CHECK(splitter.feed(std::string_view{&c, 1}).empty());
  auto lines = splitter.feed("\n");
  REQUIRE(lines.size() == 1);
  CHECK_FALSE(lines[0].too_long);
  CHECK(lines[0].text == line);

  auto decoded = decode_request(lines[0].text);
  REQUIRE(std::holds_alternative<request>(decoded));
  REQUIRE(std::holds_alternative<init_request>(std::get<request>(decoded)));
  CHECK(std::get<init_request>(std::get<request>(decoded)).remote == "origin");
}

TEST_CASE("line_splitter strips exactly one trailing CR") {
  line_splitter splitter{100};
  CHECK(texts(splitter.feed("a\r\nb\r\r\nc\rd\n\r\n")) ==
        std::vector<std::string>{"a", "b\r", "c\rd", ""});
  // A CR and its LF may arrive in different reads.
  CHECK(splitter.feed("e\r").empty());
  CHECK(texts(splitter.feed("\n")) == std::vector<std::string>{"e"});
}

TEST_CASE("line_splitter returns empty lines as empty text") {
  line_splitter splitter{100};
  auto lines = splitter.feed("\n\nx\n");
  CHECK(texts(lines) == std::vector<std::string>{"", "", "x"});
}

TEST_CASE("line_splitter keeps NUL bytes in the text") {
  line_splitter splitter{100};
  const std::string input("a\0b\n\0\n", 6);
  CHECK(texts(splitter.feed(input)) ==
        std::vector<std::string>{std::string("a\0b", 3), std::string(1, '\0')});
}

TEST_CASE("line_splitter cap is inclusive and does not count the CRLF") {
  line_splitter splitter{4};
  auto lines = splitter.feed("abcd\nabcd\r\nabcde\nab\n");
  REQUIRE(lines.size() == 4);
  CHECK(lines[0].text == "abcd");
  CHECK_FALSE(lines[0].too_long);
  CHECK(lines[1].text == "abcd");
  CHECK_FALSE(lines[1].too_long);
  CHECK(lines[2].too_long);
  CHECK(lines[2].text.empty());
  CHECK(lines[3].text == "ab");
  CHECK_FALSE(lines[3].too_long);

  // Five bytes ending in CR, then more bytes: still too long.
  auto more = splitter.feed("abcd\rx\n");
  REQUIRE(more.size() == 1);
  CHECK(more[0].too_long);
}

TEST_CASE("line_splitter reports a 10 MB line once and recovers") {
  const size_t cap = 1 << 20;
  line_splitter splitter{cap};
  const std::string chunk(64 * 1024, 'x');
  std::vector<line_splitter::line> lines;
  size_t fed = 0;
  while (fed < 10 * 1024 * 1024) {
    auto got = splitter.feed(chunk);
    lines.insert(lines.end(), got.begin(), got.end());
    fed += chunk.size();
  }
  CHECK(lines.empty());

  const std::string next = R"({"event":"terminate"})";
  auto got = splitter.feed("tail\n" + next + "\n");
  lines.insert(lines.end(), got.begin(), got.end());
  REQUIRE(lines.size() == 2);
  CHECK(lines[0].too_long);
  CHECK(lines[0].text.empty());
  CHECK_FALSE(lines[1].too_long);
  CHECK(lines[1].text == next);
  auto decoded = decode_request(lines[1].text);
  REQUIRE(std::holds_alternative<request>(decoded));
  CHECK(std::holds_alternative<terminate_request>(std::get<request>(decoded)));
}

TEST_CASE("line_splitter handles a too-long line delivered in one read") {
  line_splitter splitter{1 << 20};
  const std::string huge(10 * 1024 * 1024, 'y');
  auto lines = splitter.feed(huge + "\nok\n");
  REQUIRE(lines.size() == 2);
  CHECK(lines[0].too_long);
  CHECK(lines[1].text == "ok");
  CHECK_FALSE(lines[1].too_long);
}

TEST_CASE("line_splitter finish returns the unterminated last line") {
  line_splitter splitter{10};
  CHECK(splitter.feed("last").empty());
  auto lines = splitter.finish();
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].text == "last");
  CHECK_FALSE(lines[0].too_long);
  // finish clears the state.
  CHECK(splitter.finish().empty());

  CHECK(splitter.feed("crlf\r").empty());
  CHECK(texts(splitter.finish()) == std::vector<std::string>{"crlf"});
}

TEST_CASE("line_splitter finish reports an unterminated long line") {
  line_splitter splitter{10};
  CHECK(splitter.feed(std::string(50, 'z')).empty());
  auto lines = splitter.finish();
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].too_long);
  CHECK(lines[0].text.empty());

  // Eleven bytes is one past the cap even though the buffer may hold it.
  CHECK(splitter.feed(std::string(11, 'z')).empty());
  lines = splitter.finish();
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].too_long);

  // The splitter is usable again afterwards.
  CHECK(texts(splitter.feed("fine\n")) == std::vector<std::string>{"fine"});
}

TEST_CASE("line_splitter with a zero cap accepts only empty lines") {
  line_splitter splitter{0};
  auto lines = splitter.feed("\nx\n\r\n");
  REQUIRE(lines.size() == 3);
  CHECK(lines[0].text.empty());
  CHECK_FALSE(lines[0].too_long);
  CHECK(lines[1].too_long);
  CHECK(lines[2].text.empty());
  CHECK_FALSE(lines[2].too_long);
}
