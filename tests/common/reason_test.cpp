// Tests of the reason code names shared with the DLQ and metrics.
#include "outpost/common/reason.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "outpost/common/message.h"

namespace outpost::common {
namespace {

TEST(Reason, NamesAreUniqueSnakeCaseAndRoundTrip) {
  std::set<std::string_view> seen;
  for (Reason r : kAllReasons) {
    const std::string_view name = reason_name(r);
    EXPECT_TRUE(seen.insert(name).second) << name;
    EXPECT_NE(name, "unknown");
    for (char c : name) EXPECT_TRUE((c >= 'a' && c <= 'z') || c == '_') << name;
    EXPECT_EQ(reason_from_name(name), r);
  }
}

TEST(Reason, NumbersAreStableBecauseDlqRowsStoreThem) {
  EXPECT_EQ(static_cast<int>(Reason::kNotDecodable), 1);
  EXPECT_EQ(static_cast<int>(Reason::kIdentityMismatch), 4);
  EXPECT_EQ(static_cast<int>(Reason::kUnroutableTopic), 10);
  EXPECT_EQ(static_cast<int>(Reason::kWebhookGaveUp), 11);
  EXPECT_EQ(static_cast<int>(Reason::kStorageRejected), 12);
  EXPECT_EQ(std::size(kAllReasons), 12u);
}

TEST(Reason, UnknownNameIsNullopt) {
  EXPECT_FALSE(reason_from_name("no_such_reason").has_value());
  EXPECT_FALSE(reason_from_name("").has_value());
}

TEST(Names, PayloadAndEventKinds) {
  EXPECT_EQ(payload_kind_name(PayloadKind::kReadings), "readings");
  EXPECT_EQ(payload_kind_name(PayloadKind::kAck), "ack");
  EXPECT_EQ(event_kind_name(EventKind::kDataGap), "data_gap");
  EXPECT_EQ(event_kind_name(EventKind::kThresholdCleared), "threshold_cleared");
}

}  // namespace
}  // namespace outpost::common
