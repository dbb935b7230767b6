// The shared-mode leader over fakes: candidacy, restore, rounds, failures, failover.
#include "outpost/collector/fleet_leader.h"

#include <gtest/gtest.h>

#include <chrono>

#include "support/fake_collector_ports.h"
#include "support/fake_fleet_store.h"

namespace outpost::collector {
namespace {

using namespace std::chrono_literals;
using common::DeviceState;
using common::EventKind;
using test_support::FakeCollectorPublisher;
using test_support::FakeEventForwarder;
using test_support::FakeFleetDb;
using test_support::FakeFleetStore;
using test_support::FakeStorageClock;

constexpr int64_t t0 = FakeStorageClock::kStartWallUs;
constexpr int64_t kSecond = 1'000'000;

FleetLeaderOptions options() {
  FleetLeaderOptions o;
  o.fleet.offline_after_us = 30 * kSecond;
  o.fleet.gap_grace_us = 10 * kSecond;
  o.fleet.dlq_rate_per_minute = 1;
  o.settle = 0ms;
  ThresholdRule hot;
  hot.name = "hot";
  hot.sensor = "temp";
  hot.threshold = 30;
  hot.hysteresis = 2;
  o.rules.push_back(hot);
  return o;
}

// Steps `leader` on `clock` for `d` (the clock jumps to each step's due time).
void run_for(FleetLeader& leader, FakeStorageClock& clock, std::chrono::milliseconds d) {
  const auto end = clock.steady() + d;
  while (clock.steady() < end) {
    const auto next = leader.step();
    clock.advance_to(std::min(next, end));
  }
}

struct Leader {
  FakeFleetStore store;
  Counters counters;
  FakeCollectorPublisher publisher;
  FakeEventForwarder webhooks;
  FleetLeader leader;
  Leader(FakeFleetDb& db, FakeStorageClock& clock, FleetLeaderOptions o = options())
      : store(db), leader(std::move(o), store, clock, counters, &webhooks) {
    leader.attach_publisher(publisher);
  }
};

TEST(FleetLeader, DecidesOnlyWhileItHoldsTheLock) {
  FakeFleetDb db;
  FakeStorageClock clock;
  FakeFleetStore other(db);
  ASSERT_TRUE(other.try_lead().value());
  Leader a(db, clock);
  db.status("d1", DeviceState::kOnline, t0 - 1);
  run_for(a.leader, clock, 3100ms);
  EXPECT_FALSE(a.leader.leading());
  EXPECT_GE(a.store.tries, 3);
  EXPECT_LE(a.store.tries, 5);  // about once a second, not in a busy loop
  EXPECT_EQ(a.store.restores, 0);
  EXPECT_EQ(a.store.takes, 0);
  EXPECT_EQ(db.feed.size(), 1u);

  other.resign();
  run_for(a.leader, clock, 1100ms);
  EXPECT_TRUE(a.leader.leading());
  EXPECT_EQ(a.store.restores, 1);
  EXPECT_TRUE(db.feed.empty());
  EXPECT_EQ(db.kinds(), std::vector<EventKind>{EventKind::kDeviceOnline});
  ASSERT_EQ(a.publisher.sent.size(), 1u);
  EXPECT_EQ(a.webhooks.posted.size(), 1u);
}

TEST(FleetLeader, AnUnreachableDatabaseIsRetriedAsACandidate) {
  FakeFleetDb db;
  FakeStorageClock clock;
  Leader a(db, clock);
  a.store.down = true;
  run_for(a.leader, clock, 2100ms);
  EXPECT_FALSE(a.leader.leading());
  a.store.down = false;
  run_for(a.leader, clock, 1100ms);
  EXPECT_TRUE(a.leader.leading());
}

TEST(FleetLeader, RestoresTheCommittedStateBeforeDeciding) {
  FakeFleetDb db;
  FakeStorageClock clock;
  DeviceRow d;
  d.device = "d1";
  d.site = "lab";
  d.presence = Presence::kOnline;
  d.epoch = 99;  // a newer epoch another collector stored: the line's is what was decided
  d.last_seen_us = t0;
  d.seq_line = SeqLineState{"d1", "lab", 5, {7}, {}, {}};
  db.remember(d);
  db.batch("d1", 7, 6, t0 + 1);
  db.batch("d1", 7, 8, t0 + 2);
  Leader a(db, clock);
  run_for(a.leader, clock, 11s);
  // Not online again (it was), no hole 1..5 (the line knew them), no restart (same epoch):
  // only seq 7, missing past the grace.
  ASSERT_EQ(db.kinds(), std::vector<EventKind>{EventKind::kDataGap});
  EXPECT_NE(db.events[0].event.detail.find("seq 7 missing (1 message)"), std::string::npos)
      << db.events[0].event.detail;
  EXPECT_EQ(db.devices["d1"].seq_line->max_seq, 8u);
}

// The rows of a scenario, as the sinks of several collectors write them (ids in the order of
// commits, received times in the order the broker delivered).
struct Msg {
  FeedRow::Kind kind;
  std::string device;
  uint64_t epoch = 0, seq = 0;
  DeviceState state = DeviceState::kUnspecified;
  int64_t at_us = 0;
};

std::vector<Msg> scenario() {
  std::vector<Msg> m;
  auto batch = [&](std::string d, uint64_t e, uint64_t s, int64_t at) {
    m.push_back({FeedRow::Kind::kBatch, std::move(d), e, s, DeviceState::kUnspecified, t0 + at});
  };
  auto status = [&](std::string d, DeviceState st, int64_t at) {
    m.push_back({FeedRow::Kind::kStatus, std::move(d), 0, 0, st, t0 + at});
  };
  status("d1", DeviceState::kOnline, 1000);
  status("d2", DeviceState::kOnline, 2000);
  for (uint64_t s : {1, 2, 4, 5}) batch("d1", 1, s, 10'000 + static_cast<int64_t>(s) * 1000);
  batch("d2", 1, 1, 20'000);
  batch("d2", 1, 2, 300'000);
  batch("d2", 2, 3, 400'000);  // restarted
  m.push_back({FeedRow::Kind::kDlq, "", 0, 0, DeviceState::kUnspecified, t0 + 500'000});
  m.push_back({FeedRow::Kind::kDlq, "", 0, 0, DeviceState::kUnspecified, t0 + 600'000});
  batch("d1", 1, 3, 12 * kSecond);  // after its gap was reported: resolved
  status("d2", DeviceState::kLost, 13 * kSecond);
  batch("d1", 1, 6, 14 * kSecond);
  return m;
}

struct Seen {
  EventKind kind;
  std::string device;
  std::string detail;
  int64_t time_us;
  bool operator==(const Seen&) const = default;
};

std::vector<Seen> seen(const std::vector<EventItem>& events) {
  std::vector<Seen> out;
  for (const auto& e : events) {
    if (e.event.kind == EventKind::kThresholdAbove) continue;  // rules: not the tracker's
    out.push_back({e.event.kind, e.device, e.event.detail, e.event.time_us});
  }
  return out;
}

TEST(FleetLeader, RowsInOrderRaiseWhatOneTrackerFedDirectlyRaises) {
  const auto msgs = scenario();
  // One FleetTracker fed every message as it arrives, ticked at the leader's round times.
  FleetTracker direct(options().fleet);
  std::vector<EventItem> expected;
  std::vector<SeqLineUpdate> lines;
  std::size_t fed = 0;
  for (int64_t k = 0; k <= 250; ++k) {  // rounds every 200 ms for 50 s
    const int64_t now = t0 + k * 200'000;
    for (; fed < msgs.size() && msgs[fed].at_us < now; ++fed) {
      const Msg& m = msgs[fed];
      if (m.kind == FeedRow::Kind::kBatch) {
        direct.on_batch("lab", m.device, m.epoch, m.seq, m.at_us, expected);
      } else if (m.kind == FeedRow::Kind::kStatus) {
        common::DeviceStatus st;
        st.state = m.state;
        direct.on_status("lab", m.device, st, m.at_us, expected);
      } else {
        direct.on_dlq(m.at_us);
      }
    }
    direct.tick(now, expected);
    direct.take_commit(now, expected, lines);
  }

  FakeFleetDb db;
  FakeStorageClock clock;
  for (const Msg& m : msgs) {
    if (m.kind == FeedRow::Kind::kBatch) db.batch(m.device, m.epoch, m.seq, m.at_us);
    if (m.kind == FeedRow::Kind::kStatus) db.status(m.device, m.state, m.at_us);
    if (m.kind == FeedRow::Kind::kDlq) db.dlq(m.at_us);
  }
  Leader a(db, clock);
  run_for(a.leader, clock, 50'100ms);
  EXPECT_EQ(seen(db.events), seen(expected));
  // The scenario raises each kind of fleet event.
  for (EventKind k :
       {EventKind::kDeviceOnline, EventKind::kDeviceRestarted, EventKind::kDataGap,
        EventKind::kDataGapResolved, EventKind::kDeviceOffline, EventKind::kDlqRate}) {
    EXPECT_GE(db.count(k), 1u) << common::event_kind_name(k);
  }
  EXPECT_EQ(db.devices["d2"].presence, Presence::kLost);
  EXPECT_EQ(a.publisher.sent.size(), db.events.size());
}

TEST(FleetLeader, AFailedCommitTakesTheSameRowsAgainAndRaisesNothingTwice) {
  FakeFleetDb db;
  FakeStorageClock clock;
  Leader a(db, clock);
  db.status("d1", DeviceState::kOnline, t0 - 3);
  db.batch("d1", 1, 2, t0 - 2);  // seq 1 never comes
  db.reading("d1", "temp", 35, t0 - 2, t0 - 2);
  a.store.fail_transient = 2;
  run_for(a.leader, clock, 300ms);  // two rounds, both fail
  EXPECT_TRUE(db.events.empty());
  EXPECT_TRUE(a.publisher.sent.empty());
  EXPECT_EQ(db.feed.size(), 3u);
  EXPECT_EQ(a.store.aborts, 2);
  run_for(a.leader, clock, 200ms);
  EXPECT_EQ(a.store.restores, 3);  // each failed round's state was thrown away
  EXPECT_EQ(db.kinds(),
            (std::vector<EventKind>{EventKind::kDeviceOnline, EventKind::kThresholdAbove}));
  EXPECT_TRUE(db.feed.empty());
  // The rule stays tripped across the failure: a second hot reading raises nothing.
  db.reading("d1", "temp", 36, t0 + 1, t0 + 1);
  run_for(a.leader, clock, 11s);
  EXPECT_EQ(db.count(EventKind::kThresholdAbove), 1u);
  EXPECT_EQ(db.count(EventKind::kDeviceOnline), 1u);
  EXPECT_EQ(db.count(EventKind::kDataGap), 1u);
  EXPECT_EQ(a.publisher.sent.size(), db.events.size());
  EXPECT_EQ(a.counters.commit_failures.load(), 2u);
}

TEST(FleetLeader, RowsThatFailForGoodAreDroppedAfterTheAttempts) {
  FakeFleetDb db;
  FakeStorageClock clock;
  Leader a(db, clock);
  db.status("d1", DeviceState::kOnline, t0 - 1);
  a.store.fail_permanent = FleetLeader::kPermanentFailureAttempts;
  run_for(a.leader, clock, 700ms);  // three failures, then the drop
  EXPECT_TRUE(db.feed.empty());
  EXPECT_TRUE(db.events.empty());
  db.status("d2", DeviceState::kOnline, t0 + 800'000);
  run_for(a.leader, clock, 400ms);
  EXPECT_EQ(db.kinds(), std::vector<EventKind>{EventKind::kDeviceOnline});
  EXPECT_EQ(db.events[0].device, "d2");
}

TEST(FleetLeader, ALostLockStopsItAndRegainingItRestoresAgain) {
  FakeFleetDb db;
  FakeStorageClock clock;
  Leader a(db, clock);
  run_for(a.leader, clock, 100ms);
  ASSERT_TRUE(a.leader.leading());
  EXPECT_EQ(a.store.restores, 1);
  a.store.lose_lock();
  db.status("d1", DeviceState::kOnline, t0 + 150'000);
  run_for(a.leader, clock, 200ms);
  EXPECT_FALSE(a.leader.leading());
  EXPECT_EQ(db.feed.size(), 1u);  // left for whoever leads next
  run_for(a.leader, clock, 1200ms);
  EXPECT_TRUE(a.leader.leading());
  EXPECT_EQ(a.store.restores, 2);
  EXPECT_EQ(db.kinds(), std::vector<EventKind>{EventKind::kDeviceOnline});
}

TEST(FleetLeader, ASessionThatDiesInARoundLeavesItsRowsToTheNextLeader) {
  FakeFleetDb db;
  FakeStorageClock clock;
  Leader a(db, clock);
  Leader b(db, clock);
  a.leader.step();
  ASSERT_TRUE(a.leader.leading());
  b.leader.step();
  ASSERT_FALSE(b.leader.leading());
  db.status("d1", DeviceState::kOnline, t0 + 1);
  db.batch("d1", 1, 1, t0 + 2);
  db.batch("d1", 1, 3, t0 + 3);
  a.store.die_in_commit = true;
  clock.advance(200ms);
  a.leader.step();
  EXPECT_FALSE(a.leader.leading());
  EXPECT_EQ(db.feed.size(), 3u);
  clock.advance(1s);
  b.leader.step();
  a.leader.step();
  EXPECT_TRUE(b.leader.leading());
  EXPECT_FALSE(a.leader.leading());
  EXPECT_TRUE(db.feed.empty());
  for (int i = 0; i < 60; ++i) {  // past the grace of seq 2's hole
    clock.advance(200ms);
    a.leader.step();
    b.leader.step();
  }
  EXPECT_EQ(db.kinds(), (std::vector<EventKind>{EventKind::kDeviceOnline, EventKind::kDataGap}));
  EXPECT_TRUE(a.publisher.sent.empty());
  EXPECT_EQ(b.publisher.sent.size(), 2u);
}

TEST(FleetLeader, ANeighbourFromAnotherCollectorWithinTheGraceIsNoGap) {
  FakeFleetDb db;
  FakeStorageClock clock;
  Leader a(db, clock);
  // Collector A commits seq 1, 2 and 4; seq 3 went to collector B, whose commit lands 3 s later.
  db.batch("d1", 1, 1, t0 + 1000);
  db.batch("d1", 1, 2, t0 + 2000);
  db.batch("d1", 1, 4, t0 + 4000);
  run_for(a.leader, clock, 3s);
  EXPECT_EQ(db.devices["d1"].seq_line->holes.size(), 1u);  // seq 3, open
  db.batch("d1", 1, 3, t0 + 3000);
  // A gap really made: seq 6 is never sent.
  db.batch("d1", 1, 5, t0 + 3 * kSecond);
  db.batch("d1", 1, 7, t0 + 3 * kSecond + 1000);
  run_for(a.leader, clock, 20s);
  ASSERT_EQ(db.kinds(), std::vector<EventKind>{EventKind::kDataGap});
  EXPECT_NE(db.events[0].event.detail.find("seq 6 missing"), std::string::npos);
}

TEST(FleetLeader, TakesOnlyRowsOlderThanTheSettleTime) {
  FakeFleetDb db;
  FakeStorageClock clock;
  FleetLeaderOptions o = options();
  o.settle = 700ms;
  Leader a(db, clock, o);
  db.status("d1", DeviceState::kOnline, t0 + 100'000);
  run_for(a.leader, clock, 500ms);
  EXPECT_EQ(db.feed.size(), 1u);  // received 0.1 s in: not settled at 0.5 s
  run_for(a.leader, clock, 700ms);
  EXPECT_TRUE(db.feed.empty());
  EXPECT_EQ(db.kinds(), std::vector<EventKind>{EventKind::kDeviceOnline});
}

// A clock that stops the leader once the feed is consumed (run() sleeps on it between steps).
class StopWhenConsumed final : public StorageClock {
 public:
  StopWhenConsumed(FakeStorageClock& clock, FakeFleetDb& db) : clock_(clock), db_(db) {}
  FleetLeader* leader = nullptr;
  int64_t wall_us() override { return clock_.wall_us(); }
  std::chrono::steady_clock::time_point steady() override { return clock_.steady(); }
  void sleep_for(std::chrono::milliseconds d) override {
    clock_.sleep_for(d);
    if (db_.feed.empty()) leader->stop();
  }

 private:
  FakeStorageClock& clock_;
  FakeFleetDb& db_;
};

TEST(FleetLeader, RunStepsUntilStoppedThenResigns) {
  FakeFleetDb db;
  FakeStorageClock fake;
  StopWhenConsumed clock(fake, db);
  FakeFleetStore store(db);
  Counters counters;
  FakeCollectorPublisher publisher;
  publisher.fail = true;  // counted as skipped, never retried
  FleetLeader leader(options(), store, clock, counters, nullptr);
  leader.attach_publisher(publisher);
  clock.leader = &leader;
  db.status("d1", DeviceState::kOnline, t0 - 1);
  leader.run();
  EXPECT_TRUE(db.feed.empty());
  EXPECT_EQ(db.kinds(), std::vector<EventKind>{EventKind::kDeviceOnline});
  EXPECT_EQ(counters.publish_skipped.load(), 1u);
  EXPECT_EQ(db.lock_holder, nullptr);  // resigned
  for (auto d : fake.sleeps()) EXPECT_LE(d, 100ms);
}

}  // namespace
}  // namespace outpost::collector
