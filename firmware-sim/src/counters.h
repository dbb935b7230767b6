// Live counters of a run, written by the fleet threads and read by the progress display.
#pragma once

#include <atomic>
#include <cstdint>

namespace outpost::sim {

struct LiveCounters {
  std::atomic<uint64_t> devices{0};            // devices in the fleet
  std::atomic<int64_t> connected{0};           // devices whose connection is up
  std::atomic<uint64_t> readings{0};           // readings in acknowledged valid batches
  std::atomic<uint64_t> messages{0};           // acknowledged messages of any kind
  std::atomic<uint64_t> malformed{0};          // acknowledged malformed messages
  std::atomic<uint64_t> duplicates{0};         // acknowledged duplicate sends
  std::atomic<uint64_t> publish_failures{0};   // publishes that failed (then retried)
  std::atomic<uint64_t> connects{0};           // connection attempts that succeeded
  std::atomic<uint64_t> connect_failures{0};   // connection attempts that failed
  std::atomic<uint64_t> connection_losses{0};  // connections lost unexpectedly
  std::atomic<uint64_t> backlog{0};            // messages generated but not yet published
  std::atomic<uint64_t> lost_completions{0};   // Paho results that could not be handed over
};

}  // namespace outpost::sim
