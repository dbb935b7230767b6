// Fault injection: rates for a seed within tolerance, kinds, timelines, and malformed payloads
// that the collector's decode_and_validate rejects with the reason each kind promises.
#include "outpost/sim/faults.h"

#include <gtest/gtest.h>

#include <map>

#include "outpost/common/codec.h"
#include "outpost/common/limits.h"
#include "outpost/sim/device.h"

namespace outpost::sim {
namespace {

constexpr int64_t kNow = 1'790'000'000'000'000;

common::Envelope valid_envelope() {
  common::ReadingBatch b;
  b.time_synced = true;
  b.sensor_names = {"temp", "humidity"};
  b.readings = {{0, kNow, 21.5}, {1, kNow, 40.1}, {0, kNow + 1000, 21.6}};
  return common::Envelope{common::kSchemaVersion, "dev-1", 77, kMalformedSeqBase + 5, b};
}

TEST(BatchFaults, RatesForASeedMatchTheFractionsWithinTolerance) {
  FaultSettings s;
  s.malformed_fraction = 0.10;
  s.duplicate_fraction = 0.05;
  s.out_of_order_fraction = 0.02;
  Rng rng(1);
  const int n = 50000;
  int malformed = 0, duplicate = 0, ooo = 0;
  std::map<MalformedKind, int> kinds;
  for (int i = 0; i < n; ++i) {
    const BatchFaults f = draw_batch_faults(s, rng);
    if (f.malformed) {
      ++malformed;
      ++kinds[*f.malformed];
    }
    duplicate += f.duplicate;
    ooo += f.out_of_order;
  }
  EXPECT_NEAR(malformed / double(n), 0.10, 0.01);
  EXPECT_NEAR(duplicate / double(n), 0.05, 0.006);
  EXPECT_NEAR(ooo / double(n), 0.02, 0.004);
  ASSERT_EQ(kinds.size(), kAllMalformedKinds.size()) << "every kind is chosen";
  for (const auto& [kind, count] : kinds) {
    EXPECT_NEAR(count / double(malformed), 1.0 / kAllMalformedKinds.size(), 0.02)
        << malformed_kind_name(kind);
  }
}

TEST(BatchFaults, ZeroFractionsNeverFireAndOnlyListedKindsAreChosen) {
  FaultSettings s;
  Rng rng(3);
  for (int i = 0; i < 10000; ++i) {
    const BatchFaults f = draw_batch_faults(s, rng);
    EXPECT_FALSE(f.malformed || f.duplicate || f.out_of_order);
  }
  s.malformed_fraction = 1;
  s.malformed_kinds = {MalformedKind::kNan};
  for (int i = 0; i < 1000; ++i)
    EXPECT_EQ(draw_batch_faults(s, rng).malformed, MalformedKind::kNan);
}

TEST(BatchFaults, SameSeedSameDecisions) {
  FaultSettings s;
  s.malformed_fraction = s.duplicate_fraction = s.out_of_order_fraction = 0.3;
  Rng a(9), b(9);
  for (int i = 0; i < 1000; ++i) {
    const auto x = draw_batch_faults(s, a);
    const auto y = draw_batch_faults(s, b);
    EXPECT_EQ(x.malformed, y.malformed);
    EXPECT_EQ(x.duplicate, y.duplicate);
    EXPECT_EQ(x.out_of_order, y.out_of_order);
  }
}

TEST(MalformedPayload, EveryKindIsRejectedWithTheReasonItPromises) {
  const common::ValidationOptions options;
  for (auto kind : kAllMalformedKinds) {
    for (uint64_t seed = 0; seed < 40; ++seed) {
      Rng rng(seed);
      const MalformedMessage m = make_malformed(kind, valid_envelope(), "dev-2", kNow, rng);
      ASSERT_FALSE(m.bytes.empty()) << malformed_kind_name(kind);
      const common::Expectation expect{m.topic_kind, "dev-1", kNow};
      auto r = common::decode_and_validate(m.bytes, expect, options);
      ASSERT_FALSE(r.ok()) << malformed_kind_name(kind) << " seed " << seed;
      EXPECT_EQ(r.error().reason, expected_reason(kind))
          << malformed_kind_name(kind) << " seed " << seed << ": " << r.error().detail;
    }
  }
}

TEST(MalformedPayload, OversizedIsBeyondTheLimitAndMismatchNamesTheOtherDevice) {
  Rng rng(1);
  EXPECT_GT(
      make_malformed(MalformedKind::kOversized, valid_envelope(), "x", kNow, rng).bytes.size(),
      common::kMaxPayloadBytes);
  const auto m =
      make_malformed(MalformedKind::kIdentityMismatch, valid_envelope(), "dev-2", kNow, rng);
  auto decoded = common::decode(m.bytes);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded.value().device_id, "dev-2");
  EXPECT_EQ(decoded.value().seq, valid_envelope().seq);
}

TEST(MalformedKinds, ParsesListsAllAndNamesAnUnknownKind) {
  auto two = parse_malformed_kinds("truncated,nan");
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(two.value(), (std::vector{MalformedKind::kTruncated, MalformedKind::kNan}));
  auto all = parse_malformed_kinds("all");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all.value().size(), kAllMalformedKinds.size());
  auto bad = parse_malformed_kinds("truncated,bogus");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("\"bogus\""), std::string::npos);
  for (auto kind : kAllMalformedKinds) {
    EXPECT_EQ(malformed_kind_from_name(malformed_kind_name(kind)), kind);
  }
}

