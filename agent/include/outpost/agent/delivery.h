// The agent's delivery policy: when to seal a batch, publish, resend, reconnect and give up.
//
// Delivery drives a Publisher (publisher.h) and the queue (queue.h) from one thread, the
// caller's, by being ticked; it keeps no thread or timer of its own and reads time from an
// injected Clock. Its guarantees:
//   - messages go out oldest first (a re-send before any newer message), at most
//     max_inflight at a time, each with the (epoch, seq) it was sealed with, so the collector
//     stores it once however often it arrives;
//   - a message leaves the queue when its delivery completes (fire_and_forget: written;
//     at_least_once: PUBACK) or, for end_to_end, when the collector's commit ack names it;
//     an end_to_end message not acked within ack_timeout is sent again, and no new batch is
//     sealed while max_awaiting_ack wait;
//   - a lost connection is retried with jittered exponential backoff; a new connection
//     (clean session) re-subscribes to the ack topic and re-publishes what was in flight;
//     an ack subscription the broker refuses, or that cannot be sent, is asked for again with
//     the same backoff on the same connection (a broker may refuse it for a while: NATS does
//     while JetStream elects a leader), so commit acks never stop for a connection's life;
//   - the retained status is "online" at every connect and every status_interval, "lost"
//     as the last will, and "offline" at a graceful stop, which first drains for a bounded
//     time and then leaves what is left in the queue for the next start.
// Every failure of the queue or the client is counted (DeliveryCounters) and logged at a
// limited rate; none stops the loop.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "outpost/agent/backoff.h"
#include "outpost/agent/batcher.h"
#include "outpost/agent/clock.h"
#include "outpost/agent/config.h"
#include "outpost/agent/publisher.h"
#include "outpost/agent/queue.h"
#include "outpost/common/logging.h"
#include "outpost/common/message.h"
#include "outpost/common/mqtt_settings.h"

namespace outpost::agent {

struct DeliveryOptions {
  std::string site;       // topics: outpost/v1/<site>/<device_id>/...
  std::string device_id;  // topics and every envelope
  uint64_t epoch = 0;     // this run's epoch, stamped on every sealed message
  std::string broker;     // for log lines only
  std::string client_id;  // for log lines only
  DeliveryMode data_delivery = DeliveryMode::kEndToEnd;  // the agent's defaults (config.h)
  DeliveryMode logs_delivery = DeliveryMode::kEndToEnd;
  BatchLimits batch;
  std::chrono::microseconds max_batch_delay{1'000'000};   // a partial batch goes after this
  uint32_t max_inflight = 16;                             // published, delivery not complete
  uint32_t max_awaiting_ack = 256;                        // end_to_end: delivered, not acked
  std::chrono::microseconds ack_timeout{30'000'000};      // end_to_end: re-send after this
  std::chrono::microseconds status_interval{60'000'000};  // retained status refresh
  std::chrono::microseconds reconnect_min{common::kMqttReconnectMinUs};
  std::chrono::microseconds reconnect_max{common::kMqttReconnectMaxUs};
  std::chrono::milliseconds stop_drain{5'000};  // a graceful stop delivers for this long
};

// The [mqtt], [batch] and [device] settings of `config` for a run with `epoch`.
DeliveryOptions delivery_options(const AgentConfig& config, uint64_t epoch);

// What Delivery did and what went wrong. Read on the ticking thread.
struct DeliveryCounters {
  uint64_t published = 0;          // data and log messages handed to the client (re-sends included)
  uint64_t acked = 0;              // messages whose delivery completed
  uint64_t commit_acks = 0;        // end_to_end messages the collector confirmed
  uint64_t resent = 0;             // end_to_end messages sent again after ack_timeout
  uint64_t reconnects = 0;         // successful connections
  uint64_t connect_failures = 0;   // connection attempts that failed or could not start
  uint64_t publish_failures = 0;   // messages the client refused (they stay queued)
  uint64_t delivery_failures = 0;  // publishes the client gave up on (they stay queued)
  uint64_t subscribe_failures = 0;  // ack topic subscriptions not sent or refused by the broker
  uint64_t status_failures = 0;     // status messages not built, refused or not delivered
  uint64_t bad_acks = 0;            // ack messages that did not decode or validate
  StoreErrors store_errors;         // queue operations that failed (StoreOp)
};

class Delivery {
 public:
  using time_point = Clock::time_point;
  // The encoded status message for `state` (the will, the online refresh, offline at stop);
  // supplied by the caller, who knows the queue figures and counters it carries.
  using StatusSource = std::function<common::Result<std::vector<uint8_t>>(common::DeviceState)>;
  // Called between two seals; returns true if it had to take the thread for something more
  // urgent (the agent flushes input that piled up), and then the send loop yields.
  using Yield = std::function<bool()>;

