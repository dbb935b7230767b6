// The storage thread's decisions: transactions, commit retry and isolation, after-commit hand-off.
#include "outpost/collector/storage_loop.h"

#include <algorithm>
#include <array>
#include <random>
#include <thread>

#include "outpost/common/clock.h"
#include "outpost/common/codec.h"
#include "outpost/common/topics.h"

namespace outpost::collector {

int64_t SystemStorageClock::wall_us() { return common::wall_now_us(); }

std::chrono::steady_clock::time_point SystemStorageClock::steady() {
  return std::chrono::steady_clock::now();
}

void SystemStorageClock::sleep_for(std::chrono::milliseconds d) { std::this_thread::sleep_for(d); }

StorageLoop::StorageLoop(const CollectorConfig& config, std::optional<FleetTracker> fleet,
                         Sink& sink, StorageClock& clock, Counters& counters,
                         JournalRelease* journal, EventForwarder* webhooks)
    : config_(config),
      fleet_(std::move(fleet)),
      rules_(fleet_ ? config_.rules : std::vector<ThresholdRule>{}),
      sink_(sink),
      clock_(clock),
      counters_(counters),
      journal_(journal),
      webhooks_(webhooks) {
  std::random_device rd;
  epoch_ = (static_cast<uint64_t>(rd()) << 32) | rd();
}

void StorageLoop::add(StorageWork work) {
  std::vector<EventItem> events;
  if (work.journal) tx_.journal = work.journal;
  if (auto* batch = std::get_if<BatchItem>(&work.item)) {
    if (fleet_) {
      fleet_->on_batch(batch->site, batch->envelope.device_id, batch->envelope.epoch,
                       batch->envelope.seq, batch->received_us, events);
    }
    tx_.batches.push_back(std::move(*batch));
  } else if (auto* status = std::get_if<StatusItem>(&work.item)) {
    ++counters_.statuses;
    if (fleet_) {
      fleet_->on_status(status->site, status->device, status->status, status->received_us, events);
    }
    tx_.statuses.push_back(std::move(*status));
  } else {
    auto& dead = std::get<DlqItem>(work.item);
    ++counters_.dlq;
    ++counters_.dlq_by_reason[static_cast<std::size_t>(dead.reason) % 16];
    if (fleet_) fleet_->on_dlq(clock_.wall_us());
    if (dlq_log_.allow(clock_.steady())) {
      spdlog::warn("dead-lettered a message on {}: {}: {} ({} more not logged)", dead.topic,
                   common::reason_name(dead.reason), dead.detail, dlq_log_.take_suppressed());
    }
    tx_.dlq.push_back(std::move(dead));
  }
  for (auto& e : events) tx_.events.push_back(std::move(e));
  if (++in_tx_ >= config_.commit_max_messages) flush();
}

void StorageLoop::flush() {
  // Late batches resolve reported gaps, and the sequence lines they changed are stored, in
  // the transaction that stores those batches.
  if (fleet_) fleet_->take_commit(clock_.wall_us(), tx_.events, tx_.seq_lines);
  commit(tx_);
  in_tx_ = 0;
}

void StorageLoop::run(WorkSource& source) {
  using std::chrono::seconds;
  auto opened = clock_.steady();
  auto next_tick = clock_.steady() + seconds(1);
  auto next_expire = clock_.steady() + seconds(10);
  const auto interval = std::chrono::microseconds(config_.commit_interval_us);
  for (;;) {
    const auto deadline = in_tx_ > 0 ? std::min(opened + interval, next_tick) : next_tick;
    auto work = source.pop_until(deadline);
    const auto now = clock_.steady();
    const bool closing = !work && source.drained();
    if (work) {
      if (in_tx_ == 0) opened = now;
      add(std::move(*work));  // commits at commit_max_messages
    }
    if (in_tx_ > 0 && (closing || now >= opened + interval)) flush();
    if (now >= next_tick) {
      tick();
      next_tick = now + seconds(1);
    }
    // Between commits only, so a long retention run never holds a transaction open.
    if (now >= next_expire && config_.retention_us > 0 && in_tx_ == 0) next_expire = expire(now);
    if (closing) break;
  }
  if (in_tx_ > 0) flush();
  if (webhooks_) {
    // Deliveries in flight get the grace period; those left are handed back and stored.
    webhooks_->stop();
    if (take_gave_up(tx_)) commit(tx_);
  }
}

void StorageLoop::tick() {
  std::vector<EventItem> events;
  if (fleet_) fleet_->tick(clock_.wall_us(), events);
  const bool gave_up = take_gave_up(tx_);
  if (events.empty() && !gave_up) return;
  for (auto& e : events) tx_.events.push_back(std::move(e));
  flush();
}

std::chrono::steady_clock::time_point StorageLoop::expire(
    std::chrono::steady_clock::time_point now) {
  const int64_t wall = clock_.wall_us();
  const int64_t dlq_cutoff = config_.dlq_max_age_us > 0 ? wall - config_.dlq_max_age_us : INT64_MIN;
  // A batch's dedup key outlives its rows by one more retention period.
  auto removed = sink_.expire(wall - config_.retention_us, dlq_cutoff,
                              wall - 2 * config_.retention_us, kRetentionChunkRows);
  if (!removed.ok()) {
    // Once a minute at most: the schedule is the log's rate limit.
    ++counters_.retention_failures;
    spdlog::warn("retention: {}; retrying in a minute", removed.error().message);
    return now + std::chrono::seconds(60);
  }
  counters_.expired_rows += removed.value();
  // More to remove: come back soon, in bounded chunks, between commits.
  return now + (removed.value() >= kRetentionChunkRows ? std::chrono::milliseconds(200)
                                                       : std::chrono::milliseconds(60'000));
}

void StorageLoop::commit(Transaction& tx) {
  if (tx.empty() && !tx.journal) return;
  int64_t backoff_ms = kBackoffStartMs;
  common::RateLimiter failure_log(3, std::chrono::seconds(30));
  for (int attempt = 1;; ++attempt) {
    const auto started = clock_.steady();
    auto r = sink_.commit(tx);
    if (r.ok()) {
      count_commit(
          tx, r.value(),
          std::chrono::duration_cast<std::chrono::microseconds>(clock_.steady() - started).count());
      std::vector<EventItem> raised = evaluate_rules(tx, r.value());
      after_commit(tx);
      if (tx.journal && journal_) journal_->release(*tx.journal);
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
    if (failure_log.allow(clock_.steady())) {
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
    if (stopping_ && attempt >= kShutdownAttempts) {
      // Still in the journal (its position is not released): replayed at the next start.
      ++counters_.commits_given_up;
      spdlog::error("storage: giving up at shutdown; the journal keeps these messages");
      tx = Transaction{};
      return;
    }
    clock_.sleep_for(std::chrono::milliseconds(backoff_ms));  // retry backoff
    backoff_ms = std::min<int64_t>(backoff_ms * 2, kBackoffMaxMs);
  }
}

void StorageLoop::count_commit(const Transaction& tx, const CommitResult& result, int64_t took_us) {
  ++counters_.commits;
  counters_.commit_us_total += static_cast<uint64_t>(took_us);
  counters_.commit_messages_total += tx.batches.size() + tx.statuses.size() + tx.dlq.size();
  counters_.readings_stored += result.readings_stored;
  counters_.logs_stored += result.logs_stored;
  counters_.dlq_dropped += result.dlq_dropped;
  for (BatchOutcome o : result.outcomes) {
    ++(o == BatchOutcome::kDuplicate ? counters_.duplicates : counters_.batches_stored);
  }
  observe_latencies(tx, result);
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
}

void StorageLoop::isolate_failure(Transaction& tx, const std::string& error) {
  if (tx.batches.size() + tx.statuses.size() == 1 && tx.dlq.empty() && tx.events.empty()) {
    // This message alone fails for good: dead-letter it, store the rest of the transaction.
    DlqItem dead;
    dead.reason = common::Reason::kStorageRejected;
    dead.detail = "the store refused it: " + error;
    if (!tx.batches.empty()) {
      const BatchItem& b = tx.batches.front();
      dead.received_us = b.received_us;
      auto topic = common::device_topic(b.site, b.envelope.device_id, b.envelope.kind());
      if (topic.ok()) {
        dead.topic = topic.value();
      } else {
        encode_failed("the topic of a storage_rejected entry", topic.error().detail);
      }
      auto bytes = common::encode(b.envelope);  // re-encoded: the same fields as received
      if (bytes.ok()) {
        dead.payload.assign(bytes.value().begin(), bytes.value().end());
      } else {
        encode_failed("the payload of a storage_rejected entry", bytes.error().detail);
      }
      tx.batches.clear();
    } else {
      const StatusItem& s = tx.statuses.front();
      dead.received_us = s.received_us;
      auto topic = common::device_topic(s.site, s.device, common::PayloadKind::kStatus);
      if (topic.ok()) {
        dead.topic = topic.value();
      } else {
        encode_failed("the topic of a storage_rejected entry", topic.error().detail);
      }
      tx.statuses.clear();
    }
    if (isolate_log_.allow(clock_.steady())) {
      spdlog::error(
          "storage: dead-lettered a message on {} that the store refuses: {} ({} more "
          "not logged)",
          dead.topic, error, isolate_log_.take_suppressed());
    }
    tx.dlq.push_back(std::move(dead));
    commit(tx);
    return;
  }
  if (isolate_log_.allow(clock_.steady())) {
    spdlog::warn("storage: committing {} messages one by one to find the one the store refuses",
                 tx.batches.size() + tx.statuses.size());
  }
  Transaction rest;
  rest.dlq = std::move(tx.dlq);
  rest.events = std::move(tx.events);
  rest.journal = tx.journal;  // released last, once everything before it is stored
  rest.seq_lines = std::move(tx.seq_lines);
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
  for (std::size_t i = 0; i < tx.batches.size() && i < result.outcomes.size(); ++i) {
    if (result.outcomes[i] == BatchOutcome::kDuplicate) continue;
    if (const auto* batch = std::get_if<common::ReadingBatch>(&tx.batches[i].envelope.body)) {
      f(tx.batches[i], *batch);
    }
  }
}

}  // namespace

void StorageLoop::observe_latencies(const Transaction& tx, const CommitResult& result) {
  // Counted locally, then added once per bucket: the atomics stay off the per-reading path.
  std::array<uint64_t, kLatencyBuckets.size() + 1> counts{};
  uint64_t sum_us = 0;
  const int64_t now = clock_.wall_us();
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

std::vector<EventItem> StorageLoop::evaluate_rules(const Transaction& tx,
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

void StorageLoop::webhook_gave_up(WebhookGaveUp g) {
  DlqItem item;
  item.topic = "webhook/" + g.webhook;
  item.payload = std::move(g.body);
  item.received_us = clock_.wall_us();
  item.reason = common::Reason::kWebhookGaveUp;
  item.detail = "webhook " + g.webhook + " (" + g.url + ") gave up after " +
                std::to_string(g.attempts) + (g.attempts == 1 ? " attempt: " : " attempts: ") +
                g.last_error;
  std::lock_guard lock(gave_up_mutex_);
  gave_up_.push_back(std::move(item));
}

bool StorageLoop::take_gave_up(Transaction& tx) {
  std::lock_guard lock(gave_up_mutex_);
  if (gave_up_.empty()) return false;
  for (auto& d : gave_up_) tx.dlq.push_back(std::move(d));
  gave_up_.clear();
  return true;
}

void StorageLoop::encode_failed(std::string_view what, std::string_view detail) {
  ++counters_.encode_failures;
  if (encode_log_.allow(clock_.steady())) {
    spdlog::error("cannot encode {}: {} ({} more not logged)", what, detail,
                  encode_log_.take_suppressed());
  }
}

bool publish_envelope(Publisher& publisher, const std::string& topic,
                      const common::Envelope& envelope, Counters& counters,
                      common::RateLimiter& log, std::chrono::steady_clock::time_point now) {
  if (!publisher.connected()) {
    ++counters.publish_skipped;
    if (log.allow(now)) {
      spdlog::warn("publisher down: not published on {} ({} more not logged)", topic,
                   log.take_suppressed());
    }
    return false;
  }
  auto bytes = common::encode(envelope);
  if (!bytes.ok()) {
    ++counters.encode_failures;
    if (log.allow(now)) {
      spdlog::error("cannot encode the payload for {}: {} ({} more not logged)", topic,
                    bytes.error().detail, log.take_suppressed());
    }
    return false;
  }
  if (auto s = publisher.publish(topic, bytes.value()); !s.ok()) {
    ++counters.publish_skipped;
    if (log.allow(now)) {
      spdlog::warn("publish to {} failed: {} ({} more not logged)", topic, s.error().message,
                   log.take_suppressed());
    }
    return false;
  }
  return true;
}

bool StorageLoop::publish(const std::string& topic, const common::Envelope& envelope) {
  return publish_envelope(*publisher_, topic, envelope, counters_, publish_log_, clock_.steady());
}

void StorageLoop::after_commit(const Transaction& tx) {
  if (config_.publish_acks && publisher_) {
    for (auto& ack : build_acks(tx.batches)) {
      auto topic = common::device_topic(ack.site, ack.device, common::PayloadKind::kAck);
      if (!topic.ok()) {
        encode_failed("the topic of an ack", topic.error().detail);
        continue;
      }
      if (publish(topic.value(), common::Envelope{common::kSchemaVersion, ack.device, epoch_,
                                                  ++event_seq_, std::move(ack.ack)})) {
        ++counters_.acks_published;
      }
    }
  }
  if (config_.publish_events && publisher_) {
    for (const auto& e : tx.events) {
      auto topic = common::event_topic(e.event.kind, e.event.site, e.device);
      if (!topic.ok()) {
        encode_failed("the topic of an event", topic.error().detail);
        continue;
      }
      const std::string sender = e.device.empty() ? config_.client_id : e.device;
      if (publish(topic.value(), common::Envelope{common::kSchemaVersion, sender, epoch_,
                                                  ++event_seq_, e.event})) {
        ++counters_.events_published;
      }
    }
  }
  if (webhooks_) {
    for (const auto& e : tx.events) webhooks_->post(e.device, e.event);
  }
}

}  // namespace outpost::collector
