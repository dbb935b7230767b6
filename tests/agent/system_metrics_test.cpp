// Tests of the built-in system readings against a fake /proc and /sys tree.
#include "outpost/agent/system_metrics.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace outpost::agent {
namespace {

namespace fs = std::filesystem;

class SystemMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("outpost_sysmetrics_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_ / "proc");
    fs::create_directories(root_ / "sys/class/thermal/thermal_zone0");
    fs::create_directories(root_ / "sys/class/thermal/thermal_zone1");
    fs::create_directories(root_ / "sys/class/thermal/cooling_device0");
    fs::create_directories(root_ / "data");
    write("proc/stat", "cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 1 2 3\n");
    write("proc/meminfo", "MemTotal:       1000 kB\nMemFree:  10 kB\nMemAvailable:    400 kB\n");
    write("proc/loadavg", "0.50 0.25 0.10 1/100 4242\n");
    write("proc/uptime", "3600.75 7000.00\n");
    write("sys/class/thermal/thermal_zone0/temp", "45500\n");
    write("sys/class/thermal/thermal_zone1/temp", "garbage\n");
  }
  void TearDown() override { fs::remove_all(root_); }
  void write(const std::string& rel, const std::string& text) {
    std::ofstream(root_ / rel) << text;
  }

  std::optional<InputReading> find(const std::vector<InputReading>& rs, const std::string& name) {
    for (const auto& r : rs) {
      if (r.sensor == name) return r;
    }
    return std::nullopt;
  }

  fs::path root_;
};

TEST_F(SystemMetricsTest, ReadsEverySourceWithUnits) {
  SystemMetrics m(root_.string(), {"/data"});
  const auto first = m.sample(42);
  EXPECT_FALSE(find(first, "system.cpu_busy"));  // needs two samples
  EXPECT_EQ(find(first, "system.mem_total")->value, common::Value(int64_t{1000 * 1024}));
  EXPECT_EQ(find(first, "system.mem_available")->value, common::Value(int64_t{400 * 1024}));
  EXPECT_EQ(find(first, "system.mem_available")->unit, "By");
  EXPECT_EQ(find(first, "system.load1")->value, common::Value(0.5));
  EXPECT_EQ(find(first, "system.load15")->value, common::Value(0.1));
  EXPECT_EQ(find(first, "system.uptime")->value, common::Value(3600.0));
  ASSERT_TRUE(find(first, "system.disk_free,path=/data"));
  EXPECT_GT(std::get<int64_t>(find(first, "system.disk_free,path=/data")->value), 0);
  ASSERT_TRUE(find(first, "system.temperature,zone=thermal_zone0"));
  EXPECT_EQ(find(first, "system.temperature,zone=thermal_zone0")->value, common::Value(45.5));
  EXPECT_EQ(find(first, "system.temperature,zone=thermal_zone0")->unit, "Cel");
  EXPECT_FALSE(find(first, "system.temperature,zone=thermal_zone1"));  // unreadable: skipped
  for (const auto& r : first) EXPECT_EQ(r.time_us, 42);

  // 100 more busy jiffies out of 400 more in total: 25 %.
  write("proc/stat", "cpu  150 0 150 900 200 0 0 0 0 0\n");
  const auto second = m.sample(43);
  ASSERT_TRUE(find(second, "system.cpu_busy"));
  EXPECT_EQ(find(second, "system.cpu_busy")->value, common::Value(25.0));
}

TEST_F(SystemMetricsTest, MissingSourcesAreSkippedNotErrors) {
  SystemMetrics m((root_ / "nothing-here").string(), {"/nope"});
  EXPECT_TRUE(m.sample(1).empty());
}

TEST_F(SystemMetricsTest, TheRealMachineGivesReadings) {
  SystemMetrics m("", {"/"});
  const auto r = m.sample(2);  // (CPU needs two samples some jiffies apart: not checked here)
  EXPECT_TRUE(find(r, "system.mem_total"));
  EXPECT_TRUE(find(r, "system.load1"));
  EXPECT_TRUE(find(r, "system.disk_free,path=/"));
}

}  // namespace
}  // namespace outpost::agent
