// Tests of log level parsing and the rate limiter for bad-input logging.
#include "outpost/common/logging.h"

#include <gtest/gtest.h>

namespace outpost::common {
namespace {

using namespace std::chrono_literals;

TEST(LogLevel, ParsesEveryNameCaseInsensitively) {
  EXPECT_EQ(parse_log_level("trace"), spdlog::level::trace);
  EXPECT_EQ(parse_log_level("DEBUG"), spdlog::level::debug);
  EXPECT_EQ(parse_log_level("Info"), spdlog::level::info);
  EXPECT_EQ(parse_log_level("warn"), spdlog::level::warn);
  EXPECT_EQ(parse_log_level("warning"), spdlog::level::warn);
  EXPECT_EQ(parse_log_level("error"), spdlog::level::err);
  EXPECT_EQ(parse_log_level("critical"), spdlog::level::critical);
  EXPECT_EQ(parse_log_level("off"), spdlog::level::off);
  EXPECT_EQ(parse_log_level("err"), std::nullopt);
  EXPECT_EQ(parse_log_level(""), std::nullopt);
}

TEST(RateLimiter, AllowsABurstThenCountsTheRest) {
  RateLimiter limiter(3, 1s);
  const auto t0 = RateLimiter::Clock::time_point{} + 10s;
  EXPECT_TRUE(limiter.allow(t0));
  EXPECT_TRUE(limiter.allow(t0 + 1ms));
  EXPECT_TRUE(limiter.allow(t0 + 2ms));
  for (int i = 0; i < 1000; ++i) EXPECT_FALSE(limiter.allow(t0 + 3ms));
  EXPECT_EQ(limiter.take_suppressed(), 1000u);
  EXPECT_EQ(limiter.take_suppressed(), 0u);
}

TEST(RateLimiter, ANewPeriodAllowsANewBurst) {
  RateLimiter limiter(1, 1s);
  const auto t0 = RateLimiter::Clock::time_point{} + 10s;
  EXPECT_TRUE(limiter.allow(t0));
  EXPECT_FALSE(limiter.allow(t0 + 999ms));
  EXPECT_TRUE(limiter.allow(t0 + 1s));
  EXPECT_FALSE(limiter.allow(t0 + 1500ms));
  EXPECT_EQ(limiter.take_suppressed(), 2u);
}

}  // namespace
}  // namespace outpost::common
