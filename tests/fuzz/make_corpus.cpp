// Writes the decoder's seed corpus (seeds.cpp) into a directory: make_corpus DIR.
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "seeds.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  std::filesystem::create_directories(dir);
  for (const auto& seed : outpost::common::seeds::all_seeds()) {
    std::ofstream out(dir / seed.file_name, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(seed.bytes.data()),
              static_cast<std::streamsize>(seed.bytes.size()));
    if (!out) {
      std::fprintf(stderr, "make_corpus: cannot write %s\n", seed.file_name.c_str());
      return 1;
    }
  }
  return 0;
}
