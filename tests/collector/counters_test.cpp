// The collector's Prometheus exposition: every degraded path has its counter on the page.
#include "outpost/collector/counters.h"

#include <gtest/gtest.h>

namespace outpost::collector {
namespace {

bool has(const std::string& text, const std::string& line) {
  return text.find(line + "\n") != std::string::npos;
}

TEST(MetricsText, DegradedPathsEachHaveACounter) {
  Counters c;
  c.commits_given_up = 1;
  c.encode_failures = 2;
  c.retention_failures = 3;
  c.publish_skipped = 4;
  c.journal_errors = 5;
  c.commit_failures = 6;
  const std::string text = metrics_text(c, LiveGauges{});
  EXPECT_TRUE(has(text, "outpost_collector_commits_given_up_total 1"));
  EXPECT_TRUE(has(text, "outpost_collector_encode_failures_total 2"));
  EXPECT_TRUE(has(text, "outpost_collector_retention_failures_total 3"));
  EXPECT_TRUE(has(text, "outpost_collector_publish_skipped_total 4"));
  EXPECT_TRUE(has(text, "outpost_collector_journal_errors_total 5"));
  EXPECT_TRUE(has(text, "outpost_collector_commit_failures_total 6"));
  EXPECT_TRUE(has(text, "# TYPE outpost_collector_encode_failures_total counter"));
}

TEST(MetricsText, LiveGaugesAndWebhookFamiliesOnlyWhenConfigured) {
  Counters c;
  EXPECT_EQ(metrics_text(c, LiveGauges{}).find("webhook_delivered_total"), std::string::npos);
  EXPECT_EQ(metrics_text(c, LiveGauges{}).find("fleet_leader"), std::string::npos);
  LiveGauges live;
  live.queue_depth = 12;
  live.connected = true;
  live.webhooks = WebhookStats{7, 1, 2, 0};
  const std::string text = metrics_text(c, live);
  EXPECT_TRUE(has(text, "outpost_collector_queue_depth 12"));
  EXPECT_TRUE(has(text, "outpost_collector_connected 1"));
  EXPECT_TRUE(has(text, "outpost_collector_publisher_connected 0"));
  EXPECT_TRUE(has(text, "outpost_collector_webhook_delivered_total 7"));
  EXPECT_TRUE(has(text, "outpost_collector_webhook_gave_up_total 2"));
}

TEST(MetricsText, SharedModeShowsWhetherThisCollectorLeads) {
  LiveGauges live;
  live.fleet_leader = true;
  live.leader_rounds = 31;
  live.leader_restores = 2;
  const std::string text = metrics_text(Counters{}, live);
  EXPECT_TRUE(has(text, "outpost_collector_fleet_leader 1"));
  EXPECT_TRUE(has(text, "outpost_collector_leader_rounds_total 31"));
  EXPECT_TRUE(has(text, "outpost_collector_leader_restores_total 2"));
  live.fleet_leader = false;
  EXPECT_TRUE(has(metrics_text(Counters{}, live), "outpost_collector_fleet_leader 0"));
}

TEST(MetricsText, LatencyHistogramIsCumulative) {
  Counters c;
  c.latency_counts[0] = 2;         // <= 5 ms
  c.latency_counts[3] = 1;         // <= 50 ms
  c.latency_counts[12] = 1;        // +Inf
  c.latency_sum_us = 120'500'000;  // 120.5 s
  const std::string text = metrics_text(c, LiveGauges{});
  EXPECT_TRUE(has(text, "outpost_collector_reading_latency_seconds_bucket{le=\"0.005\"} 2"));
  EXPECT_TRUE(has(text, "outpost_collector_reading_latency_seconds_bucket{le=\"0.05\"} 3"));
  EXPECT_TRUE(has(text, "outpost_collector_reading_latency_seconds_bucket{le=\"60\"} 3"));
  EXPECT_TRUE(has(text, "outpost_collector_reading_latency_seconds_bucket{le=\"+Inf\"} 4"));
  EXPECT_TRUE(has(text, "outpost_collector_reading_latency_seconds_sum 120.500000"));
  EXPECT_TRUE(has(text, "outpost_collector_reading_latency_seconds_count 4"));
}

}  // namespace
}  // namespace outpost::collector
