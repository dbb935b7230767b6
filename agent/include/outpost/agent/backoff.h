// Exponential reconnect backoff with jitter, so a fleet does not reconnect in lockstep.
#pragma once

#include <chrono>
#include <cstdint>
#include <random>

namespace outpost::agent {

class Backoff {
 public:
  using Duration = std::chrono::milliseconds;

  // Delays grow from `initial` by doubling up to `max`; each is then multiplied by
  // a random factor in [1 - jitter, 1 + jitter] (jitter in [0, 1]).
  Backoff(Duration initial, Duration max, double jitter, uint64_t seed)
      : initial_(initial), max_(max), jitter_(jitter), rng_(seed), current_(initial) {}

  // The delay before the next attempt; each call after a failure doubles the base.
  Duration next() {
    const Duration base = current_;
    current_ = std::min(max_, current_ * 2);
    std::uniform_real_distribution<double> factor(1.0 - jitter_, 1.0 + jitter_);
    return Duration(static_cast<int64_t>(static_cast<double>(base.count()) * factor(rng_)));
  }

  // After a success: start again from `initial`.
  void reset() { current_ = initial_; }

 private:
  Duration initial_, max_;
  double jitter_;
  std::mt19937_64 rng_;
  Duration current_;
};

}  // namespace outpost::agent
