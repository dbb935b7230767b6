// Direct mode: simulated devices publish encoded batches to the broker over Paho connections.
//
// Threads: Scenario::threads workers, each owning a share of the MQTT connections and their
// devices (a device's model, ledger and backlog are touched by its worker only). Paho calls
// back on its own threads; the callbacks only queue the outcome for the owning worker, so
// nothing throws or blocks there. Paho C runs one send and one receive thread for all clients
// of the process, which is what lets one process hold thousands of connections.
#pragma once

#include <atomic>

#include "counters.h"
#include "outpost/common/result.h"
#include "outpost/sim/manifest.h"
#include "outpost/sim/scenario.h"

namespace outpost::sim {

// Which devices of the fleet this process drives: those whose index i has
// i % count == index (a large fleet can be split over processes, see --processes).
struct Shard {
  uint32_t index = 0;
  uint32_t count = 1;
};

// Runs `scenario` until its duration is over or `stop` is set, then flushes, waits for the
// outstanding acknowledgements (bounded), publishes each device's offline status and
// disconnects. Fails only if the run cannot start (e.g. the cut relay cannot listen).
common::Result<Manifest> run_direct_fleet(const Scenario& scenario, LiveCounters& counters,
                                          const std::atomic<bool>& stop, Shard shard = {});

}  // namespace outpost::sim
