// The agent's delivery policy over a Publisher and the queue.
#include "outpost/agent/delivery.h"

#include <algorithm>

#include "outpost/common/codec.h"
#include "outpost/common/reason.h"
#include "outpost/common/topics.h"

namespace outpost::agent {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;

constexpr auto kFarewellWait = std::chrono::seconds(2);

std::span<const uint8_t> bytes_of(const std::vector<uint8_t>& v) { return {v.data(), v.size()}; }

std::string suppressed_note(common::RateLimiter& limiter) {
  const uint64_t n = limiter.take_suppressed();
  return n ? fmt::format(" ({} similar messages not logged)", n) : std::string();
}

}  // namespace

DeliveryOptions delivery_options(const AgentConfig& config, uint64_t epoch) {
  DeliveryOptions o;
  o.site = config.site;
  o.device_id = config.device_id;
  o.epoch = epoch;
  o.broker = config.broker;
  o.client_id = config.client_id;
  o.data_delivery = config.data_delivery;
  o.logs_delivery = config.logs_delivery;
  o.batch = config.batch;
  o.max_batch_delay = microseconds(config.max_batch_delay_us);
  o.max_inflight = config.max_inflight;
  o.max_awaiting_ack = config.max_awaiting_ack;
  o.ack_timeout = microseconds(config.ack_timeout_us);
  o.status_interval = microseconds(config.status_interval_us);
  o.reconnect_min = microseconds(config.reconnect_min_us);
  o.reconnect_max = microseconds(config.reconnect_max_us);
  return o;
}

common::Result<std::unique_ptr<Delivery>> Delivery::create(DeliveryOptions options,
                                                           Publisher& publisher, Outbox& outbox,
                                                           ItemQueue& items, const Clock& clock,
                                                           StatusSource status, Yield yield) {
  std::unique_ptr<Delivery> d(new Delivery(std::move(options), publisher, outbox, items, clock,
                                           std::move(status), std::move(yield)));
  const std::pair<std::string*, common::PayloadKind> topics[] = {
      {&d->data_topic_, common::PayloadKind::kReadings},
      {&d->logs_topic_, common::PayloadKind::kLogs},
      {&d->status_topic_, common::PayloadKind::kStatus},
      {&d->ack_topic_, common::PayloadKind::kAck}};
  for (const auto& [topic, kind] : topics) {
    auto t = common::device_topic(d->options_.site, d->options_.device_id, kind);
    if (!t.ok()) return common::Error{"no MQTT topic for this device: " + t.error().detail};
    *topic = std::move(t).value();
  }
  return d;
}

Delivery::Delivery(DeliveryOptions options, Publisher& publisher, Outbox& outbox, ItemQueue& items,
                   const Clock& clock, StatusSource status, Yield yield)
    : options_(std::move(options)),
      publisher_(publisher),
      outbox_(outbox),
      items_(items),
      clock_(clock),
      status_(std::move(status)),
      yield_(std::move(yield)),
      backoff_(std::chrono::duration_cast<milliseconds>(options_.reconnect_min),
               std::chrono::duration_cast<milliseconds>(options_.reconnect_max), 0.3,
               options_.epoch),
      subscribe_backoff_(std::chrono::duration_cast<milliseconds>(options_.reconnect_min),
                         std::chrono::duration_cast<milliseconds>(options_.reconnect_max), 0.3,
                         options_.epoch + 1),
      store_log_(10, std::chrono::seconds(10)),
      mqtt_log_(10, std::chrono::seconds(10)),
      ack_log_(10, std::chrono::seconds(10)) {
  const auto now = clock_.now();
  // Items left from a previous run are sent at once, not after max_batch_delay.
  waiting_since_ = {now - options_.max_batch_delay, now - options_.max_batch_delay};
  next_connect_ = now;
}

