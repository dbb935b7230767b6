// Agent mode: the simulator starts K real outpost-agent processes with generated configs and
// feeds each one line protocol over UDP; the agents batch, store and publish.
//
// Files, in the work dir: agent-<i>.toml, agent-<i>.db (its store), agent-<i>.log (its
// stdout/stderr). One thread drives all devices (a datagram per device and tick is cheap).
#pragma once

#include <atomic>

#include "counters.h"
#include "outpost/common/result.h"
#include "outpost/sim/manifest.h"
#include "outpost/sim/scenario.h"

namespace outpost::sim {

// Starts the agents, waits until each listens, sends readings for the scenario's duration
// (or until `stop`), then stops the agents with SIGTERM (they deliver what they hold in up to
// 5 s, publish offline and exit) and waits for them. Fails if an agent does not start.
common::Result<Manifest> run_agent_fleet(const Scenario& scenario, LiveCounters& counters,
                                         const std::atomic<bool>& stop);

}  // namespace outpost::sim
