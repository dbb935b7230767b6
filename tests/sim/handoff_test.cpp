// enqueue_or_count: what Paho's callback threads hand to a worker never throws out of them.
#include "outpost/sim/handoff.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <system_error>
#include <utility>
#include <vector>

namespace outpost::sim {
namespace {

TEST(EnqueueOrCount, AnEnqueueThatCompletesIsNotCounted) {
  std::atomic<uint64_t> failures{0};
  std::vector<int> queue;
  EXPECT_TRUE(enqueue_or_count([&] { queue.push_back(7); }, failures));
  EXPECT_EQ(queue, std::vector<int>{7});
  EXPECT_EQ(failures.load(), 0u);
}

TEST(EnqueueOrCount, OutOfMemoryIsCountedAndDoesNotEscape) {
  std::atomic<uint64_t> failures{0};
  EXPECT_FALSE(enqueue_or_count([] { throw std::bad_alloc(); }, failures));
  EXPECT_FALSE(enqueue_or_count([] { throw std::bad_alloc(); }, failures));
  EXPECT_EQ(failures.load(), 2u);
}

TEST(EnqueueOrCount, AMutexErrorIsCountedAndDoesNotEscape) {
  std::atomic<uint64_t> failures{0};
  EXPECT_FALSE(enqueue_or_count(
      [] {
        throw std::system_error(std::make_error_code(std::errc::resource_deadlock_would_occur));
      },
      failures));
  EXPECT_EQ(failures.load(), 1u);
}

TEST(EnqueueOrCount, AnItemLostToOneFailureLeavesLaterOnesQueued) {
  std::atomic<uint64_t> failures{0};
  std::vector<int> queue;
  bool fail = true;  // the failure switch: the first enqueue runs out of memory
  for (int i = 0; i < 3; ++i) {
    (void)enqueue_or_count(  // the result is the count checked below
        [&] {
          if (std::exchange(fail, false)) throw std::bad_alloc();
          queue.push_back(i);
        },
        failures);
  }
  EXPECT_EQ(queue, (std::vector<int>{1, 2}));
  EXPECT_EQ(failures.load(), 1u);
}

}  // namespace
}  // namespace outpost::sim
