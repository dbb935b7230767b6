// The bounded hand-off between the input thread and the persisting thread.
#include "outpost/agent/input_queue.h"

#include <iterator>

namespace outpost::agent {

std::size_t InputQueue::push(std::vector<QueueItem>& items) {
  std::unique_lock lock(mu_);
  room_.wait(lock, [this] { return closed_ || items_.size() < capacity_; });
  items_.insert(items_.end(), std::make_move_iterator(items.begin()),
                std::make_move_iterator(items.end()));
  items.clear();
  return items_.size();
}

void InputQueue::take(std::vector<QueueItem>& out) {
  {
    std::lock_guard lock(mu_);
    out.clear();
    out.swap(items_);
  }
  room_.notify_one();
}

std::size_t InputQueue::size() {
  std::lock_guard lock(mu_);
  return items_.size();
}

void InputQueue::close() {
  {
    std::lock_guard lock(mu_);
    closed_ = true;
  }
  room_.notify_all();
}

}  // namespace outpost::agent
