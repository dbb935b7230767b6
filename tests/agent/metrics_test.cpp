// Tests of the agent's Prometheus rendering and of host:port parsing.
#include "outpost/agent/metrics.h"

#include <gtest/gtest.h>

#include "outpost/agent/config.h"

namespace outpost::agent {
namespace {

TEST(Metrics, EveryFamilyHasHelpAndTypeAndEveryReasonAppears) {
  MetricsSnapshot m;
  m.accepted_readings = 12;
  m.rejected[LineError::kSyntax] = 3;
  m.dropped_oldest = 7;
  m.connected = true;
  m.oldest_item_age_s = 1.5;
  const std::string text = render_metrics(m);
  EXPECT_NE(text.find("outpost_agent_accepted_total{kind=\"reading\"} 12\n"), std::string::npos);
  EXPECT_NE(text.find("outpost_agent_rejected_lines_total{reason=\"syntax\"} 3\n"),
            std::string::npos);
  for (LineError e : kAllLineErrors) {
    EXPECT_NE(text.find("reason=\"" + std::string(line_error_name(e)) + "\"}"), std::string::npos)
        << line_error_name(e);
  }
  EXPECT_NE(text.find("outpost_agent_dropped_total{reason=\"oldest\"} 7\n"), std::string::npos);
  EXPECT_NE(text.find("outpost_agent_connected 1\n"), std::string::npos);
  EXPECT_NE(text.find("outpost_agent_queue_oldest_item_age_seconds 1.5\n"), std::string::npos);
  // Every sample belongs to a family declared with HELP and TYPE before it.
  std::size_t pos = 0;
  std::string declared;
  while (pos < text.size()) {
    const std::size_t end = text.find('\n', pos);
    const std::string line = text.substr(pos, end - pos);
    if (line.starts_with("# TYPE ")) {
      declared = line.substr(7, line.find(' ', 7) - 7);
    } else if (!line.starts_with("#")) {
      EXPECT_TRUE(line.starts_with(declared)) << line << " after " << declared;
    }
    pos = end + 1;
  }
}

TEST(Metrics, DegradedPathsHaveTheirCounters) {
  MetricsSnapshot m;
  m.lost_items = 40;
  m.store_errors[StoreOp::kAppend] = 2;
  m.connect_failures = 3;
  m.status_failures = 1;
  m.bad_acks = 5;
  const std::string text = render_metrics(m);
  EXPECT_NE(text.find("outpost_agent_lost_items_total 40\n"), std::string::npos);
  EXPECT_NE(text.find("outpost_agent_store_errors_total{op=\"append\"} 2\n"), std::string::npos);
  for (StoreOp op : kAllStoreOps) {
    EXPECT_NE(text.find("store_errors_total{op=\"" + std::string(store_op_name(op)) + "\"}"),
              std::string::npos)
        << store_op_name(op);
  }
  EXPECT_NE(text.find("outpost_agent_mqtt_failures_total{op=\"connect\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("outpost_agent_mqtt_failures_total{op=\"status\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("outpost_agent_mqtt_failures_total{op=\"publish\"} 0\n"), std::string::npos);
  EXPECT_NE(text.find("outpost_agent_bad_acks_total 5\n"), std::string::npos);
}

TEST(Metrics, NoAgeWithoutQueuedItems) {
  EXPECT_EQ(render_metrics({}).find("oldest_item_age"), std::string::npos);
}

TEST(HostPort, Parse) {
  auto v4 = parse_host_port("127.0.0.1:8094");
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->host, "127.0.0.1");
  EXPECT_EQ(v4->port, 8094);
  auto v6 = parse_host_port("[::1]:9108");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  for (const char* bad : {"", "8094", ":8094", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536",
                          "127.0.0.1:80x", "localhost:8094", "127.0.0.1 :80"}) {
    EXPECT_FALSE(parse_host_port(bad)) << bad;
  }
}

}  // namespace
}  // namespace outpost::agent
