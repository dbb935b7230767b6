// Tests of threshold rules with hysteresis and of reading them from [rules.<name>] tables.
#include "outpost/collector/rules.h"

#include <gtest/gtest.h>

namespace outpost::collector {
namespace {

using common::EventKind;

ThresholdRule above(std::string sensor, double threshold, double hysteresis = 0,
                    std::string device = "") {
  return ThresholdRule{"hot",     std::move(sensor), std::move(device), RuleDirection::kAbove,
                       threshold, hysteresis};
}

ThresholdRule below(std::string sensor, double threshold, double hysteresis = 0) {
  return ThresholdRule{"cold", std::move(sensor), "", RuleDirection::kBelow, threshold, hysteresis};
}

// Feeds `values` for one device and returns the kinds raised, in order.
std::vector<EventKind> feed(RuleEngine& engine, std::string_view device,
                            std::initializer_list<double> values,
                            std::string_view sensor = "temp") {
  std::vector<EventKind> kinds;
  int64_t t = 1'700'000'000'000'000;
  for (double v : values) {
    std::vector<RaisedEvent> out;
    engine.observe("plant-a", device, sensor, v, t++, out);
    for (const auto& e : out) kinds.push_back(e.event.kind);
  }
  return kinds;
}

TEST(RuleEngine, AboveRuleTripsOnceWhileValueStaysHigh) {
  RuleEngine engine({above("temp", 30)});
  EXPECT_EQ(feed(engine, "gw-1", {20, 29.9, 30, 30.5, 35, 40, 31}),
            std::vector<EventKind>{EventKind::kThresholdAbove});
  EXPECT_EQ(engine.tripped_count(), 1u);
}

TEST(RuleEngine, TripEventCarriesReadingRuleAndSite) {
  RuleEngine engine({above("temp", 30, 2)});
  std::vector<RaisedEvent> out;
  engine.observe("plant-a", "gw-1", "temp", 31.5, 1234, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].device, "gw-1");
  const common::Event& e = out[0].event;
  EXPECT_EQ(e.kind, EventKind::kThresholdAbove);
  EXPECT_EQ(e.site, "plant-a");
  EXPECT_EQ(e.sensor, "temp");
  EXPECT_EQ(e.value, 31.5);
  EXPECT_EQ(e.threshold, 30);
  EXPECT_EQ(e.time_us, 1234);
  EXPECT_EQ(e.detail.rfind("rule hot: ", 0), 0u) << e.detail;
}

TEST(RuleEngine, NoisyValueAroundThresholdDoesNotFlapWithHysteresis) {
  RuleEngine engine({above("temp", 30, 2)});
  // Hovers around 30 but never reaches the clear level 28 after tripping.
  EXPECT_EQ(feed(engine, "gw-1", {29.5, 30.2, 29.8, 30.4, 28.5, 30.1, 29.0, 28.01, 30.3}),
            std::vector<EventKind>{EventKind::kThresholdAbove});
}

TEST(RuleEngine, WithoutHysteresisEachCrossingIsAnEvent) {
  RuleEngine engine({above("temp", 30)});
  EXPECT_EQ(feed(engine, "gw-1", {31, 30, 31}),
            (std::vector<EventKind>{EventKind::kThresholdAbove, EventKind::kThresholdCleared,
                                    EventKind::kThresholdAbove}));
}

TEST(RuleEngine, ClearsOnceBackPastThresholdMinusHysteresis) {
  RuleEngine engine({above("temp", 30, 2)});
  std::vector<RaisedEvent> out;
  engine.observe("s", "gw-1", "temp", 31, 1, out);
  engine.observe("s", "gw-1", "temp", 28.5, 2, out);
  ASSERT_EQ(out.size(), 1u);
  engine.observe("s", "gw-1", "temp", 28, 3, out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].event.kind, EventKind::kThresholdCleared);
  EXPECT_EQ(out[1].event.value, 28);
  EXPECT_EQ(out[1].event.threshold, 30);
  EXPECT_EQ(out[1].event.detail.rfind("rule hot: ", 0), 0u) << out[1].event.detail;
  EXPECT_EQ(engine.tripped_count(), 0u);
  // Cleared means it can trip again.
  EXPECT_EQ(feed(engine, "gw-1", {27, 31}), std::vector<EventKind>{EventKind::kThresholdAbove});
}

