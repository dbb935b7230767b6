// The running collector: MQTT thread, storage thread, acks and events out.
#include "collector.h"

#include <algorithm>
#include <random>

#include "mqtt_options.h"
#include "outpost/common/clock.h"
#include "outpost/common/codec.h"
#include "outpost/common/topics.h"

namespace outpost::collector {

using common::wall_now_us;

Collector::Collector(CollectorConfig config, std::unique_ptr<SqliteSink> sink,
                     std::unique_ptr<Journal> journal)
    : config_(std::move(config)),
      sink_(std::move(sink)),
      journal_(std::move(journal)),
      queue_(config_.queue_messages),
      fleet_(FleetOptions{config_.offline_after_us, config_.gap_grace_us,
                          config_.dlq_rate_per_minute}),
      rules_(config_.rules),
      dlq_log_(10, std::chrono::seconds(10)) {
  std::random_device rd;
  epoch_ = (static_cast<uint64_t>(rd()) << 32) | rd();
  if (!config_.webhooks.empty()) {
    // Runs on the dispatcher's thread (or, for "queue full", on the storage thread inside
    // post()): only queues the entry for the storage thread's next transaction.
    auto on_give_up = [this](WebhookGaveUp g) {
      DlqItem item;
      item.topic = "webhook/" + g.webhook;
      item.payload = std::move(g.body);
      item.received_us = wall_now_us();
      item.reason = common::Reason::kWebhookGaveUp;
      item.detail = "webhook " + g.webhook + " (" + g.url + ") gave up after " +
                    std::to_string(g.attempts) + (g.attempts == 1 ? " attempt: " : " attempts: ") +
                    g.last_error;
      std::lock_guard lock(gave_up_mutex_);
      gave_up_.push_back(std::move(item));
    };
    webhooks_ = std::make_unique<WebhookDispatcher>(config_.webhooks, std::move(on_give_up),
                                                    config_.webhook_max_pending);
  }
}

Collector::~Collector() { stop(); }

common::Status<> Collector::start() {
  auto devices = sink_->devices();
  if (!devices.ok()) return common::Error{devices.error().message};
  for (const DeviceRow& d : devices.value()) {
    fleet_.remember(d.site, d.device, d.epoch, d.presence, d.last_seen_us);
  }
  // What Paho acknowledged before a crash and we had journaled but not committed.
  auto position = sink_->journal_position();
  if (!position.ok()) return common::Error{position.error().message};
  Transaction tx;
  std::vector<EventItem> events;
  uint32_t in_tx = 0;
  auto replayed = journal_->replay(position.value(), [&](RawMessage&& m, JournalPosition after) {
    ++counters_.received;
    ++counters_.replayed;
    add(Work{classify(std::move(m), config_.validation), after}, tx, events, wall_now_us());
    if (++in_tx >= config_.commit_max_messages) {
      commit(tx);
      in_tx = 0;
    }
  });
  if (!replayed.ok()) return replayed.error();
  if (!tx.empty() || tx.journal) commit(tx);
  if (replayed.value() > 0) {
    spdlog::info("journal: replayed {} messages received before the last stop", replayed.value());
  }

  client_ = std::make_unique<mqtt::async_client>(config_.broker, config_.client_id,
                                                 mqtt::create_options(MQTTVERSION_3_1_1));
  client_->start_consuming();
  publisher_ = std::make_unique<mqtt::async_client>(config_.broker, config_.client_id + "-pub",
                                                    mqtt::create_options(MQTTVERSION_3_1_1));
  mqtt_thread_ = std::thread([this] { mqtt_loop(); });
  storage_thread_ = std::thread([this] { storage_loop(); });
  return {};
}

void Collector::stop() {
  if (stopping_.exchange(true)) {
    if (storage_thread_.joinable()) storage_thread_.join();
    return;
  }
  if (mqtt_thread_.joinable()) mqtt_thread_.join();
  queue_.close();
  if (storage_thread_.joinable()) storage_thread_.join();
  for (auto* client : {publisher_.get(), client_.get()}) {
    if (!client) continue;
    try {
      if (client->is_connected()) client->disconnect()->wait_for(std::chrono::seconds(5));
    } catch (const mqtt::exception& e) {
      spdlog::warn("disconnect {}: {}", client->get_client_id(), e.what());
    }
  }
}

void Collector::ensure_publisher() {
  if (publisher_->is_connected()) return;
  if (publisher_connect_ && !publisher_connect_->is_complete()) return;  // under way
  const auto now = Clock::now();
  if (now < publisher_next_try_) return;
  // While the subscriber is up: a try a second at most (within the reconnect bounds).
  publisher_next_try_ = now + std::chrono::microseconds(std::clamp<int64_t>(
                                  1'000'000, config_.reconnect_min_us, config_.reconnect_max_us));
  try {
    publisher_connect_ = publisher_->connect(connect_options(config_, /*clean_session=*/true));
  } catch (const mqtt::exception& e) {
    spdlog::warn("cannot connect the publisher to {}: {}", config_.broker, e.what());
  }
}

bool Collector::ensure_connected() {
  if (client_->is_connected()) {
    connected_ = true;
    ensure_publisher();
    return true;
  }
  if (connected_.exchange(false)) spdlog::warn("connection to {} lost", config_.broker);
  // The publisher first, so the acks of the first messages go out: at most a short wait, as
  // consuming must not depend on it (ensure_publisher retries in the background).
  publisher_next_try_ = {};
  ensure_publisher();
  try {
    if (publisher_connect_) publisher_connect_->wait_for(std::chrono::seconds(5));
  } catch (const mqtt::exception& e) {
    spdlog::warn("cannot connect the publisher to {}: {}", config_.broker, e.what());
  }
  try {
    auto token = client_->connect(connect_options(config_, config_.clean_session));
    if (!token->wait_for(std::chrono::seconds(15))) throw mqtt::exception(-1, "timed out");
    const auto filters = subscription_filters(config_);
    auto topics = mqtt::string_collection::create(filters);
    std::vector<int> qos(filters.size(), 1);
    if (!client_->subscribe(topics, qos)->wait_for(std::chrono::seconds(15))) {
      throw mqtt::exception(-1, "subscribe timed out");
    }
    connected_ = true;
    reconnect_delay_us_ = 0;
    ++counters_.reconnects;
    spdlog::info("connected to {} as {}, subscribed to {}", config_.broker, config_.client_id,
                 fmt::join(filters, ", "));
    return true;
  } catch (const mqtt::exception& e) {
    // Half done (connected, not subscribed): start again from a clean disconnect.
    try {
      if (client_->is_connected()) client_->disconnect()->wait_for(std::chrono::seconds(2));
    } catch (const mqtt::exception&) {
    }
    reconnect_delay_us_ =
        std::clamp(reconnect_delay_us_ * 2, config_.reconnect_min_us, config_.reconnect_max_us);
    std::mt19937_64 rng(static_cast<uint64_t>(wall_now_us()));
    const int64_t wait =
        reconnect_delay_us_ / 2 + static_cast<int64_t>(rng() % (reconnect_delay_us_ / 2 + 1));
    spdlog::warn("cannot connect to {}: {}; retrying in {} ms", config_.broker, e.what(),
                 wait / 1000);
    const auto until = Clock::now() + std::chrono::microseconds(wait);
    while (!stopping_ && Clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // backoff, not a sync
    }
    return false;
  }
}

void Collector::mqtt_loop() {
  std::vector<RawMessage> burst;
  std::vector<JournalPosition> after;
  while (!stopping_) {
    if (!ensure_connected()) continue;
    mqtt::const_message_ptr msg;
    if (!client_->try_consume_message_for(&msg, std::chrono::milliseconds(100))) continue;
    burst.clear();
    const int64_t now = wall_now_us();
    // A null message is Paho's way of saying the connection was lost.
    while (msg) {
      burst.push_back(RawMessage{msg->get_topic(), msg->get_payload(), now});
      if (burst.size() >= 512 || !client_->try_consume_message(&msg)) break;
    }
    if (burst.empty()) continue;
    counters_.received += burst.size();
    bool journaled = true;
    if (auto s = journal_->append(burst, after); !s.ok()) {
      ++counters_.journal_errors;
      journaled = false;
      spdlog::error("{}", s.error().message);
    }
    for (std::size_t i = 0; i < burst.size(); ++i) {
      std::optional<JournalPosition> pos;
      if (journaled) pos = after[i];
      if (!queue_.push(Work{classify(std::move(burst[i]), config_.validation), pos})) return;
    }
  }
}

void Collector::add(Work work, Transaction& tx, std::vector<EventItem>& events, int64_t now_us) {
  if (work.journal) tx.journal = work.journal;
  if (auto* batch = std::get_if<BatchItem>(&work.item)) {
    fleet_.on_batch(batch->site, batch->envelope.device_id, batch->envelope.epoch,
                    batch->envelope.seq, batch->received_us, events);
    tx.batches.push_back(std::move(*batch));
  } else if (auto* status = std::get_if<StatusItem>(&work.item)) {
    ++counters_.statuses;
    fleet_.on_status(status->site, status->device, status->status, status->received_us, events);
    tx.statuses.push_back(std::move(*status));
  } else {
    auto& dead = std::get<DlqItem>(work.item);
    ++counters_.dlq;
    ++counters_.dlq_by_reason[static_cast<std::size_t>(dead.reason) % 16];
    fleet_.on_dlq(now_us);
    if (dlq_log_.allow(std::chrono::steady_clock::now())) {
      spdlog::warn("dead-lettered a message on {}: {}: {} ({} more not logged)", dead.topic,
                   common::reason_name(dead.reason), dead.detail, dlq_log_.take_suppressed());
    }
    tx.dlq.push_back(std::move(dead));
  }
  for (auto& e : events) tx.events.push_back(std::move(e));
  events.clear();
}

void Collector::commit(Transaction& tx) {
  if (tx.empty() && !tx.journal) return;
  int64_t backoff_ms = 50;
  common::RateLimiter failure_log(3, std::chrono::seconds(30));
  for (int attempt = 1;; ++attempt) {
    const auto started = Clock::now();
    auto r = sink_->commit(tx);
    if (r.ok()) {
      const auto took =
          std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started);
      ++counters_.commits;
      counters_.commit_us_total += static_cast<uint64_t>(took.count());
      counters_.commit_messages_total += tx.batches.size() + tx.statuses.size() + tx.dlq.size();
      counters_.readings_stored += r.value().readings_stored;
      counters_.logs_stored += r.value().logs_stored;
      counters_.dlq_dropped += r.value().dlq_dropped;
      for (BatchOutcome o : r.value().outcomes) {
        ++(o == BatchOutcome::kDuplicate ? counters_.duplicates : counters_.batches_stored);
      }
      observe_latencies(tx, r.value());
      for (const auto& e : tx.events) {
        ++counters_.events_by_kind[static_cast<std::size_t>(e.event.kind) % 16];
      }
      for (const auto& d : tx.dlq) {
        // Entries made after classification are counted once stored (add() counts the rest).
        if (d.reason == common::Reason::kWebhookGaveUp ||
            d.reason == common::Reason::kStorageRejected) {
          ++counters_.dlq;
          ++counters_.dlq_by_reason[static_cast<std::size_t>(d.reason) % 16];
        }
      }
      std::vector<EventItem> raised = evaluate_rules(tx, r.value());
      after_commit(tx);
      if (tx.journal) journal_->release(*tx.journal);
      tx = Transaction{};
      if (!raised.empty()) {
        // Stored in a transaction of their own (a crash in between loses them: rule state is
        // in memory only); it has no batches, so it raises no rules in turn.
        Transaction events;
        events.events = std::move(raised);
        commit(events);
      }
      return;
    }
    ++counters_.commit_failures;
    const std::size_t messages = tx.batches.size() + tx.statuses.size();
    if (failure_log.allow(std::chrono::steady_clock::now())) {
      spdlog::error("storage: commit of {} messages failed ({}), retrying: {}",
                    messages + tx.dlq.size(), r.error().transient ? "transient" : "not transient",
                    r.error().message);
    }
    if (!r.error().transient && attempt >= kPermanentFailureAttempts && messages > 0) {
      // A permanent error that may be one message's doing: find it, so that it cannot hold
      // back the healthy traffic around it.
      isolate_failure(tx, r.error().message);
      return;
    }
    if (stopping_ && attempt >= 20) {
      // Still in the journal: replayed at the next start.
      spdlog::error("storage: giving up at shutdown; the journal keeps these messages");
      tx = Transaction{};
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms));  // retry backoff
    backoff_ms = std::min<int64_t>(backoff_ms * 2, 5000);
  }
}

