// Fleet events (presence, restarts, gaps, DLQ rate) and commit-ack ranges.
#include "outpost/collector/fleet.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <set>

#include "support/fake_sink.h"

namespace outpost::collector {
namespace {

using common::EventKind;
constexpr int64_t kSec = 1'000'000;

std::vector<EventKind> kinds(const std::vector<EventItem>& events) {
  std::vector<EventKind> out;
  for (const auto& e : events) out.push_back(e.event.kind);
  return out;
}

common::DeviceStatus status(common::DeviceState state) {
  common::DeviceStatus s;
  s.state = state;
  return s;
}

TEST(FleetTracker, BirthThenLastWillRaiseOnlineThenOfflineOnce) {
  FleetTracker fleet(FleetOptions{});
  std::vector<EventItem> out;
  fleet.on_status("lab", "gw-1", status(common::DeviceState::kOnline), 1 * kSec, out);
  fleet.on_status("lab", "gw-1", status(common::DeviceState::kOnline), 2 * kSec, out);
  fleet.on_status("lab", "gw-1", status(common::DeviceState::kLost), 3 * kSec, out);
  fleet.on_status("lab", "gw-1", status(common::DeviceState::kOffline), 4 * kSec, out);
  EXPECT_EQ(kinds(out), (std::vector{EventKind::kDeviceOnline, EventKind::kDeviceOffline}));
  EXPECT_EQ(out[1].device, "gw-1");
  EXPECT_EQ(out[1].event.site, "lab");
  EXPECT_EQ(out[1].event.detail, "connection lost (last will)");
  EXPECT_EQ(fleet.presence("gw-1"), Presence::kOffline);
}

TEST(FleetTracker, ANewDevicesBirthAfterItsFirstDataStillAnnouncesItOnce) {
  // In shared mode the birth and the first data may reach the leader in either order.
  FleetTracker fleet(FleetOptions{});
  std::vector<EventItem> out;
  fleet.on_batch("lab", "gw-1", 7, 1, 1 * kSec, out);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(fleet.presence("gw-1"), Presence::kOnline);
  fleet.on_status("lab", "gw-1", status(common::DeviceState::kOnline), 1 * kSec, out);
  fleet.on_batch("lab", "gw-1", 7, 2, 2 * kSec, out);
  fleet.on_status("lab", "gw-1", status(common::DeviceState::kOnline), 3 * kSec, out);
  ASSERT_EQ(kinds(out), (std::vector{EventKind::kDeviceOnline}));
  EXPECT_EQ(out[0].event.detail, "birth");
}

TEST(FleetTracker, ABirthOfADeviceRememberedOnlineRaisesNothing) {
  FleetTracker fleet(FleetOptions{});
  fleet.remember("lab", "gw-1", 7, Presence::kOnline, 0);
  std::vector<EventItem> out;
  fleet.on_batch("lab", "gw-1", 7, 5, kSec, out);
  fleet.on_status("lab", "gw-1", status(common::DeviceState::kOnline), 2 * kSec, out);
  EXPECT_TRUE(out.empty());
}

TEST(FleetTracker, ASilentDeviceBackWithDataIsNotAnnouncedAgainByItsBirth) {
  FleetTracker fleet(FleetOptions{.offline_after_us = 60 * kSec});
  std::vector<EventItem> out;
  fleet.on_status("lab", "gw-1", status(common::DeviceState::kOnline), 0, out);
  fleet.tick(61 * kSec, out);
  fleet.on_batch("lab", "gw-1", 7, 1, 70 * kSec, out);
  fleet.on_status("lab", "gw-1", status(common::DeviceState::kOnline), 71 * kSec, out);
  EXPECT_EQ(kinds(out), (std::vector{EventKind::kDeviceOnline, EventKind::kDeviceOffline,
                                     EventKind::kDeviceOnline}));
}

TEST(FleetTracker, SilentDeviceGoesOfflineAndComesBackWithData) {
  FleetTracker fleet(FleetOptions{.offline_after_us = 60 * kSec});
  std::vector<EventItem> out;
  fleet.on_batch("lab", "gw-1", 7, 1, 0, out);
  fleet.tick(59 * kSec, out);
  EXPECT_TRUE(out.empty());
  fleet.tick(61 * kSec, out);
  ASSERT_EQ(kinds(out), (std::vector{EventKind::kDeviceOffline}));
  EXPECT_EQ(fleet.presence("gw-1"), Presence::kSilent);
  out.clear();
  fleet.on_batch("lab", "gw-1", 7, 2, 70 * kSec, out);
  EXPECT_EQ(kinds(out), (std::vector{EventKind::kDeviceOnline}));
}

TEST(FleetTracker, NewEpochIsARestartButNotForTheFirstEpochSeen) {
  FleetTracker fleet(FleetOptions{});
  std::vector<EventItem> out;
  fleet.on_batch("lab", "gw-1", 7, 1, 0, out);
  EXPECT_TRUE(out.empty());
  fleet.on_batch("lab", "gw-1", 9, 2, kSec, out);
  ASSERT_EQ(kinds(out), (std::vector{EventKind::kDeviceRestarted}));
  EXPECT_EQ(out[0].event.detail, "epoch 7 -> 9");
  out.clear();
  fleet.on_batch("lab", "gw-1", 7, 1, 2 * kSec, out);  // a late message of the old boot
  EXPECT_TRUE(out.empty());
}

TEST(FleetTracker, RememberedEpochMakesACollectorRestartQuiet) {
  FleetTracker fleet(FleetOptions{});
  fleet.remember("lab", "gw-1", 7, Presence::kOnline, 0);
  std::vector<EventItem> out;
  fleet.on_batch("lab", "gw-1", 7, 5, kSec, out);
  EXPECT_TRUE(out.empty());
  fleet.on_batch("lab", "gw-1", 8, 6, kSec, out);
  EXPECT_EQ(kinds(out), (std::vector{EventKind::kDeviceRestarted}));
}

TEST(FleetTracker, HoleFilledWithinTheGraceIsNoGap) {
  FleetTracker fleet(FleetOptions{.gap_grace_us = 10 * kSec});
  std::vector<EventItem> out;
  fleet.on_batch("lab", "gw-1", 7, 1, 0, out);
  fleet.on_batch("lab", "gw-1", 7, 3, 0, out);  // 2 is late (out of order)
  fleet.on_batch("lab", "gw-1", 7, 2, 5 * kSec, out);
  fleet.tick(20 * kSec, out);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(fleet.gaps_reported(), 0u);
}

TEST(FleetTracker, HoleStillOpenAfterTheGraceIsADataGapNamingTheRange) {
  FleetTracker fleet(FleetOptions{.gap_grace_us = 10 * kSec});
  std::vector<EventItem> out;
  fleet.on_batch("lab", "gw-1", 7, 1, 0, out);
  fleet.on_batch("lab", "gw-1", 7, 6, 0, out);     // 2..5 missing
  fleet.on_batch("lab", "gw-1", 7, 4, kSec, out);  // 4 arrives: 2..3 and 5 remain
  fleet.tick(5 * kSec, out);
  EXPECT_TRUE(out.empty());
  fleet.tick(11 * kSec, out);
  ASSERT_EQ(kinds(out), (std::vector{EventKind::kDataGap, EventKind::kDataGap}));
  EXPECT_EQ(out[0].event.detail, "epoch 7: seq 2..3 missing (2 messages)");
  EXPECT_EQ(out[1].event.detail, "epoch 7: seq 5 missing (1 message)");
  EXPECT_EQ(out[0].event.value, 2.0);
  out.clear();
  fleet.tick(30 * kSec, out);
  EXPECT_TRUE(out.empty()) << "a gap is reported once";
}

TEST(FleetTracker, DuplicatesAndOldSeqsOpenNoHole) {
  FleetTracker fleet(FleetOptions{.gap_grace_us = 0});
  std::vector<EventItem> out;
  for (uint64_t seq : {1, 2, 2, 3, 1, 4}) fleet.on_batch("lab", "gw-1", 7, seq, 0, out);
  fleet.tick(kSec, out);
  EXPECT_TRUE(out.empty());
}

// --- Data gaps across late arrivals, epochs and restarts of the collector.

// A FleetTracker with a store behind it: take_commit() after every call, as the storage loop
// does before each commit, and restart() builds a new tracker from what was stored.
struct Tracked {
  FleetOptions options;
  std::map<std::string, SeqLineState> stored;
  std::unique_ptr<FleetTracker> fleet;
  std::vector<EventItem> events;  // every event, in order