TEST(RuleEngine, BelowRuleTripsAndClearsAboveThresholdPlusHysteresis) {
  RuleEngine engine({below("battery", 3.3, 0.2)});
  EXPECT_EQ(feed(engine, "gw-1", {3.6, 3.3, 3.2, 3.1, 3.4, 3.49, 3.2, 3.5, 3.6}, "battery"),
            (std::vector<EventKind>{EventKind::kThresholdBelow, EventKind::kThresholdCleared}));
}

TEST(RuleEngine, StateIsPerDevice) {
  RuleEngine engine({above("temp", 30, 1)});
  EXPECT_EQ(feed(engine, "gw-1", {31}), std::vector<EventKind>{EventKind::kThresholdAbove});
  // gw-2 has its own state: its first high reading trips for it too.
  EXPECT_EQ(feed(engine, "gw-2", {25, 32}), std::vector<EventKind>{EventKind::kThresholdAbove});
  EXPECT_EQ(engine.tripped_count(), 2u);
  // Clearing gw-2 leaves gw-1 tripped.
  EXPECT_EQ(feed(engine, "gw-2", {20}), std::vector<EventKind>{EventKind::kThresholdCleared});
  EXPECT_TRUE(feed(engine, "gw-1", {31}).empty());
  EXPECT_EQ(engine.tripped_count(), 1u);
}

TEST(RuleEngine, DeviceFilterIgnoresOtherDevices) {
  RuleEngine engine({above("temp", 30, 0, "gw-7")});
  EXPECT_TRUE(feed(engine, "gw-1", {50}).empty());
  EXPECT_EQ(feed(engine, "gw-7", {50}), std::vector<EventKind>{EventKind::kThresholdAbove});
}

TEST(RuleEngine, OtherSensorsAndNaNRaiseNothing) {
  RuleEngine engine({above("temp", 30)});
  EXPECT_TRUE(feed(engine, "gw-1", {100}, "humidity").empty());
  EXPECT_TRUE(feed(engine, "gw-1", {std::nan("")}).empty());
  EXPECT_EQ(engine.tripped_count(), 0u);
}

TEST(RuleEngine, SeveralRulesOnOneSensorEachRaise) {
  RuleEngine engine({above("temp", 30), below("temp", 0)});
  EXPECT_EQ(engine.rule_count(), 2u);
  EXPECT_EQ(feed(engine, "gw-1", {35, -5}),
            (std::vector<EventKind>{EventKind::kThresholdAbove, EventKind::kThresholdCleared,
                                    EventKind::kThresholdBelow}));
}

// --- config ---

struct Parsed {
  std::vector<ThresholdRule> rules;
  std::string error;  // finish()'s first error, "" if none
  std::vector<common::ConfigError> errors;
};

Parsed parse(std::string_view text) {
  auto r = common::ConfigReader::parse_string(text, "collector.toml");
  EXPECT_TRUE(r.ok());
  Parsed p;
  if (!r.ok()) return p;
  auto& reader = r.value();
  read_rules(reader, p.rules);
  auto s = reader.finish();
  if (!s.ok()) p.error = s.error().to_string();
  p.errors = reader.errors();
  return p;
}

