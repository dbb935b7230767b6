// The shared-mode leader's decisions: candidacy, restore, rounds over the fleet feed.
#include "outpost/collector/fleet_leader.h"

#include <algorithm>
#include <random>

#include "outpost/common/codec.h"
#include "outpost/common/topics.h"

namespace outpost::collector {

FleetLeader::FleetLeader(FleetLeaderOptions options, FleetStore& store, StorageClock& clock,
                         Counters& counters, EventForwarder* webhooks)
    : options_(std::move(options)),
      store_(store),
      clock_(clock),
      counters_(counters),
      webhooks_(webhooks),
      next_(clock.steady()) {
  std::random_device rd;
  epoch_ = (static_cast<uint64_t>(rd()) << 32) | rd();
}

std::chrono::steady_clock::time_point FleetLeader::step() {
  const auto now = clock_.steady();
  if (now < next_) return next_;
  if (!leading_) {
    next_ = now + options_.try_interval;
    auto r = store_.try_lead();
    if (!r.ok()) {
      if (failure_log_.allow(now)) {
        spdlog::warn("fleet leader: cannot try for the lock: {} ({} more not logged)",
                     r.error().message, failure_log_.take_suppressed());
      }
      return next_;
    }
    if (!r.value()) return next_;  // another collector leads
    leading_ = true;
    permanent_failures_ = 0;
    fleet_.reset();
    rules_.emplace(options_.rules);
    spdlog::info("fleet leader: this collector now decides presence, gaps and rules");
  }
  next_ = now + options_.round_interval;
  if (!store_.still_leading()) {
    lose("the lock's session is gone");
    return next_;
  }
  // Restored before any decision: on gaining the lock, and after a round that failed.
  if (!fleet_ && !restore()) {
    if (!store_.still_leading()) lose("the lock's session is gone");
    return next_;
  }
  round();
  return next_;
}

void FleetLeader::run() {
  while (!stopping_) {
    const auto next = step();
    const auto now = clock_.steady();
    if (next > now) {
      clock_.sleep_for(std::min(std::chrono::duration_cast<std::chrono::milliseconds>(next - now),
                                std::chrono::milliseconds(100)));
    }
  }
  if (leading_) {
    leading_ = false;
    store_.resign();
  }
}

bool FleetLeader::restore() {
  auto devices = store_.restore();
  if (!devices.ok()) {
    if (failure_log_.allow(clock_.steady())) {
      spdlog::warn("fleet leader: cannot restore the fleet's state: {} ({} more not logged)",
                   devices.error().message, failure_log_.take_suppressed());
    }
    return false;
  }
  FleetTracker fleet(options_.fleet);
  for (const DeviceRow& d : devices.value()) {
    // The devices table's epoch is every collector's (the newest stored); the line's newest
    // epoch is what the leaders before us decided on, so a restart still in the feed is seen.
    const uint64_t epoch =
        d.seq_line && !d.seq_line->epochs.empty() ? d.seq_line->epochs.back() : d.epoch;
    fleet.remember(d.site, d.device, epoch, d.presence, d.last_seen_us);
    if (d.seq_line) fleet.restore(*d.seq_line);
  }
  fleet_.emplace(std::move(fleet));
  ++restores_;
  return true;
}

void FleetLeader::lose(const char* why) {
  spdlog::warn("fleet leader: no longer the leader ({}); trying again as a candidate", why);
  leading_ = false;
  fleet_.reset();
  rules_.reset();
  store_.resign();
  next_ = clock_.steady() + options_.try_interval;
}

void FleetLeader::round() {
  // Everything received before `now` has been fed: the round's time.
  const int64_t now =
      clock_.wall_us() -
      std::chrono::duration_cast<std::chrono::microseconds>(options_.settle).count();
  auto taken = store_.take(options_.max_rows, now);
  if (!taken.ok()) {
    store_.abort();
    if (!store_.still_leading()) return lose("the lock's session is gone");
    if (failure_log_.allow(clock_.steady())) {
      spdlog::warn("fleet leader: cannot take the feed: {} ({} more not logged)",
                   taken.error().message, failure_log_.take_suppressed());
    }
    return;
  }
  std::vector<FeedRow>& rows = taken.value();
  FleetCommit derived;
  if (permanent_failures_ >= kPermanentFailureAttempts) {
    // The same rows failed for good this often: their consumption alone is committed (what they
    // would have decided is lost, and said so), so that they cannot stop the fleet's logic.
    if (auto s = store_.commit(derived); !s.ok()) {
      store_.abort();
      if (!store_.still_leading()) lose("the lock's session is gone");
      return;
    }
    spdlog::error("fleet leader: dropped {} feed rows whose decisions the store keeps refusing",
                  rows.size());
    permanent_failures_ = 0;
    return;
  }
  // In the order they were received (the collectors' clocks), then of their ids: a message
  // committed late by one collector still comes before a later one another committed first.
  std::sort(rows.begin(), rows.end(), [](const FeedRow& a, const FeedRow& b) {
    return a.received_us != b.received_us ? a.received_us < b.received_us : a.id < b.id;
  });
  const RuleEngine rules_before = *rules_;  // put back if the round does not commit
  for (const FeedRow& row : rows) {
    switch (row.kind) {
      case FeedRow::Kind::kBatch:
        fleet_->on_batch(row.site, row.device, row.epoch, row.seq, row.received_us, derived.events);
        break;
      case FeedRow::Kind::kStatus: {
        common::DeviceStatus status;
        status.state = row.state;
        fleet_->on_status(row.site, row.device, status, row.received_us, derived.events);
        if (auto p = presence_of(row.state)) derived.presence.emplace_back(row.device, *p);
        break;
      }
      case FeedRow::Kind::kDlq:
        fleet_->on_dlq(row.received_us);
        break;
      case FeedRow::Kind::kReading:
        rules_->observe(row.site, row.device, row.sensor, row.value, row.time_us, derived.events);
        break;
    }
  }
  fleet_->tick(now, derived.events);
  fleet_->take_commit(now, derived.events, derived.seq_lines);
  auto committed = store_.commit(derived);
  if (committed.ok()) {
    permanent_failures_ = 0;
    ++rounds_;
    counters_.rules_tripped = rules_->tripped_count();
    for (const auto& e : derived.events) {
      ++counters_.events_by_kind[static_cast<std::size_t>(e.event.kind) % 16];
    }
    after_commit(derived.events);
    return;
  }
  // Nothing of the round is stored: the rows come again, and the tracker is restored from
  // what is committed (its state moved on with the rows), so no event is raised twice.
  store_.abort();
  fleet_.reset();
  *rules_ = rules_before;
  ++counters_.commit_failures;
  if (!store_.still_leading()) return lose("the lock's session is gone");
  if (!committed.error().transient) ++permanent_failures_;
  if (failure_log_.allow(clock_.steady())) {
    spdlog::error("fleet leader: a round of {} feed rows failed ({}), retrying: {}", rows.size(),
                  committed.error().transient ? "transient" : "not transient",
                  committed.error().message);
  }
}

bool FleetLeader::publish(const std::string& topic, const common::Envelope& envelope) {
  return publish_envelope(*publisher_, topic, envelope, counters_, publish_log_, clock_.steady());
}

void FleetLeader::after_commit(const std::vector<EventItem>& events) {
  if (options_.publish_events && publisher_) {
    for (const auto& e : events) {
      auto topic = common::event_topic(e.event.kind, e.event.site, e.device);
      if (!topic.ok()) {
        ++counters_.encode_failures;
        continue;
      }
      const std::string sender = e.device.empty() ? options_.client_id : e.device;
      if (publish(topic.value(), common::Envelope{common::kSchemaVersion, sender, epoch_,
                                                  ++event_seq_, e.event})) {
        ++counters_.events_published;
      }
    }
  }
  if (webhooks_) {
    for (const auto& e : events) webhooks_->post(e.device, e.event);
  }
}

}  // namespace outpost::collector
