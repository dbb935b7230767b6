// The agent's view of time, injected so that its loops run in tests without waiting.
#pragma once

#include <chrono>
#include <cstdint>

namespace outpost::agent {

class Clock {
 public:
  using time_point = std::chrono::steady_clock::time_point;

  virtual ~Clock() = default;

  // Monotonic time: timers, deadlines, backoff.
  virtual time_point now() const = 0;
  // Unix time in microseconds, as payloads carry it.
  virtual int64_t wall_now_us() const = 0;
  // True if something (NTP or similar) disciplines the wall clock: batches say so.
  virtual bool synchronised() const = 0;
};

// The machine's clocks; synchronised() asks the kernel (adjtimex).
class SystemClock final : public Clock {
 public:
  time_point now() const override { return std::chrono::steady_clock::now(); }
  int64_t wall_now_us() const override;
  bool synchronised() const override;
};

}  // namespace outpost::agent
