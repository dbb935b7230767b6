// Both programs' metrics pages pass Prometheus' own linter (`promtool check metrics`): names in
// base units with `_total` last on counters, HELP and TYPE on every family. The page builders
// are rendered with every counter non-zero and the histogram filled, so no family is left out.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <regex>
#include <set>
#include <string>
#include <utility>

#include "outpost/agent/metrics.h"
#include "outpost/collector/counters.h"
#include "outpost/common/message.h"
#include "outpost/common/reason.h"
#include "support/promtool.h"

namespace outpost {
namespace {

using test_support::have_promtool;
using test_support::promtool_problems;

#define REQUIRE_PROMTOOL()                                                                        \
  if (!have_promtool()) {                                                                         \
    GTEST_SKIP() << test_support::kPromtool                                                       \
                 << " is missing: install Debian's prometheus package (scripts/install-deps.sh)"; \
  }

agent::MetricsSnapshot busy_agent() {
  agent::MetricsSnapshot m;
  m.accepted_readings = 1200;
  m.accepted_logs = 30;
  for (agent::LineError e : agent::kAllLineErrors) m.rejected[e] = 2;
  m.kernel_dropped_datagrams = 4;
  m.persisted = 1230;
  m.lost_items = 1;
  for (agent::StoreOp op : agent::kAllStoreOps) m.store_errors[op] = 1;
  m.published = 90;
  m.acked = 88;
  m.commit_acks = 80;
  m.resent = 3;
  m.reconnects = 2;
  m.connect_failures = 5;
  m.publish_failures = 1;
  m.delivery_failures = 1;
  m.subscribe_failures = 1;
  m.status_failures = 1;
  m.bad_acks = 1;
  m.connected = true;
  m.queue_items = 17;
  m.queue_messages = 2;
  m.queue_bytes = 4096;
  m.queue_max_bytes = 64 << 20;
  m.oldest_item_age_s = 2.25;
  m.dropped_oldest = 3;
  m.dropped_newest = 1;
  m.dropped_expired = 6;
  m.store_resets = 1;
  m.uptime_s = 3600.5;
  return m;
}

TEST(MetricsPromtool, AgentPagePasses) {
  REQUIRE_PROMTOOL();
  const std::string text = agent::render_metrics(busy_agent());
  ASSERT_NE(text.find("outpost_agent_queue_oldest_item_age_seconds 2.25\n"), std::string::npos);
  EXPECT_EQ(promtool_problems(text), "") << text;
  EXPECT_EQ(promtool_problems(agent::render_metrics(agent::MetricsSnapshot{})), "");
}

std::string busy_collector_page() {
  collector::Counters c;
  uint64_t v = 1;
  for (auto* counter : {&c.received,        &c.replayed,
                        &c.batches_stored,  &c.duplicates,
                        &c.readings_stored, &c.logs_stored,
                        &c.statuses,        &c.dlq,
                        &c.dlq_dropped,     &c.commits,
                        &c.commit_failures, &c.commits_given_up,
                        &c.commit_us_total, &c.commit_messages_total,
                        &c.acks_published,  &c.events_published,
                        &c.publish_skipped, &c.encode_failures,
                        &c.reconnects,      &c.connect_failures,
                        &c.oversized_cut,   &c.ignored,
                        &c.expired_rows,    &c.retention_failures,
                        &c.journal_errors,  &c.journal_release_failures,
                        &c.rules_tripped,   &c.latency_sum_us}) {
    *counter = v++;
  }
  for (auto& n : c.dlq_by_reason) n = v++;
  for (auto& n : c.events_by_kind) n = v++;
  for (auto& n : c.latency_counts) n = v++;
  c.commit_us_total = 2'500'000;
  collector::LiveGauges live;
  live.queue_depth = 40;
  live.connected = true;
  live.publisher_connected = true;
  live.webhooks = collector::WebhookStats{7, 3, 2, 1};
  live.fleet_leader = true;
  live.leader_rounds = 12;
  return collector::metrics_text(c, live);
}

TEST(MetricsPromtool, CollectorPagePassesWithWebhooksAndHistogram) {
  REQUIRE_PROMTOOL();
  const std::string text = busy_collector_page();
  ASSERT_NE(text.find("outpost_collector_commit_seconds_total 2.500000\n"), std::string::npos);
  ASSERT_NE(text.find("outpost_collector_reading_latency_seconds_bucket{le=\"+Inf\"}"),
            std::string::npos);
  EXPECT_EQ(promtool_problems(text), "") << text;
  EXPECT_EQ(promtool_problems(collector::metrics_text(collector::Counters{}, {})), "");
}

// promtool's output and exit code for `args` ("" and 0 when it passes).
std::pair<int, std::string> promtool(const std::string& args) {
  const std::string cmd = std::string(test_support::kPromtool) + " " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return {-1, "cannot run " + cmd};
  std::string out;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  const int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

// The alerting rules operators install (packaging/prometheus) load, and their unit tests
// (tests/tools/alert_rules_test.yml: each alert fires when it should and not before) pass.
TEST(MetricsPromtool, AlertRulesLoadAndPassTheirUnitTests) {
  REQUIRE_PROMTOOL();
  const auto [check, check_out] = promtool("check rules " OUTPOST_ALERT_RULES);
  EXPECT_EQ(check, 0) << check_out;
  const auto [test, test_out] = promtool("test rules " OUTPOST_ALERT_RULES_TEST);
  EXPECT_EQ(test, 0) << test_out;
}

// Every metric the rules name is one the programs serve: a renamed metric would otherwise leave
// an alert that can never fire.
TEST(MetricsPromtool, AlertRulesNameOnlyMetricsTheProgramsServe) {
  std::ifstream in(OUTPOST_ALERT_RULES);
  ASSERT_TRUE(in) << OUTPOST_ALERT_RULES;
  const std::string rules((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string pages = agent::render_metrics(busy_agent()) + busy_collector_page();
  const std::regex name(R"(outpost_(agent|collector)_[a-z_]+)");
  std::set<std::string> named;
  for (auto it = std::sregex_iterator(rules.begin(), rules.end(), name);
       it != std::sregex_iterator(); ++it) {
    std::string family = it->str();
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      const std::string sfx(suffix);
      if (family.size() > sfx.size() &&
          family.compare(family.size() - sfx.size(), sfx.size(), sfx) == 0 &&
          pages.find("# TYPE " + family.substr(0, family.size() - sfx.size()) + " histogram") !=
              std::string::npos) {
        family.resize(family.size() - sfx.size());
      }
    }
    named.insert(family);
  }
  EXPECT_GE(named.size(), 15u) << "the rules name fewer metrics than expected: is the file right?";
  for (const std::string& family : named) {
    EXPECT_NE(pages.find("# TYPE " + family + " "), std::string::npos)
        << family << " is in the alerting rules but on neither program's /metrics page";
  }
}

// The linter itself: a page it must refuse, so the tests above cannot pass by accident.
TEST(MetricsPromtool, RefusesAUnitAfterTotal) {
  REQUIRE_PROMTOOL();
  EXPECT_NE(promtool_problems("# HELP x_seconds_total_us Time.\n# TYPE x_seconds_total_us "
                              "counter\nx_seconds_total_us 1\n"),
            "");
}

}  // namespace
}  // namespace outpost