void Collector::isolate_failure(Transaction& tx, const std::string& error) {
  if (tx.batches.size() + tx.statuses.size() == 1 && tx.dlq.empty() && tx.events.empty()) {
    // This message alone fails for good: dead-letter it, store the rest of the transaction.
    DlqItem dead;
    dead.reason = common::Reason::kStorageRejected;
    dead.detail = "the store refused it: " + error;
    if (!tx.batches.empty()) {
      const BatchItem& b = tx.batches.front();
      const auto kind = b.envelope.kind();
      dead.received_us = b.received_us;
      auto topic = common::device_topic(b.site, b.envelope.device_id, kind);
      dead.topic = topic.ok() ? topic.value() : "";
      auto bytes = common::encode(b.envelope);  // re-encoded: the same fields as received
      if (bytes.ok()) dead.payload.assign(bytes.value().begin(), bytes.value().end());
      tx.batches.clear();
    } else {
      const StatusItem& s = tx.statuses.front();
      dead.received_us = s.received_us;
      auto topic = common::device_topic(s.site, s.device, common::PayloadKind::kStatus);
      dead.topic = topic.ok() ? topic.value() : "";
      tx.statuses.clear();
    }
    spdlog::error("storage: dead-lettered a message on {} that the store refuses: {}", dead.topic,
                  error);
    tx.dlq.push_back(std::move(dead));
    commit(tx);
    return;
  }
  spdlog::warn("storage: committing {} messages one by one to find the one the store refuses",
               tx.batches.size() + tx.statuses.size());
  Transaction rest;
  rest.dlq = std::move(tx.dlq);
  rest.events = std::move(tx.events);
  rest.journal = tx.journal;  // released last, once everything before it is stored
  for (auto& b : tx.batches) {
    Transaction one;
    one.batches.push_back(std::move(b));
    commit(one);
  }
  for (auto& s : tx.statuses) {
    Transaction one;
    one.statuses.push_back(std::move(s));
    commit(one);
  }
  tx = Transaction{};
  commit(rest);
}