void Delivery::queued(std::span<const QueueItem> items) {
  for (const auto& item : items) {
    auto& since = waiting_since_[static_cast<std::size_t>(item.stream)];
    if (!since) since = clock_.now();
  }
}

bool Delivery::busy() const {
  return !connected_ || !inflight_.empty() || !awaiting_ack_.empty() || rescan_outbox_;
}

void Delivery::tick() {
  const auto now = clock_.now();
  step(now);
  if (!connected_) return;
  if (now >= next_status_) {
    publish_status(common::DeviceState::kOnline);
    next_status_ = now + options_.status_interval;
  }
}

void Delivery::step(time_point now) {
  completed_.clear();
  received_.clear();
  const Connection state = publisher_.poll(completed_, received_);
  maintain_connection(state, now);
  if (connected_) check_subscription(now);
  // A lost connection has forgotten its deliveries (maintain_connection): their completions
  // match nothing. Acks are the collector's word whatever our connection does.
  handle_completions(now);
  handle_acks();
  if (connected_) send(now);
}

void Delivery::maintain_connection(Connection state, time_point now) {
  if (connected_ && state != Connection::kUp) {
    connected_ = false;
    // In-flight deliveries are lost with the connection: they are re-published from the
    // outbox on reconnect (the collector drops any duplicate). Messages awaiting a commit
    // ack keep their timers: an ack may still come.
    inflight_.clear();
    inflight_ids_.clear();
    status_id_.reset();
    spdlog::warn("connection to {} lost", options_.broker);
    next_connect_ = now + backoff_.next();
  }
  if (connected_) return;
  // Connection failures are logged each time: the backoff is their rate limit.
  if (connecting_) {
    if (state == Connection::kConnecting) return;
    connecting_ = false;
    if (state == Connection::kUp) {
      on_connected(now);
      return;
    }
    ++counters_.connect_failures;
    const auto delay = backoff_.next();
    const std::string why = publisher_.connect_error();
    spdlog::warn("cannot connect to {}{}{}; retrying in {} ms", options_.broker,
                 why.empty() ? "" : ": ", why, delay.count());
    next_connect_ = now + delay;
    return;
  }
  if (now < next_connect_) return;
  auto will = status_(common::DeviceState::kLost);
  if (!will.ok()) {
    // Not expected (the status is ours); connect without the status rather than not at all.
    ++counters_.status_failures;
    spdlog::error("cannot build the last will: {}", will.error().message);
    will = std::vector<uint8_t>();
  }
  auto started = publisher_.connect({status_topic_, bytes_of(will.value()), 1, true});
  if (!started.ok()) {
    ++counters_.connect_failures;
    const auto delay = backoff_.next();
    spdlog::warn("cannot connect to {}: {}; retrying in {} ms", options_.broker,
                 started.error().message, delay.count());
    next_connect_ = now + delay;
    return;
  }
  connecting_ = true;
}

void Delivery::on_connected(time_point now) {
  connected_ = true;
  rescan_outbox_ = true;  // what was in flight on the old connection goes again
  backoff_.reset();
  ++counters_.reconnects;
  spdlog::info("connected to {} as {}", options_.broker, options_.client_id);
  next_status_ = now;  // birth at once
  // A clean session forgets subscriptions: every connect subscribes again.
  subscribe_backoff_.reset();
  resubscribe_at_.reset();
  if (uses_end_to_end()) subscribe_acks(now);
}

void Delivery::subscribe_acks(time_point now) {
  if (auto s = publisher_.subscribe(ack_topic_); !s.ok()) {
    // No acks come until a subscription stands (messages go again after ack_timeout meanwhile).
    ++counters_.subscribe_failures;
    const auto delay = subscribe_backoff_.next();
    resubscribe_at_ = now + delay;
    if (mqtt_log_.allow(now)) {
      spdlog::warn("cannot subscribe to {}: {}; subscribing again in {} ms{}", ack_topic_,
                   s.error().message, delay.count(), suppressed_note(mqtt_log_));
    }
  }
}

