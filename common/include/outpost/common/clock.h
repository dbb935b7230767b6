// The wall clock as every Outpost payload carries it: Unix time in microseconds.
#pragma once

#include <chrono>
#include <cstdint>

namespace outpost::common {

inline int64_t wall_now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace outpost::common
