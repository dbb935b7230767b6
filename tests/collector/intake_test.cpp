// The intake between Paho's receive thread and the collector's MQTT thread: order, the byte
// count (payload plus the per-message overhead), the pause and resume marks, the peak, the
// byte bound of one take, and a consumer woken by a producer on another thread.
#include "outpost/collector/intake.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>

namespace outpost::collector {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr std::size_t kOver = kIntakeOverheadBytes;

TEST(Intake, KeepsTheOrderAndCountsPayloadPlusOverhead) {
  Intake<std::string> in(IntakeBounds{1u << 20, 1u << 18});
  in.put("a", 100);
  in.put("b", 0);
  in.put("c", 50);
  EXPECT_EQ(in.messages(), 3u);
  EXPECT_EQ(in.bytes(), 150 + 3 * kOver);
  std::vector<std::string> out = {"x"};
  EXPECT_EQ(in.take_until(Clock::now(), out, 2, 1u << 20), 2u);
  EXPECT_EQ(out, (std::vector<std::string>{"x", "a", "b"}));  // appended, oldest first
  EXPECT_EQ(in.bytes(), 50 + kOver);
  EXPECT_EQ(in.take_until(Clock::now(), out, 10, 1u << 20), 1u);
  EXPECT_EQ(out.back(), "c");
  EXPECT_EQ(in.bytes(), 0u);
  EXPECT_EQ(in.messages(), 0u);
  EXPECT_EQ(in.take_until(Clock::now() + 10ms, out, 10, 1u << 20), 0u);  // empty: times out
}

TEST(Intake, OneTakeStopsAtItsByteBoundButAlwaysTakesTheFirst) {
  Intake<int> in(IntakeBounds{1u << 20, 1u << 18});
  for (int i = 0; i < 4; ++i) in.put(i, 1000);
  std::vector<int> out;
  // Each counts 1000 + overhead: two fit in 2 * (1000 + overhead), a third does not.
  EXPECT_EQ(in.take_until(Clock::now(), out, 10, 2 * (1000 + kOver)), 2u);
  // A bound smaller than one message still moves one.
  EXPECT_EQ(in.take_until(Clock::now(), out, 10, 1), 1u);
  EXPECT_EQ(out, (std::vector<int>{0, 1, 2}));
}

TEST(Intake, PausesAtTheBoundAndResumesAtTheLowerMark) {
  const std::size_t each = 1000 + kOver;
  Intake<int> in(IntakeBounds{10 * each, 4 * each});
  for (int i = 0; i < 9; ++i) in.put(i, 1000);
  EXPECT_FALSE(in.should_pause());  // 9 of 10
  in.put(9, 1000);
  EXPECT_TRUE(in.should_pause());  // at the bound
  EXPECT_FALSE(in.may_resume());
  std::vector<int> out;
  in.take_until(Clock::now(), out, 5, SIZE_MAX);  // 5 left: below the bound, above the mark
  EXPECT_FALSE(in.should_pause());
  EXPECT_FALSE(in.may_resume());
  in.take_until(Clock::now(), out, 1, SIZE_MAX);  // 4 left: at the mark
  EXPECT_TRUE(in.may_resume());
  EXPECT_EQ(in.peak_bytes(), 10 * each);  // the most held, not what is held now
  EXPECT_EQ(in.bytes(), 4 * each);
}

TEST(Intake, AWaitingConsumerIsWokenByAPutFromAnotherThread) {
  Intake<int> in(IntakeBounds{});
  std::vector<int> out;
  std::thread producer([&] {
    for (int i = 0; i < 1000; ++i) in.put(i, 10);
  });
  const auto deadline = Clock::now() + 10s;
  while (out.size() < 1000 && Clock::now() < deadline) {
    in.take_until(Clock::now() + 1s, out, 64, SIZE_MAX);
  }
  producer.join();
  ASSERT_EQ(out.size(), 1000u);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(out[static_cast<std::size_t>(i)], i);
  EXPECT_EQ(in.bytes(), 0u);
}

}  // namespace
}  // namespace outpost::collector
