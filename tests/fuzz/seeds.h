// The decoder's seed corpus, described once: written by make_corpus, checked by corpus_test.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "outpost/common/codec.h"

namespace outpost::common::seeds {

// Receive time and topic device the seeds are judged against.
inline constexpr int64_t kReceiveTimeUs = 1'700'000'000'000'000;
inline constexpr const char* kTopicDevice = "dev-1";

// A seed's file name says what must happen to it:
//   valid-<kind>-<what>.bin      decode_and_validate accepts it as <kind>
//   reject-<reason>-<what>.bin   it is rejected (on a data topic) with <reason>
struct Seed {
  std::string file_name;
  std::vector<uint8_t> bytes;
};

std::vector<Seed> all_seeds();

}  // namespace outpost::common::seeds
