// Replays files through a harness's LLVMFuzzerTestOneInput without libFuzzer,
// so that every build (gcc too) runs the checked-in corpus and regressions
// as the ctest tests fuzz.<area>:  <area>_fuzz_replay <file>...
// Each input is copied into a heap block of exactly its size, so that a read
// one past its end hits ASan's redzone in the sanitized build.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc, char*** argv);

int main(int argc, char** argv) {
  if (LLVMFuzzerInitialize)
    LLVMFuzzerInitialize(&argc, &argv);
  for (int i = 1; i < argc; ++i) {
    std::ifstream in(argv[i], std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "cannot read %s\n", argv[i]);
      return 2;
    }
    const std::vector<char> bytes{std::istreambuf_iterator<char>(in),
                                  std::istreambuf_iterator<char>()};
    std::fprintf(stderr, "replaying %s (%zu bytes)\n", argv[i], bytes.size());
    auto* copy = new std::uint8_t[bytes.size()];
    if (!bytes.empty())
      std::memcpy(copy, bytes.data(), bytes.size());
    LLVMFuzzerTestOneInput(copy, bytes.size());
    delete[] copy;
  }
  std::fprintf(stderr, "%d input(s) replayed, all promises held\n", argc - 1);
  return 0;
}
