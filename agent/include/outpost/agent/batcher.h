// Turning queued items into one message body: the name table, units and bounds of a batch.
#pragma once

#include <cstddef>
#include <span>

#include "outpost/agent/queue.h"
#include "outpost/common/message.h"

namespace outpost::agent {

struct BatchLimits {
  std::size_t max_readings = 500;     // per data message (the wire allows 1000)
  std::size_t max_records = 100;      // per logs message (the wire's maximum)
  std::size_t max_bytes = 64 * 1024;  // rough upper bound on the encoded payload
};

struct BuiltBatch {
  common::Body body;     // a ReadingBatch or a LogBatch
  std::size_t used = 0;  // how many leading items of the input it holds
};

// Builds the body of one message from the leading items of `items` (all of
// `stream`, in queue order), taking as many as the limits, the wire's 64-name
// table and its byte bounds allow, and at least one. `time_synced` is the device
// clock's state, carried by the batch.
BuiltBatch build_batch(Stream stream, std::span<const QueueItem> items, const BatchLimits& limits,
                       bool time_synced);

}  // namespace outpost::agent
