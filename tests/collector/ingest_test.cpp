// What the collector keeps of a received message (whole, or cut for its size) and which
// messages the catch-all subscription brings that are dead letters.
#include "outpost/collector/ingest.h"

#include <gtest/gtest.h>

#include "outpost/common/clock.h"
#include "outpost/common/codec.h"
#include "outpost/common/sample.h"

namespace outpost::collector {
namespace {

const std::vector<std::string> kDefaultTopics = {"outpost/v1/+/+/data", "outpost/v1/+/+/logs",
                                                 "outpost/v1/+/+/status"};

TEST(TakeMessage, APayloadAtTheBoundIsKeptWhole) {
  const std::string payload(1000, 'a');
  RawMessage m = take_message("t", payload, 7, 1000);
  EXPECT_EQ(m.payload, payload);
  EXPECT_FALSE(m.cut.has_value());
}

TEST(TakeMessage, APayloadOverTheBoundKeepsOnlyItsFirstBytesLengthAndHash) {
  std::string payload(3u << 20, 'b');
  payload[0] = 'X';
  RawMessage m = take_message("outpost/v1/lab/gw-1/data", payload, 7, 1u << 20);
  ASSERT_TRUE(m.cut.has_value());
  EXPECT_EQ(m.payload.size(), kOversizedKeepBytes);
  EXPECT_EQ(m.payload, payload.substr(0, kOversizedKeepBytes));
  EXPECT_LE(m.payload.capacity(), 2 * kOversizedKeepBytes);
  EXPECT_EQ(m.cut->full_bytes, payload.size());
  EXPECT_EQ(m.cut->limit, 1u << 20);
  EXPECT_EQ(m.cut->sha256, common::sha256(payload));
}

TEST(Classify, ACutMessageIsAnOversizedDeadLetterNamingLengthAndHash) {
  const std::string payload(600 * 1024, 'c');
  auto c = classify(take_message("outpost/v1/lab/gw-1/data", payload, 7, 512 * 1024), {});
  auto* d = std::get_if<DlqItem>(&c);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->reason, common::Reason::kOversized);
  EXPECT_EQ(d->payload.size(), kOversizedKeepBytes);
  EXPECT_NE(d->detail.find("message of 614400 bytes"), std::string::npos) << d->detail;
  EXPECT_NE(d->detail.find("sha256 " + common::to_hex(common::sha256(payload))), std::string::npos)
      << d->detail;
  EXPECT_TRUE(is_cut_entry(d->reason, d->detail));
}

TEST(Classify, ACutMessageOnAMisaddressedTopicIsStillOversized) {
  auto c = classify(take_message("garbage", std::string(10, 'c'), 7, 5), {});
  ASSERT_TRUE(std::holds_alternative<DlqItem>(c));
  EXPECT_EQ(std::get<DlqItem>(c).reason, common::Reason::kOversized);
}

TEST(Classify, AWholeOversizedPayloadIsNotACutEntry) {
  auto c = classify(RawMessage{"outpost/v1/lab/gw-1/data", std::string(300 * 1024, '\x0a'), 7}, {});
  ASSERT_TRUE(std::holds_alternative<DlqItem>(c));
  const auto& d = std::get<DlqItem>(c);
  EXPECT_EQ(d.reason, common::Reason::kOversized);
  EXPECT_FALSE(is_cut_entry(d.reason, d.detail));
}

TEST(Admit, ConfiguredTopicsAreTaken) {
  EXPECT_EQ(admit("outpost/v1/lab/gw-1/data", kDefaultTopics), Admission::kTake);
  EXPECT_EQ(admit("outpost/v1/lab/gw-1/status", kDefaultTopics), Admission::kTake);
}

TEST(Admit, OurOwnAcksAndEventsAreIgnored) {
  EXPECT_EQ(admit("outpost/v1/lab/gw-1/ack", kDefaultTopics), Admission::kIgnore);
  EXPECT_EQ(admit("outpost/v1/events/device_offline/lab/gw-1", kDefaultTopics), Admission::kIgnore);
  EXPECT_EQ(admit("outpost/v1/events/dlq_rate", kDefaultTopics), Admission::kIgnore);
  // A kind the configuration leaves out is not a dead letter either.
  EXPECT_EQ(admit("outpost/v1/lab/gw-1/logs", {"outpost/v1/+/+/data"}), Admission::kIgnore);
}

TEST(Admit, MisaddressedTopicsAreTakenAndClassifiedUnroutable) {
  for (std::string_view topic : {"outpost/v2/lab/gw-1/data", "outpost/v1/lab/gw-1/data/extra",
                                 "outpost/v1/lab/data", "outpost/v1/lab/gw-1/reading", "outpost",
                                 "outpost/v1/events/no_such_kind", "outpost/v1/l@b/gw-1/data"}) {
    EXPECT_EQ(admit(topic, kDefaultTopics), Admission::kTake) << topic;
    auto c = classify(RawMessage{std::string(topic), "x", 7}, {});
    ASSERT_TRUE(std::holds_alternative<DlqItem>(c)) << topic;
    EXPECT_EQ(std::get<DlqItem>(c).reason, common::Reason::kUnroutableTopic) << topic;
  }
}

}  // namespace
}  // namespace outpost::collector
