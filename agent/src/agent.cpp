// The running agent: an input thread; persistence, batching and MQTT delivery on the io thread.
#include "agent.h"

#include <random>

#include "outpost/common/codec.h"
#include "paho_publisher.h"

namespace outpost::agent {
namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;

// The send loop's period while deliveries are under way (tokens to poll, slots to fill),
// and while nothing is: every wake-up costs CPU that a device at 1,000 readings/s
// notices, and an idle tick only decides whether a partial batch is due.
constexpr auto kTick = 20ms;
constexpr auto kIdleTick = 100ms;
// Received items the input thread may queue before it waits for the store (its wait
// leaves new datagrams to the kernel's receive buffer). About 200 bytes each.
constexpr std::size_t kInputQueueCapacity = 64 * 1024;
// Queued items that start a flush at once rather than at the next flush interval.
constexpr std::size_t kFlushAt = 16 * 1024;

// Empties `items`, keeping its storage only if it is small: after a burst the queue's
// vectors would otherwise keep megabytes (200 bytes an item) for the rest of the run.
void release_after_burst(std::vector<QueueItem>& items) {
  constexpr std::size_t kKeep = 4096;
  if (items.capacity() > kKeep) {
    std::vector<QueueItem>().swap(items);
  } else {
    items.clear();
  }
}

uint64_t random_epoch() {
  std::random_device rd;
  const uint64_t v = (uint64_t{rd()} << 32) ^ rd();
  return (v & 0x7fff'ffff'ffff'ffffULL) | 1;  // non-zero, fits SQLite's signed integer
}

}  // namespace

uint64_t AgentCounters::rejected_total() const {
  uint64_t n = 0;
  for (const auto& count : rejected) n += count.load(std::memory_order_relaxed);
  return n;
}

Agent::Agent(AgentConfig config, asio::io_context& io)
    : config_(std::move(config)),
      io_(io),
      epoch_(random_epoch()),
      input_log_(10, std::chrono::seconds(10)),
      input_queue_(kInputQueueCapacity),
      flush_timer_(io),
      tick_timer_(io),
      system_timer_(io),
      tail_timer_(io),
      system_metrics_("", config_.system_disk_paths),
      store_log_(10, std::chrono::seconds(10)),
      http_(io),
      started_(clock_.now()) {
  http_.route_metrics("/metrics", [this] { return render_metrics(snapshot()); });
  http_.route("/healthz", [this] { return common::healthz(health()); });
  http_.route("/readyz", [this] { return common::readyz(health()); });
  http_.route("/status", [this] { return common::status_json(health()); });
}

Agent::~Agent() {
  // The input thread may wait in push(): release it before joining it.
  input_queue_.close();
  input_.reset();
}

common::Status<> Agent::start() {
  auto store = Store::open(config_.store, epoch_);
  if (!store.ok()) return store.error();
  store_ = std::move(store).value();
  auto stats = store_->stats();
  if (!stats.ok()) return stats.error();
  if (stats.value().store_resets > 0) {
    spdlog::error("store {} was corrupt: moved aside, started a fresh one", config_.store.path);
  }
  spdlog::info("store {}: {} queued items, {} unsent messages, last seq {}; epoch {}",
               config_.store.path, stats.value().queued_items, stats.value().outbox_messages,
               store_->last_seq(), epoch_);
  if (auto s = open_inputs(); !s.ok()) return s;
  if (!config_.metrics_listen.empty()) {
    const auto where = parse_host_port(config_.metrics_listen);
    if (!where)
      return common::Error{"metrics.listen '" + config_.metrics_listen + "' is not host:port"};
    if (auto s = http_.listen(where->host, where->port); !s.ok()) {
      return common::Error{"metrics: " + s.error().message};
    }
    spdlog::info("metrics on http://{}/metrics (health: /healthz, /readyz, /status)",
                 config_.metrics_listen);
  }

  auto publisher = PahoPublisher::create(config_);
  if (!publisher.ok()) return publisher.error();
  publisher_ = std::move(publisher).value();
  intake_ = std::make_unique<Intake>(*store_, clock_);
  auto delivery = Delivery::create(
      delivery_options(config_, epoch_), *publisher_, *store_, *store_, clock_,
      [this](common::DeviceState state) { return status_payload(state); },
      [this] {
        if (input_queue_.size() < kFlushAt) return false;
        flush();
        return true;
      });
  if (!delivery.ok()) return delivery.error();
  delivery_ = std::move(delivery).value();
  schedule_flush();
  schedule_tick();
  // Alive from here: the loop runs as soon as start() returns, and a first READY=1 or /healthz
  // must not read "has not run yet" for its first 100 ms.
  heartbeat_.beat();
  for (const auto& path : config_.tail_files) {
    auto saved = store_->tail_offset(path);
    if (!saved.ok())
      store_failed(StoreOp::kTailOffset, "cannot read the position in " + path,
                   saved.error());  // read from the configured start
    std::optional<TailPosition> position;
    if (saved.ok() && saved.value())
      position = TailPosition{saved.value()->inode, saved.value()->offset};
    tails_.push_back(std::make_unique<FileTail>(path, config_.tail_from_beginning, position));
    spdlog::info("following {}", path);
  }
  if (!tails_.empty()) schedule_tail();
  if (config_.system_interval_us > 0) {
    (void)system_metrics_.sample(clock_.wall_now_us());  // primes the CPU counters
    schedule_system_sample();
  }
  return {};
}

common::Status<> Agent::open_inputs() {
  auto input = DatagramInput::open({.udp_listen = config_.udp_listen,
                                    .unix_socket = config_.unix_socket,
                                    .unix_socket_mode = config_.unix_socket_mode,
                                    .unix_socket_group = config_.unix_socket_group});
  if (!input.ok()) return input.error();
  input_ = std::move(input).value();
  if (!config_.udp_listen.empty()) {
    spdlog::info("listening for lines on udp {} (receive buffer {} KiB)", config_.udp_listen,
                 input_->udp_receive_buffer_bytes() / 1024);
  }
  if (!config_.unix_socket.empty()) {
    spdlog::info("listening for lines on unix socket {}", config_.unix_socket);
  }
  input_->start(
      [this](std::string_view datagram, bool truncated) { on_datagram(datagram, truncated); });
  return {};
}

void Agent::on_datagram(std::string_view datagram, bool truncated) {
  if (truncated) {
    // Larger than any UDP datagram: a Unix datagram over 64 KiB. Its cut end would be
    // a broken line, so none of it is taken.
    ++counters_.rejected[static_cast<std::size_t>(LineError::kTooLong)];
    if (input_log_.allow(clock_.now())) {
      spdlog::warn("rejected a datagram larger than 64 KiB ({} bytes read)", datagram.size());
    }
    return;
  }
  auto result = parse_datagram(datagram, clock_.wall_now_us(), config_.line);
  // Rejections first: a reader that sees a datagram's readings counted sees its rejections.
  for (const auto& rejected : result.rejected) {
    counters_.rejected[static_cast<std::size_t>(rejected.rejection.error)].fetch_add(
        1, std::memory_order_relaxed);
    if (input_log_.allow(clock_.now())) {
      const uint64_t suppressed = input_log_.take_suppressed();
      spdlog::warn("rejected input line {} ({}): {}{}", rejected.line_number,
                   line_error_name(rejected.rejection.error), rejected.rejection.detail,
                   suppressed ? fmt::format(" ({} more rejected lines not logged)", suppressed)
                              : std::string());
    }
  }
  for (auto& line : result.accepted) {
    if (line.log) {
      QueueItem& item = parsed_.emplace_back();
      item.stream = Stream::kLogs;
      item.time_us = line.log->time_us;
      item.log = std::move(*line.log);
      counters_.accepted_logs.fetch_add(1, std::memory_order_release);
    }
    counters_.accepted_readings.fetch_add(append_readings(line.readings, parsed_),
                                          std::memory_order_release);  // after the rejections
  }
  if (parsed_.empty()) return;
  // Waits while the queue is full: the store is behind, the kernel buffers meanwhile.
  const std::size_t queued = input_queue_.push(parsed_);
  if (queued >= kFlushAt && !flush_posted_.exchange(true)) {
    asio::post(io_, [this] {
      flush_posted_ = false;
      flush();
    });
  }
}

void Agent::schedule_system_sample() {
  system_timer_.expires_after(std::chrono::microseconds(config_.system_interval_us));
  system_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    auto readings = system_metrics_.sample(clock_.wall_now_us());
    counters_.accepted_readings.fetch_add(append_readings(readings, pending_),
                                          std::memory_order_relaxed);
    schedule_system_sample();
  });
}

