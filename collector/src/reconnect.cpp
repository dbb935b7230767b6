// The reconnect loop's decisions: backoff with jitter and what to log.
#include "outpost/collector/reconnect.h"

#include <algorithm>

namespace outpost::collector {

Reconnect::Reconnect(std::chrono::microseconds min, std::chrono::microseconds max,
                     std::chrono::microseconds reminder, uint64_t seed)
    : min_(min), max_(std::max(min, max)), reminder_(reminder), rng_(seed | 1) {}

Reconnect::Say Reconnect::lost(Clock::time_point now) {
  if (!up_) return Say::kNothing;
  up_ = false;
  failures_ = 0;
  delay_ = std::chrono::microseconds(0);
  next_attempt_ = now;
  down_since_ = now;
  last_said_ = now;
  return Say::kLost;
}

Reconnect::Say Reconnect::failed(Clock::time_point now) {
  if (up_) {
    // A failure while it was thought up: a loss seen through a failed operation.
    up_ = false;
    failures_ = 0;
    delay_ = std::chrono::microseconds(0);
    down_since_ = now;
  }
  if (failures_ == 0 && !ever_up_) down_since_ = now;
  ++failures_;
  delay_ = std::clamp(delay_ * 2, min_, max_);
  rng_ ^= rng_ << 13;  // xorshift64: jitter only, no need for more
  rng_ ^= rng_ >> 7;
  rng_ ^= rng_ << 17;
  const int64_t half = delay_.count() / 2;
  wait_ = std::chrono::microseconds(half + static_cast<int64_t>(rng_ % (half + 1)));
  next_attempt_ = now + wait_;
  if (failures_ == 1) {
    last_said_ = now;
    return Say::kFailing;
  }
  if (now - last_said_ >= reminder_) {
    last_said_ = now;
    return Say::kStillFailing;
  }
  return Say::kNothing;
}

Reconnect::Say Reconnect::succeeded(Clock::time_point now) {
  (void)now;
  if (up_) return Say::kNothing;
  up_ = true;
  const bool first = !ever_up_;
  ever_up_ = true;
  failures_ = 0;
  delay_ = std::chrono::microseconds(0);
  return first ? Say::kUp : Say::kBack;
}

std::chrono::microseconds Reconnect::down_for(Clock::time_point now) const {
  if (up_) return std::chrono::microseconds(0);
  return std::chrono::duration_cast<std::chrono::microseconds>(now - down_since_);
}

}  // namespace outpost::collector
