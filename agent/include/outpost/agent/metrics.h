// The agent's metrics in Prometheus text exposition format (version 0.0.4).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "outpost/agent/line_protocol.h"
#include "outpost/agent/queue.h"

namespace outpost::agent {

// A consistent picture of the agent at one moment, gathered on the agent's thread.
struct MetricsSnapshot {
  uint64_t accepted_readings = 0;
  uint64_t accepted_logs = 0;
  std::map<LineError, uint64_t> rejected;  // reasons absent here are reported as 0
  uint64_t kernel_dropped_datagrams = 0;   // lost in a full socket receive buffer
  uint64_t persisted = 0;
  uint64_t lost_items = 0;                   // received, but the store could not persist them
  std::map<StoreOp, uint64_t> store_errors;  // failed queue operations; absent: 0
  uint64_t published = 0;
  uint64_t acked = 0;        // delivery complete (PUBACK, or written for QoS 0)
  uint64_t commit_acks = 0;  // end_to_end messages confirmed by the collector
  uint64_t resent = 0;       // end_to_end messages sent again after ack_timeout
  uint64_t reconnects = 0;
  uint64_t connect_failures = 0;    // connection attempts that failed
  uint64_t publish_failures = 0;    // messages the MQTT client refused (they stay queued)
  uint64_t delivery_failures = 0;   // publishes the client gave up on (they stay queued)
  uint64_t subscribe_failures = 0;  // ack subscriptions that could not be sent
  uint64_t status_failures = 0;     // status messages not sent or not delivered
  uint64_t bad_acks = 0;            // ack messages that did not decode or validate
  bool connected = false;
  uint64_t queue_items = 0;
  uint64_t queue_messages = 0;
  uint64_t queue_bytes = 0;
  uint64_t queue_max_bytes = 0;
  std::optional<double> oldest_item_age_s;
  uint64_t dropped_oldest = 0;
  uint64_t dropped_newest = 0;
  uint64_t dropped_expired = 0;
  uint64_t store_resets = 0;
  double uptime_s = 0;
};

struct IntakeCounters;
struct DeliveryCounters;

// Copies the core's counters into `m` (store errors are added to what `m` holds).
void add_counters(MetricsSnapshot& m, const IntakeCounters& intake,
                  const DeliveryCounters& delivery);
// Copies the queue's figures into `m`; `now_us` (wall clock) ages the oldest item.
void add_store_stats(MetricsSnapshot& m, const StoreStats& stats, int64_t now_us);

// Renders every metric with HELP and TYPE lines. Names start with outpost_agent_.
std::string render_metrics(const MetricsSnapshot& m);

}  // namespace outpost::agent
