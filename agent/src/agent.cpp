// The running agent: an input thread; persistence, batching and MQTT delivery on the io thread.
#include "agent.h"

#include <sys/timex.h>

#include <charconv>
#include <filesystem>
#include <random>

#include "outpost/agent/batcher.h"
#include "outpost/common/clock.h"
#include "outpost/common/codec.h"
#include "outpost/common/limits.h"
#include "outpost/common/topics.h"

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

using common::wall_now_us;

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

// The kernel knows whether NTP (or similar) disciplines the clock.
bool clock_synchronised() {
  struct timex tx = {};
  const int state = ::adjtimex(&tx);
  return state != TIME_ERROR && (tx.status & STA_UNSYNC) == 0;
}

uint64_t random_epoch() {
  std::random_device rd;
  const uint64_t v = (uint64_t{rd()} << 32) ^ rd();
  return (v & 0x7fff'ffff'ffff'ffffULL) | 1;  // non-zero, fits SQLite's signed integer
}

// Completed: true; failed: false; still pending: nullopt. Never throws.
template <typename Token>
std::optional<bool> poll(const Token& token) {
  try {
    if (!token->wait_for(std::chrono::milliseconds(0))) return std::nullopt;
    return true;
  } catch (const mqtt::exception&) {
    return false;
  }
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
      backoff_(std::chrono::milliseconds(config_.reconnect_min_us / 1000),
               std::chrono::milliseconds(config_.reconnect_max_us / 1000), 0.3, epoch_),
      bad_input_log_(10, std::chrono::seconds(10)),
      metrics_(io, "/metrics", [this] { return render_metrics(snapshot()); }),
      started_(Clock::now()) {}

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
    if (auto s = metrics_.listen(where->host, where->port); !s.ok()) return s;
    spdlog::info("metrics on http://{}/metrics", config_.metrics_listen);
  }

  // OpenSSL (1.1 and later) initialises itself when TLS is first used. Paho's own init
  // loads every error string and algorithm up front, even with TLS off: about 2 MB of
  // RSS (docs/BENCHMARKS.md). Must precede the first client.
  MQTTAsync_init_options paho_init = MQTTAsync_init_options_initializer;
  paho_init.do_openssl_init = 0;
  MQTTAsync_global_init(&paho_init);
  try {
    client_ = std::make_unique<mqtt::async_client>(config_.broker, config_.client_id,
                                                   mqtt::create_options(MQTTVERSION_3_1_1));
    // Incoming acks are queued by Paho and read on our thread (poll_acks), not in a callback.
    client_->start_consuming();
  } catch (const mqtt::exception& e) {
    return common::Error{"MQTT client for " + config_.broker + ": " + e.what()};
  }
  // Items left from a previous run are sent at once, not after max_delay.
  waiting_since_ = {Clock::now() - std::chrono::microseconds(config_.max_batch_delay_us),
                    Clock::now() - std::chrono::microseconds(config_.max_batch_delay_us)};
  next_connect_ = Clock::now();
  schedule_flush();
  schedule_tick();
  for (const auto& path : config_.tail_files) {
    auto saved = store_->tail_offset(path);
    std::optional<TailPosition> position;
    if (saved.ok() && saved.value())
      position = TailPosition{saved.value()->inode, saved.value()->offset};
    tails_.push_back(std::make_unique<FileTail>(path, config_.tail_from_beginning, position));
    spdlog::info("following {}", path);
  }
  if (!tails_.empty()) schedule_tail();
  if (config_.system_interval_us > 0) {
    (void)system_metrics_.sample(wall_now_us());  // primes the CPU counters
    schedule_system_sample();
  }
  return {};
}