void Delivery::check_subscription(time_point now) {
  if (!uses_end_to_end()) return;
  if (publisher_.subscription_refused()) {
    ++counters_.subscribe_failures;
    const auto delay = subscribe_backoff_.next();
    resubscribe_at_ = now + delay;
    if (mqtt_log_.allow(now)) {
      spdlog::warn("the broker refused the subscription to {}; subscribing again in {} ms{}",
                   ack_topic_, delay.count(), suppressed_note(mqtt_log_));
    }
  }
  if (resubscribe_at_ && now >= *resubscribe_at_) {
    resubscribe_at_.reset();
    subscribe_acks(now);
  }
}

void Delivery::handle_completions(time_point now) {
  for (const Completion& c : completed_) {
    if (status_id_ && c.id == *status_id_) {
      status_id_.reset();
      if (!c.delivered) ++counters_.status_failures;
      continue;
    }
    const auto id = inflight_ids_.find(c.id);
    if (id == inflight_ids_.end()) continue;  // an old connection's, or acked meanwhile
    const auto it = inflight_.find(id->second);
    inflight_ids_.erase(id);
    if (it == inflight_.end()) continue;
    const int64_t outbox_id = it->first;
    const InFlight message = it->second;
    inflight_.erase(it);
    if (!c.delivered) {
      // It stays in the outbox and is published again.
      ++counters_.delivery_failures;
      rescan_outbox_ = true;
    } else if (mode(message.stream) == DeliveryMode::kEndToEnd) {
      // The broker has it; the queue keeps it until the collector says it is stored.
      awaiting_ack_[outbox_id] = {now, message.epoch, message.seq};
    } else {
      if (auto s = outbox_.acknowledge(outbox_id); !s.ok()) {
        // Delivered but still queued: sent again after a restart (the collector drops it).
        store_failed(StoreOp::kAcknowledge, s.error());
      }
      ++counters_.acked;
    }
  }
}

void Delivery::handle_acks() {
  for (const Received& r : received_) {
    auto ack = common::decode_and_validate(
        std::span(reinterpret_cast<const uint8_t*>(r.payload.data()), r.payload.size()),
        {common::PayloadKind::kAck, options_.device_id, clock_.wall_now_us()}, {});
    if (!ack.ok()) {
      ++counters_.bad_acks;
      if (ack_log_.allow(clock_.now())) {
        spdlog::warn("ignoring a bad ack on {}: {}: {}{}", r.topic,
                     common::reason_name(ack.error().reason), ack.error().detail,
                     suppressed_note(ack_log_));
      }
      continue;
    }
    const auto* body = std::get_if<common::CommitAck>(&ack.value().body);
    if (!body) continue;  // validated as an ack: not reached
    for (const auto& range : body->committed) {
      auto removed = outbox_.acknowledge_range(range.epoch, range.first, range.last);
      if (!removed.ok()) {
        // They stay queued and awaited: sent again after ack_timeout, acked again.
        store_failed(StoreOp::kCommitAck, removed.error());
        continue;
      }
      counters_.commit_acks += removed.value();
      // The collector may confirm before our PUBACK is polled: forget those too.
      forget_if([&](uint64_t epoch, uint64_t seq) {
        return epoch == range.epoch && seq >= range.first && seq <= range.last;
      });
    }
  }
}

void Delivery::forget_if(const std::function<bool(uint64_t epoch, uint64_t seq)>& acked) {
  std::erase_if(awaiting_ack_, [&](const auto& e) { return acked(e.second.epoch, e.second.seq); });
  for (auto it = inflight_.begin(); it != inflight_.end();) {
    if (acked(it->second.epoch, it->second.seq)) {
      inflight_ids_.erase(it->second.publish_id);
      it = inflight_.erase(it);
    } else {
      ++it;
    }
  }
}

