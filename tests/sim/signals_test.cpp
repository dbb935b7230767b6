// Signal and log generators: plausible ranges, wrapping, bursts, determinism per seed.
#include "outpost/sim/signals.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

namespace outpost::sim {
namespace {

std::vector<common::Value> run(SensorKind kind, uint64_t seed, int n, double step_s,
                               int64_t wrap = 65536) {
  SignalGenerator g(kind, seed, wrap);
  std::vector<common::Value> out;
  for (int i = 0; i < n; ++i) out.push_back(g.next(i * step_s));
  return out;
}

std::vector<double> doubles(const std::vector<common::Value>& values) {
  std::vector<double> out;
  for (const auto& v : values) out.push_back(std::get<double>(v));
  return out;
}

TEST(SignalGenerator, TemperatureFollowsADailyCycleWithinPlausibleBounds) {
  // One reading every 10 minutes for two days.
  const auto t = doubles(run(SensorKind::kTemperature, 3, 288, 600));
  const auto [lo, hi] = std::minmax_element(t.begin(), t.end());
  EXPECT_GE(*lo, -40.0);
  EXPECT_LE(*hi, 85.0);
  EXPECT_GT(*hi - *lo, 1.0) << "a day should swing by more than a degree";
  EXPECT_LT(*hi - *lo, 30.0);
  for (double v : t) EXPECT_NEAR(v * 100, std::round(v * 100), 1e-6) << "0.01 resolution";
}

TEST(SignalGenerator, HumidityStaysBetweenZeroAndHundred) {
  for (uint64_t seed = 0; seed < 20; ++seed) {
    for (double v : doubles(run(SensorKind::kHumidity, seed, 500, 300))) {
      EXPECT_GE(v, 0.0);
      EXPECT_LE(v, 100.0);
    }
  }
}

TEST(SignalGenerator, VibrationIsQuietWithOccasionalBursts) {
  auto v = doubles(run(SensorKind::kVibration, 5, 5000, 0.1));
  EXPECT_GE(*std::min_element(v.begin(), v.end()), 0.0);
  EXPECT_GT(*std::max_element(v.begin(), v.end()), 0.4) << "no burst in 5000 readings";
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  EXPECT_LT(v[v.size() / 2], 0.1) << "the median should be the quiet baseline";
}

TEST(SignalGenerator, CounterIncreasesAndWrapsAtItsLimit) {
  const auto values = run(SensorKind::kCounter, 9, 1000, 1, 1000);
  int wraps = 0;
  int64_t prev = -1;
  for (const auto& v : values) {
    const int64_t c = std::get<int64_t>(v);
    EXPECT_GE(c, 0);
    EXPECT_LT(c, 1000);
    if (prev >= 0 && c < prev) ++wraps;
    prev = c;
  }
  // 1000 steps of 1..20 (mean 10.5) cover ~10,500: about ten wraps of 1000.
  EXPECT_GE(wraps, 8);
  EXPECT_LE(wraps, 12);
}

TEST(SignalGenerator, DoorOpensAndCloses) {
  const auto values = run(SensorKind::kDoor, 2, 2000, 1);
  const auto open = std::count(values.begin(), values.end(), common::Value(true));
  EXPECT_GT(open, 20);
  EXPECT_LT(open, 400) << "a door is mostly closed";
}

TEST(SignalGenerator, StateTakesOnlyKnownNames) {
  std::set<std::string> seen;
  for (const auto& v : run(SensorKind::kState, 4, 5000, 1)) seen.insert(std::get<std::string>(v));
  const std::set<std::string> known = {"idle", "running", "fault", "maintenance"};
  for (const auto& s : seen) EXPECT_TRUE(known.count(s)) << s;
  EXPECT_GE(seen.size(), 3u);
}

TEST(SignalGenerator, SameSeedGivesTheSameValuesAndAnotherSeedDoesNot) {
  for (auto kind : {SensorKind::kTemperature, SensorKind::kHumidity, SensorKind::kVibration,
                    SensorKind::kCounter, SensorKind::kDoor, SensorKind::kState}) {
    EXPECT_EQ(run(kind, 11, 300, 1), run(kind, 11, 300, 1)) << sensor_kind_name(kind);
    EXPECT_NE(run(kind, 11, 300, 1), run(kind, 12, 300, 1)) << sensor_kind_name(kind);
  }
}

TEST(SensorKind, NamesRoundTrip) {
  for (auto kind : {SensorKind::kTemperature, SensorKind::kHumidity, SensorKind::kVibration,
                    SensorKind::kCounter, SensorKind::kDoor, SensorKind::kState}) {
    EXPECT_EQ(sensor_kind_from_name(sensor_kind_name(kind)), kind);
  }
  EXPECT_FALSE(sensor_kind_from_name("pressure"));
}

TEST(LogGenerator, MixesSeveritiesMostlyInfoSomeErrors) {
  LogGenerator g(1);
  std::map<common::Severity, int> counts;
  for (int i = 0; i < 10000; ++i) {
    const auto r = g.next(1000 + i);
    EXPECT_EQ(r.time_us, 1000 + i);
    EXPECT_FALSE(r.message.empty());
    ++counts[r.severity];
  }
  EXPECT_GT(counts[common::Severity::kInfo], counts[common::Severity::kWarning]);
  EXPECT_GT(counts[common::Severity::kWarning], counts[common::Severity::kCritical]);
  EXPECT_GT(counts[common::Severity::kError], 0);
  EXPECT_GT(counts[common::Severity::kCritical], 0);
  EXPECT_GT(counts[common::Severity::kDebug], 0);
}

}  // namespace
}  // namespace outpost::sim