common::Status<> Agent::open_inputs() {
  auto input =
      DatagramInput::open({.udp_listen = config_.udp_listen, .unix_socket = config_.unix_socket});
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
    if (input_log_.allow(Clock::now())) {
      spdlog::warn("rejected a datagram larger than 64 KiB ({} bytes read)", datagram.size());
    }
    return;
  }
  const int64_t now = wall_now_us();
  auto result = parse_datagram(datagram, now, config_.line);
  for (auto& line : result.accepted) {
    if (line.log) {
      QueueItem& item = parsed_.emplace_back();
      item.stream = Stream::kLogs;
      item.time_us = line.log->time_us;
      item.log = std::move(*line.log);
      counters_.accepted_logs.fetch_add(1, std::memory_order_relaxed);
    }
    add_readings(line.readings, parsed_);
  }
  for (const auto& rejected : result.rejected) {
    counters_.rejected[static_cast<std::size_t>(rejected.rejection.error)].fetch_add(
        1, std::memory_order_relaxed);
    if (input_log_.allow(Clock::now())) {
      const uint64_t suppressed = input_log_.take_suppressed();
      spdlog::warn("rejected input line {} ({}): {}{}", rejected.line_number,
                   line_error_name(rejected.rejection.error), rejected.rejection.detail,
                   suppressed ? fmt::format(" ({} more rejected lines not logged)", suppressed)
                              : std::string());
    }
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
    auto readings = system_metrics_.sample(wall_now_us());
    add_readings(readings, pending_);
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

namespace {

// A file line as log text: invalid UTF-8 and control characters become '?', and a
// line longer than a record holds is cut (the record says so in a field).
std::string as_log_text(std::string_view line, bool& cut) {
  std::string out;
  for (std::size_t i = 0; i < line.size() && out.size() < common::kMaxLogMessageLength;) {
    const auto c = static_cast<unsigned char>(line[i]);
    std::size_t len = c < 0x80         ? 1
                      : (c >> 5) == 6  ? 2
                      : (c >> 4) == 14 ? 3
                      : (c >> 3) == 30 ? 4
                                       : 0;
    if (len == 0 || i + len > line.size() || out.size() + len > common::kMaxLogMessageLength ||
        !common::is_valid_utf8_text(line.substr(i, len)) || (len == 1 && c < 0x20 && c != '\t')) {
      out += '?';
      i += len == 0 ? 1 : std::min(len, line.size() - i);
      continue;
    }
    out.append(line.substr(i, len));
    i += len;
  }
  cut = out.size() >= common::kMaxLogMessageLength && line.size() > out.size();
  return out;
}

}  // namespace

void Agent::poll_tails() {
  const int64_t now = wall_now_us();
  for (const auto& tail : tails_) {
    for (const std::string& line : tail->poll()) {
      if (line.empty()) continue;
      QueueItem item;
      item.stream = Stream::kLogs;
      item.time_us = now;
      auto parsed = parse_line(line, now, config_.line);
      if (parsed.ok() && parsed.value().log) {
        item.log = std::move(*parsed.value().log);
      } else {
        bool cut = false;
        item.log = {now, config_.tail_severity, as_log_text(line, cut), {}};
        if (cut) item.log.fields.push_back({"truncated_from", std::to_string(line.size())});
      }
      const std::string source = tail->path().substr(0, common::kMaxLogValueLength);
      if (item.log.fields.size() < common::kMaxLogFieldsPerRecord &&
          common::is_valid_utf8_text(source)) {
        item.log.fields.push_back({"file", source});
      }
      pending_.push_back(std::move(item));
      counters_.accepted_logs.fetch_add(1, std::memory_order_relaxed);
    }
  }
}

void Agent::add_readings(std::vector<InputReading>& readings, std::vector<QueueItem>& out) {
  for (auto& r : readings) {
    QueueItem& item = out.emplace_back();
    item.time_us = r.time_us;
    item.sensor = std::move(r.sensor);
    item.unit = std::move(r.unit);
    item.value = std::move(r.value);
  }
  counters_.accepted_readings.fetch_add(readings.size(), std::memory_order_relaxed);
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
  auto result = store_->append(flushing_);
  if (!result.ok()) {
    // Disk full or I/O error: what was received cannot be kept. Count it as
    // refused by policy and carry on; the agent never exits on it.
    spdlog::error("store: cannot persist {} items: {}", flushing_.size(), result.error().message);
    release_after_burst(flushing_);
    return;
  }
  counters_.persisted += result.value().accepted;
  // Tail positions follow the lines now in the store. A crash between the two
  // writes re-reads some lines (duplicates), never skips any.
  for (const auto& tail : tails_) {
    const auto p = tail->position();
    if (auto s = store_->set_tail_offset(tail->path(), {p.inode, p.offset}); !s.ok()) {
      spdlog::error("store: cannot save the position in {}: {}", tail->path(), s.error().message);
    }
  }
  if (result.value().refused + result.value().evicted > 0 && bad_input_log_.allow(Clock::now())) {
    spdlog::warn("store quota reached: {} refused, {} oldest evicted", result.value().refused,
                 result.value().evicted);
  }
  for (const auto& item : flushing_) {
    auto& since = waiting_since_[static_cast<std::size_t>(item.stream)];
    if (!since) since = Clock::now();
  }
  release_after_burst(flushing_);
}

void Agent::schedule_tick() {
  const bool busy = !connected_ || !inflight_.empty() || !awaiting_ack_.empty() || rescan_outbox_;
  tick_timer_.expires_after(busy ? kTick : kIdleTick);
  tick_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    tick();
    schedule_tick();
  });
}