void Delivery::send(time_point now) {
  for (const auto& [id, awaiting] : awaiting_ack_) {
    if (now - awaiting.sent >= options_.ack_timeout) rescan_outbox_ = true;
  }
  // Unsent, failed or unacknowledged-for-too-long messages first, oldest first: order per
  // device is preserved. Only when one may exist (rescan_outbox_).
  if (rescan_outbox_ && inflight_.size() < options_.max_inflight) {
    const std::size_t limit = options_.max_inflight + inflight_.size() + awaiting_ack_.size();
    auto outbox = outbox_.outbox(limit);
    if (!outbox.ok()) {
      store_failed(StoreOp::kReadOutbox, outbox.error());
    } else {
      for (const auto& message : outbox.value()) {
        if (inflight_.size() >= options_.max_inflight) return;
        if (inflight_.count(message.id)) continue;
        if (auto a = awaiting_ack_.find(message.id); a != awaiting_ack_.end()) {
          if (now - a->second.sent < options_.ack_timeout) continue;
          awaiting_ack_.erase(a);
          ++counters_.resent;
          if (counters_.commit_acks == 0 && ack_log_.allow(now)) {
            spdlog::warn(
                "no commit ack from a collector on {} in {} s; sending epoch {} seq {} again. "
                "end_to_end needs an Outpost collector; for other consumers set "
                "data_delivery and logs_delivery to \"at_least_once\"{}",
                ack_topic_,
                std::chrono::duration_cast<std::chrono::seconds>(options_.ack_timeout).count(),
                message.epoch, message.seq, suppressed_note(ack_log_));
          }
        }
        if (!publish(message)) return;
      }
      // Every unacked message is now in flight or waiting for its ack in time.
      if (outbox.value().size() < limit) rescan_outbox_ = false;
    }
  }
  // end_to_end: no new messages while too many await the collector.
  if (awaiting_ack_.size() >= options_.max_awaiting_ack) return;
  for (Stream stream : {Stream::kData, Stream::kLogs}) {
    while (inflight_.size() < options_.max_inflight) {
      // Accepting input comes first: sealing a backlog can keep this thread busy for a
      // while, and the input thread waits once its queue is full. While input pours in,
      // sealing only uses what time the flushes leave (the next tick goes on).
      if (yield_ && yield_()) return;
      const auto before = counters_.published;
      seal_ready(stream, now);
      if (counters_.published == before) break;
    }
  }
}

void Delivery::seal_ready(Stream stream, time_point now) {
  auto& since = waiting_since_[static_cast<std::size_t>(stream)];
  if (!since) return;
  const std::size_t full =
      stream == Stream::kData ? options_.batch.max_readings : options_.batch.max_records;
  const bool due = now - *since >= options_.max_batch_delay;
  if (!due && !stopping_) {
    // Counting is cheap; reading the items back is not. Most ticks have no full batch.
    auto queued = items_.count(stream, full);
    if (!queued.ok()) store_failed(StoreOp::kReadItems, queued.error());
    if (queued.ok() && queued.value() == 0) since.reset();
    if (queued.ok() && queued.value() < full) return;
  }
  auto items = items_.peek(stream, full);
  if (!items.ok()) store_failed(StoreOp::kReadItems, items.error());
  if (!items.ok() || items.value().empty()) {
    since.reset();
    return;
  }
  if (items.value().size() < full && !due && !stopping_) return;
  auto built = build_batch(stream, items.value(), options_.batch, clock_.synchronised());
  std::vector<int64_t> ids;
  for (std::size_t i = 0; i < built.used; ++i) ids.push_back(items.value()[i].id);
  auto sealed = items_.seal(stream, ids, [&](uint64_t seq) -> common::Result<std::vector<uint8_t>> {
    common::Envelope envelope{common::kSchemaVersion, options_.device_id, options_.epoch, seq,
                              built.body};
    auto bytes = common::encode(envelope);
    if (!bytes.ok()) return common::Error{bytes.error().detail};
    return std::move(bytes).value();
  });
  if (!sealed.ok()) {
    store_failed(StoreOp::kSeal, sealed.error());  // still due: tried again next tick
    return;
  }
  // Caught up: the next flush starts a new wait. Otherwise what is left waited at least as
  // long and is due as well.
  if (built.used == items.value().size() && items.value().size() < full) since.reset();
  publish(sealed.value());
}

