// The running agent: datagram inputs -> SQLite queue -> batched MQTT messages.
//
// Two threads of ours. The input thread (DatagramInput) reads the datagram sockets,
// parses each datagram and pushes the items into the bounded InputQueue; it never
// touches the store, so a long SQLite transaction cannot leave the sockets unread.
// Everything else runs on the io_context's thread: the flush timer (InputQueue -> one
// store transaction), file tail, system readings, the send loop, the metrics endpoint
// and signal handling; the Store is used by that thread only. Paho runs its own network
// thread; we call it from ours and poll its tokens instead of taking callbacks, so no
// exception or state change ever happens on Paho's thread.
#pragma once

#include <mqtt/async_client.h>

#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "datagram_input.h"
#include "outpost/agent/backoff.h"
#include "outpost/agent/config.h"
#include "outpost/agent/file_tail.h"
#include "outpost/agent/input_queue.h"
#include "outpost/agent/metrics.h"
#include "outpost/agent/store.h"
#include "outpost/agent/system_metrics.h"
#include "outpost/common/http_server.h"
#include "outpost/common/logging.h"

namespace outpost::agent {

struct AgentCounters {
  // Counted on the input thread (and the io thread, for tail and system readings).
  std::atomic<uint64_t> accepted_readings{0};
  std::atomic<uint64_t> accepted_logs{0};
  std::array<std::atomic<uint64_t>, 8> rejected{};  // malformed input lines, by LineError value
  // Counted on the io thread.
  uint64_t persisted = 0;  // items committed to the store
  uint64_t published = 0;  // messages handed to Paho
  uint64_t acked = 0;      // messages whose delivery completed
  uint64_t reconnects = 0;
  uint64_t commit_acks = 0;  // end_to_end messages the collector confirmed
  uint64_t resent = 0;       // end_to_end messages sent again after ack_timeout
  uint64_t rejected_total() const;
};

class Agent {
 public:
  Agent(AgentConfig config, boost::asio::io_context& io);
  ~Agent();

  // Opens the store, binds the inputs, starts the timers. Fails with a clear
  // message if a socket cannot be bound or the store cannot be created.
  common::Status<> start();

  // Graceful stop (SIGTERM): stop reading input, persist what was received,
  // give in-flight messages a moment to complete, publish the offline status,
  // disconnect. Calls `done` on the io thread when finished.
  void stop(std::function<void()> done);

  const AgentCounters& counters() const { return counters_; }

  // Counters and store state now; called on the io thread (the metrics endpoint).
  MetricsSnapshot snapshot();

 private:
  using Clock = std::chrono::steady_clock;

  common::Status<> open_inputs();
  // Input thread.
  void on_datagram(std::string_view datagram, bool truncated);
  void flush();
  void schedule_flush();
  void schedule_tick();
  void schedule_system_sample();
  void schedule_tail();
  void poll_tails();
  // Appends `readings` to `out` as queue items and counts them; either thread.
  void add_readings(std::vector<InputReading>& readings, std::vector<QueueItem>& out);
  void tick();
  void maintain_connection(Clock::time_point now);
  void on_connected();
  void poll_inflight();
  void poll_acks();
  bool uses_end_to_end() const;
  DeliveryMode mode(Stream stream) const;
  void send(Clock::time_point now);
  bool publish(const OutboxMessage& message);
  void seal_ready(Stream stream, Clock::time_point now);
  std::string status_payload(common::DeviceState state);  // binary, as Paho takes it
  std::string topic(common::PayloadKind kind) const;
  void drain_step();
  int qos(Stream stream) const;

  AgentConfig config_;
  boost::asio::io_context& io_;
  uint64_t epoch_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<mqtt::async_client> client_;

  // Input thread's own: what the datagram being handled yields, and its log limiter.
  std::vector<QueueItem> parsed_;
  common::RateLimiter input_log_;
  InputQueue input_queue_;
  std::atomic<bool> flush_posted_{false};  // a flush() is queued on the io thread
  std::unique_ptr<DatagramInput> input_;   // after input_queue_: its thread pushes into it
  boost::asio::steady_timer flush_timer_;
  boost::asio::steady_timer tick_timer_;
  boost::asio::steady_timer system_timer_;
  boost::asio::steady_timer tail_timer_;
  std::vector<std::unique_ptr<FileTail>> tails_;
  SystemMetrics system_metrics_;

  std::vector<QueueItem> pending_;   // tail and system items, not yet persisted (io thread)
  std::vector<QueueItem> flushing_;  // what one flush() persists; storage reused
  std::array<std::optional<Clock::time_point>, 2> waiting_since_;  // per stream
  // Messages published, delivery not yet complete: outbox id -> token.
  struct InFlight {
    mqtt::delivery_token_ptr token;
    Stream stream;
    uint64_t epoch;
    uint64_t seq;
  };
  std::map<int64_t, InFlight> inflight_;
  // end_to_end messages the broker has, waiting for the collector's commit ack.
  struct AwaitingAck {
    Clock::time_point sent;
    uint64_t epoch;
    uint64_t seq;
  };
  std::map<int64_t, AwaitingAck> awaiting_ack_;
  // The outbox may hold a message that is neither in flight nor awaiting its ack
  // (left by a previous run, a failed publish or delivery, a reconnect, an ack timeout).
  bool rescan_outbox_ = true;
  mqtt::token_ptr connect_token_;
  bool connected_ = false;
  Clock::time_point next_connect_;
  Clock::time_point next_status_;
  Backoff backoff_;
  common::RateLimiter bad_input_log_;
  AgentCounters counters_;
  common::HttpServer metrics_;
  Clock::time_point started_;
  bool stopping_ = false;
  Clock::time_point stop_deadline_;
  std::function<void()> stop_done_;
};

}  // namespace outpost::agent