void Agent::tick() {
  const auto now = Clock::now();
  maintain_connection(now);
  if (!connected_) return;
  poll_inflight();
  poll_acks();
  send(now);
  if (now >= next_status_) {
    try {
      client_->publish(topic(common::PayloadKind::kStatus),
                       status_payload(common::DeviceState::kOnline), 1, true);
    } catch (const mqtt::exception& e) {
      spdlog::warn("status publish failed: {}", e.what());
    }
    next_status_ = now + std::chrono::microseconds(config_.status_interval_us);
  }
  if (config_.store.max_age_us > 0) (void)store_->expire(wall_now_us());
}

void Agent::maintain_connection(Clock::time_point now) {
  if (connected_ && !client_->is_connected()) {
    connected_ = false;
    // In-flight deliveries are lost with the connection: they are re-published
    // from the outbox on reconnect (the collector drops any duplicate). Messages
    // awaiting a commit ack keep their timers: an ack may still come.
    inflight_.clear();
    spdlog::warn("connection to {} lost", config_.broker);
    next_connect_ = now + backoff_.next();
  }
  if (connected_) return;
  if (connect_token_) {
    auto done = poll(connect_token_);
    if (!done) return;
    connect_token_.reset();
    if (*done) {
      on_connected();
      return;
    }
    const auto delay = backoff_.next();
    spdlog::warn("cannot connect to {}; retrying in {} ms", config_.broker, delay.count());
    next_connect_ = now + delay;
    return;
  }
  if (now < next_connect_) return;
  mqtt::connect_options_builder options;
  options.clean_session(true)
      .keep_alive_interval(std::chrono::microseconds(config_.keepalive_us))
      .connect_timeout(std::chrono::seconds(10))
      .max_inflight(static_cast<int>(config_.max_inflight))
      .will(mqtt::message(topic(common::PayloadKind::kStatus),
                          status_payload(common::DeviceState::kLost), 1, true));
  if (!config_.username.empty()) options.user_name(config_.username);
  if (!config_.password.empty()) options.password(config_.password);
  if (!config_.ca_file.empty() || !config_.cert_file.empty()) {
    mqtt::ssl_options_builder ssl;
    if (!config_.ca_file.empty()) ssl.trust_store(config_.ca_file);
    if (!config_.cert_file.empty()) ssl.key_store(config_.cert_file).private_key(config_.key_file);
    ssl.enable_server_cert_auth(true).verify(config_.verify_hostname);
    options.ssl(ssl.finalize());
  }
  try {
    connect_token_ = client_->connect(options.finalize());
  } catch (const mqtt::exception& e) {
    const auto delay = backoff_.next();
    spdlog::warn("cannot connect to {}: {}; retrying in {} ms", config_.broker, e.what(),
                 delay.count());
    next_connect_ = now + delay;
  }
}

