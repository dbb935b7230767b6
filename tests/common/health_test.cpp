// Health answers: a heartbeat older than its bound fails /healthz, a failing ready check
// fails /readyz only, /status carries every field as JSON.
#include "outpost/common/health.h"

#include <gtest/gtest.h>

namespace outpost::common {
namespace {

using namespace std::chrono_literals;
using Clock = Heartbeat::Clock;

TEST(Heartbeat, FreshStaleAndNeverBeaten) {
  Heartbeat beat;
  const auto t0 = Clock::now();
  EXPECT_FALSE(heartbeat_check("loop", beat, t0).ok);
  EXPECT_EQ(heartbeat_check("loop", beat, t0).detail, "has not run yet");
  beat.beat(t0);
  EXPECT_TRUE(heartbeat_check("loop", beat, t0 + 4s).ok);
  const auto stale = heartbeat_check("loop", beat, t0 + 6s);
  EXPECT_FALSE(stale.ok);
  EXPECT_EQ(stale.detail, "no turn for 6.0 s (stuck?)");
  beat.beat(t0 + 6s);
  EXPECT_TRUE(heartbeat_check("loop", beat, t0 + 7s).ok);
}

HealthReport report() {
  HealthReport r;
  r.program = "outpost-test";
  r.version = "1.2.3";
  r.uptime_s = 12.5;
  r.live = {{"main_loop", true, ""}};
  r.ready = {{"store", true, ""}, {"inputs", true, ""}};
  r.queue_depth = 42;
  r.connected = true;
  r.last_commit_unix_us = 1'764'633'600'000'000;  // 2025-12-02T00:00:00Z
  return r;
}

TEST(Health, AllChecksHold) {
  EXPECT_EQ(healthz(report()).status, 200);
  EXPECT_EQ(healthz(report()).body, "ok\n");
  EXPECT_EQ(readyz(report()).status, 200);
}

TEST(Health, NotReadyIsStillHealthy) {
  auto r = report();
  r.ready[1] = {"inputs", false, "not bound"};
  EXPECT_EQ(healthz(r).status, 200);
  const auto ready = readyz(r);
  EXPECT_EQ(ready.status, 503);
  EXPECT_EQ(ready.body, "inputs: not bound\n");
}

TEST(Health, StuckLoopIsNeitherHealthyNorReady) {
  auto r = report();
  r.live[0] = {"main_loop", false, "no turn for 9.0 s (stuck?)"};
  EXPECT_EQ(healthz(r).status, 503);
  EXPECT_EQ(healthz(r).body, "main_loop: no turn for 9.0 s (stuck?)\n");
  EXPECT_EQ(readyz(r).status, 503);
}

TEST(Health, StatusIsJsonWithEveryField) {
  auto r = report();
  r.ready[0] = {"store", false, "cannot \"read\""};
  const auto s = status_json(r);
  EXPECT_EQ(s.status, 200);
  EXPECT_EQ(s.content_type, "application/json");
  EXPECT_EQ(s.body,
            "{\"program\":\"outpost-test\",\"version\":\"1.2.3\",\"uptime_seconds\":12.500,"
            "\"healthy\":true,\"ready\":false,\"live_checks\":{\"main_loop\":{\"ok\":true}},"
            "\"ready_checks\":{\"store\":{\"ok\":false,\"detail\":\"cannot \\\"read\\\"\"},"
            "\"inputs\":{\"ok\":true}},\"queue_depth\":42,\"connected\":true,"
            "\"last_commit\":\"2025-12-02T00:00:00.000Z\",\"last_commit_failure\":null}\n");
}

}  // namespace
}  // namespace outpost::common