bool Delivery::publish(const OutboxMessage& message) {
  const int qos = mode(message.stream) == DeliveryMode::kFireAndForget ? 0 : 1;
  auto id = publisher_.publish({message.stream == Stream::kData ? data_topic_ : logs_topic_,
                                bytes_of(message.payload), qos, false});
  if (!id.ok()) {
    ++counters_.publish_failures;
    if (mqtt_log_.allow(clock_.now())) {
      spdlog::warn("publish failed: {}{}", id.error().message, suppressed_note(mqtt_log_));
    }
    rescan_outbox_ = true;  // it stays in the outbox
    return false;
  }
  inflight_[message.id] = {id.value(), message.stream, message.epoch, message.seq};
  inflight_ids_[id.value()] = message.id;
  ++counters_.published;
  return true;
}

void Delivery::publish_status(common::DeviceState state) {
  auto payload = status_(state);
  std::string error;
  if (payload.ok()) {
    auto id = publisher_.publish({status_topic_, bytes_of(payload.value()), 1, true});
    if (id.ok()) {
      status_id_ = id.value();
      return;
    }
    error = id.error().message;
  } else {
    error = payload.error().message;
  }
  ++counters_.status_failures;
  if (mqtt_log_.allow(clock_.now())) {
    spdlog::warn("status publish failed: {}{}", error, suppressed_note(mqtt_log_));
  }
}

void Delivery::begin_stop() {
  stopping_ = true;
  stop_deadline_ = clock_.now() + options_.stop_drain;
}

bool Delivery::drain_step() {
  const auto now = clock_.now();
  if (connected_ && now < stop_deadline_) {
    step(now);
    if (!(queue_empty() && inflight_.empty())) return false;
  }
  if (connected_) {
    auto farewell = status_(common::DeviceState::kOffline);
    auto s = farewell.ok()
                 ? publisher_.disconnect({status_topic_, bytes_of(farewell.value()), 1, true},
                                         kFarewellWait)
                 : common::Status<>(farewell.error());
    // At exit, after the metrics endpoint closed: a log line is all that can tell.
    if (!s.ok()) spdlog::warn("clean disconnect failed: {}", s.error().message);
  }
  // Deliveries completed during the farewell leave the queue now, not after the next start.
  completed_.clear();
  received_.clear();
  (void)publisher_.poll(completed_, received_);  // the connection's state no longer matters
  handle_completions(now);
  return true;
}

bool Delivery::queue_empty() {
  for (Stream stream : {Stream::kData, Stream::kLogs}) {
    auto n = items_.count(stream, 1);
    if (!n.ok() || n.value() > 0) return false;  // a failure: not known to be empty
  }
  auto unacked = outbox_.outbox(1);
  return unacked.ok() && unacked.value().empty();
}

DeliveryMode Delivery::mode(Stream stream) const {
  return stream == Stream::kData ? options_.data_delivery : options_.logs_delivery;
}

bool Delivery::uses_end_to_end() const {
  return options_.data_delivery == DeliveryMode::kEndToEnd ||
         options_.logs_delivery == DeliveryMode::kEndToEnd;
}

void Delivery::store_failed(StoreOp op, const common::Error& error) {
  counters_.store_errors.add(op);
  if (store_log_.allow(clock_.now())) {
    spdlog::error("store: {} failed: {}{}", store_op_name(op), error.message,
                  suppressed_note(store_log_));
  }
}

}  // namespace outpost::agent
