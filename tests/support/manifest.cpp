// Test support: outpost-sim's manifest, read with regular expressions.
#include "support/manifest.h"

#include <fstream>
#include <regex>

namespace outpost::test_support {

std::set<std::pair<uint64_t, uint64_t>> ManifestDevice::seqs() const {
  std::set<std::pair<uint64_t, uint64_t>> out;
  for (const auto& [epoch, first, last] : epochs) {
    for (uint64_t s = first; s <= last; ++s) out.insert({epoch, s});
  }
  return out;
}

uint64_t ManifestDevice::number(const std::string& key) const {
  const auto it = numbers.find(key);
  return it == numbers.end() ? 0 : it->second;
}

std::map<std::string, ManifestDevice> read_manifest(const std::filesystem::path& path) {
  std::map<std::string, ManifestDevice> out;
  std::ifstream in(path);
  std::string line;
  const std::regex device_re(R"re("device":"([^"]+)","mode":"([a-z]+)")re");
  const std::regex epoch_re(R"re(\{"epoch":(\d+),"first_seq":(\d+),"last_seq":(\d+)\})re");
  const std::regex number_re(R"re("([a-z_]+)":(\d+))re");
  while (std::getline(in, line)) {
    std::smatch m;
    if (!line.starts_with("{\"site\"") || !std::regex_search(line, m, device_re)) continue;
    ManifestDevice& d = out[m[1]];
    d.mode = m[2];
    for (std::sregex_iterator it(line.begin(), line.end(), epoch_re), end; it != end; ++it) {
      d.epochs.push_back({std::stoull((*it)[1]), std::stoull((*it)[2]), std::stoull((*it)[3])});
    }
    for (std::sregex_iterator it(line.begin(), line.end(), number_re), end; it != end; ++it) {
      if ((*it)[1] != "epoch" && (*it)[1] != "first_seq" && (*it)[1] != "last_seq") {
        d.numbers[(*it)[1]] = std::stoull((*it)[2]);
      }
    }
  }
  return out;
}

}  // namespace outpost::test_support
