// The reconnect loop's decisions: attempts at once after a loss, backoff growing to its
// maximum with jitter, one log line per change of state and a rate-limited reminder.
#include "outpost/collector/reconnect.h"

#include <gtest/gtest.h>

namespace outpost::collector {
namespace {

using namespace std::chrono_literals;
using Say = Reconnect::Say;

class ReconnectTest : public ::testing::Test {
 protected:
  Reconnect r_{500ms, 30s, 60s, 42};
  Reconnect::Clock::time_point now_ = Reconnect::Clock::time_point(1000h);
};

TEST_F(ReconnectTest, FirstAttemptIsDueAtOnceAndItsSuccessSaysUp) {
  EXPECT_TRUE(r_.due(now_));
  EXPECT_EQ(r_.succeeded(now_), Say::kUp);
  EXPECT_FALSE(r_.due(now_));
  EXPECT_EQ(r_.succeeded(now_), Say::kNothing);  // already up: nothing new to say
}

TEST_F(ReconnectTest, ALossIsSaidOnceAndTheNextAttemptIsDueAtOnce) {
  ASSERT_EQ(r_.succeeded(now_), Say::kUp);
  EXPECT_EQ(r_.lost(now_), Say::kLost);
  EXPECT_EQ(r_.lost(now_), Say::kNothing);
  EXPECT_TRUE(r_.due(now_));
  EXPECT_EQ(r_.succeeded(now_ + 1ms), Say::kBack);
}

TEST_F(ReconnectTest, BackoffDoublesWithJitterUpToTheMaximum) {
  std::chrono::microseconds ceiling = 500ms;
  for (int i = 0; i < 12; ++i) {
    ASSERT_TRUE(r_.due(now_));
    r_.failed(now_);
    EXPECT_GE(r_.wait(), ceiling / 2) << "attempt " << i;
    EXPECT_LE(r_.wait(), ceiling) << "attempt " << i;
    EXPECT_FALSE(r_.due(now_ + r_.wait() - 1us));
    now_ += r_.wait();
    ceiling = std::min<std::chrono::microseconds>(ceiling * 2, 30s);
  }
  EXPECT_EQ(ceiling, 30s);  // the loop reached the cap
  EXPECT_GE(r_.wait(), 15s);
}

TEST_F(ReconnectTest, FailuresSayOnceThenARemindEveryMinuteAtMost) {
  int failing = 0, reminders = 0, silent = 0;
  const auto start = now_;
  while (now_ - start < 10min) {
    switch (r_.failed(now_)) {
      case Say::kFailing:
        ++failing;
        break;
      case Say::kStillFailing:
        ++reminders;
        break;
      default:
        ++silent;
    }
    now_ += r_.wait();
  }
  EXPECT_EQ(failing, 1);
  EXPECT_GE(reminders, 5);  // 10 minutes, at most one a minute, attempts every 15-30 s
  EXPECT_LE(reminders, 10);
  EXPECT_GT(silent, 0);
  EXPECT_GT(r_.failures(), 20u);
  EXPECT_GE(r_.down_for(now_), 10min);
  EXPECT_EQ(r_.succeeded(now_), Say::kUp);  // never up before: the first success is "up"
  EXPECT_EQ(r_.failures(), 0u);
}

TEST_F(ReconnectTest, BackoffStartsAgainFromTheMinimumAfterASuccess) {
  for (int i = 0; i < 6; ++i) {
    r_.failed(now_);
    now_ += r_.wait();
  }
  ASSERT_GT(r_.wait(), 4s);
  r_.succeeded(now_);
  r_.lost(now_);
  r_.failed(now_);
  EXPECT_LE(r_.wait(), 500ms);
}

TEST_F(ReconnectTest, AFailureWhileThoughtUpCountsAsALossAndSaysFailing) {
  r_.succeeded(now_);
  EXPECT_EQ(r_.failed(now_), Say::kFailing);
  EXPECT_FALSE(r_.up());
  EXPECT_EQ(r_.succeeded(now_ + 1s), Say::kBack);
}

}  // namespace
}  // namespace outpost::collector
