// The running agent: datagram inputs -> SQLite queue -> batched MQTT messages.
//
// It wires adapters to the core: the Store, PahoPublisher and the inputs on one side, Intake
// (what is received goes into the store) and Delivery (when to seal, publish, resend,
// reconnect, give up) on the other, driven by timers.
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

#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "datagram_input.h"
#include "outpost/agent/clock.h"
#include "outpost/agent/config.h"
#include "outpost/agent/delivery.h"
#include "outpost/agent/file_tail.h"
#include "outpost/agent/input_queue.h"
#include "outpost/agent/intake.h"
#include "outpost/agent/metrics.h"
#include "outpost/agent/store.h"
#include "outpost/agent/system_metrics.h"
#include "outpost/common/health.h"
#include "outpost/common/http_server.h"
#include "outpost/common/logging.h"

namespace outpost::agent {

class PahoPublisher;

struct AgentCounters {
  // Counted on the input thread (and the io thread, for tail and system readings).
  std::atomic<uint64_t> accepted_readings{0};
  std::atomic<uint64_t> accepted_logs{0};
  std::array<std::atomic<uint64_t>, 8> rejected{};  // malformed input lines, by LineError value
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
  uint64_t acked() const { return delivery_ ? delivery_->counters().acked : 0; }

  // Counters and store state now; called on the io thread (the metrics endpoint).
  MetricsSnapshot snapshot();
  // What /healthz, /readyz and /status answer from; io thread. Live: the io loop's heartbeat
  // (its send-loop timer). Ready: the store is open and the inputs are bound.
  common::HealthReport health();

 private:
  common::Status<> open_inputs();
  // Input thread.
  void on_datagram(std::string_view datagram, bool truncated);
  void flush();
  void schedule_flush();
  void schedule_tick();
  void schedule_system_sample();
  void schedule_tail();
  void poll_tails();
  void tick();
  void drain();
  common::Result<std::vector<uint8_t>> status_payload(common::DeviceState state);
  // The store's figures; a failure is counted and logged (rate-limited).
  std::optional<StoreStats> stats();
  void store_failed(StoreOp op, const std::string& what, const common::Error& error);

  AgentConfig config_;
  boost::asio::io_context& io_;
  uint64_t epoch_;
  SystemClock clock_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<PahoPublisher> publisher_;
  std::unique_ptr<Intake> intake_;
  std::unique_ptr<Delivery> delivery_;

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
  std::vector<TailMark> tail_marks_;
  AgentCounters counters_;
  StoreErrors store_errors_;  // io thread: stats, and tail positions read at start
  common::RateLimiter store_log_;
  common::HttpServer http_;                 // /metrics, /healthz, /readyz, /status
  common::Heartbeat heartbeat_;             // stamped by tick() on the io thread
  std::optional<int64_t> last_persist_us_;  // wall time of the last store transaction that held
  Clock::time_point started_;
  std::function<void()> stop_done_;
};

}  // namespace outpost::agent
