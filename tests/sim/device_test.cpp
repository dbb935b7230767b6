// The device model: batching, numbering across reboots, faults applied to what it emits.
#include "outpost/sim/device.h"

#include <gtest/gtest.h>

#include <set>

#include "outpost/common/codec.h"

namespace outpost::sim {
namespace {

constexpr int64_t kNow = 1'790'000'000'000'000;

DeviceSettings settings(uint32_t batch_size = 10) {
  DeviceSettings s;
  s.sensors = {{"temp", SensorKind::kTemperature, 1, "", 65536},
               {"count", SensorKind::kCounter, 1, "", 100},
               {"door", SensorKind::kDoor, 1, "", 65536},
               {"mode", SensorKind::kState, 1, "", 65536},
               {"vib", SensorKind::kVibration, 3, "", 65536}};
  s.batch_size = batch_size;
  s.logs_per_minute = 0;
  return s;
}

common::Envelope decode_valid(const Outgoing& o, std::string_view device = "dev-1") {
  auto r = common::decode_and_validate(*o.bytes, {o.topic_kind, device, kNow}, {});
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().detail);
  return r.ok() ? r.value() : common::Envelope{};
}

std::vector<Outgoing> run_ticks(DeviceModel& d, int ticks, int first = 0) {
  std::vector<Outgoing> out;
  for (int i = first; i < first + ticks; ++i) d.tick(kNow + i * 1000, i * 1.0, out);
  return out;
}

TEST(DeviceModel, FullBatchesDecodeAsValidWithTheConfiguredSize) {
  const auto s = settings(14);
  DeviceModel d({"lab", "dev-1", 0}, s, 1, "dev-2");
  d.boot(kNow);
  EXPECT_EQ(d.sensor_count(), 7u);
  const auto out = run_ticks(d, 10);  // 70 readings: 5 batches of 14
  ASSERT_EQ(out.size(), 5u);
  uint64_t expected_seq = 1;
  for (const auto& o : out) {
    EXPECT_EQ(o.role, SendRole::kValid);
    EXPECT_EQ(o.readings, 14u);
    EXPECT_EQ(o.seq, expected_seq++);
    const auto env = decode_valid(o);
    EXPECT_EQ(env.seq, o.seq);
    EXPECT_EQ(env.epoch, d.epoch());
    const auto& b = std::get<common::ReadingBatch>(env.body);
    EXPECT_EQ(b.readings.size(), 14u);
    EXPECT_EQ(b.sensor_names[6], "vib.2");
    EXPECT_TRUE(b.time_synced);
  }
}

TEST(DeviceModel, SeqKeepsIncreasingAcrossRebootsWhileTheEpochChanges) {
  const auto s = settings(7);
  DeviceModel d({"lab", "dev-1", 0}, s, 1, "dev-2");
  d.boot(kNow);
  const uint64_t first_epoch = d.epoch();
  auto before = run_ticks(d, 3);
  d.boot(kNow + 5000);
  EXPECT_NE(d.epoch(), first_epoch);
  auto after = run_ticks(d, 3, 3);
  ASSERT_EQ(before.size(), 3u);
  ASSERT_EQ(after.size(), 3u);
  EXPECT_EQ(before.back().seq, 3u);
  EXPECT_EQ(after.front().seq, 4u);
  EXPECT_EQ(after.front().epoch, d.epoch());
}

TEST(DeviceModel, SameSeedSameBytesApartFromTime) {
  const auto s = settings();
  DeviceModel a({"lab", "dev-1", 3}, s, 42, "x"), b({"lab", "dev-1", 3}, s, 42, "x");
  a.boot(kNow);
  b.boot(kNow);
  EXPECT_EQ(a.epoch(), b.epoch());
  const auto x = run_ticks(a, 20), y = run_ticks(b, 20);
  ASSERT_EQ(x.size(), y.size());
  for (std::size_t i = 0; i < x.size(); ++i) EXPECT_EQ(*x[i].bytes, *y[i].bytes);
}

TEST(DeviceModel, MalformedMessagesTakeSeqsFromTheirOwnRange) {
  auto s = settings();
  s.faults.malformed_fraction = 1.0;
  s.faults.malformed_kinds = {MalformedKind::kIdentityMismatch};
  DeviceModel d({"lab", "dev-1", 0}, s, 1, "dev-2");
  d.boot(kNow);
  const auto out = run_ticks(d, 20);
  std::set<uint64_t> valid, malformed;
  for (const auto& o : out) {
    if (o.role == SendRole::kMalformed) {
      EXPECT_GE(o.seq, kMalformedSeqBase);
      auto r = common::decode_and_validate(*o.bytes, {o.topic_kind, "dev-1", kNow}, {});
      ASSERT_FALSE(r.ok());
      EXPECT_EQ(r.error().reason, common::Reason::kIdentityMismatch);
      malformed.insert(o.seq);
    } else {
      EXPECT_LT(o.seq, kMalformedSeqBase);
      valid.insert(o.seq);
    }
  }
  EXPECT_EQ(valid.size(), malformed.size()) << "one malformed message per valid batch";
  EXPECT_EQ(*valid.rbegin(), valid.size()) << "valid seqs stay 1..n without holes";
}

TEST(DeviceModel, DuplicatesRepeatTheBytesAndOutOfOrderSendsTheNextFirst) {
  auto s = settings();
  s.faults.duplicate_fraction = 1.0;
  DeviceModel d({"lab", "dev-1", 0}, s, 1, "dev-2");
  d.boot(kNow);
  auto out = run_ticks(d, 10);
  ASSERT_GE(out.size(), 2u);
  EXPECT_EQ(out[1].role, SendRole::kDuplicate);
  EXPECT_EQ(out[1].seq, out[0].seq);
  EXPECT_EQ(*out[1].bytes, *out[0].bytes);

  auto t = settings();
  t.faults.out_of_order_fraction = 1.0;
  DeviceModel e({"lab", "dev-1", 0}, t, 1, "dev-2");
  e.boot(kNow);
  out = run_ticks(e, 20);
  e.flush(kNow, out);
  std::vector<uint64_t> seqs;
  for (const auto& o : out) seqs.push_back(o.seq);
  // Every batch held back, released after the next: 2 1 4 3 ...
  ASSERT_GE(seqs.size(), 4u);
  EXPECT_EQ(seqs[0], 2u);
  EXPECT_EQ(seqs[1], 1u);
  EXPECT_EQ(seqs[2], 4u);
  EXPECT_EQ(seqs[3], 3u);
  std::sort(seqs.begin(), seqs.end());
  for (std::size_t i = 0; i < seqs.size(); ++i) EXPECT_EQ(seqs[i], i + 1);
}

TEST(DeviceModel, FlushSealsPartialBatchesAndLogs) {
  auto s = settings(1000);
  s.logs_per_minute = 600;  // ten a second
  DeviceModel d({"lab", "dev-1", 0}, s, 1, "dev-2");
  d.boot(kNow);
  std::vector<Outgoing> out;
  for (int i = 0; i < 5; ++i) d.tick(kNow, i * 1.0, out);
  EXPECT_TRUE(std::all_of(out.begin(), out.end(), [](const Outgoing& o) {
    return o.topic_kind == common::PayloadKind::kLogs;
  }));
  d.flush(kNow, out);
  uint32_t readings = 0, logs = 0;
  for (const auto& o : out) {
    readings += o.readings;
    logs += o.logs;
    decode_valid(o);
  }
  EXPECT_EQ(readings, 35u);
  EXPECT_GE(logs, 40u);
}

TEST(DeviceModel, SkewedClockStampsShiftedTimesAndSaysUnsynced) {
  auto s = settings(7);
  s.faults.clock_skew_us = 600'000'000;
  DeviceModel d({"lab", "dev-1", 0}, s, 1, "dev-2");
  d.boot(kNow);
  ASSERT_NE(d.skew_us(), 0);
  EXPECT_FALSE(d.time_synced());
  const auto out = run_ticks(d, 1);
  ASSERT_EQ(out.size(), 1u);
  const auto env = decode_valid(out[0]);
  const auto& b = std::get<common::ReadingBatch>(env.body);
  EXPECT_FALSE(b.time_synced);
  EXPECT_EQ(b.readings[0].time_us, kNow + d.skew_us());
}

TEST(DeviceModel, StatusIsRetainedWithSeqZeroAndTheState) {
  DeviceModel d({"lab", "dev-1", 0}, settings(), 1, "dev-2");
  d.boot(kNow);
  const Outgoing o = d.status(common::DeviceState::kLost, kNow);
  EXPECT_TRUE(o.retained);
  EXPECT_EQ(o.role, SendRole::kStatus);
  const auto env = decode_valid(o);
  EXPECT_EQ(env.seq, 0u);
  EXPECT_EQ(std::get<common::DeviceStatus>(env.body).state, common::DeviceState::kLost);
}

}  // namespace
}  // namespace outpost::sim
