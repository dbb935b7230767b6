// When a connection to the broker is tried again and what is said about it: the decisions of
// the collector's reconnect loop, pure over the times it is given (one per connection: the
// subscriber and the publisher).
//
// Attempts: the first at once (at start, and as soon as a loss is seen), then after each
// failure a delay that doubles from `min` up to `max`, with jitter (each wait is drawn from
// [delay/2, delay]). Log: one line per change of state (up -> lost, the first failure of a
// run, back up) and, while the failures go on, a reminder at most every `reminder`; never one
// line per attempt. One thread; not thread-safe.
#pragma once

#include <chrono>
#include <cstdint>

namespace outpost::collector {

class Reconnect {
 public:
  using Clock = std::chrono::steady_clock;

  // What the caller should log now.
  enum class Say : uint8_t {
    kNothing,
    kLost,          // was up, is down (the next attempt is due at once)
    kFailing,       // the first failed attempt of a run (give the error and the backoff)
    kStillFailing,  // a reminder: failures() attempts have failed for down_for()
    kUp,            // the first success, at start
    kBack,          // up again after a loss or failures
  };

  Reconnect(std::chrono::microseconds min, std::chrono::microseconds max,
            std::chrono::microseconds reminder, uint64_t seed);

  // Whether an attempt is due at `now` (down, and the backoff has passed).
  bool due(Clock::time_point now) const { return !up_ && now >= next_attempt_; }
  bool up() const { return up_; }

  // The connection was seen down after it was up. kLost once; the next attempt is due at once.
  Say lost(Clock::time_point now);
  // An attempt failed: the next is due after the backoff.
  Say failed(Clock::time_point now);
  // An attempt succeeded (or the connection is up again).
  Say succeeded(Clock::time_point now);

  // Failed attempts since the last success (or the start).
  uint64_t failures() const { return failures_; }
  // How long the connection has been down (since the loss, or the first failure at start).
  std::chrono::microseconds down_for(Clock::time_point now) const;
  // The wait before the next attempt, as last drawn.
  std::chrono::microseconds wait() const { return wait_; }

 private:
  std::chrono::microseconds min_;
  std::chrono::microseconds max_;
  std::chrono::microseconds reminder_;
  uint64_t rng_;
  bool up_ = false;
  bool ever_up_ = false;
  uint64_t failures_ = 0;
  std::chrono::microseconds delay_{0};  // the backoff's current ceiling
  std::chrono::microseconds wait_{0};
  Clock::time_point next_attempt_{};
  Clock::time_point down_since_{};
  Clock::time_point last_said_{};
};

}  // namespace outpost::collector
