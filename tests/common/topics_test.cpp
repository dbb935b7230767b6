// Tests of the MQTT topic scheme: building, parsing, filters, shared subscriptions.
#include "outpost/common/topics.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace outpost::common {

void PrintTo(Reason r, std::ostream* os) { *os << reason_name(r); }

namespace {

Reason parse_failure(std::string_view topic) {
  auto r = parse_device_topic(topic);
  EXPECT_FALSE(r.ok()) << topic;
  return r.ok() ? Reason::kEmpty : r.error().reason;
}

TEST(Topics, EveryDeviceSuffixRoundTrips) {
  for (auto kind :
       {PayloadKind::kReadings, PayloadKind::kLogs, PayloadKind::kStatus, PayloadKind::kAck}) {
    auto topic = device_topic("site-a", "gw-0042", kind);
    ASSERT_TRUE(topic.ok()) << topic.error().detail;
    auto parsed = parse_device_topic(topic.value());
    ASSERT_TRUE(parsed.ok()) << parsed.error().detail;
    EXPECT_EQ(parsed.value(), (DeviceTopic{"site-a", "gw-0042", kind}));
  }
  EXPECT_EQ(device_topic("s", "d", PayloadKind::kReadings).value(), "outpost/v1/s/d/data");
  EXPECT_EQ(device_topic("s", "d", PayloadKind::kStatus).value(), "outpost/v1/s/d/status");
}

TEST(Topics, SuffixNamesMapBothWays) {
  EXPECT_EQ(topic_suffix(PayloadKind::kReadings), "data");
  EXPECT_EQ(payload_kind_from_suffix("logs"), PayloadKind::kLogs);
  EXPECT_EQ(payload_kind_from_suffix("events"), std::nullopt);
  EXPECT_EQ(payload_kind_from_suffix(""), std::nullopt);
}

TEST(Topics, BuildingRejectsInvalidIds) {
  for (const std::string& bad : std::vector<std::string>{
           "", "a/b", "a+b", "a#", "a b", std::string("a\0b", 3), std::string(65, 'x')}) {
    auto site = device_topic(bad, "dev", PayloadKind::kReadings);
    ASSERT_FALSE(site.ok()) << bad;
    EXPECT_EQ(site.error().reason, Reason::kInvalidField);
    EXPECT_NE(site.error().detail.find("site id"), std::string::npos);
    auto dev = device_topic("site", bad, PayloadKind::kReadings);
    ASSERT_FALSE(dev.ok()) << bad;
    EXPECT_NE(dev.error().detail.find("device id"), std::string::npos);
  }
  EXPECT_TRUE(device_topic(std::string(64, 'x'), "d", PayloadKind::kLogs).ok());
}

TEST(Topics, EventsIsAReservedSiteName) {
  auto r = device_topic("events", "dev", PayloadKind::kReadings);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().detail.find("reserved"), std::string::npos);
  EXPECT_EQ(parse_failure("outpost/v1/events/dev/data"), Reason::kUnroutableTopic);
}

TEST(Topics, EventPayloadHasNoDeviceTopic) {
  EXPECT_FALSE(device_topic("s", "d", PayloadKind::kEvent).ok());
  EXPECT_FALSE(device_filter(PayloadKind::kEvent).ok());
}

TEST(Topics, ParseRejectsMalformedTopicsWithTheLevelNamed) {
  struct Case {
    std::string topic;
    std::string detail;
  };
  const Case cases[] = {
      {"", "does not start"},
      {"outpost", "does not start"},
      {"other/v1/s/d/data", "does not start"},
      {"outpost/v2/s/d/data", "version"},
      {"outpost/v1/s/d", "levels"},
      {"outpost/v1/s/d/data/extra", "levels"},
      {"outpost/v1//d/data", "site level is empty"},
      {"outpost/v1/s//data", "device level is empty"},
      {"outpost/v1/s/d/", "unknown suffix"},
      {"/outpost/v1/s/d/data", "does not start"},
      {"outpost//v1/s/d/data", "version"},
      {"outpost/v1/s/d+/data", "device level contains the wildcard '+'"},
      {"outpost/v1/#/d/data", "site level contains the wildcard '#'"},
      {"outpost/v1/s/d d/data", "device level contains characters"},
      {std::string("outpost/v1/s/d\0x/data", 22), "device level contains characters"},
      {"outpost/v1/s/d/DATA", "unknown suffix"},
      {"outpost/v1/s/d/events", "unknown suffix"},
      {"outpost/v1/s/" + std::string(65, 'd') + "/data", "65 bytes"},
      {"outpost/v1/events/data_gap/s/d", "event topic"},
      {std::string(100000, '/'), "bytes long"},
  };
  for (const auto& c : cases) {
    auto r = parse_device_topic(c.topic);
    ASSERT_FALSE(r.ok()) << c.topic;
    EXPECT_EQ(r.error().reason, Reason::kUnroutableTopic) << c.topic;
    EXPECT_NE(r.error().detail.find(c.detail), std::string::npos)
        << c.topic << " -> " << r.error().detail;
  }
}