  explicit Tracked(FleetOptions o) : options(o) { restart(); }

  void restart() {
    fleet = std::make_unique<FleetTracker>(options);
    for (const auto& [device, line] : stored) {
      fleet->remember(line.site, device, line.epochs.empty() ? 0 : line.epochs.back(),
                      Presence::kOnline, 0);
      fleet->restore(line);
    }
  }
  void commit(int64_t now_us, std::vector<EventItem>& out) {
    std::vector<SeqLineUpdate> lines;
    fleet->take_commit(now_us, out, lines);
    test_support::apply_seq_lines(stored, lines);
    events.insert(events.end(), out.begin(), out.end());
  }
  std::vector<EventItem> batch(uint64_t epoch, uint64_t seq, int64_t now_us,
                               const std::string& device = "gw-1") {
    std::vector<EventItem> out;
    fleet->on_batch("lab", device, epoch, seq, now_us, out);
    commit(now_us, out);
    return out;
  }
  std::vector<EventItem> tick(int64_t now_us) {
    std::vector<EventItem> out;
    fleet->tick(now_us, out);
    commit(now_us, out);
    return out;
  }
};

std::vector<std::string> details(const std::vector<EventItem>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(e.event.detail);
  return out;
}

TEST(FleetTracker, ReportedGapThatFillsLaterIsResolvedPartByPart) {
  Tracked t(FleetOptions{.gap_grace_us = 10 * kSec});
  t.batch(7, 1, 0);
  t.batch(7, 6, 0);  // 2..5 missing
  ASSERT_EQ(details(t.tick(11 * kSec)),
            (std::vector<std::string>{"epoch 7: seq 2..5 missing (4 messages)"}));
  // A late re-send of 3 and 4 in one transaction: one event for both.
  std::vector<EventItem> out;
  t.fleet->on_batch("lab", "gw-1", 7, 4, 12 * kSec, out);
  t.fleet->on_batch("lab", "gw-1", 7, 3, 12 * kSec, out);
  t.commit(12 * kSec, out);
  ASSERT_EQ(kinds(out), (std::vector{EventKind::kDataGapResolved}));
  EXPECT_EQ(out[0].event.detail, "seq 3..4 arrived after it was reported missing (2 messages)");
  EXPECT_EQ(out[0].event.value, 2.0);
  EXPECT_EQ(out[0].device, "gw-1");
  EXPECT_EQ(details(t.batch(7, 2, 13 * kSec)),
            (std::vector<std::string>{"seq 2 arrived after it was reported missing (1 message)"}));
  const auto holes = t.fleet->holes("gw-1");
  ASSERT_EQ(holes.size(), 1u);
  EXPECT_EQ(holes[0].first, 5u);
  EXPECT_EQ(holes[0].last, 5u);
  EXPECT_NE(holes[0].reported_us, 0);
  EXPECT_TRUE(t.tick(60 * kSec).empty()) << "the rest of a reported hole is not reported again";
  EXPECT_TRUE(t.batch(7, 3, 61 * kSec).empty()) << "a duplicate resolves nothing";
}

TEST(FleetTracker, LossAtTheStartOfANewDevicesLineIsAGap) {
  Tracked t(FleetOptions{.gap_grace_us = 10 * kSec});
  t.batch(7, 4, 0);  // seq 1..3 never came
  EXPECT_EQ(details(t.tick(10 * kSec)),
            (std::vector<std::string>{"epoch 7: seq 1..3 missing (3 messages)"}));
}

TEST(FleetTracker, DeviceRememberedWithoutALineIsJudgedFromItsNextSeq) {
  FleetTracker fleet(FleetOptions{.gap_grace_us = 0});
  fleet.remember("lab", "gw-1", 7, Presence::kOnline, 0);  // stored before lines were
  std::vector<EventItem> out;
  fleet.on_batch("lab", "gw-1", 7, 500, kSec, out);
  fleet.tick(2 * kSec, out);
  EXPECT_TRUE(out.empty());
}

TEST(FleetTracker, SeqCarriesAcrossBootsSoLossAtTheStartOfAnEpochIsAGap) {
  Tracked t(FleetOptions{.gap_grace_us = 10 * kSec});
  for (uint64_t seq = 1; seq <= 3; ++seq) t.batch(7, seq, 0);
  // The device rebooted: epoch 9 goes on from seq 4, but 4..6 were lost on the way.
  EXPECT_EQ(kinds(t.batch(9, 7, kSec)), (std::vector{EventKind::kDeviceRestarted}));
  // Seq 4 was sealed before the reboot and is re-sent under the old epoch: it fills the hole,
  // and is no restart.
  EXPECT_TRUE(t.batch(7, 4, 2 * kSec).empty());
  EXPECT_EQ(details(t.tick(12 * kSec)),
            (std::vector<std::string>{"epoch 9: seq 5..6 missing (2 messages)"}));
}

TEST(FleetTracker, CounterResetReportsTheOldLinesHolesAndStartsANewLineAtOne) {
  Tracked t(FleetOptions{.gap_grace_us = 10 * kSec});
  for (uint64_t seq : {1, 2, 5, 6}) t.batch(7, seq, 0);  // 3..4 open
  // A new epoch at seq 2, neither above the line nor in a hole: the device lost its counter.
  const auto out = t.batch(9, 2, kSec);
  EXPECT_EQ(kinds(out), (std::vector{EventKind::kDataGap, EventKind::kDeviceRestarted}));
  EXPECT_EQ(out[0].event.detail, "epoch 7: seq 3..4 missing (2 messages)");
  EXPECT_TRUE(t.batch(7, 4, 2 * kSec).empty()) << "the old line is judged no more";
  EXPECT_EQ(details(t.tick(12 * kSec)),
            (std::vector<std::string>{"epoch 9: seq 1 missing (1 message)"}));
}

TEST(FleetTracker, HoleOpenAtACollectorRestartIsReportedWithinTheGraceFromWhenItWasSeen) {
  Tracked t(FleetOptions{.gap_grace_us = 10 * kSec});
  t.batch(7, 1, 0);
  t.batch(7, 5, 2 * kSec);  // 2..4 missing since 2 s
  t.restart();              // killed before the grace ran out
  EXPECT_TRUE(t.tick(11 * kSec).empty());
  EXPECT_TRUE(t.batch(7, 6, 11 * kSec).empty());
  EXPECT_EQ(details(t.tick(12 * kSec)),
            (std::vector<std::string>{"epoch 7: seq 2..4 missing (3 messages)"}));
}

TEST(FleetTracker, HoleWhoseGraceRanOutWhileTheCollectorWasDownIsReportedAtTheFirstTick) {
  Tracked t(FleetOptions{.gap_grace_us = 10 * kSec});
  t.batch(7, 1, 0);
  t.batch(7, 3, 0);
  t.restart();
  EXPECT_EQ(details(t.tick(60 * kSec)),
            (std::vector<std::string>{"epoch 7: seq 2 missing (1 message)"}));
}

TEST(FleetTracker, BatchesStoredBeforeACollectorRestartAreNoGapAfterIt) {
  // The field case: re-sends of old batches and newer queued ones arrive together after the
  // restart; what was stored before it must not look missing.
  Tracked t(FleetOptions{.gap_grace_us = 10 * kSec});
  for (uint64_t seq = 1; seq <= 606; ++seq) t.batch(7, seq, 0);
  t.restart();
  for (uint64_t seq = 560; seq <= 566; ++seq) t.batch(7, seq, kSec);  // re-sends
  for (uint64_t seq = 607; seq <= 620; ++seq) t.batch(7, seq, kSec);
  EXPECT_TRUE(t.tick(60 * kSec).empty());
  EXPECT_TRUE(t.fleet->holes("gw-1").empty());
}

TEST(FleetTracker, ReportedGapFilledAfterACollectorRestartIsResolved) {
  Tracked t(FleetOptions{.gap_grace_us = 10 * kSec});
  t.batch(7, 1, 0);
  t.batch(7, 4, 0);
  ASSERT_EQ(kinds(t.tick(10 * kSec)), (std::vector{EventKind::kDataGap}));
  t.restart();
  EXPECT_EQ(details(t.batch(7, 2, 20 * kSec)),
            (std::vector<std::string>{"seq 2 arrived after it was reported missing (1 message)"}));
  EXPECT_TRUE(t.tick(30 * kSec).empty());
}

TEST(FleetTracker, HolesAreBoundedAndTheOldestIsReportedAsItGoes) {
  Tracked t(FleetOptions{.gap_grace_us = 60 * kSec, .max_holes_per_epoch = 3});
  for (uint64_t seq : {1, 3, 5, 7}) t.batch(7, seq, 0);  // holes 2, 4, 6
  const auto out = t.batch(7, 9, kSec);                  // hole 8: one too many
  EXPECT_EQ(details(out), (std::vector<std::string>{"epoch 7: seq 2 missing (1 message)"}));
  const auto holes = t.fleet->holes("gw-1");
  ASSERT_EQ(holes.size(), 3u);
  EXPECT_EQ(holes.front().first, 4u);
  EXPECT_EQ(t.stored.at("gw-1").holes.size(), 3u) << "the stored line drops it too";
}

// Never a gap for a batch that has arrived, and every batch that has not is reported, whatever
// the arrival order, the duplicates, the late re-sends and the collector restarts (seeded).
TEST(FleetTracker, ReportsExactlyTheMissingBatchesOverRandomArrivalOrdersAndRestarts) {
  constexpr uint64_t kSeqs = 300;
  constexpr int64_t kGrace = 10 * kSec;
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    std::mt19937_64 rng(seed);
    Tracked t(FleetOptions{.gap_grace_us = kGrace, .max_holes_per_epoch = 1000});
    // Which seqs are lost for good, and which arrive only late (after the grace).
    std::set<uint64_t> lost, late;
    for (uint64_t seq = 1; seq < kSeqs; ++seq) {  // the last one always arrives
      const auto r = rng() % 100;
      if (r < 8) lost.insert(seq);
      if (r >= 8 && r < 14) late.insert(seq);
    }
    std::vector<uint64_t> order;
    for (uint64_t seq = 1; seq <= kSeqs; ++seq) {
      if (!lost.count(seq) && !late.count(seq)) order.push_back(seq);
      const uint64_t again = 1 + rng() % seq;  // a duplicate of an earlier one, now and then
      if (rng() % 10 == 0 && !lost.count(again) && !late.count(again)) order.push_back(again);
    }
    // Local reordering: swap neighbours within a few places.
    for (std::size_t i = 0; i + 1 < order.size(); ++i) {
      if (rng() % 4 == 0) std::swap(order[i], order[std::min(order.size() - 1, i + rng() % 5)]);
    }
    std::vector<uint64_t> late_order(late.begin(), late.end());
    std::shuffle(late_order.begin(), late_order.end(), rng);
    // An epoch change half-way (the counter carries on), like an agent's reboot.
    const uint64_t reboot_at = kSeqs / 2;
    std::set<uint64_t> arrived;
    std::map<uint64_t, int> reported;  // seq -> reported minus resolved
    int64_t now = 0;
    auto judge = [&](const std::vector<EventItem>& events) {
      for (const auto& e : events) {
        if (e.event.kind != EventKind::kDataGap && e.event.kind != EventKind::kDataGapResolved) {
          continue;  // the reboot's device_restarted
        }
        uint64_t first = 0, last = 0;
        const std::string& d = e.event.detail;
        const auto at = d.find("seq ");
        ASSERT_NE(at, std::string::npos) << d;
        const int n = std::sscanf(d.c_str() + at, "seq %lu..%lu", &first, &last);
        if (n == 1) last = first;
        for (uint64_t s = first; s <= last; ++s) {
          if (e.event.kind == EventKind::kDataGap) {
            ASSERT_FALSE(arrived.count(s))
                << "seed " << seed << ": seq " << s << " reported missing after it arrived";
            ++reported[s];
          } else if (e.event.kind == EventKind::kDataGapResolved) {
            ASSERT_TRUE(arrived.count(s)) << "seed " << seed;
            --reported[s];
          }
        }
      }
    };
    auto deliver = [&](uint64_t seq) {
      now += 50'000;
      arrived.insert(seq);
      judge(t.batch(seq >= reboot_at ? 9 : 7, seq, now));
      if (rng() % 7 == 0) judge(t.tick(now));
      if (rng() % 40 == 0) t.restart();  // kill -9 of the collector
    };
    for (uint64_t seq : order) deliver(seq);
    now += kGrace + kSec;
    judge(t.tick(now));
    for (uint64_t seq : late_order) deliver(seq);
    now += kGrace + kSec;
    judge(t.tick(now));
    if (HasFatalFailure()) return;
    std::set<uint64_t> still_reported;
    for (const auto& [seq, n] : reported) {
      ASSERT_GE(n, 0) << "seed " << seed << ": seq " << seq << " resolved more than reported";
      ASSERT_LE(n, 1) << "seed " << seed << ": seq " << seq << " reported twice";
      if (n == 1) still_reported.insert(seq);
    }
    ASSERT_EQ(still_reported, lost) << "seed " << seed;
  }
}

TEST(FleetTracker, DlqRateRaisesOnceAndReArmsWhenTheRateComesDown) {
  FleetTracker fleet(FleetOptions{.dlq_rate_per_minute = 10});
  std::vector<EventItem> out;
  for (int i = 0; i < 11; ++i) fleet.on_dlq(i * kSec);
  fleet.tick(11 * kSec, out);
  ASSERT_EQ(kinds(out), (std::vector{EventKind::kDlqRate}));
  EXPECT_EQ(out[0].device, "");
  EXPECT_EQ(out[0].event.value, 11.0);
  EXPECT_EQ(out[0].event.threshold, 10.0);
  fleet.on_dlq(12 * kSec);
  fleet.tick(12 * kSec, out);
  EXPECT_EQ(out.size(), 1u);
  fleet.tick(200 * kSec, out);  // window empty: re-armed
  for (int i = 0; i < 11; ++i) fleet.on_dlq(200 * kSec);
  fleet.tick(201 * kSec, out);
  EXPECT_EQ(out.size(), 2u);
}

BatchItem batch(std::string device, uint64_t epoch, uint64_t seq) {
  BatchItem b;
  b.site = "lab";
  b.envelope.device_id = std::move(device);
  b.envelope.epoch = epoch;
  b.envelope.seq = seq;
  return b;
}

TEST(BuildAcks, MergesSequencesIntoRangesPerDeviceAndEpoch) {
  std::vector<BatchItem> batches = {batch("a", 1, 5), batch("a", 1, 3), batch("a", 1, 4),
                                    batch("a", 1, 9), batch("b", 2, 1), batch("a", 2, 10),
                                    batch("a", 1, 4)};
  auto acks = build_acks(batches);
  ASSERT_EQ(acks.size(), 2u);
  EXPECT_EQ(acks[0].device, "a");
  EXPECT_EQ(acks[0].site, "lab");
  EXPECT_EQ(acks[0].ack.committed,
            (std::vector<common::SeqRange>{{1, 3, 5}, {1, 9, 9}, {2, 10, 10}}));
  EXPECT_EQ(acks[1].device, "b");
  EXPECT_EQ(acks[1].ack.committed, (std::vector<common::SeqRange>{{2, 1, 1}}));
}

TEST(BuildAcks, SplitsBeyondTheRangeLimit) {
  std::vector<BatchItem> batches;
  for (uint64_t i = 0; i < 100; ++i) batches.push_back(batch("a", 1, i * 2));  // no neighbours
  auto acks = build_acks(batches);
  ASSERT_EQ(acks.size(), 2u);
  EXPECT_EQ(acks[0].ack.committed.size(), 64u);
  EXPECT_EQ(acks[1].ack.committed.size(), 36u);
}

}  // namespace
}  // namespace outpost::collector
