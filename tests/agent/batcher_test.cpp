// Tests of building message bodies from queued items, and of the reconnect backoff.
#include "outpost/agent/batcher.h"

#include <gtest/gtest.h>

#include <set>

#include "outpost/agent/backoff.h"
#include "outpost/common/codec.h"

namespace outpost::agent {
namespace {

QueueItem reading(std::string sensor, double v, int64_t t = 1000, std::string unit = "") {
  QueueItem item;
  item.sensor = std::move(sensor);
  item.unit = std::move(unit);
  item.value = v;
  item.time_us = t;
  return item;
}

TEST(Batcher, NamesAreSharedThroughTheTableAndUnitsFollowThem) {
  const std::vector<QueueItem> items = {reading("temp", 1, 1, "Cel"), reading("hum", 2, 1),
                                        reading("temp", 3, 2, "Cel"), reading("hum", 4, 2)};
  const auto built = build_batch(Stream::kData, items, {}, true);
  EXPECT_EQ(built.used, 4u);
  const auto& b = std::get<common::ReadingBatch>(built.body);
  EXPECT_TRUE(b.time_synced);
  EXPECT_EQ(b.sensor_names, (std::vector<std::string>{"temp", "hum"}));
  EXPECT_EQ(b.units, (std::vector<std::string>{"Cel"}));  // trailing empty units dropped
  ASSERT_EQ(b.readings.size(), 4u);
  EXPECT_EQ(b.readings[2], (common::Reading{0, 2, 3.0}));
  EXPECT_EQ(b.readings[3], (common::Reading{1, 2, 4.0}));
  // And the body is something the codec accepts.
  // (Its times are microseconds after 1970, below the default floor: the floor is lowered.)
  common::Envelope e{common::kSchemaVersion, "d", 1, 1, built.body};
  common::ValidationOptions validation;
  validation.min_timestamp_us = 0;
  EXPECT_TRUE(common::decode_and_validate(common::encode(e).value(),
                                          {common::PayloadKind::kReadings, "d", 0}, validation)
                  .ok());
}

TEST(Batcher, StopsAtTheReadingLimit) {
  std::vector<QueueItem> items;
  for (int i = 0; i < 30; ++i) items.push_back(reading("s", i));
  BatchLimits limits;
  limits.max_readings = 12;
  EXPECT_EQ(build_batch(Stream::kData, items, limits, false).used, 12u);
  limits.max_readings = 5000;  // the wire's 1000 still applies
  std::vector<QueueItem> many(1500, reading("s", 1));
  EXPECT_EQ(build_batch(Stream::kData, many, limits, false).used, 1000u);
}

TEST(Batcher, StopsBeforeASixtyFifthSensorName) {
  std::vector<QueueItem> items;
  for (int i = 0; i < 100; ++i) items.push_back(reading("sensor_" + std::to_string(i), i));
  const auto built = build_batch(Stream::kData, items, {}, false);
  EXPECT_EQ(built.used, 64u);
  EXPECT_EQ(std::get<common::ReadingBatch>(built.body).sensor_names.size(), 64u);
}

TEST(Batcher, StopsAtTheByteBoundButTakesAtLeastOne) {
  std::vector<QueueItem> items;
  for (int i = 0; i < 50; ++i) {
    QueueItem item = reading("s", 0);
    item.value = std::string(100, 'x');
    items.push_back(item);
  }
  BatchLimits limits;
  limits.max_bytes = 1024;
  const auto built = build_batch(Stream::kData, items, limits, false);
  EXPECT_GE(built.used, 1u);
  EXPECT_LT(built.used, 10u);
  common::Envelope e{common::kSchemaVersion, "d", 1, 1, built.body};
  EXPECT_LE(common::encode(e).value().size(), 1024u);
  limits.max_bytes = 1;
  EXPECT_EQ(build_batch(Stream::kData, items, limits, false).used, 1u);
}

TEST(Batcher, LogRecordsBatchUpToTheirLimit) {
  std::vector<QueueItem> items;
  for (int i = 0; i < 150; ++i) {
    QueueItem item;
    item.stream = Stream::kLogs;
    item.log = {i, common::Severity::kInfo, "line " + std::to_string(i), {}};
    items.push_back(item);
  }
  const auto built = build_batch(Stream::kLogs, items, {}, true);
  EXPECT_EQ(built.used, 100u);
  EXPECT_EQ(std::get<common::LogBatch>(built.body).records[99].message, "line 99");
}

TEST(Backoff, DoublesUpToTheMaximumWithinTheJitterBand) {
  using std::chrono::milliseconds;
  Backoff b(milliseconds(100), milliseconds(1000), 0.3, 42);
  const int64_t bases[] = {100, 200, 400, 800, 1000, 1000};
  for (int64_t base : bases) {
    const auto d = b.next().count();
    EXPECT_GE(d, base * 7 / 10) << base;
    EXPECT_LE(d, base * 13 / 10) << base;
  }
  b.reset();
  EXPECT_LE(b.next().count(), 130);
}

TEST(Backoff, JitterSpreadsAFleet) {
  using std::chrono::milliseconds;
  std::set<int64_t> first_delays;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    first_delays.insert(Backoff(milliseconds(1000), milliseconds(60000), 0.3, seed).next().count());
  }
  EXPECT_GT(first_delays.size(), 15u);
}

}  // namespace
}  // namespace outpost::agent
