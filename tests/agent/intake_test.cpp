// Tests of the way into the queue (Intake, tail_line_item, append_readings) over the fake queue.
#include "outpost/agent/intake.h"

#include <gtest/gtest.h>

#include "outpost/common/limits.h"
#include "support/fake_clock.h"
#include "support/fake_queue.h"

namespace outpost::agent {
namespace {

using test_support::FakeClock;
using test_support::FakeQueue;

std::vector<QueueItem> readings(int n) {
  std::vector<InputReading> in;
  for (int i = 0; i < n; ++i) in.push_back({"temp", "Cel", common::Value(double(i)), 1000 + i});
  std::vector<QueueItem> out;
  EXPECT_EQ(append_readings(in, out), static_cast<std::size_t>(n));
  return out;
}

class IntakeTest : public ::testing::Test {
 protected:
  FakeClock clock_;
  FakeQueue queue_;
  Intake intake_{queue_, clock_};
  const std::string path_ = "/var/log/app.log";
};

TEST_F(IntakeTest, PersistsItemsThenSavesTheTailPositions) {
  const TailMark marks[] = {{&path_, {42, 1000}}};
  EXPECT_TRUE(intake_.persist(readings(3), marks));
  EXPECT_EQ(queue_.items().size(), 3u);
  EXPECT_EQ(intake_.counters().persisted, 3u);
  ASSERT_EQ(queue_.tail_offsets.count(path_), 1u);
  EXPECT_EQ(queue_.tail_offsets[path_].inode, 42u);
  EXPECT_EQ(queue_.tail_offsets[path_].offset, 1000u);
}

TEST_F(IntakeTest, NothingToPersistTouchesNothing) {
  const TailMark marks[] = {{&path_, {42, 1000}}};
  EXPECT_TRUE(intake_.persist({}, marks));
  EXPECT_TRUE(queue_.tail_offsets.empty());
}

TEST_F(IntakeTest, FailedAppendCountsTheLostItemsAndSavesNoPosition) {
  queue_.fail_append = true;
  const TailMark marks[] = {{&path_, {42, 1000}}};
  for (int i = 0; i < 50; ++i) EXPECT_FALSE(intake_.persist(readings(4), marks));
  EXPECT_EQ(intake_.counters().lost, 200u);
  EXPECT_EQ(intake_.counters().persisted, 0u);
  EXPECT_EQ(intake_.counters().store_errors[StoreOp::kAppend], 50u);
  EXPECT_TRUE(queue_.tail_offsets.empty());
  queue_.fail_append = false;
  EXPECT_TRUE(intake_.persist(readings(1), marks));
  EXPECT_EQ(intake_.counters().persisted, 1u);
  EXPECT_EQ(intake_.counters().lost, 200u);
}

TEST_F(IntakeTest, FailedTailPositionIsCountedAndTheItemsStayPersisted) {
  queue_.fail_set_tail_offset = true;
  const TailMark marks[] = {{&path_, {42, 1000}}};
  EXPECT_TRUE(intake_.persist(readings(2), marks));
  EXPECT_EQ(queue_.items().size(), 2u);
  EXPECT_EQ(intake_.counters().store_errors[StoreOp::kTailOffset], 1u);
}

TEST_F(IntakeTest, FailedExpiryIsCounted) {
  intake_.expire();
  EXPECT_EQ(intake_.counters().store_errors[StoreOp::kExpire], 0u);
  queue_.fail_expire = true;
  intake_.expire();
  EXPECT_EQ(queue_.expire_calls, 2);
  EXPECT_EQ(intake_.counters().store_errors[StoreOp::kExpire], 1u);
}

TEST(TailLineItem, PlainTextBecomesALogRecordNamingItsFile) {
  const auto item =
      tail_line_item("disk almost full", "/var/log/app.log", 5'000, {}, common::Severity::kWarning);
  EXPECT_EQ(item.stream, Stream::kLogs);
  EXPECT_EQ(item.time_us, 5'000);
  EXPECT_EQ(item.log.message, "disk almost full");
  EXPECT_EQ(item.log.severity, common::Severity::kWarning);
  ASSERT_EQ(item.log.fields.size(), 1u);
  EXPECT_EQ(item.log.fields[0].key, "file");
  EXPECT_EQ(item.log.fields[0].value, "/var/log/app.log");
}

TEST(TailLineItem, ControlCharactersAndInvalidUtf8BecomeQuestionMarks) {
  const auto item = tail_line_item("a\x01z\xff!", "f.log", 1, {}, common::Severity::kInfo);
  EXPECT_EQ(item.log.message, "a?z?!");
}

TEST(TailLineItem, TooLongALineIsCutAndSaysSo) {
  const std::string line(common::kMaxLogMessageLength + 100, 'x');
  const auto item = tail_line_item(line, "f.log", 1, {}, common::Severity::kInfo);
  EXPECT_EQ(item.log.message.size(), common::kMaxLogMessageLength);
  ASSERT_EQ(item.log.fields.size(), 2u);
  EXPECT_EQ(item.log.fields[0].key, "truncated_from");
  EXPECT_EQ(item.log.fields[0].value, std::to_string(line.size()));
}

TEST(AppendReadings, MovesEveryReadingIntoADataItem) {
  const auto items = readings(2);
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[1].stream, Stream::kData);
  EXPECT_EQ(items[1].sensor, "temp");
  EXPECT_EQ(items[1].unit, "Cel");
  EXPECT_EQ(items[1].time_us, 1001);
  EXPECT_EQ(items[1].value, common::Value(1.0));
}

}  // namespace
}  // namespace outpost::agent
