// Replays a fuzz target's seed corpus as an ordinary test: every file under
// the given directories (or the given files) is fed to LLVMFuzzerTestOneInput
// once. A crash or sanitizer report fails the test; anything else passes.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

static int RunFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
  return 1;
}

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  int count = 0;
  for (int i = 1; i < argc; ++i) {
    const fs::path p(argv[i]);
    if (fs::is_directory(p)) {
      for (const auto& e : fs::recursive_directory_iterator(p)) {
        if (e.is_regular_file()) count += RunFile(e.path());
      }
    } else if (fs::exists(p)) {
      count += RunFile(p);
    }
  }
  if (count == 0) {
    std::fprintf(stderr, "replay: no seed files found\n");
    return 1;
  }
  std::printf("replay: %d seed inputs ran without a crash\n", count);
  return 0;
}