  // Fails if the site or device id cannot form a topic. The references must outlive it.
  static common::Result<std::unique_ptr<Delivery>> create(DeliveryOptions options,
                                                          Publisher& publisher, Outbox& outbox,
                                                          ItemQueue& items, const Clock& clock,
                                                          StatusSource status, Yield yield = {});

  // Items were persisted: a batch of their stream becomes due max_batch_delay from the
  // first of them. Queued items from a previous run are due at once (see create()).
  void queued(std::span<const QueueItem> items);

  // One pass: connection upkeep, completions and acks, then re-sends, new batches and the
  // status refresh. Call every few ms while busy(), less often otherwise.
  void tick();

  // True while anything is under way (connecting, deliveries or acks outstanding, the
  // outbox to be read back): the caller should tick soon rather than idly.
  bool busy() const;
  bool connected() const { return connected_; }

  // Graceful stop. begin_stop() makes every partial batch due and starts the drain
  // deadline (stop_drain); then call drain_step() every few ms until it returns true: it
  // delivers what it can until the queue is empty, the deadline passes or the connection is
  // lost, then publishes the offline status and disconnects. What is left stays queued.
  void begin_stop();
  bool drain_step();

  const DeliveryCounters& counters() const { return counters_; }

 private:
  struct InFlight {  // a message published, delivery not yet complete
    PublishId publish_id;
    Stream stream;
    uint64_t epoch;
    uint64_t seq;
  };
  struct AwaitingAck {  // an end_to_end message the broker has, not yet acked
    time_point sent;
    uint64_t epoch;
    uint64_t seq;
  };

  Delivery(DeliveryOptions options, Publisher& publisher, Outbox& outbox, ItemQueue& items,
           const Clock& clock, StatusSource status, Yield yield);

  void step(time_point now);
  void maintain_connection(Connection state, time_point now);
  void on_connected(time_point now);
  // end_to_end: subscribes to the ack topic; on a refusal, again after a backoff.
  void subscribe_acks(time_point now);
  void check_subscription(time_point now);
  void handle_completions(time_point now);
  void handle_acks();
  void forget_if(const std::function<bool(uint64_t epoch, uint64_t seq)>& acked);
  void send(time_point now);
  void seal_ready(Stream stream, time_point now);
  bool publish(const OutboxMessage& message);
  void publish_status(common::DeviceState state);
  bool queue_empty();
  DeliveryMode mode(Stream stream) const;
  bool uses_end_to_end() const;
  void store_failed(StoreOp op, const common::Error& error);

  DeliveryOptions options_;
  Publisher& publisher_;
  Outbox& outbox_;
  ItemQueue& items_;
  const Clock& clock_;
  StatusSource status_;
  Yield yield_;
  std::string data_topic_, logs_topic_, status_topic_, ack_topic_;

  std::array<std::optional<time_point>, 2> waiting_since_;  // per stream: a batch is pending
  std::map<int64_t, InFlight> inflight_;                    // by outbox id
  std::unordered_map<PublishId, int64_t> inflight_ids_;     // publish id -> outbox id
  std::map<int64_t, AwaitingAck> awaiting_ack_;             // by outbox id
  std::optional<PublishId> status_id_;                      // the last status publish
  // The outbox may hold a message that is neither in flight nor awaiting its ack (left by a
  // previous run, a failed publish or delivery, a reconnect, an ack timeout). Reading every
  // unacked payload back on each tick was most of the agent's CPU time at a low input rate.
  bool rescan_outbox_ = true;
  bool connected_ = false;
  bool connecting_ = false;
  time_point next_connect_{};
  time_point next_status_{};
  Backoff backoff_;
  Backoff subscribe_backoff_;                 // between refused ack subscriptions
  std::optional<time_point> resubscribe_at_;  // a refused ack subscription is asked again then
  bool stopping_ = false;
  time_point stop_deadline_{};
  std::vector<Completion> completed_;  // storage reused by every poll
  std::vector<Received> received_;
  common::RateLimiter store_log_;
  common::RateLimiter mqtt_log_;
  common::RateLimiter ack_log_;
  DeliveryCounters counters_;
};

}  // namespace outpost::agent