void Agent::on_connected() {
  connected_ = true;
  rescan_outbox_ = true;  // what was in flight on the old connection goes again
  backoff_.reset();
  ++counters_.reconnects;
  spdlog::info("connected to {} as {}", config_.broker, config_.client_id);
  next_status_ = Clock::now();  // birth at once
  // A clean session forgets subscriptions: every connect subscribes again.
  if (uses_end_to_end()) {
    try {
      client_->subscribe(topic(common::PayloadKind::kAck), 1);
    } catch (const mqtt::exception& e) {
      spdlog::warn("cannot subscribe to {}: {}", topic(common::PayloadKind::kAck), e.what());
    }
  }
}

bool Agent::uses_end_to_end() const {
  return config_.data_delivery == DeliveryMode::kEndToEnd ||
         config_.logs_delivery == DeliveryMode::kEndToEnd;
}

DeliveryMode Agent::mode(Stream stream) const {
  return stream == Stream::kData ? config_.data_delivery : config_.logs_delivery;
}

void Agent::poll_acks() {
  mqtt::const_message_ptr msg;
  while (client_->try_consume_message(&msg)) {
    if (!msg) continue;  // Paho's marker for a lost connection
    const std::string& payload = msg->get_payload_str();
    auto ack = common::decode_and_validate(
        std::span(reinterpret_cast<const uint8_t*>(payload.data()), payload.size()),
        {common::PayloadKind::kAck, config_.device_id, wall_now_us()}, {});
    if (!ack.ok()) {
      if (bad_input_log_.allow(Clock::now())) {
        spdlog::warn("ignoring a bad ack on {}: {}: {}", msg->get_topic(),
                     common::reason_name(ack.error().reason), ack.error().detail);
      }
      continue;
    }
    for (const auto& range : std::get<common::CommitAck>(ack.value().body).committed) {
      auto removed = store_->acknowledge_range(range.epoch, range.first, range.last);
      if (!removed.ok()) {
        spdlog::error("store: cannot remove acknowledged messages: {}", removed.error().message);
        continue;
      }
      counters_.commit_acks += removed.value();
      auto in_range = [&](uint64_t epoch, uint64_t seq) {
        return epoch == range.epoch && seq >= range.first && seq <= range.last;
      };
      std::erase_if(awaiting_ack_,
                    [&](const auto& e) { return in_range(e.second.epoch, e.second.seq); });
      // The collector may confirm before our PUBACK is polled: forget those too.
      std::erase_if(inflight_,
                    [&](const auto& e) { return in_range(e.second.epoch, e.second.seq); });
    }
  }
}

void Agent::poll_inflight() {
  for (auto it = inflight_.begin(); it != inflight_.end();) {
    auto done = poll(it->second.token);
    if (!done) {
      ++it;
      continue;
    }
    if (*done && mode(it->second.stream) == DeliveryMode::kEndToEnd) {
      // The broker has it; the queue keeps it until the collector says it is stored.
      awaiting_ack_[it->first] = {Clock::now(), it->second.epoch, it->second.seq};
    } else if (*done) {
      if (auto s = store_->acknowledge(it->first); !s.ok()) {
        spdlog::error("store: cannot remove acknowledged message: {}", s.error().message);
      }
      ++counters_.acked;
    }
    // A failed delivery stays in the outbox and is published again.
    if (!*done) rescan_outbox_ = true;
    it = inflight_.erase(it);
  }
}