namespace {

// Calls f(item, readings) for every ReadingBatch the commit stored (not for duplicates).
template <typename F>
void for_each_stored_reading_batch(const Transaction& tx, const CommitResult& result, F f) {
  for (std::size_t i = 0; i < tx.batches.size(); ++i) {
    if (result.outcomes[i] == BatchOutcome::kDuplicate) continue;
    if (const auto* batch = std::get_if<common::ReadingBatch>(&tx.batches[i].envelope.body)) {
      f(tx.batches[i], *batch);
    }
  }
}

}  // namespace

void Collector::observe_latencies(const Transaction& tx, const CommitResult& result) {
  // Counted locally, then added once per bucket: the atomics stay off the per-reading path.
  std::array<uint64_t, kLatencyBuckets.size() + 1> counts{};
  uint64_t sum_us = 0;
  const int64_t now = wall_now_us();
  for_each_stored_reading_batch(tx, result, [&](const BatchItem&, const common::ReadingBatch& b) {
    for (const auto& reading : b.readings) {
      const int64_t us = std::max<int64_t>(now - reading.time_us, 0);
      const double s = static_cast<double>(us) / 1e6;
      std::size_t bucket = 0;
      while (bucket < kLatencyBuckets.size() && s > kLatencyBuckets[bucket]) ++bucket;
      ++counts[bucket];
      sum_us += static_cast<uint64_t>(us);
    }
  });
  for (std::size_t b = 0; b < counts.size(); ++b) {
    if (counts[b]) counters_.latency_counts[b].fetch_add(counts[b], std::memory_order_relaxed);
  }
  counters_.latency_sum_us.fetch_add(sum_us, std::memory_order_relaxed);
}

