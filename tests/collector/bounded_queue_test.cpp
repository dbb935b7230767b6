// The bounded queue between the collector's MQTT and storage threads: order, the bound, the
// many-at-once hand-off and shutdown.
#include "outpost/collector/bounded_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace outpost::collector {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

TEST(BoundedQueue, PushAllAndPopSomeKeepTheOrder) {
  BoundedQueue<int> q(100);
  std::vector<int> in = {1, 2, 3, 4, 5};
  EXPECT_EQ(q.push_all(in), 5u);
  EXPECT_TRUE(in.empty());
  EXPECT_EQ(q.size(), 5u);
  std::vector<int> out = {0};
  EXPECT_EQ(q.pop_some_until(Clock::now(), out, 3), 3u);
  EXPECT_EQ(out, (std::vector<int>{0, 1, 2, 3}));  // appended to what was there
  EXPECT_EQ(q.pop_until(Clock::now()), 4);
  EXPECT_EQ(q.pop_some_until(Clock::now(), out, 10), 1u);
  EXPECT_EQ(out.back(), 5);
  EXPECT_EQ(q.pop_some_until(Clock::now() + 10ms, out, 10), 0u);  // empty: times out
}

TEST(BoundedQueue, PushAllBlocksAtTheBoundAndGoesOnAsRoomIsMade) {
  BoundedQueue<int> q(4);
  std::atomic<std::size_t> pushed{0};
  std::thread producer([&] {
    std::vector<int> in;
    for (int i = 0; i < 10; ++i) in.push_back(i);
    pushed = q.push_all(in);
  });
  // Never more than the bound is queued; everything arrives, in order.
  std::vector<int> out;
  const auto deadline = Clock::now() + 10s;
  while (out.size() < 10 && Clock::now() < deadline) {
    EXPECT_LE(q.size(), 4u);
    q.pop_some_until(Clock::now() + 100ms, out, 3);
  }
  producer.join();
  EXPECT_EQ(pushed, 10u);
  ASSERT_EQ(out.size(), 10u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(out[static_cast<std::size_t>(i)], i);
}

TEST(BoundedQueue, CloseLetsABlockedPushAllGoWithWhatItQueued) {
  BoundedQueue<int> q(2);
  std::atomic<std::size_t> pushed{99};
  std::thread producer([&] {
    std::vector<int> in = {1, 2, 3, 4};
    pushed = q.push_all(in);
  });
  const auto deadline = Clock::now() + 10s;
  while (q.size() < 2 && Clock::now() < deadline) std::this_thread::yield();
  q.close();
  producer.join();
  EXPECT_EQ(pushed, 2u);  // the two that fitted; the rest refused
  std::vector<int> out;
  EXPECT_EQ(q.pop_some_until(Clock::now(), out, 10), 2u);       // closed, still drained
  EXPECT_EQ(q.pop_some_until(Clock::now() + 1s, out, 10), 0u);  // closed and empty: at once
}

TEST(BoundedQueue, AWaitingPopSomeIsWokenByAPushAll) {
  BoundedQueue<int> q(8);
  std::vector<int> out;
  std::thread consumer([&] { q.pop_some_until(Clock::now() + 10s, out, 8); });
  // Whether the consumer is already waiting or not, it gets the items.
  std::vector<int> in = {7, 8};
  q.push_all(in);
  consumer.join();
  EXPECT_FALSE(out.empty());
  EXPECT_EQ(out.front(), 7);
}

TEST(BoundedQueue, PushUntilGivesUpAtItsDeadlineAndGoesOnWhereItStopped) {
  BoundedQueue<int> q(3);
  std::vector<int> in = {1, 2, 3, 4, 5};
  std::size_t done = 0;
  const auto t0 = Clock::now();
  EXPECT_TRUE(q.push_until(in, done, t0 + 20ms));  // full after 3: waits, then gives up
  EXPECT_GE(Clock::now() - t0, 20ms);
  EXPECT_EQ(done, 3u);
  EXPECT_EQ(q.size(), 3u);
  std::vector<int> out;
  EXPECT_EQ(q.pop_some_until(Clock::now(), out, 2), 2u);
  EXPECT_TRUE(q.push_until(in, done, Clock::now() + 1s));  // room for the last two
  EXPECT_EQ(done, 5u);
  EXPECT_EQ(q.pop_some_until(Clock::now(), out, 10), 3u);
  EXPECT_EQ(out, (std::vector<int>{1, 2, 3, 4, 5}));
  q.close();
  std::vector<int> more = {6};
  done = 0;
  EXPECT_FALSE(q.push_until(more, done, Clock::now() + 1s));  // closed
  EXPECT_EQ(done, 0u);
}

}  // namespace
}  // namespace outpost::collector