void Agent::schedule_tail() {
  tail_timer_.expires_after(std::chrono::microseconds(config_.tail_interval_us));
  tail_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    poll_tails();
    schedule_tail();
  });
}

void Agent::poll_tails() {
  const int64_t now = clock_.wall_now_us();
  for (const auto& tail : tails_) {
    for (const std::string& line : tail->poll()) {
      if (line.empty()) continue;
      pending_.push_back(
          tail_line_item(line, tail->path(), now, config_.line, config_.tail_severity));
      counters_.accepted_logs.fetch_add(1, std::memory_order_relaxed);
    }
  }
}

void Agent::schedule_flush() {
  flush_timer_.expires_after(std::chrono::microseconds(config_.flush_interval_us));
  flush_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    flush();
    schedule_flush();
  });
}

void Agent::flush() {
  // One transaction for what the input thread queued and what tail and system
  // readings added here; flushing_ keeps its storage for the next swap.
  input_queue_.take(flushing_);
  flushing_.insert(flushing_.end(), std::make_move_iterator(pending_.begin()),
                   std::make_move_iterator(pending_.end()));
  pending_.clear();
  if (flushing_.empty()) return;
  // Tail positions follow the lines now in the store.
  tail_marks_.clear();
  for (const auto& tail : tails_) {
    const auto p = tail->position();
    tail_marks_.push_back({&tail->path(), {p.inode, p.offset}});
  }
  if (intake_->persist(flushing_, tail_marks_)) {
    last_persist_us_ = clock_.wall_now_us();
    delivery_->queued(flushing_);
  }
  release_after_burst(flushing_);
}

