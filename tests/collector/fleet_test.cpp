// Fleet events (presence, restarts, gaps, DLQ rate) and commit-ack ranges.
#include "outpost/collector/fleet.h"

#include <gtest/gtest.h>

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
