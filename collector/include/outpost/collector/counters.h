// The collector's counters and their Prometheus text exposition.
//
// Counters are atomics: the MQTT thread, the storage thread (StorageLoop) and the metrics
// endpoint's thread use them at once. Relaxed increments; a scrape may see one counter a
// commit ahead of another.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <optional>
#include <string>

#include "outpost/collector/webhook.h"

namespace outpost::collector {

struct Counters {
  std::atomic<uint64_t> received{0};        // messages from the broker (and replayed)
  std::atomic<uint64_t> replayed{0};        // of which from the journal at start
  std::atomic<uint64_t> batches_stored{0};  // data/logs messages stored
  std::atomic<uint64_t> duplicates{0};      // data/logs messages already stored
  std::atomic<uint64_t> readings_stored{0};
  std::atomic<uint64_t> logs_stored{0};
  std::atomic<uint64_t> statuses{0};
  std::atomic<uint64_t> dlq{0};
  std::array<std::atomic<uint64_t>, 16> dlq_by_reason{};
  std::atomic<uint64_t> dlq_dropped{0};
  std::array<std::atomic<uint64_t>, 16> events_by_kind{};
  std::atomic<uint64_t> commits{0};
  std::atomic<uint64_t> commit_failures{0};
  std::atomic<uint64_t> commits_given_up{0};  // transactions left to the journal at shutdown
  std::atomic<uint64_t> commit_us_total{0};
  std::atomic<uint64_t> commit_messages_total{0};
  std::atomic<uint64_t> acks_published{0};
  std::atomic<uint64_t> events_published{0};
  std::atomic<uint64_t> publish_skipped{0};  // acks/events while the publisher was down
  std::atomic<uint64_t> encode_failures{0};  // acks/events/DLQ copies whose topic or bytes failed
  std::atomic<uint64_t> reconnects{0};
  std::atomic<uint64_t> connect_failures{0};  // failed subscriber connect/subscribe attempts
  std::atomic<uint64_t> intake_pauses{0};     // subscription paused: intake over its bound
  std::atomic<uint64_t> oversized_cut{0};     // messages over max_message_bytes: kept cut
  std::atomic<uint64_t> ignored{0};           // catch-all: Outpost topics not ours to store
  std::atomic<uint64_t> expired_rows{0};
  std::atomic<uint64_t> retention_failures{0};  // expire() calls that failed
  std::atomic<uint64_t> journal_errors{0};
  std::atomic<uint64_t> journal_release_failures{0};  // committed segments that could not go
  std::atomic<uint64_t> rules_tripped{0};             // (rule, device) pairs tripped now
  // Reading timestamp -> committed, per upper bound of kLatencyBuckets (+Inf last).
  std::array<std::atomic<uint64_t>, 13> latency_counts{};
  std::atomic<uint64_t> latency_sum_us{0};
};

// Upper bounds of the latency histogram, in seconds.
inline constexpr std::array<double, 12> kLatencyBuckets = {0.005, 0.01, 0.025, 0.05, 0.1,  0.25,
                                                           0.5,   1.0,  2.5,   5.0,  10.0, 60.0};

// What a scrape reads from the live service besides the counters.
struct LiveGauges {
  uint64_t queue_depth = 0;              // messages waiting for the storage thread
  bool connected = false;                // the subscriber (also while paused by the intake)
  uint64_t intake_bytes = 0;             // received, not yet taken by the MQTT thread
  uint64_t intake_peak_bytes = 0;        // the most held at once since start
  bool intake_paused = false;            // the subscription is paused (intake over its bound)
  bool publisher_connected = false;      // acks and events
  std::optional<WebhookStats> webhooks;  // nullopt when no webhook is configured
  // Shared mode only (nullopt otherwise): whether this collector is the fleet leader now, and
  // the rounds it committed and the times it restored the fleet's state on becoming leader.
  std::optional<bool> fleet_leader;
  uint64_t leader_rounds = 0;
  uint64_t leader_restores = 0;
};

// Prometheus text exposition (outpost_collector_* families); any thread.
std::string metrics_text(const Counters& counters, const LiveGauges& live);

}  // namespace outpost::collector