void Agent::send(Clock::time_point now) {
  const auto ack_timeout = std::chrono::microseconds(config_.ack_timeout_us);
  for (const auto& [id, awaiting] : awaiting_ack_) {
    if (now - awaiting.sent >= ack_timeout) rescan_outbox_ = true;
  }
  // Unsent, failed or unacknowledged-for-too-long messages first, oldest first:
  // order per device is preserved. Only when one may exist: reading every unacked
  // payload back on each tick was most of the agent's CPU time at a low input rate.
  if (rescan_outbox_ && inflight_.size() < config_.max_inflight) {
    const std::size_t limit = config_.max_inflight + inflight_.size() + awaiting_ack_.size();
    auto outbox = store_->outbox(limit);
    if (outbox.ok()) {
      for (const auto& message : outbox.value()) {
        if (inflight_.size() >= config_.max_inflight) return;
        if (inflight_.count(message.id)) continue;
        if (auto a = awaiting_ack_.find(message.id); a != awaiting_ack_.end()) {
          if (now - a->second.sent < ack_timeout) continue;
          awaiting_ack_.erase(a);
          ++counters_.resent;
        }
        if (!publish(message)) return;
      }
      // Every unacked message is now in flight or waiting for its ack in time.
      if (outbox.value().size() < limit) rescan_outbox_ = false;
    }
  }
  // end_to_end: no new messages while too many await the collector.
  if (awaiting_ack_.size() >= config_.max_awaiting_ack) return;
  for (Stream stream : {Stream::kData, Stream::kLogs}) {
    while (inflight_.size() < config_.max_inflight) {
      // Accepting input comes first: sealing a backlog can keep this thread busy for a
      // while, and the input thread waits once its queue is full. While input pours in,
      // sealing only uses what time the flushes leave (the next tick goes on).
      if (input_queue_.size() >= kFlushAt) {
        flush();
        return;
      }
      const auto before = counters_.published;
      seal_ready(stream, now);
      if (counters_.published == before) break;
    }
  }
}

void Agent::seal_ready(Stream stream, Clock::time_point now) {
  auto& since = waiting_since_[static_cast<std::size_t>(stream)];
  if (!since) return;
  const std::size_t full =
      stream == Stream::kData ? config_.batch.max_readings : config_.batch.max_records;
  const bool due = now - *since >= std::chrono::microseconds(config_.max_batch_delay_us);
  if (!due && !stopping_) {
    // Counting is cheap; reading the items back is not. Most ticks have no full batch.
    auto queued = store_->count(stream, full);
    if (queued.ok() && queued.value() == 0) since.reset();
    if (queued.ok() && queued.value() < full) return;
  }
  auto items = store_->peek(stream, full);
  if (!items.ok() || items.value().empty()) {
    since.reset();
    return;
  }
  if (items.value().size() < full && !due && !stopping_) return;
  const bool synced = clock_synchronised();
  auto built = build_batch(stream, items.value(), config_.batch, synced);
  std::vector<int64_t> ids;
  for (std::size_t i = 0; i < built.used; ++i) ids.push_back(items.value()[i].id);
  auto sealed =
      store_->seal(stream, ids, [&](uint64_t seq) -> common::Result<std::vector<uint8_t>> {
        common::Envelope envelope{common::kSchemaVersion, config_.device_id, epoch_, seq,
                                  built.body};
        auto bytes = common::encode(envelope);
        if (!bytes.ok()) return common::Error{bytes.error().detail};
        return std::move(bytes).value();
      });
  if (!sealed.ok()) {
    spdlog::error("cannot seal a batch: {}", sealed.error().message);
    return;
  }
  // Caught up: the next flush starts a new wait. Otherwise what is left waited
  // at least as long and is due as well.
  if (built.used == items.value().size() && items.value().size() < full) since.reset();
  publish(sealed.value());
}

bool Agent::publish(const OutboxMessage& message) {
  const auto kind =
      message.stream == Stream::kData ? common::PayloadKind::kReadings : common::PayloadKind::kLogs;
  try {
    auto token = client_->publish(topic(kind), message.payload.data(), message.payload.size(),
                                  qos(message.stream), false);
    inflight_[message.id] = {token, message.stream, message.epoch, message.seq};
    ++counters_.published;
    return true;
  } catch (const mqtt::exception& e) {
    spdlog::warn("publish failed: {}", e.what());
    rescan_outbox_ = true;  // it stays in the outbox
    return false;
  }
}