std::vector<EventItem> Collector::evaluate_rules(const Transaction& tx,
                                                 const CommitResult& result) {
  std::vector<EventItem> raised;
  if (rules_.rule_count() == 0) return raised;
  for_each_stored_reading_batch(
      tx, result, [&](const BatchItem& item, const common::ReadingBatch& b) {
        for (const auto& reading : b.readings) {
          if (reading.sensor >= b.sensor_names.size()) continue;  // validation refuses these
          double value;
          if (const auto* d = std::get_if<double>(&reading.value)) {
            value = *d;
          } else if (const auto* n = std::get_if<int64_t>(&reading.value)) {
            value = static_cast<double>(*n);
          } else {
            continue;  // bools and strings have no threshold
          }
          rules_.observe(item.site, item.envelope.device_id, b.sensor_names[reading.sensor], value,
                         reading.time_us, raised);
        }
      });
  counters_.rules_tripped = rules_.tripped_count();
  return raised;
}

bool Collector::take_gave_up(Transaction& tx) {
  std::lock_guard lock(gave_up_mutex_);
  if (gave_up_.empty()) return false;
  for (auto& d : gave_up_) tx.dlq.push_back(std::move(d));
  gave_up_.clear();
  return true;
}

bool Collector::publish(const std::string& topic, const common::Envelope& envelope, bool retained) {
  if (!publisher_->is_connected()) {
    ++counters_.publish_skipped;
    return false;
  }
  auto bytes = common::encode(envelope);
  if (!bytes.ok()) {
    spdlog::error("cannot encode for {}: {}", topic, bytes.error().detail);
    return false;
  }
  try {
    publisher_->publish(topic, bytes.value().data(), bytes.value().size(), 1, retained);
    return true;
  } catch (const mqtt::exception& e) {
    ++counters_.publish_skipped;
    if (publish_log_.allow(std::chrono::steady_clock::now())) {
      spdlog::warn("publish to {} failed: {} ({} more not logged)", topic, e.what(),
                   publish_log_.take_suppressed());
    }
    return false;
  }
}

