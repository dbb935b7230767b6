// Test support: outpost-sim's run manifest read back from its JSON text, independently of the
// simulator's own code (one device per line; firmware-sim/README.md), for end-to-end checks.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace outpost::test_support {

struct ManifestDevice {
  std::string mode;                             // "direct" or "agent"
  std::vector<std::array<uint64_t, 3>> epochs;  // epoch, first_seq, last_seq (inclusive)
  std::map<std::string, uint64_t> numbers;      // readings_sent, ..., malformed kinds

  // Every (epoch, seq) the epochs cover: the valid batches the broker acknowledged.
  std::set<std::pair<uint64_t, uint64_t>> seqs() const;
  // numbers[key], 0 if the manifest does not have it.
  uint64_t number(const std::string& key) const;
};

// Device id -> what the manifest says of it; empty if the file is missing.
std::map<std::string, ManifestDevice> read_manifest(const std::filesystem::path& path);

}  // namespace outpost::test_support
