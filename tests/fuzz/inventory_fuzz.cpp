// Fuzzes read_inventory_file (store/inventory_sources.hpp, in ferry_remote):
// the file of `<oid> <size>` lines that `ferry migrate --inventory` reads.
// It only reads from a path, so each input is written to one scratch file
// (in /dev/shm when there is one) and read back from there.
// Promises checked:
// - the objects visited are exactly those of a reference reading of the
//   lines (split like line_splitter with a 1024-byte cap, spaces and tabs
//   trimmed, blank and '#' lines skipped, `<64 hex> <blanks> <digits>`), in
//   order, each with a lower-case oid and a non-negative size;
// - a malformed line stops the reading with a config_error that names the
//   file and the number of that line, after visiting the lines before it;
// - when `visit` returns false the reading stops there, successfully.

#include "fuzz_check.hpp"

#include "store/inventory_sources.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace {

using ferry::fuzz::int128;

using namespace ferry;
namespace fs = std::filesystem;

constexpr size_t max_line = 1024;

fs::path scratch;

void remove_scratch() {
  std::error_code ignored;
  fs::remove(scratch, ignored);
}

void write_scratch(std::string_view bytes) {
  const int fd = ::open(scratch.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  FUZZ_CHECK(fd >= 0);
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t wrote = ::write(fd, bytes.data() + done, bytes.size() - done);
    FUZZ_CHECK(wrote > 0);
    done += static_cast<size_t>(wrote);
  }
  ::close(fd);
}

bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t'))
    text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t'))
    text.remove_suffix(1);
  return text;
}

std::optional<object_info> parse_line(std::string_view text) {
  if (text.size() < 65 || (text[64] != ' ' && text[64] != '\t'))
    return std::nullopt;
  object_info object;
  for (char c : text.substr(0, 64)) {
    if (!is_hex(c))
      return std::nullopt;
    object.oid += static_cast<char>(c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c);
  }
  const std::string_view digits = trim(text.substr(64));
  if (digits.empty())
    return std::nullopt;
  int128 size = 0;
  for (char c : digits) {
    if (c < '0' || c > '9')
      return std::nullopt;
    size = size * 10 + (c - '0');
    if (size > INT64_MAX)
      return std::nullopt;
  }
  object.size = static_cast<int64_t>(size);
  return object;
}

struct reading {
  std::vector<object_info> objects;
  size_t bad_line = 0; // 0: none
};

reading reference(std::string_view bytes) {
  reading out;
  size_t number = 0;
  auto take = [&](std::string_view line) {
    ++number;
    if (!line.empty() && line.back() == '\r')
      line.remove_suffix(1);
    if (line.size() > max_line) {
      out.bad_line = number;
      return false;
    }
    const std::string_view text = trim(line);
    if (text.empty() || text.front() == '#')
      return true;
    auto object = parse_line(text);
    if (!object) {
      out.bad_line = number;
      return false;
    }
    out.objects.push_back(std::move(*object));
    return true;
  };
  size_t start = 0;
  for (size_t newline; (newline = bytes.find('\n', start)) != std::string_view::npos;
       start = newline + 1) {
    if (!take(bytes.substr(start, newline - start)))
      return out;
  }
  const std::string_view last = bytes.substr(start);
  if (!last.empty() && last != "\r")
    take(last);
  return out;
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const fs::path dir =
    fs::is_directory("/dev/shm") ? fs::path{"/dev/shm"} : fs::temp_directory_path();
  scratch = dir / ("ferry-inventory-fuzz-" + std::to_string(::getpid()));
  std::atexit(remove_scratch);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes = ferry::fuzz::as_text(data, size);
  write_scratch(bytes);

  std::vector<object_info> visited;
  const status read = read_inventory_file(scratch, [&](const object_info& object) {
    visited.push_back(object);
    return true;
  });
  const reading expected = reference(bytes);
  FUZZ_CHECK(visited.size() == expected.objects.size());
  for (size_t i = 0; i < visited.size(); ++i) {
    FUZZ_CHECK(visited[i].oid == expected.objects[i].oid);
    FUZZ_CHECK(visited[i].size == expected.objects[i].size);
    FUZZ_CHECK(visited[i].size >= 0);
  }
  if (expected.bad_line == 0) {
    FUZZ_CHECK(read.ok());
  } else {
    FUZZ_CHECK(!read.ok());
    FUZZ_CHECK(read.code() == errc::config_error);
    FUZZ_CHECK(read.message().find(scratch.string()) != std::string::npos);
    FUZZ_CHECK(read.message().find(" line " + std::to_string(expected.bad_line) + ":") !=
               std::string::npos);
  }

  // Asked to stop after the first object: one visit, and success.
  if (visited.size() >= 2) {
    size_t calls = 0;
    const status stopped = read_inventory_file(scratch, [&](const object_info&) {
      ++calls;
      return false;
    });
    FUZZ_CHECK(stopped.ok() && calls == 1);
  }
  return 0;
}