TEST(Topics, EventTopicsRoundTrip) {
  auto t = event_topic(EventKind::kDataGap, "site-a", "gw-1");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t.value(), "outpost/v1/events/data_gap/site-a/gw-1");
  EXPECT_EQ(parse_event_topic(t.value()).value(),
            (EventTopic{EventKind::kDataGap, "site-a", "gw-1"}));

  auto fleet = event_topic(EventKind::kDlqRate, "", "");
  ASSERT_TRUE(fleet.ok());
  EXPECT_EQ(fleet.value(), "outpost/v1/events/dlq_rate");
  EXPECT_EQ(parse_event_topic(fleet.value()).value(), (EventTopic{EventKind::kDlqRate, "", ""}));

  auto site = event_topic(EventKind::kThresholdAbove, "site-a", "");
  ASSERT_TRUE(site.ok());
  EXPECT_EQ(parse_event_topic(site.value()).value().site, "site-a");
}

TEST(Topics, EventTopicErrors) {
  EXPECT_FALSE(event_topic(EventKind::kUnspecified, "", "").ok());
  EXPECT_FALSE(event_topic(EventKind::kDataGap, "", "gw-1").ok());
  EXPECT_FALSE(event_topic(EventKind::kDataGap, "s/x", "gw-1").ok());
  EXPECT_FALSE(event_topic(EventKind::kDataGap, "s", "gw+").ok());
  for (std::string bad : {"outpost/v1/events", "outpost/v1/events/no_such_kind",
                          "outpost/v1/events/data_gap/s/d/extra", "outpost/v1/events/data_gap/+",
                          "outpost/v1/events/data_gap/s/", "outpost/v1/site/dev/data"}) {
    auto r = parse_event_topic(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().reason, Reason::kUnroutableTopic);
  }
}

TEST(Topics, FiltersDefaultToWildcardsAndCheckIds) {
  EXPECT_EQ(device_filter(PayloadKind::kReadings).value(), "outpost/v1/+/+/data");
  EXPECT_EQ(device_filter(PayloadKind::kStatus, "site-a").value(), "outpost/v1/site-a/+/status");
  EXPECT_EQ(device_filter(PayloadKind::kAck, "s", "gw-1").value(), "outpost/v1/s/gw-1/ack");
  EXPECT_FALSE(device_filter(PayloadKind::kReadings, "#").ok());
  EXPECT_FALSE(device_filter(PayloadKind::kReadings, "a+").ok());
  EXPECT_FALSE(device_filter(PayloadKind::kReadings, "events").ok());
}

TEST(Topics, SharedSubscriptions) {
  EXPECT_EQ(shared_subscription("collectors", "outpost/v1/+/+/data").value(),
            "$share/collectors/outpost/v1/+/+/data");
  EXPECT_FALSE(shared_subscription("", "outpost/v1/+/+/data").ok());
  EXPECT_FALSE(shared_subscription("a/b", "outpost/v1/+/+/data").ok());
  EXPECT_FALSE(shared_subscription("g", "").ok());
  EXPECT_FALSE(shared_subscription("g", "$share/h/outpost/v1/+/+/data").ok());
}

}  // namespace
}  // namespace outpost::common

