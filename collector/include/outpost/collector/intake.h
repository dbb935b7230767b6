// What the MQTT client has handed over and the MQTT thread has not taken yet, counted in
// bytes, with the decision to pause the subscription above a bound and resume it below.
//
// Paho acknowledges a QoS 1 message as soon as it has read it, and its message callback must
// not wait (it runs holding the library's global mutex, which every other Paho call takes). So
// whatever the storage thread cannot take yet would pile up here without limit while a broker
// drains a backlog. Instead, above `pause_bytes` the MQTT thread disconnects the subscriber
// (a persistent session keeps the rest at the broker) and connects again once what is held
// falls to `resume_bytes`. put() never blocks; take_until() is the MQTT thread's side.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <utility>
#include <vector>

namespace outpost::collector {

// Bookkeeping bytes counted per message besides its payload (topic, message object, queue
// entry): small messages count too.
inline constexpr std::size_t kIntakeOverheadBytes = 256;

struct IntakeBounds {
  std::size_t pause_bytes = 4u << 20;   // pause the subscription at or above this
  std::size_t resume_bytes = 1u << 20;  // connect again at or below this
};

template <typename T>
class Intake {
 public:
  explicit Intake(IntakeBounds bounds) : bounds_(bounds) {}

  // From the MQTT client's callback: queues and returns at once. `payload_bytes` is what the
  // item holds (the overhead is added here).
  void put(T item, std::size_t payload_bytes) {
    const std::size_t bytes = payload_bytes + kIntakeOverheadBytes;
    std::lock_guard lock(mu_);
    const bool was_empty = items_.empty();
    items_.emplace_back(std::move(item), bytes);
    bytes_ += bytes;
    if (bytes_ > peak_bytes_) peak_bytes_ = bytes_;
    if (was_empty) not_empty_.notify_one();
  }

  // Moves up to `max` of the oldest items onto `out` (the first whatever its size, then while
  // their counted bytes stay within `max_bytes`), waiting until `deadline` for the first; the
  // number moved.
  std::size_t take_until(std::chrono::steady_clock::time_point deadline, std::vector<T>& out,
                         std::size_t max, std::size_t max_bytes) {
    std::unique_lock lock(mu_);
    if (!not_empty_.wait_until(lock, deadline, [&] { return !items_.empty(); })) return 0;
    std::size_t n = 0, taken_bytes = 0;
    while (n < max && !items_.empty()) {
      auto& [item, bytes] = items_.front();
      if (n > 0 && taken_bytes + bytes > max_bytes) break;
      taken_bytes += bytes;
      bytes_ -= bytes;
      out.push_back(std::move(item));
      items_.pop_front();
      ++n;
    }
    return n;
  }

  // Whether the subscription should pause now (held bytes at or above the bound), and whether
  // a paused one may resume (at or below the lower mark).
  bool should_pause() const {
    std::lock_guard lock(mu_);
    return bytes_ >= bounds_.pause_bytes;
  }
  bool may_resume() const {
    std::lock_guard lock(mu_);
    return bytes_ <= bounds_.resume_bytes;
  }

  std::size_t messages() const {
    std::lock_guard lock(mu_);
    return items_.size();
  }
  std::size_t bytes() const {
    std::lock_guard lock(mu_);
    return bytes_;
  }
  // The most ever held at once.
  std::size_t peak_bytes() const {
    std::lock_guard lock(mu_);
    return peak_bytes_;
  }

 private:
  const IntakeBounds bounds_;
  mutable std::mutex mu_;
  std::condition_variable not_empty_;
  std::deque<std::pair<T, std::size_t>> items_;
  std::size_t bytes_ = 0;
  std::size_t peak_bytes_ = 0;
};

}  // namespace outpost::collector
