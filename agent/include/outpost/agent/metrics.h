// The agent's metrics in Prometheus text exposition format (version 0.0.4).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "outpost/agent/line_protocol.h"

namespace outpost::agent {

// A consistent picture of the agent at one moment, gathered on the agent's thread.
struct MetricsSnapshot {
  uint64_t accepted_readings = 0;
  uint64_t accepted_logs = 0;
  std::map<LineError, uint64_t> rejected;  // reasons absent here are reported as 0
  uint64_t kernel_dropped_datagrams = 0;   // lost in a full socket receive buffer
  uint64_t persisted = 0;
  uint64_t published = 0;
  uint64_t acked = 0;        // delivery complete (PUBACK, or written for QoS 0)
  uint64_t commit_acks = 0;  // end_to_end messages confirmed by the collector
  uint64_t resent = 0;       // end_to_end messages sent again after ack_timeout
  uint64_t reconnects = 0;
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

// Renders every metric with HELP and TYPE lines. Names start with outpost_agent_.
std::string render_metrics(const MetricsSnapshot& m);

}  // namespace outpost::agent