std::string Agent::status_payload(common::DeviceState state) {
  common::DeviceStatus s;
  s.state = state;
  s.time_us = wall_now_us();
  s.time_synced = clock_synchronised();
  s.agent_version = OUTPOST_VERSION;
  s.uptime_s = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - started_).count());
  if (store_) {
    if (auto stats = store_->stats(); stats.ok()) {
      s.queue_depth = stats.value().queued_items + stats.value().outbox_messages;
      s.queue_bytes = stats.value().bytes;
      s.dropped_oldest = stats.value().dropped_oldest;
      s.dropped_newest = stats.value().dropped_newest;
      s.dropped_expired = stats.value().dropped_expired;
      s.store_resets = stats.value().store_resets;
    }
  }
  s.rejected_input = counters_.rejected_total();
  auto bytes = common::encode(
      common::Envelope{common::kSchemaVersion, config_.device_id, epoch_, 0, std::move(s)});
  return bytes.ok() ? std::string(bytes.value().begin(), bytes.value().end()) : std::string();
}

std::string Agent::topic(common::PayloadKind kind) const {
  auto t = common::device_topic(config_.site, config_.device_id, kind);
  return t.ok() ? t.value() : std::string();
}

int Agent::qos(Stream stream) const { return mode(stream) == DeliveryMode::kFireAndForget ? 0 : 1; }

MetricsSnapshot Agent::snapshot() {
  MetricsSnapshot m;
  m.accepted_readings = counters_.accepted_readings.load(std::memory_order_relaxed);
  m.accepted_logs = counters_.accepted_logs.load(std::memory_order_relaxed);
  for (LineError e : kAllLineErrors) {
    m.rejected[e] = counters_.rejected[static_cast<std::size_t>(e)].load(std::memory_order_relaxed);
  }
  if (input_) m.kernel_dropped_datagrams = input_->kernel_drops();
  m.persisted = counters_.persisted;
  m.published = counters_.published;
  m.acked = counters_.acked;
  m.commit_acks = counters_.commit_acks;
  m.resent = counters_.resent;
  m.reconnects = counters_.reconnects;
  m.connected = connected_;
  m.queue_max_bytes = config_.store.max_bytes;
  m.uptime_s = std::chrono::duration<double>(Clock::now() - started_).count();
  if (auto stats = store_->stats(); stats.ok()) {
    const auto& s = stats.value();
    m.queue_items = s.queued_items;
    m.queue_messages = s.outbox_messages;
    m.queue_bytes = s.bytes;
    if (s.oldest_time_us) {
      m.oldest_item_age_s = static_cast<double>(wall_now_us() - *s.oldest_time_us) / 1e6;
    }
    m.dropped_oldest = s.dropped_oldest;
    m.dropped_newest = s.dropped_newest;
    m.dropped_expired = s.dropped_expired;
    m.store_resets = s.store_resets;
  }
  return m;
}

void Agent::stop(std::function<void()> done) {
  stopping_ = true;
  metrics_.close();
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
  // Drain briefly: deliver what is ready within a bounded time, then leave the
  // rest in the store for the next start.
  stop_deadline_ = Clock::now() + 5s;
  stop_done_ = std::move(done);
  drain_step();
}

void Agent::drain_step() {
  const auto now = Clock::now();
  if (connected_ && now < stop_deadline_) {
    maintain_connection(now);
    poll_inflight();
    poll_acks();
    send(now);
    auto stats = store_->stats();
    const bool empty = stats.ok() && stats.value().queued_items == 0 &&
                       stats.value().outbox_messages == 0 && inflight_.empty();
    if (!empty) {
      tick_timer_.expires_after(kTick);
      tick_timer_.async_wait([this](const boost::system::error_code&) { drain_step(); });
      return;
    }
  }
  if (connected_) {
    try {
      client_
          ->publish(topic(common::PayloadKind::kStatus),
                    status_payload(common::DeviceState::kOffline), 1, true)
          ->wait_for(2s);
      client_->disconnect()->wait_for(2s);
    } catch (const mqtt::exception& e) {
      spdlog::warn("clean disconnect failed: {}", e.what());
    }
  }
  poll_inflight();
  if (stop_done_) std::exchange(stop_done_, nullptr)();
}

}  // namespace outpost::agent
