// The bounded hand-off from the agent's input thread to the thread that persists.
//
// The input thread reads datagrams and parses them; the agent's thread commits what
// was received to the store every flush interval. Between them sits this queue, so that
// a long SQLite transaction never leaves the sockets unread. It is bounded by item
// count: when it is full the input thread waits (the kernel's receive buffer then absorbs
// the burst, and what overflows it is counted by the kernel, see DatagramInput).
//
// Thread safety: push() from one producer thread, take() from one consumer thread,
// close() from any thread. Nothing fails or throws (short of std::bad_alloc).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <vector>

#include "outpost/agent/queue.h"

namespace outpost::agent {

class InputQueue {
 public:
  explicit InputQueue(std::size_t capacity) : capacity_(capacity) {}

  // Producer. Moves every item of `items` into the queue and clears `items` (its
  // capacity is kept for the next datagram). Waits while the queue already holds
  // `capacity` items or more (unless closed), so one push may overshoot the bound by
  // its own size. Returns the number of items queued after the push.
  std::size_t push(std::vector<QueueItem>& items);

  // Consumer. Swaps everything queued into `out`, which should be empty: its storage
  // becomes the queue's, so neither side reallocates in steady state. Wakes the producer.
  void take(std::vector<QueueItem>& out);

  // The agent is stopping: a waiting producer is let through and later pushes do not
  // wait, so nothing already read is lost; the consumer takes it all in a last take().
  void close();

  // Items queued now (a moment later it may differ). Any thread.
  std::size_t size();

  std::size_t capacity() const { return capacity_; }

 private:
  const std::size_t capacity_;
  std::mutex mu_;
  std::condition_variable room_;
  std::vector<QueueItem> items_;  // guarded by mu_
  bool closed_ = false;           // guarded by mu_
};

}  // namespace outpost::agent