TEST(DeviceTimeline, CutAndOfflineFractionsHoldAndNothingFollowsSilence) {
  FaultSettings s;
  s.cut_fraction = 0.1;
  s.offline_fraction = 0.05;
  s.reboot_every_us = 20'000'000;
  s.storm_every_us = 10'000'000;
  s.storm_fraction = 0.5;
  const int64_t duration = 60'000'000;
  int cuts = 0, offline = 0, reboots = 0, storms = 0;
  const int n = 4000;
  for (uint32_t i = 0; i < n; ++i) {
    const auto events = plan_device_events(s, duration, 5, i);
    EXPECT_EQ(events, plan_device_events(s, duration, 5, i)) << "deterministic";
    for (std::size_t k = 0; k < events.size(); ++k) {
      EXPECT_GE(events[k].at_us, 0);
      EXPECT_LT(events[k].at_us, duration);
      if (k > 0) {
        EXPECT_LE(events[k - 1].at_us, events[k].at_us);
      }
      const bool last = k + 1 == events.size();
      switch (events[k].kind) {
        case DeviceEventKind::kCut:
          ++cuts;
          EXPECT_TRUE(last);
          break;
        case DeviceEventKind::kOffline:
          ++offline;
          EXPECT_TRUE(last);
          break;
        case DeviceEventKind::kReboot:
          ++reboots;
          break;
        case DeviceEventKind::kStorm:
          ++storms;
          break;
      }
    }
  }
  EXPECT_NEAR(cuts / double(n), 0.10, 0.015);
  EXPECT_NEAR(offline / double(n), 0.05, 0.012);
  // About 3 reboots (60 s / 20 s) and 2.5 storms (5 instants x 0.5) per device, minus what
  // falls after a cut or stop.
  EXPECT_NEAR(reboots / double(n), 2.8, 0.3);
  EXPECT_NEAR(storms / double(n), 2.4, 0.3);
}

TEST(Burst, WindowsRepeatEveryPeriod) {
  FaultSettings s;
  s.burst_every_us = 10'000'000;
  s.burst_length_us = 2'000'000;
  EXPECT_FALSE(in_burst(s, 500'000));
  EXPECT_TRUE(in_burst(s, 10'500'000));
  EXPECT_FALSE(in_burst(s, 12'500'000));
  EXPECT_TRUE(in_burst(s, 21'999'999));
  s.burst_every_us = 0;
  EXPECT_FALSE(in_burst(s, 10'500'000));
}

}  // namespace
}  // namespace outpost::sim
