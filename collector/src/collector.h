// The running collector: an MQTT thread (Paho consumer -> journal -> classify -> queue) and a
// storage thread (queue -> events -> one SQLite transaction -> acks, events out).
//
// Two MQTT connections: the subscriber (persistent session unless clean_session, never
// publishes) and the publisher ("<client_id>-pub", clean session) for acks and events. A
// persistent session that publishes makes Paho resend its unacknowledged QoS 1 messages at
// every reconnect; after a broker restart mosquitto found those resends malformed and the
// collector could never reconnect (docs/chaos.md). Apart, a stale ack or event is dropped at
// reconnect (acks are re-sent when the agent re-sends; events are in the database).
// Threads: Paho's own network thread only fills Paho's consumer queue; nothing of ours runs
// on it. The MQTT thread (mqtt_loop) connects both, subscribes, consumes, journals and
// classifies; it blocks on the bounded queue when storage falls behind, which is the
// backpressure (Paho's queue then holds the surplus, and the broker its own). The storage
// thread (storage_loop) owns the Sink, the FleetTracker and the RuleEngine; after each commit
// it publishes acks and events and hands events to the WebhookDispatcher, whose own thread
// delivers them and hands back those that give up (stored in the DLQ by the storage thread).
// The caller's thread runs the Asio io_context (signals, metrics endpoint).
#pragma once

#include <mqtt/async_client.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "outpost/collector/bounded_queue.h"
#include "outpost/collector/config.h"
#include "outpost/collector/fleet.h"
#include "outpost/collector/ingest.h"
#include "outpost/collector/journal.h"
#include "outpost/collector/rules.h"
#include "outpost/collector/sqlite_sink.h"
#include "outpost/collector/webhook.h"
#include "outpost/common/logging.h"

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
  std::atomic<uint64_t> commit_us_total{0};
  std::atomic<uint64_t> commit_messages_total{0};
  std::atomic<uint64_t> acks_published{0};
  std::atomic<uint64_t> events_published{0};
  std::atomic<uint64_t> publish_skipped{0};  // acks/events while the publisher was down
  std::atomic<uint64_t> reconnects{0};
  std::atomic<uint64_t> expired_rows{0};
  std::atomic<uint64_t> journal_errors{0};
  std::atomic<uint64_t> rules_tripped{0};  // (rule, device) pairs tripped now
  // Reading timestamp -> committed, per upper bound of kLatencyBuckets (+Inf last).
  std::array<std::atomic<uint64_t>, 13> latency_counts{};
  std::atomic<uint64_t> latency_sum_us{0};
};

// Upper bounds of the latency histogram, in seconds.
inline constexpr std::array<double, 12> kLatencyBuckets = {0.005, 0.01, 0.025, 0.05, 0.1,  0.25,
                                                           0.5,   1.0,  2.5,   5.0,  10.0, 60.0};

class Collector {
 public:
  static constexpr int kPermanentFailureAttempts = 3;

  Collector(CollectorConfig config, std::unique_ptr<SqliteSink> sink,
            std::unique_ptr<Journal> journal);
  ~Collector();

  // Replays the journal, starts the MQTT and storage threads. Fails only on a broken
  // store or journal: a broker that is down is retried with backoff, not an error.
  common::Status<> start();

  // Graceful stop (SIGTERM): stop taking messages, commit what is queued, publish the last
  // acks, disconnect. Blocks until done.
  void stop();

  // Prometheus text exposition of the counters; any thread.
  std::string metrics_text() const;
  const Counters& counters() const { return counters_; }

 private:
  using Clock = std::chrono::steady_clock;
  struct Work {
    Classified item;
    std::optional<JournalPosition> journal;
  };

  void mqtt_loop();
  bool ensure_connected();
  // Starts (re)connecting the publisher when it is down; never blocks. MQTT thread only.
  void ensure_publisher();
  void storage_loop();
  void add(Work work, Transaction& tx, std::vector<EventItem>& events, int64_t now_us);
  // Commits `tx`, retrying with backoff; a permanent failure (kPermanentFailureAttempts in a
  // row) goes to isolate_failure. Leaves `tx` empty.
  void commit(Transaction& tx);
  // Commits the messages of a failing transaction one by one; the one the store refuses goes
  // to the DLQ as storage_rejected, the rest is stored.
  void isolate_failure(Transaction& tx, const std::string& error);
  void after_commit(const Transaction& tx);
  // Hands one ack or event to the publisher; false (and counted) if it is not connected.
  bool publish(const std::string& topic, const common::Envelope& envelope, bool retained);
  void observe_latencies(const Transaction& tx, const CommitResult& result);
  // Threshold events for the readings this commit stored (not for duplicates).
  std::vector<EventItem> evaluate_rules(const Transaction& tx, const CommitResult& result);
  // Moves the webhook deliveries that gave up into `tx.dlq`; true if there were any.
  bool take_gave_up(Transaction& tx);

  CollectorConfig config_;
  std::unique_ptr<SqliteSink> sink_;
  std::unique_ptr<Journal> journal_;
  std::unique_ptr<mqtt::async_client> client_;                  // subscriber
  std::unique_ptr<mqtt::async_client> publisher_;               // acks and events
  mqtt::token_ptr publisher_connect_;                           // MQTT thread only
  std::chrono::steady_clock::time_point publisher_next_try_{};  // MQTT thread only
  BoundedQueue<Work> queue_;
  FleetTracker fleet_;
  RuleEngine rules_;  // storage thread only
  std::mutex gave_up_mutex_;
  std::vector<DlqItem> gave_up_;  // webhook deliveries given up, not yet in a transaction
  std::unique_ptr<WebhookDispatcher> webhooks_;  // null when no webhook is configured
  Counters counters_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> connected_{false};
  std::thread mqtt_thread_;
  std::thread storage_thread_;
  common::RateLimiter dlq_log_;
  common::RateLimiter publish_log_{3, std::chrono::seconds(30)};
  int64_t reconnect_delay_us_ = 0;  // MQTT thread only
  uint64_t event_seq_ = 0;
  uint64_t epoch_ = 0;
};

}  // namespace outpost::collector
