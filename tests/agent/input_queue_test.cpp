// InputQueue: the bounded hand-off from the agent's input thread to its store thread.
#include "outpost/agent/input_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "support/process.h"

namespace outpost::agent {
namespace {

using namespace std::chrono_literals;
using test_support::wait_until;

std::vector<QueueItem> readings(int first, int count) {
  std::vector<QueueItem> out;
  for (int i = first; i < first + count; ++i) {
    QueueItem item;
    item.sensor = "s";
    item.value = int64_t{i};
    out.push_back(std::move(item));
  }
  return out;
}

std::vector<int64_t> values(const std::vector<QueueItem>& items) {
  std::vector<int64_t> out;
  for (const auto& item : items) out.push_back(std::get<int64_t>(item.value));
  return out;
}

TEST(InputQueue, TakeReturnsEverythingPushedInOrderAndEmptiesTheQueue) {
  InputQueue queue(100);
  auto a = readings(0, 3);
  auto b = readings(3, 2);
  EXPECT_EQ(queue.push(a), 3u);
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(queue.push(b), 5u);
  std::vector<QueueItem> taken;
  queue.take(taken);
  EXPECT_EQ(values(taken), (std::vector<int64_t>{0, 1, 2, 3, 4}));
  std::vector<QueueItem> again;
  queue.take(again);
  EXPECT_TRUE(again.empty());
}

TEST(InputQueue, PushWaitsWhileFullAndGoesOnOnceTheConsumerTakes) {
  InputQueue queue(4);
  auto first = readings(0, 4);
  ASSERT_EQ(queue.push(first), 4u);
  std::atomic<bool> returned{false};
  std::size_t queued_after = 0;
  std::thread producer([&] {
    auto more = readings(4, 2);
    queued_after = queue.push(more);
    returned = true;
  });
  // Full: the producer must still be waiting when the deadline passes.
  EXPECT_FALSE(wait_until([&] { return returned.load(); }, 200ms));
  std::vector<QueueItem> taken;
  queue.take(taken);
  EXPECT_EQ(values(taken), (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_TRUE(wait_until([&] { return returned.load(); }, 5s));
  producer.join();
  EXPECT_EQ(queued_after, 2u);  // pushed into the emptied queue, not beside the full one
  queue.take(taken);
  EXPECT_EQ(values(taken), (std::vector<int64_t>{4, 5}));
}

TEST(InputQueue, CloseLetsAWaitingPushThroughWithoutLosingItsItems) {
  InputQueue queue(2);
  auto first = readings(0, 2);
  ASSERT_EQ(queue.push(first), 2u);
  std::atomic<bool> returned{false};
  std::thread producer([&] {
    auto more = readings(2, 3);
    (void)queue.push(more);
    returned = true;
  });
  EXPECT_FALSE(wait_until([&] { return returned.load(); }, 200ms));
  queue.close();
  EXPECT_TRUE(wait_until([&] { return returned.load(); }, 5s));
  producer.join();
  auto late = readings(5, 1);
  EXPECT_EQ(queue.push(late), 6u);  // closed: no waiting, nothing refused
  std::vector<QueueItem> taken;
  queue.take(taken);
  EXPECT_EQ(values(taken), (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));
}

}  // namespace
}  // namespace outpost::agent
