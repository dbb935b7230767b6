// Direct mode over several processes: beyond about 10,000 connections one process's Paho
// receive thread falls behind (firmware-sim/README.md), so a large fleet can be split into
// shards, each a forked child with its own Paho threads, driving devices i % P == p.
//
// Children publish their live counters in shared memory and hand their ledgers back in a
// file (ledger_to_record); the parent merges them into one manifest.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <vector>

#include "counters.h"
#include "outpost/common/result.h"
#include "outpost/sim/manifest.h"
#include "outpost/sim/scenario.h"

namespace outpost::sim {

class ShardedFleet {
 public:
  // Forks `processes` children that start running at once. Call from main before starting
  // any thread (a child must not inherit a half-held lock). Never returns in a child.
  static common::Result<std::unique_ptr<ShardedFleet>> start(const Scenario& scenario,
                                                             uint32_t processes);
  ~ShardedFleet();
  ShardedFleet(const ShardedFleet&) = delete;
  ShardedFleet& operator=(const ShardedFleet&) = delete;

  // Waits for every child, keeping `total` up to date for the progress display and
  // forwarding `stop` (SIGTERM) to the children; then merges their ledgers.
  common::Result<Manifest> wait(LiveCounters& total, const std::atomic<bool>& stop);

 private:
  ShardedFleet() = default;

  uint64_t seed_ = 0;
  int64_t started_us_ = 0;
  LiveCounters* shared_ = nullptr;  // one per child, in MAP_SHARED memory
  std::size_t shared_bytes_ = 0;
  std::vector<pid_t> children_;
  std::filesystem::path dir_;  // shard-<p>.txt files
};

}  // namespace outpost::sim
