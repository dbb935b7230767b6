// The running collector: an MQTT thread (Paho consumer -> journal -> classify -> queue) and a
// storage thread (queue -> events -> one SQLite transaction -> acks, events out).
//
// Two MQTT connections: the subscriber (persistent session unless clean_session, never
// publishes) and the publisher ("<client_id>-pub", clean session) for acks and events. A
// persistent session that publishes makes Paho resend its unacknowledged QoS 1 messages at
// every reconnect; after a broker restart mosquitto found those resends malformed and the
// collector could never reconnect (docs/chaos.md). Apart, a stale ack or event is dropped at
// reconnect (acks are re-sent when the agent re-sends; events are in the database).
// Threads: Paho's own network thread only fills the Intake (intake.h): a lock and a push,
// nothing else of ours runs on it. The MQTT thread (mqtt_loop) connects both (the subscriber first,
// the publisher's connect started beside it and never waited for; backoff and logging decided by
// Reconnect), subscribes, consumes (dropping our own topics the catch-all brings, cutting messages
// over max_message_bytes), journals and classifies; it blocks on the bounded queue when storage
// falls behind, which is the backpressure: the intake then fills, and at mqtt.intake_max_bytes the
// MQTT thread pauses the subscription (disconnects; a persistent session keeps the rest at the
// broker) and resumes it at a quarter of that. At stop it disconnects the subscriber first and then
// journals and queues whatever the intake still holds, so that nothing Paho acknowledged is lost.
// The storage thread runs StorageLoop (storage_loop.h, where every storage decision lives) over the
// Sink; after each commit it publishes acks and events and hands events to the WebhookDispatcher,
// whose own thread delivers them and hands back those that give up (stored in the DLQ).
// In shared mode the leader thread runs FleetLeader (fleet_leader.h): candidate for the leader
// lock, and while it holds it the fleet logic's rounds, publishing their events through a
// Publisher of its own over the same (thread-safe) Paho publisher client.
// The caller's thread runs the Asio io_context (signals, metrics endpoint).
#pragma once

#include <mqtt/async_client.h>

#include <atomic>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "outpost/collector/bounded_queue.h"
#include "outpost/collector/config.h"
#include "outpost/collector/counters.h"
#include "outpost/collector/fleet_leader.h"
#include "outpost/collector/intake.h"
#include "outpost/collector/journal.h"
#include "outpost/collector/reader.h"  // DeviceRow
#include "outpost/collector/reconnect.h"
#include "outpost/collector/sink.h"
#include "outpost/collector/storage_loop.h"
#include "outpost/collector/webhook.h"
#include "outpost/common/health.h"
#include "outpost/common/mqtt_connect.h"

namespace outpost::collector {

class Collector {
 public:
  // `devices` is what the database remembers of each device (seeds the fleet's state, so a
  // restart raises no spurious online/restarted events). With a `fleet_store` (shared mode,
  // fleet_leader.h) the storage thread only stores and acks, and a leader thread runs the
  // fleet logic whenever this collector holds the leader lock.
  Collector(CollectorConfig config, std::unique_ptr<Sink> sink, std::unique_ptr<Journal> journal,
            std::vector<DeviceRow> devices, std::unique_ptr<FleetStore> fleet_store = nullptr);
  ~Collector();

  // Replays the journal, starts the MQTT and storage threads. Fails only on a broken
  // store or journal: a broker that is down is retried with backoff, not an error.
  common::Status<> start();

  // Graceful stop (SIGTERM): stop taking messages, commit what is queued, publish the last
  // acks, disconnect. Blocks until done.
  void stop();

  // Prometheus text exposition of the counters; any thread.
  std::string metrics_text() const;
  // What /healthz, /readyz and /status answer from; any thread. Live: the storage loop turns
  // (its heartbeat). Ready: subscribed, and the last commit did not fail (no retry under way).
  common::HealthReport health() const;
  const Counters& counters() const { return counters_; }

 private:
  using Clock = std::chrono::steady_clock;
  struct Adapters;  // what StorageLoop runs over: Paho publisher, journal, webhooks, queue

  void mqtt_loop();
  // Journals, classifies and queues what was taken from the intake (empties `taken`); false once
  // the storage queue is closed. MQTT thread only.
  bool handle_burst(std::vector<mqtt::const_message_ptr>& taken);
  // Pauses the subscription when the intake is over its bound (persistent sessions only).
  void maybe_pause();
  // Connects and subscribes the subscriber when it is down and an attempt is due (starting the
  // publisher's connect beside it); true when it is up. `resuming`: back from a pause, connected
  // at once and without a word, and not subscribed again if the session is still there. MQTT
  // thread only.
  bool ensure_connected(bool resuming);
  // The subscribe ensure_connected left under way (a session with a backlog): its outcome once
  // it has one; false when it failed or timed out (the connection is then dropped and tried
  // again with backoff). MQTT thread only.
  bool check_subscription();
  void on_subscribed();                           // says so, counts it, marks the state up
  void connect_failed(const mqtt::exception& e);  // disconnects, counts, logs per change
  // Starts (re)connecting the publisher when it is down; never blocks. MQTT thread only.
  void ensure_publisher();
  void start_publisher_connect();
  void note_publisher_failure(const std::string& why);
  void make_reconnect_state();

  CollectorConfig config_;
  std::unique_ptr<Sink> sink_;
  std::unique_ptr<Journal> journal_;
  std::unique_ptr<mqtt::async_client> client_;     // subscriber
  std::unique_ptr<mqtt::async_client> publisher_;  // acks and events
  mqtt::token_ptr publisher_connect_;              // MQTT thread only
  // Backoff and what to log, per connection; made in start(). MQTT thread only.
  std::optional<Reconnect> subscriber_state_;
  std::optional<Reconnect> publisher_state_;
  BoundedQueue<StorageWork> queue_;
  Intake<mqtt::const_message_ptr> intake_;  // Paho's receive thread -> the MQTT thread
  // The subscriber disconnected on purpose (intake over its bound). Set by the MQTT thread,
  // read by scrapes.
  std::atomic<bool> intake_paused_{false};
  // The subscription's state on the current connection. MQTT thread only.
  mqtt::token_ptr subscribe_;  // under way
  Clock::time_point subscribe_started_{};
  bool subscribed_ = false;  // acknowledged (a resume with the session present keeps it)
  // handle_burst's buffers, kept for their capacity. MQTT thread only.
  std::vector<RawMessage> burst_;
  std::vector<JournalPosition> after_;
  std::vector<StorageWork> work_;
  Counters counters_;
  SystemStorageClock clock_;
  std::unique_ptr<Adapters> adapters_;
  std::unique_ptr<StorageLoop> storage_;     // the start-up thread, then the storage thread
  std::unique_ptr<FleetStore> fleet_store_;  // shared mode only, with leader_
  std::unique_ptr<FleetLeader> leader_;      // the leader thread
  // Null when no webhook is configured. Declared last, destroyed first: its stop() may still
  // hand give-ups to storage_.
  std::unique_ptr<WebhookDispatcher> webhooks_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::atomic<bool> stopping_{false};
  std::atomic<bool> connected_{false};
  std::thread mqtt_thread_;
  std::thread storage_thread_;
  std::thread leader_thread_;
  common::RateLimiter journal_log_{3, std::chrono::seconds(30)};
  std::string last_connect_error_;  // why the subscriber's connection fails, as last logged
  common::RateLimiter oversized_log_{3, std::chrono::seconds(60)};  // MQTT thread only
  common::RateLimiter pause_log_{1, std::chrono::seconds(60)};      // MQTT thread only
};

}  // namespace outpost::collector