namespace outpost::common {
namespace {

TEST(TopicFilters, ValidFiltersHaveNoProblem) {
  for (std::string_view f : {"outpost/#", "#", "+", "outpost/v1/+/+/data", "+/v1/#", "a//b", "/",
                             "outpost/v1/events/#", "$SYS/#"}) {
    EXPECT_EQ(filter_problem(f), std::nullopt) << f;
  }
}

TEST(TopicFilters, EachSyntaxErrorIsNamed) {
  EXPECT_EQ(filter_problem("").value(), "is empty");
  EXPECT_NE(filter_problem("outpost/#/data").value().find("last level"), std::string::npos);
  EXPECT_NE(filter_problem("outpost/v1#").value().find("whole level"), std::string::npos);
  EXPECT_NE(filter_problem("outpost/v1/+x/data").value().find("'+'"), std::string::npos);
  EXPECT_NE(filter_problem("outpost/v1+").value().find("'+'"), std::string::npos);
  EXPECT_NE(filter_problem(std::string_view("out\0post/#", 10)).value().find("NUL"),
            std::string::npos);
  EXPECT_NE(filter_problem(std::string(65536, 'a')).value().find("65535"), std::string::npos);
  EXPECT_EQ(filter_problem(std::string(65535, 'a')), std::nullopt);
}

TEST(TopicFilters, MatchingFollowsMqttRules) {
  EXPECT_TRUE(topic_matches("outpost/#", "outpost/v2/lab/gw-1/data"));
  EXPECT_TRUE(topic_matches("outpost/#", "outpost"));  // '#' includes the parent level
  EXPECT_FALSE(topic_matches("outpost/#", "Outpost/v1/lab/gw-1/data"));  // case-sensitive
  EXPECT_TRUE(topic_matches("outpost/v1/+/+/data", "outpost/v1/lab/gw-1/data"));
  EXPECT_FALSE(topic_matches("outpost/v1/+/+/data", "outpost/v1/lab/gw-1/data/x"));
  EXPECT_FALSE(topic_matches("outpost/v1/+/+/data", "outpost/v1/lab/data"));
  EXPECT_TRUE(topic_matches("outpost/v1/+/+/data", "outpost/v1//gw-1/data"));  // empty level
  EXPECT_TRUE(topic_matches("#", "anything/at/all"));
  EXPECT_FALSE(topic_matches("#", "$SYS/broker/uptime"));
  EXPECT_FALSE(topic_matches("+/broker/uptime", "$SYS/broker/uptime"));
  EXPECT_TRUE(topic_matches("$SYS/#", "$SYS/broker/uptime"));
}

TEST(TopicFilters, CoverageIsPerLevel) {
  EXPECT_TRUE(filter_covers("outpost/#", "outpost/v1/+/+/data"));
  EXPECT_TRUE(filter_covers("outpost/#", "outpost/#"));
  EXPECT_TRUE(filter_covers("#", "outpost/v1/+/+/data"));
  EXPECT_TRUE(filter_covers("outpost/v1/+/+/data", "outpost/v1/lab/+/data"));
  EXPECT_FALSE(filter_covers("outpost/v1/+/+/data", "outpost/#"));
  EXPECT_FALSE(filter_covers("outpost/v1/lab/+/data", "outpost/v1/+/+/data"));
  EXPECT_FALSE(filter_covers("outpost/#", "other/v1/+/+/data"));
  EXPECT_FALSE(filter_covers("outpost/v1/+", "outpost/v1/+/+"));
  EXPECT_FALSE(filter_covers("outpost/v1/+/+", "outpost/v1/+"));
  EXPECT_FALSE(filter_covers("#", "$SYS/#"));
}

TEST(TopicFilters, OutpostTopicsAreDeviceAndEventTopicsOnly) {
  EXPECT_TRUE(is_outpost_topic("outpost/v1/lab/gw-1/data"));
  EXPECT_TRUE(is_outpost_topic("outpost/v1/lab/gw-1/ack"));
  EXPECT_TRUE(is_outpost_topic("outpost/v1/events/device_offline/lab/gw-1"));
  EXPECT_TRUE(is_outpost_topic("outpost/v1/events/dlq_rate"));
  EXPECT_FALSE(is_outpost_topic("outpost/v2/lab/gw-1/data"));
  EXPECT_FALSE(is_outpost_topic("outpost/v1/lab/gw-1/data/extra"));
  EXPECT_FALSE(is_outpost_topic("outpost/v1/lab/data"));
  EXPECT_FALSE(is_outpost_topic("outpost/v1/lab/gw-1/readings"));
  EXPECT_FALSE(is_outpost_topic("outpost/v1/events/no_such_kind"));
}

}  // namespace
}  // namespace outpost::common