void Collector::after_commit(const Transaction& tx) {
  if (config_.publish_acks && publisher_) {
    for (auto& ack : build_acks(tx.batches)) {
      auto topic = common::device_topic(ack.site, ack.device, common::PayloadKind::kAck);
      if (!topic.ok()) continue;
      if (publish(topic.value(),
                  common::Envelope{common::kSchemaVersion, ack.device, epoch_, ++event_seq_,
                                   std::move(ack.ack)},
                  false)) {
        ++counters_.acks_published;
      }
    }
  }
  if (config_.publish_events && publisher_) {
    for (const auto& e : tx.events) {
      auto topic = common::event_topic(e.event.kind, e.event.site, e.device);
      if (!topic.ok()) continue;
      const std::string sender = e.device.empty() ? config_.client_id : e.device;
      if (publish(topic.value(),
                  common::Envelope{common::kSchemaVersion, sender, epoch_, ++event_seq_, e.event},
                  false)) {
        ++counters_.events_published;
      }
    }
  }
  if (webhooks_) {
    for (const auto& e : tx.events) webhooks_->post(e.device, e.event);
  }
}

void Collector::storage_loop() {
  Transaction tx;
  std::vector<EventItem> events;
  uint32_t in_tx = 0;
  auto opened = Clock::now();
  auto next_tick = Clock::now() + std::chrono::seconds(1);
  auto next_expire = Clock::now() + std::chrono::seconds(10);
  const auto interval = std::chrono::microseconds(config_.commit_interval_us);
  for (;;) {
    const auto deadline = in_tx > 0 ? std::min(opened + interval, next_tick) : next_tick;
    auto work = queue_.pop_until(deadline);
    const auto now = Clock::now();
    if (work) {
      if (in_tx == 0) opened = now;
      add(std::move(*work), tx, events, wall_now_us());
      ++in_tx;
    }
    const bool closing = !work && stopping_ && queue_.size() == 0 && now < deadline;
    if (in_tx >= config_.commit_max_messages || (in_tx > 0 && now >= opened + interval) ||
        (closing && in_tx > 0)) {
      commit(tx);
      in_tx = 0;
    }
    if (now >= next_tick) {
      fleet_.tick(wall_now_us(), events);
      const bool gave_up = take_gave_up(tx);
      if (!events.empty() || gave_up) {
        for (auto& e : events) tx.events.push_back(std::move(e));
        events.clear();
        commit(tx);
        in_tx = 0;
      }
      next_tick = now + std::chrono::seconds(1);
    }
    if (now >= next_expire && config_.retention_us > 0 && in_tx == 0) {
      const int64_t wall = wall_now_us();
      const int64_t dlq_cutoff =
          config_.dlq_max_age_us > 0 ? wall - config_.dlq_max_age_us : INT64_MIN;
      // A batch's dedup key outlives its rows by one more retention period.
      auto removed = sink_->expire(wall - config_.retention_us, dlq_cutoff,
                                   wall - 2 * config_.retention_us, 50'000);
      if (removed.ok()) {
        counters_.expired_rows += removed.value();
        // More to remove: come back soon, in bounded chunks, between commits.
        next_expire = now + (removed.value() >= 50'000 ? std::chrono::milliseconds(200)
                                                       : std::chrono::milliseconds(60'000));
      } else {
        spdlog::warn("retention: {}", removed.error().message);
        next_expire = now + std::chrono::seconds(60);
      }
    }
    if (closing) break;
  }
  if (in_tx > 0) commit(tx);
  if (webhooks_) {
    // Deliveries in flight get the grace period; those left are handed back and stored.
    webhooks_->stop(std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::microseconds(config_.webhook_stop_grace_us)));
    if (take_gave_up(tx)) commit(tx);
  }
}

std::string Collector::metrics_text() const {
  std::string out;
  auto family = [&out](std::string_view name, std::string_view type, std::string_view help) {
    out += "# HELP outpost_collector_" + std::string(name) + " " + std::string(help) + "\n";
    out += "# TYPE outpost_collector_" + std::string(name) + " " + std::string(type) + "\n";
  };
  auto sample = [&out](std::string_view name, uint64_t v, std::string_view labels = "") {
    out += "outpost_collector_" + std::string(name) + std::string(labels) + " " +
           std::to_string(v) + "\n";
  };
  auto counter = [&](std::string_view name, std::string_view help, uint64_t v) {
    family(name, "counter", help);
    sample(name, v);
  };
  auto gauge = [&](std::string_view name, std::string_view help, uint64_t v) {
    family(name, "gauge", help);
    sample(name, v);
  };
  const Counters& c = counters_;
  counter("received_total", "Messages received from the broker (and replayed from the journal).",
          c.received);
  counter("replayed_total", "Messages replayed from the journal at start.", c.replayed);
  counter("batches_stored_total", "Data and logs messages stored.", c.batches_stored);
  counter("duplicates_total", "Data and logs messages already stored (not stored again).",
          c.duplicates);
  counter("readings_stored_total", "Readings stored.", c.readings_stored);
  counter("logs_stored_total", "Log records stored.", c.logs_stored);
  counter("statuses_total", "Device status messages.", c.statuses);
  family("dlq_total", "counter", "Messages put in the dead-letter queue, by reason.");
  for (common::Reason r : common::kAllReasons) {
    sample("dlq_total", c.dlq_by_reason[static_cast<std::size_t>(r) % 16],
           "{reason=\"" + std::string(common::reason_name(r)) + "\"}");
  }
  counter("dlq_dropped_total", "DLQ entries removed to keep the DLQ within its bounds.",
          c.dlq_dropped);
  family("events_total", "counter", "Events raised, by kind.");
  for (common::EventKind kind : common::kAllEventKinds) {
    sample("events_total", c.events_by_kind[static_cast<std::size_t>(kind) % 16],
           "{kind=\"" + std::string(common::event_kind_name(kind)) + "\"}");
  }
  counter("commits_total", "Storage transactions committed.", c.commits);
  counter("commit_failures_total", "Storage transactions that failed (and were retried).",
          c.commit_failures);
  counter("commit_seconds_total_us", "Time spent committing, microseconds.", c.commit_us_total);
  counter("commit_messages_total", "Messages in committed transactions.", c.commit_messages_total);
  counter("acks_published_total", "Commit acknowledgements published.", c.acks_published);
  counter("events_published_total", "Events published on outpost/v1/events/...",
          c.events_published);
  counter("publish_skipped_total",
          "Acks and events not published: the publisher connection was down (events stay in "
          "the database; an agent re-sends what was not acked and is acked again).",
          c.publish_skipped);
  counter("reconnects_total", "Successful connections to the broker.", c.reconnects);
  counter("expired_rows_total", "Rows removed by retention.", c.expired_rows);
  counter("journal_errors_total", "Journal writes that failed.", c.journal_errors);
  gauge("rules_tripped", "Threshold rules tripped now, per (rule, device).", c.rules_tripped);
  if (webhooks_) {
    const WebhookStats w = webhooks_->stats();
    counter("webhook_delivered_total", "Webhook deliveries answered with 2xx.", w.delivered);
    counter("webhook_retries_total", "Webhook attempts after the first.", w.retried);
    counter("webhook_gave_up_total",
            "Webhook deliveries given up (into the DLQ), queue full included.", w.gave_up);
    counter("webhook_queue_full_total", "Of those, refused because too many were pending.",
            w.queue_full);
  }
  gauge("queue_depth", "Messages waiting for the storage thread.", queue_.size());
  gauge("connected", "1 while the subscriber is connected to the broker.", connected_ ? 1 : 0);
  gauge("publisher_connected", "1 while the publisher (acks, events) is connected.",
        publisher_ && publisher_->is_connected() ? 1 : 0);
  out +=
      "# HELP outpost_collector_reading_latency_seconds From a reading's timestamp to its "
      "commit.\n";
  out += "# TYPE outpost_collector_reading_latency_seconds histogram\n";
  uint64_t cumulative = 0;
  for (std::size_t i = 0; i <= kLatencyBuckets.size(); ++i) {
    cumulative += c.latency_counts[i].load();
    char le[32];
    if (i < kLatencyBuckets.size()) {
      std::snprintf(le, sizeof le, "%g", kLatencyBuckets[i]);
    } else {
      std::snprintf(le, sizeof le, "+Inf");
    }
    out += "outpost_collector_reading_latency_seconds_bucket{le=\"" + std::string(le) + "\"} " +
           std::to_string(cumulative) + "\n";
  }
  char sum[64];
  std::snprintf(sum, sizeof sum, "%.6f", static_cast<double>(c.latency_sum_us.load()) / 1e6);
  out += "outpost_collector_reading_latency_seconds_sum " + std::string(sum) + "\n";
  out += "outpost_collector_reading_latency_seconds_count " + std::to_string(cumulative) + "\n";
  return out;
}

}  // namespace outpost::collector
