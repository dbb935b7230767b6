// A Clock (outpost/agent/clock.h) that moves only when a test says so.
#pragma once

#include <chrono>
#include <cstdint>

#include "outpost/agent/clock.h"

namespace outpost::test_support {

class FakeClock final : public agent::Clock {
 public:
  time_point now() const override { return now_; }
  int64_t wall_now_us() const override { return wall_us_; }
  bool synchronised() const override { return synchronised_; }

  // Moves both clocks forward.
  void advance(std::chrono::microseconds d) {
    now_ += d;
    wall_us_ += d.count();
  }
  void set_synchronised(bool synced) { synchronised_ = synced; }

 private:
  time_point now_ = time_point(std::chrono::hours(1000));  // far from the epoch
  int64_t wall_us_ = 1'700'000'000'000'000;                // 2023-11-14
  bool synchronised_ = true;
};

}  // namespace outpost::test_support
