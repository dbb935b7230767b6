// A bounded FIFO between two threads: the producer blocks when it is full (backpressure),
// the consumer waits with a deadline. close() wakes both for shutdown. push_all and pop_some
// move many items per lock and per wake-up: the hand-off of one item at a time (a lock and a
// futex wake on each side) showed in the collector's profile.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <vector>

namespace outpost::collector {

template <typename T>
class BoundedQueue {
 public:
  explicit BoundedQueue(std::size_t capacity) : capacity_(capacity) {}

  // Blocks while full. False (and `item` not queued) once the queue is closed.
  bool push(T item) {
    std::unique_lock lock(mu_);
    not_full_.wait(lock, [&] { return closed_ || items_.size() < capacity_; });
    if (closed_) return false;
    items_.push_back(std::move(item));
    not_empty_.notify_one();
    return true;
  }

  // Queues every item of `items` in order, blocking while full (each time there is room, as
  // many as fit go in at once). The number queued: all, or fewer once the queue is closed.
  // `items` is left empty either way.
  std::size_t push_all(std::vector<T>& items) {
    std::size_t done = 0;
    std::unique_lock lock(mu_);
    while (done < items.size()) {
      not_full_.wait(lock, [&] { return closed_ || items_.size() < capacity_; });
      if (closed_) break;
      const bool was_empty = items_.empty();
      while (done < items.size() && items_.size() < capacity_) {
        items_.push_back(std::move(items[done++]));
      }
      if (was_empty) not_empty_.notify_one();  // a consumer waits only on an empty queue
    }
    items.clear();
    return done;
  }

  // push_all that gives up at `deadline`: queues items[done..] in order as room is made,
  // advancing `done` (all are queued when it reaches items.size()). False once the queue is
  // closed. For a producer that has something else to check while it waits.
  bool push_until(std::vector<T>& items, std::size_t& done,
                  std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(mu_);
    while (done < items.size()) {
      if (!not_full_.wait_until(lock, deadline,
                                [&] { return closed_ || items_.size() < capacity_; })) {
        return true;  // still full at the deadline
      }
      if (closed_) return false;
      const bool was_empty = items_.empty();
      while (done < items.size() && items_.size() < capacity_) {
        items_.push_back(std::move(items[done++]));
      }
      if (was_empty) not_empty_.notify_one();
    }
    return true;
  }

  // Moves up to `max` of the oldest items onto the end of `out`, waiting until `deadline` for
  // the first; the number moved (0 on timeout, or when closed and empty).
  std::size_t pop_some_until(std::chrono::steady_clock::time_point deadline, std::vector<T>& out,
                             std::size_t max) {
    std::unique_lock lock(mu_);
    if (!not_empty_.wait_until(lock, deadline, [&] { return closed_ || !items_.empty(); })) {
      return 0;
    }
    const bool was_full = items_.size() >= capacity_;
    std::size_t n = 0;
    while (n < max && !items_.empty()) {
      out.push_back(std::move(items_.front()));
      items_.pop_front();
      ++n;
    }
    if (was_full && n > 0) not_full_.notify_all();
    return n;
  }

  // The oldest item, waiting until `deadline`; nullopt on timeout or when closed and empty.
  std::optional<T> pop_until(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(mu_);
    if (!not_empty_.wait_until(lock, deadline, [&] { return closed_ || !items_.empty(); })) {
      return std::nullopt;
    }
    if (items_.empty()) return std::nullopt;
    T item = std::move(items_.front());
    items_.pop_front();
    not_full_.notify_one();
    return item;
  }

  void close() {
    std::lock_guard lock(mu_);
    closed_ = true;
    not_full_.notify_all();
    not_empty_.notify_all();
  }

  std::size_t size() const {
    std::lock_guard lock(mu_);
    return items_.size();
  }
  std::size_t capacity() const { return capacity_; }

 private:
  const std::size_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable not_full_;
  std::condition_variable not_empty_;
  std::deque<T> items_;
  bool closed_ = false;
};

}  // namespace outpost::collector
