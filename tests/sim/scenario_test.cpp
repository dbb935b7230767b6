// Scenario files: the shipped ones load, flags' checks hold, broken files name file:line:key.
#include "outpost/sim/scenario.h"

#include <gtest/gtest.h>

namespace outpost::sim {
namespace {

std::string scenario_path(const std::string& name) {
  return std::string(OUTPOST_SOURCE_DIR) + "/firmware-sim/scenarios/" + name;
}

uint32_t sensors_of_kind(const Scenario& s, SensorKind kind) {
  uint32_t n = 0;
  for (const auto& spec : s.device.sensors) n += spec.kind == kind ? spec.count : 0;
  return n;
}

TEST(Scenario, ShippedScenariosLoadAndPassTheChecks) {
  for (const char* name : {"small-office.toml", "factory-floor.toml", "flaky-cellular.toml"}) {
    auto s = load_scenario(scenario_path(name));
    ASSERT_TRUE(s.ok()) << s.error().to_string();
    EXPECT_TRUE(check_scenario(s.value()).ok()) << name;
  }
}

TEST(Scenario, FactoryFloorHasTwoThousandVibrationSensors) {
  auto s = load_scenario(scenario_path("factory-floor.toml"));
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  EXPECT_EQ(s.value().devices * sensors_of_kind(s.value(), SensorKind::kVibration), 2000u);
  EXPECT_EQ(s.value().device_id(0), "press-0001");
}

TEST(Scenario, KeysMapOntoTheStruct) {
  auto s = parse_scenario(R"(
[run]
duration = "5s"
seed = 99
mode = "agent"
[fleet]
site = "lab"
devices = 3
period = "250ms"
batch_size = 20
qos = 0
reconnect_max = "2s"
[sensors.c]
kind = "counter"
wrap = 10
count = 2
[faults]
malformed_fraction = 0.25
malformed_kinds = ["nan", "oversized"]
clock_skew = "1m"
[agents]
count = 4
bin = "/usr/bin/outpost-agent"
delivery = "end_to_end"
)",
                          "t.toml");
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  const Scenario& v = s.value();
  EXPECT_EQ(v.duration_us, 5'000'000);
  EXPECT_EQ(v.seed, 99u);
  EXPECT_EQ(v.mode, DeviceMode::kAgent);
  EXPECT_EQ(v.period_us, 250'000);
  EXPECT_EQ(v.qos, 0);
  EXPECT_EQ(v.reconnect_max_us, 2'000'000);
  ASSERT_EQ(v.device.sensors.size(), 1u) << "listing sensors replaces the defaults";
  EXPECT_EQ(v.device.sensors[0].wrap, 10);
  EXPECT_EQ(v.device.sensors[0].count, 2u);
  EXPECT_EQ(v.device.faults.malformed_kinds,
            (std::vector{MalformedKind::kNan, MalformedKind::kOversized}));
  EXPECT_EQ(v.device.faults.clock_skew_us, 60'000'000);
  EXPECT_EQ(v.agents, 4u);
  EXPECT_EQ(v.agent_delivery, "end_to_end");
  EXPECT_EQ(v.device_id(11), "lab-0012");
  EXPECT_TRUE(check_scenario(v).ok());
}

TEST(Scenario, BrokenValueNamesFileLineAndKey) {
  auto s = parse_scenario("[fleet]\ndevices = 3\nperiod = \"fast\"\n", "broken.toml");
  ASSERT_FALSE(s.ok());
  const std::string text = s.error().to_string();
  EXPECT_NE(text.find("broken.toml:3"), std::string::npos) << text;
  EXPECT_NE(text.find("fleet.period"), std::string::npos) << text;
}

TEST(Scenario, UnknownKeysAndKindsAreErrorsWithTheirLine) {
  auto typo = parse_scenario("[faults]\n\nduplicate_fracton = 0.1\n", "typo.toml");
  ASSERT_FALSE(typo.ok());
  EXPECT_NE(typo.error().to_string().find("typo.toml:3"), std::string::npos)
      << typo.error().to_string();
  EXPECT_NE(typo.error().to_string().find("faults.duplicate_fracton"), std::string::npos);

  auto kind = parse_scenario("[sensors.x]\nkind = \"pressure\"\n", "kind.toml");
  ASSERT_FALSE(kind.ok());
  EXPECT_NE(kind.error().to_string().find("kind.toml:2"), std::string::npos);
  EXPECT_NE(kind.error().to_string().find("sensors.x.kind"), std::string::npos);

  auto malformed = parse_scenario("[faults]\nmalformed_kinds = [\"nan\", \"weird\"]\n", "m.toml");
  ASSERT_FALSE(malformed.ok());
  EXPECT_NE(malformed.error().to_string().find("m.toml:2"), std::string::npos);
  EXPECT_NE(malformed.error().to_string().find("weird"), std::string::npos);
}

TEST(Scenario, FractionOutOfRangeAndTooManySensorsAreRefused) {
  auto f = parse_scenario("[faults]\ncut_fraction = 1.5\n", "f.toml");
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.error().to_string().find("faults.cut_fraction"), std::string::npos);
  auto n = parse_scenario(
      "[sensors.v]\nkind = \"vibration\"\ncount = 40\n[sensors.w]\n"
      "kind = \"vibration\"\ncount = 40\n",
      "n.toml");
  ASSERT_FALSE(n.ok());
  EXPECT_NE(n.error().to_string().find("at most 64"), std::string::npos) << n.error().to_string();
}

TEST(Scenario, ChecksCatchWhatNoSingleKeyCan) {
  Scenario s;
  s.device.sensors = default_sensors();
  EXPECT_TRUE(check_scenario(s).ok());
  s.mode = DeviceMode::kAgent;
  EXPECT_FALSE(check_scenario(s).ok()) << "agent mode without an agent binary";
  s.mode = DeviceMode::kDirect;
  s.site = "events";
  EXPECT_FALSE(check_scenario(s).ok());
  s.site = "ok";
  s.connections = 2;
  s.device.faults.cut_fraction = 0.1;
  EXPECT_FALSE(check_scenario(s).ok()) << "cuts need one connection per device";
  s.connections = 0;
  s.processes = s.devices + 1;
  EXPECT_FALSE(check_scenario(s).ok()) << "more shard processes than devices";
  s.processes = 2;
  EXPECT_TRUE(check_scenario(s).ok());
  s.agent_delivery = "exactly_once";
  EXPECT_FALSE(check_scenario(s).ok()) << "no such delivery mode";
  s.agent_delivery = "end_to_end";
  EXPECT_TRUE(check_scenario(s).ok());
}

}  // namespace
}  // namespace outpost::sim