TEST(ReadRules, ReadsAboveAndBelowRulesInFileOrder) {
  auto p = parse(R"(
[rules.hot_room]
sensor = "temp"
above = 30
hysteresis = 1.5

[rules.low_battery]
sensor = "battery"
device = "gw-7"
below = 3.3
)");
  EXPECT_EQ(p.error, "");
  ASSERT_EQ(p.rules.size(), 2u);
  EXPECT_EQ(p.rules[0].name, "hot_room");
  EXPECT_EQ(p.rules[0].sensor, "temp");
  EXPECT_EQ(p.rules[0].device, "");
  EXPECT_EQ(p.rules[0].direction, RuleDirection::kAbove);
  EXPECT_EQ(p.rules[0].threshold, 30);
  EXPECT_EQ(p.rules[0].hysteresis, 1.5);
  EXPECT_EQ(p.rules[1].name, "low_battery");
  EXPECT_EQ(p.rules[1].device, "gw-7");
  EXPECT_EQ(p.rules[1].direction, RuleDirection::kBelow);
  EXPECT_EQ(p.rules[1].threshold, 3.3);
  EXPECT_EQ(p.rules[1].hysteresis, 0);
}

TEST(ReadRules, NoRulesTableIsNoRules) {
  auto p = parse("[other]\n");
  EXPECT_TRUE(p.rules.empty());
}

TEST(ReadRules, AboveAndBelowBothSetIsAnErrorNamingTheKey) {
  auto p = parse("[rules.x]\nsensor = \"temp\"\nabove = 30\nbelow = 10\n");
  EXPECT_TRUE(p.rules.empty());
  EXPECT_EQ(p.error.rfind("collector.toml:4:", 0), 0u) << p.error;
  EXPECT_NE(p.error.find("rules.x.below"), std::string::npos) << p.error;
  EXPECT_NE(p.error.find("not both"), std::string::npos) << p.error;
}

TEST(ReadRules, NeitherAboveNorBelowIsAnError) {
  auto p = parse("[rules.x]\nsensor = \"temp\"\n");
  EXPECT_TRUE(p.rules.empty());
  EXPECT_NE(p.error.find("rules.x: missing the threshold"), std::string::npos) << p.error;
}

TEST(ReadRules, MissingSensorIsAnErrorNamingTheTableAndKey) {
  auto p = parse("\n[rules.x]\nabove = 30\n");
  EXPECT_TRUE(p.rules.empty());
  EXPECT_EQ(p.error.rfind("collector.toml:2:", 0), 0u) << p.error;
  EXPECT_NE(p.error.find("rules.x: missing required key \"sensor\""), std::string::npos) << p.error;
}

TEST(ReadRules, NegativeHysteresisIsAnErrorNamingTheKey) {
  auto p = parse("[rules.x]\nsensor = \"temp\"\nabove = 30\nhysteresis = -1\n");
  EXPECT_TRUE(p.rules.empty());
  EXPECT_EQ(p.error.rfind("collector.toml:4:", 0), 0u) << p.error;
  EXPECT_NE(p.error.find("rules.x.hysteresis: must be >= 0"), std::string::npos) << p.error;
}

TEST(ReadRules, UnknownKeyInARuleIsReported) {
  auto p = parse("[rules.x]\nsensor = \"temp\"\nabove = 30\nhysterisis = 1\n");
  EXPECT_NE(p.error.find("rules.x.hysterisis: unknown key"), std::string::npos) << p.error;
}

TEST(ReadRules, WrongTypeIsAnErrorNamingTheKey) {
  auto p = parse("[rules.x]\nsensor = \"temp\"\nabove = \"thirty\"\n");
  EXPECT_TRUE(p.rules.empty());
  EXPECT_NE(p.error.find("rules.x.above: expected a number"), std::string::npos) << p.error;
}

TEST(ReadRules, OneBadRuleDoesNotDropTheGoodOnesFromTheErrorList) {
  auto p = parse("[rules.good]\nsensor = \"a\"\nabove = 1\n[rules.bad]\nabove = 1\n");
  ASSERT_EQ(p.rules.size(), 1u);
  EXPECT_EQ(p.rules[0].name, "good");
  ASSERT_EQ(p.errors.size(), 1u);
  EXPECT_EQ(p.errors[0].key, "rules.bad");
}

}  // namespace
}  // namespace outpost::collector
