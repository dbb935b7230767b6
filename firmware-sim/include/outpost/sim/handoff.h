// Handing a result from a thread that must not throw (Paho's callback threads) to the thread
// that acts on it. Pure; no Paho.
#pragma once

#include <atomic>
#include <cstdint>
#include <new>
#include <system_error>

namespace outpost::sim {

// Runs `enqueue` (locking a mutex and growing a container: std::system_error and
// std::bad_alloc are what that can throw) where no exception may escape: Paho calls its
// handlers with no try/catch. Returns whether it ran to the end; if not, the item is not
// queued and `failures` counts it, for the queue's owner to report (metric and log). Any other
// exception is a programmer error and ends the process (noexcept).
template <typename Enqueue>
bool enqueue_or_count(Enqueue&& enqueue, std::atomic<uint64_t>& failures) noexcept {
  try {
    enqueue();
    return true;
  } catch (const std::bad_alloc&) {
  } catch (const std::system_error&) {
  }
  failures.fetch_add(1, std::memory_order_relaxed);
  return false;
}

}  // namespace outpost::sim