void Agent::schedule_tick() {
  tick_timer_.expires_after(delivery_->busy() ? kTick : kIdleTick);
  tick_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    tick();
    schedule_tick();
  });
}

void Agent::tick() {
  heartbeat_.beat();
  delivery_->tick();
  if (delivery_->connected() && config_.store.max_age_us > 0) intake_->expire();
}

common::Result<std::vector<uint8_t>> Agent::status_payload(common::DeviceState state) {
  common::DeviceStatus s;
  s.state = state;
  s.time_us = clock_.wall_now_us();
  s.time_synced = clock_.synchronised();
  s.agent_version = OUTPOST_VERSION;
  s.uptime_s = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(clock_.now() - started_).count());
  if (auto stats = this->stats()) {
    s.queue_depth = stats->queued_items + stats->outbox_messages;
    s.queue_bytes = stats->bytes;
    s.dropped_oldest = stats->dropped_oldest;
    s.dropped_newest = stats->dropped_newest;
    s.dropped_expired = stats->dropped_expired;
    s.store_resets = stats->store_resets;
  }
  s.rejected_input = counters_.rejected_total();
  auto bytes = common::encode(
      common::Envelope{common::kSchemaVersion, config_.device_id, epoch_, 0, std::move(s)});
  if (!bytes.ok()) return common::Error{"status: " + bytes.error().detail};
  return std::move(bytes).value();
}

std::optional<StoreStats> Agent::stats() {
  auto stats = store_->stats();
  if (stats.ok()) return stats.value();
  store_failed(StoreOp::kStats, "cannot read the queue's figures", stats.error());
  return std::nullopt;
}

void Agent::store_failed(StoreOp op, const std::string& what, const common::Error& error) {
  store_errors_.add(op);
  if (store_log_.allow(clock_.now())) spdlog::error("store: {}: {}", what, error.message);
}

MetricsSnapshot Agent::snapshot() {
  MetricsSnapshot m;
  m.accepted_readings = counters_.accepted_readings.load(std::memory_order_acquire);
  m.accepted_logs = counters_.accepted_logs.load(std::memory_order_acquire);
  for (LineError e : kAllLineErrors) {
    m.rejected[e] = counters_.rejected[static_cast<std::size_t>(e)].load(std::memory_order_relaxed);
  }
  if (input_) m.kernel_dropped_datagrams = input_->kernel_drops();
  for (StoreOp op : kAllStoreOps) m.store_errors[op] = store_errors_[op];
  add_counters(m, intake_->counters(), delivery_->counters());
  m.connected = delivery_->connected();
  m.queue_max_bytes = config_.store.max_bytes;
  m.uptime_s = std::chrono::duration<double>(clock_.now() - started_).count();
  if (auto s = stats()) add_store_stats(m, *s, clock_.wall_now_us());
  return m;
}

common::HealthReport Agent::health() {
  common::HealthReport r;
  r.program = "outpost-agent";
  r.version = OUTPOST_VERSION;
  r.uptime_s = std::chrono::duration<double>(clock_.now() - started_).count();
  r.live.push_back(common::heartbeat_check("main_loop", heartbeat_));
  const auto s = store_ ? stats() : std::nullopt;
  r.ready.push_back({"store", s.has_value(),
                     !store_ ? "not open"
                     : s     ? ""
                             : "cannot read the store (see the log)"});
  r.ready.push_back({"inputs", input_ != nullptr, input_ ? "" : "not bound"});
  if (s) r.queue_depth = s->queued_items + s->outbox_messages;
  r.connected = delivery_ && delivery_->connected();
  r.last_commit_unix_us = last_persist_us_;
  return r;
}

void Agent::stop(std::function<void()> done) {
  http_.close();
  // Stop reading; the last datagram the input thread handled is queued (close() lets a
  // push waiting for room through) and persisted by the flush below.
  input_queue_.close();
  if (input_) input_->stop();
  flush_timer_.cancel();
  system_timer_.cancel();
  tail_timer_.cancel();
  poll_tails();
  flush();
  tick_timer_.cancel();
  // Drain briefly: deliver what is ready within a bounded time, then leave the rest in the
  // store for the next start.
  stop_done_ = std::move(done);
  delivery_->begin_stop();
  drain();
}

void Agent::drain() {
  if (!delivery_->drain_step()) {
    tick_timer_.expires_after(kTick);
    tick_timer_.async_wait([this](const boost::system::error_code&) { drain(); });
    return;
  }
  if (stop_done_) std::exchange(stop_done_, nullptr)();
}

}  // namespace outpost::agent
