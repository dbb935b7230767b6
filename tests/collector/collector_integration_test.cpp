// outpost-collector end to end: a real mosquitto on a free loopback port, the real collector
// binary on a real SQLite file, the real agent for end_to_end delivery, real signals.
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>

#include <fstream>
#include <set>

#include "outpost/common/clock.h"
#include "outpost/common/codec.h"
#include "outpost/common/sample.h"
#include "outpost/common/sqlite.h"
#include "outpost/common/topics.h"
#include "support/broker_test.h"
#include "support/daemons.h"
#include "support/http_server.h"
#include "support/mqtt_clients.h"
#include "support/process.h"

namespace outpost {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using test_support::Process;
using test_support::wait_until;

// One integer from a query on the collector's database (read-only, WAL: safe while it runs).
int64_t sql_int(const fs::path& db, const std::string& sql) {
  sqlite3* h = nullptr;
  if (sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(h);
    return -1;
  }
  sqlite3_busy_timeout(h, 2000);
  int64_t v = -1;
  {
    common::sqlite::Statement s(h, sql);
    if (s.ok() && s.step() == SQLITE_ROW) v = s.integer(0);
  }
  sqlite3_close(h);
  return v;
}

// Runs a statement on the collector's database with a connection of its own (WAL: beside
// the running collector). Returns SQLite's error message, "" on success.
std::string sql_exec(const fs::path& db, const std::string& sql) {
  sqlite3* h = nullptr;
  std::string error;
  if (sqlite3_open(db.c_str(), &h) == SQLITE_OK) {
    sqlite3_busy_timeout(h, 5000);
    char* message = nullptr;
    if (sqlite3_exec(h, sql.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
      error = message ? message : "error";
    }
    sqlite3_free(message);
  } else {
    error = "cannot open " + db.string();
  }
  sqlite3_close(h);
  return error;
}

// The test's publisher: every publish must be acknowledged by the broker.
class Publisher {
 public:
  explicit Publisher(const std::string& uri) : client_(uri) {}
  void raw(const std::string& topic, const std::string& payload) {
    ASSERT_TRUE(client_.publish(topic, payload)) << "publish to " << topic << " timed out";
  }
  void envelope(const std::string& topic, const common::Envelope& e) {
    ASSERT_TRUE(client_.publish(topic, e)) << "publish to " << topic << " failed";
  }

 private:
  test_support::MqttPublisher client_;
};

class CollectorIntegration : public test_support::BrokerTest {
 protected:
  CollectorIntegration() : BrokerTest("outpost_collector_it") {}
  void SetUp() override {
    BrokerTest::SetUp();
    db_ = dir_ / "collector.db";
    config_ = dir_ / "collector.toml";
    std::ofstream(config_) << "[mqtt]\nbroker = \"" << broker_->uri() << "\"\n"
                           << "client_id = \"collector-it\"\n"
                           << "reconnect_min = \"100ms\"\nreconnect_max = \"500ms\"\n"
                           << "[storage]\npath = \"" << db_.string() << "\"\n"
                           << "commit_interval = \"50ms\"\n"
                           << "[events]\ngap_grace = \"1s\"\n"
                           << "[metrics]\nlisten = \"127.0.0.1:0\"\n";  // start_collector sets it
  }
  void TearDown() override {
    agent_.reset();
    collector_.reset();
    BrokerTest::TearDown();
  }
  // Starts a real outpost-agent for device `id` at site "lab", reading UDP on a port nobody
  // else holds (returned) and sending to this broker; `store_keys` and `mqtt_keys` are
  // added to those tables, and `tables` after them. Returns once it has started.
  int start_agent(const std::string& id, const std::string& store_keys = "",
                  const std::string& mqtt_keys = "", const std::string& tables = "") {
    const fs::path config = dir_ / "agent.toml";
    std::ofstream(config) << "[metrics]\nlisten = \"\"\n[system]\ninterval = \"0s\"\n"
                          << "[device]\nsite = \"lab\"\nid = \"" << id << "\"\n"
                          << "[inputs]\nudp_listen = \"127.0.0.1:0\"\n"
                          << "unix_socket = \"\"\n"
                          << "[store]\npath = \"" << (dir_ / "agent.db").string() << "\"\n"
                          << store_keys << "[mqtt]\nbroker = \"" << broker_->uri() << "\"\n"
                          << mqtt_keys << tables;
    std::string error;
    test_support::AgentPorts ports;
    agent_ = test_support::start_outpost_agent({OUTPOST_AGENT_BIN, "--config", config.string()},
                                               config, dir_ / "agent.log", ports, error);
    EXPECT_TRUE(agent_) << error;
    return ports.udp;
  }

  // Starts the collector and waits until it has subscribed: its own log says so, after the
  // broker acknowledged the subscriptions (a message published earlier would not reach it).
  // Its metrics port is new on every start.
  void start_collector() {
    std::string error;
    collector_ = test_support::start_outpost_collector(
        {OUTPOST_COLLECTOR_BIN, "--config", config_.string()}, config_, dir_ / "collector.log",
        metrics_port_, error);
    ASSERT_TRUE(collector_) << error;
  }
  int64_t sql(const std::string& q) { return sql_int(db_, q); }
  std::string tool(const std::string& args) {
    const std::string cmd =
        std::string(OUTPOST_COLLECTOR_BIN) + " --config " + config_.string() + " " + args + " 2>&1";
    std::string out;
    FILE* p = ::popen(cmd.c_str(), "r");
    char buf[4096];
    while (p && std::fgets(buf, sizeof buf, p)) out += buf;
    if (p) ::pclose(p);
    return out;
  }
  common::Envelope batch(const std::string& device, uint64_t seq, uint64_t epoch = 5) {
    common::Envelope e =
        common::sample_reading_batch(device, common::wall_now_us() - 20'000'000, 10, seq);
    e.epoch = epoch;
    e.seq = seq;
    return e;
  }

  fs::path db_, config_;
  int metrics_port_ = 0;
  std::unique_ptr<Process> collector_;
  std::unique_ptr<Process> agent_;
};

TEST_F(CollectorIntegration, ValidBatchesLandExactlyAndDuplicatesAreStoredOnce) {
  start_collector();
  Publisher pub(broker_->uri());
  for (uint64_t seq = 1; seq <= 20; ++seq) {
    pub.envelope("outpost/v1/lab/gw-1/data", batch("gw-1", seq));
  }
  for (uint64_t seq = 1; seq <= 5; ++seq) {
    pub.envelope("outpost/v1/lab/gw-1/data", batch("gw-1", seq));  // sent twice
  }
  ASSERT_TRUE(wait_until([&] { return sql("SELECT duplicates FROM devices") == 5; }, 30s))
      << test_support::read_text(dir_ / "collector.log");
  EXPECT_EQ(sql("SELECT count(*) FROM readings"), 20 * 50);
  EXPECT_EQ(sql("SELECT count(*) FROM batches"), 20);
  EXPECT_EQ(sql("SELECT count(*) FROM dlq"), 0);
  const std::string csv = tool("query --device gw-1 --format csv --limit 3");
  EXPECT_NE(csv.find("gw-1,lab,"), std::string::npos) << csv;
  EXPECT_EQ(collector_->stop(SIGTERM), 0);
}

TEST_F(CollectorIntegration, MalformedCorpusLandsInTheDlqWithReasonsWhileValidTrafficContinues) {
  start_collector();
  Publisher pub(broker_->uri());
  auto bytes = [](const common::Envelope& e) {
    auto b = common::encode(e);
    return std::string(b.value().begin(), b.value().end());
  };
  const std::string good = bytes(batch("gw-1", 1));
  common::Envelope logs_on_data = batch("gw-1", 2);
  logs_on_data.body = common::LogBatch{
      true, {common::LogRecord{common::wall_now_us(), common::Severity::kInfo, "hello", {}}}};
  common::Envelope far_future = batch("gw-1", 3);
  for (auto& r : std::get<common::ReadingBatch>(far_future.body).readings) {
    r.time_us = common::wall_now_us() + 3600LL * 1'000'000 * 24 * 365;
  }
  const std::map<std::string, std::string> corpus = {
      {"not_decodable", "\xff\xff\xff\xff garbage"},
      {"empty", ""},
      {"wrong_message_type", bytes(logs_on_data)},
      {"identity_mismatch", bytes(batch("gw-9", 4))},
      {"timestamp_out_of_bounds", bytes(far_future)},
      {"oversized", std::string(300 * 1024, '\x0a')},
  };
  for (const auto& [reason, payload] : corpus) pub.raw("outpost/v1/lab/gw-1/data", payload);
  pub.raw("outpost/v1/lab/gw-1/data", "{\"temp\": 21.5}");  // JSON is not our wire format
  pub.raw("outpost/v1/lab/gw-1/data", good);
  ASSERT_TRUE(wait_until([&] { return sql("SELECT count(*) FROM dlq") == 7; }, 30s))
      << test_support::read_text(dir_ / "collector.log");
  for (const auto& [reason, payload] : corpus) {
    EXPECT_EQ(sql("SELECT count(*) FROM dlq WHERE reason = " +
                  std::to_string(static_cast<int>(*common::reason_from_name(reason)))),
              reason == "not_decodable" ? 2 : 1)
        << reason;
  }
  EXPECT_EQ(sql("SELECT length(payload) FROM dlq WHERE reason = 5"), 300 * 1024);
  ASSERT_TRUE(wait_until([&] { return sql("SELECT count(*) FROM readings") == 50; }, 30s));
  EXPECT_NE(tool("dlq list --reason identity_mismatch").find("payload device id 'gw-9'"),
            std::string::npos);
  const std::string metrics = test_support::http_get(metrics_port_, "/metrics");
  EXPECT_NE(metrics.find("outpost_collector_dlq_total{reason=\"oversized\"} 1"), std::string::npos);
  EXPECT_TRUE(collector_->running());
}

// Acks go out on the collector's second, clean-session connection ("<client_id>-pub"): after
// the broker restarts, both connections come back and acks flow again.
TEST_F(CollectorIntegration, AcksFlowOnThePublisherConnectionAgainAfterABrokerRestart) {
  start_collector();
  const auto ack_arrives = [&](uint64_t seq) {
    test_support::MqttSubscriber listener(broker_->uri(), "outpost/v1/lab/gw-1/ack");
    Publisher(broker_->uri()).envelope("outpost/v1/lab/gw-1/data", batch("gw-1", seq));
    bool acked = false;
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (!acked && std::chrono::steady_clock::now() < deadline) {
      const auto msg = listener.take_one(100ms);
      if (!msg) continue;
      auto env = common::decode(test_support::payload_bytes(*msg));
      if (!env.ok() || env.value().kind() != common::PayloadKind::kAck) continue;
      for (const auto& r : std::get<common::CommitAck>(env.value().body).committed) {
        acked = acked || (r.first <= seq && seq <= r.last);
      }
    }
    return acked;
  };
  EXPECT_TRUE(ack_arrives(1)) << test_support::read_text(dir_ / "collector.log");
  broker_->stop();
  broker_->start();
  ASSERT_TRUE(wait_until(
      [&] {
        const std::string m = test_support::http_get(metrics_port_, "/metrics");
        return m.find("outpost_collector_connected 1\n") != std::string::npos &&
               m.find("outpost_collector_publisher_connected 1\n") != std::string::npos;
      },
      20s))
      << test_support::read_text(dir_ / "collector.log");
  EXPECT_TRUE(ack_arrives(2)) << test_support::read_text(dir_ / "collector.log");
  EXPECT_EQ(sql("SELECT count(*) FROM batches"), 2);
}

TEST_F(CollectorIntegration, PersistentSessionHoldsMessagesPublishedWhileTheCollectorWasDown) {
  start_collector();
  EXPECT_EQ(collector_->stop(SIGTERM), 0);
  Publisher pub(broker_->uri());
  for (uint64_t seq = 1; seq <= 10; ++seq)
    pub.envelope("outpost/v1/lab/gw-1/data", batch("gw-1", seq));
  start_collector();
  ASSERT_TRUE(wait_until([&] { return sql("SELECT count(*) FROM readings") == 500; }, 30s))
      << test_support::read_text(dir_ / "collector.log");
}

TEST_F(CollectorIntegration, LastWillMakesTheDeviceOfflineAndRaisesAnEventOnTheBroker) {
  start_collector();
  test_support::MqttSubscriber events(broker_->uri(), "outpost/v1/events/#");

  // A real agent: its birth says online; kill -9 leaves the broker to publish its last will.
  start_agent("gw-1");
  ASSERT_TRUE(wait_until(
      [&] { return sql("SELECT count(*) FROM devices WHERE state = 'online'") == 1; }, 30s))
      << test_support::read_text(dir_ / "agent.log");
  EXPECT_EQ(agent_->stop(SIGKILL), 128 + SIGKILL);
  ASSERT_TRUE(wait_until(
      [&] { return sql("SELECT count(*) FROM devices WHERE state = 'lost'") == 1; }, 30s))
      << test_support::read_text(dir_ / "collector.log");
  EXPECT_EQ(sql("SELECT count(*) FROM events WHERE kind = 'device_offline' AND device = 'gw-1'"),
            1);
  bool seen = false;
  ASSERT_TRUE(wait_until(
      [&] {
        for (const auto& msg : events.take()) {
          if (msg->get_topic() == "outpost/v1/events/device_offline/lab/gw-1") seen = true;
        }
        return seen;
      },
      10s));
}

TEST_F(CollectorIntegration, DefaultDeliveryKeepsWhatTheBrokerTookBeforeTheCollectorSubscribed) {
  // No collector yet, and it never had a session on this broker: whatever the broker accepts
  // now reaches no subscriber of the collector's. The agent runs with its default delivery
  // mode; only ack_timeout is shortened, so that the test does not wait the default 30 s.
  test_support::MqttSubscriber tap(broker_->uri(), "outpost/v1/lab/gw-default/data");
  const int udp_port =
      start_agent("gw-default", "flush_interval = \"20ms\"\n", "ack_timeout = \"1s\"\n",
                  "[batch]\nmax_delay = \"50ms\"\nmax_readings = 10\n");
  constexpr int kReadings = 50;
  for (int i = 0; i < kReadings; ++i) {
    test_support::send_udp(udp_port, "counter value=" + std::to_string(i) + "i");
  }
  // The broker has taken (and acknowledged) every reading once the tap has seen them all.
  std::set<int64_t> seen;
  ASSERT_TRUE(wait_until(
      [&] {
        for (const auto& msg : tap.take()) {
          auto env = common::decode(test_support::payload_bytes(*msg));
          if (!env.ok()) continue;
          for (const auto& r : std::get<common::ReadingBatch>(env.value().body).readings) {
            if (auto* v = std::get_if<int64_t>(&r.value)) seen.insert(*v);
          }
        }
        return seen.size() == kReadings;
      },
      15s))
      << seen.size() << " of " << kReadings << "\n"
      << test_support::read_text(dir_ / "agent.log");

  // The agent still holds them until a collector says they are committed.
  start_collector();
  ASSERT_TRUE(wait_until([&] { return sql("SELECT count(*) FROM readings") == kReadings; }, 30s))
      << "stored " << sql("SELECT count(*) FROM readings") << " of " << kReadings << "\n"
      << test_support::read_text(dir_ / "agent.log");
  EXPECT_EQ(sql("SELECT count(DISTINCT value) FROM readings"), kReadings);
  ASSERT_TRUE(wait_until(
      [&] { return sql_int(dir_ / "agent.db", "SELECT count(*) FROM outbox") == 0; }, 30s));
}

TEST_F(CollectorIntegration, KillNineUnderLoadLosesNothingAndStoresNothingTwiceForEndToEndAgents) {
  start_collector();
  const int udp_port = start_agent("gw-e2e", "flush_interval = \"20ms\"\n",
                                   "data_delivery = \"end_to_end\"\nack_timeout = \"2s\"\n"
                                   "reconnect_min = \"100ms\"\nreconnect_max = \"500ms\"\n",
                                   "[batch]\nmax_delay = \"50ms\"\nmax_readings = 20\n");
  ASSERT_TRUE(wait_until(
      [&] { return sql("SELECT count(*) FROM devices WHERE device = 'gw-e2e'") == 1; }, 15s))
      << test_support::read_text(dir_ / "agent.log");
  constexpr int kReadings = 3000;
  int sent = 0;
  for (int round = 0; round < 3; ++round) {
    // Send a third of the readings, then kill the collector in the middle of storing them.
    for (int i = 0; i < kReadings / 3; ++i, ++sent) {
      test_support::send_udp(udp_port, "counter value=" + std::to_string(sent) + "i");
      if (i % 100 == 99) std::this_thread::yield();
    }
    const int64_t before = sql("SELECT count(*) FROM readings");
    wait_until([&] { return sql("SELECT count(*) FROM readings") > before; }, 5s);
    EXPECT_EQ(collector_->stop(SIGKILL), 128 + SIGKILL);
    start_collector();
  }
  ASSERT_TRUE(wait_until([&] { return sql("SELECT count(*) FROM readings") >= kReadings; }, 60s))
      << "stored " << sql("SELECT count(*) FROM readings") << " of " << kReadings << "\n"
      << test_support::read_text(dir_ / "collector.log");
  EXPECT_EQ(sql("SELECT count(*) FROM readings"), kReadings);
  EXPECT_EQ(sql("SELECT count(DISTINCT value) FROM readings"), kReadings);
  EXPECT_EQ(sql("SELECT min(value) FROM readings"), 0);
  EXPECT_EQ(sql("SELECT max(value) FROM readings"), kReadings - 1);
  // And the agent's queue empties: every batch was acknowledged after its commit.
  ASSERT_TRUE(wait_until(
      [&] { return sql_int(dir_ / "agent.db", "SELECT count(*) FROM outbox") == 0; }, 30s));
}

// One reading of sensor "temp" per message, so each value is one step of the rule.
common::Envelope temp_batch(const std::string& device, uint64_t seq, double value) {
  common::ReadingBatch b;
  b.time_synced = true;
  b.sensor_names = {"temp"};
  b.readings = {
      common::Reading{0, common::wall_now_us() - 1'000'000 + static_cast<int64_t>(seq), value}};
  return common::Envelope{common::kSchemaVersion, device, 7, seq, std::move(b)};
}

TEST_F(CollectorIntegration,
       ThresholdRuleWithHysteresisReachesAFlakyWebhookAndADeadOneGoesToTheDlq) {
  // "flaky" answers 503 twice, then 200: the first event arrives on the third attempt. "dead"
  // always answers 500: each of its deliveries gives up after 3 attempts into the DLQ.
  test_support::TestHttpServer flaky([](std::size_t n) {
    return test_support::Reply{n < 2 ? 503 : 200, false};
  });
  test_support::TestHttpServer dead([](std::size_t) { return test_support::Reply{500, false}; });
  std::ofstream(config_, std::ios::app)
      << "[rules.hot]\nsensor = \"temp\"\nabove = 30.0\nhysteresis = 2.0\n"
      << "[webhooks.flaky]\nurl = \"" << flaky.url("/flaky") << "\"\nsecret = \"s3cret\"\n"
      << "kinds = [\"threshold_above\", \"threshold_cleared\"]\n"
      << "initial_backoff = \"20ms\"\nmax_backoff = \"50ms\"\n"
      << "[webhooks.dead]\nurl = \"" << dead.url("/dead") << "\"\n"
      << "kinds = [\"threshold_above\", \"threshold_cleared\"]\n"
      << "max_attempts = 3\ninitial_backoff = \"10ms\"\nmax_backoff = \"20ms\"\n";
  start_collector();
  Publisher pub(broker_->uri());
  // 25 quiet; 31 trips; 29.5 and 31.5 are noise inside the hysteresis band; 27.9 clears;
  // 32 trips again. The tripping message sent twice is stored once and trips once.
  const std::vector<double> values = {25, 31, 29.5, 31.5, 27.9, 32};
  for (uint64_t i = 0; i < values.size(); ++i) {
    pub.envelope("outpost/v1/lab/gw-1/data", temp_batch("gw-1", i + 1, values[i]));
    if (i == 1) pub.envelope("outpost/v1/lab/gw-1/data", temp_batch("gw-1", 2, values[1]));
  }
  const auto log = [&] { return test_support::read_text(dir_ / "collector.log"); };
  ASSERT_TRUE(wait_until(
      [&] { return sql("SELECT count(*) FROM events WHERE kind LIKE 'threshold_%'") == 3; }, 30s))
      << log();
  EXPECT_EQ(sql("SELECT count(*) FROM events WHERE kind = 'threshold_above'"), 2);
  EXPECT_EQ(sql("SELECT count(*) FROM events WHERE kind = 'threshold_cleared'"), 1);
  EXPECT_EQ(sql("SELECT count(*) FROM events WHERE kind = 'threshold_above' AND device = 'gw-1' "
                "AND sensor = 'temp' AND threshold = 30.0 AND value IN (31.0, 32.0)"),
            2);
  EXPECT_EQ(sql("SELECT count(*) FROM events WHERE kind = 'threshold_cleared' AND value = 27.9"),
            1);

  // flaky: 2 failures (503), then 200 for each of the 3 events. Deliveries run concurrently,
  // so which ones failed varies; each event is delivered once, and retried ones keep their id.
  ASSERT_TRUE(wait_until([&] { return flaky.count() == 5; }, 30s)) << log();
  const auto requests = flaky.requests();
  std::set<std::string> delivered_ids, bodies;
  for (std::size_t i = 2; i < requests.size(); ++i) {
    delivered_ids.insert(requests[i].header("x-outpost-delivery"));
    bodies.insert(requests[i].body);
    EXPECT_EQ(requests[i].header("x-outpost-signature").rfind("sha256=", 0), 0u);
  }
  EXPECT_EQ(delivered_ids.size(), 3u);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(delivered_ids.count(requests[i].header("x-outpost-delivery")), 1u)
        << "a failed delivery was retried under its own id";
  }
  int retried = 0;
  for (const auto& r : requests) retried += r.header("x-outpost-attempt") != "1";
  EXPECT_EQ(retried, 2);
  std::string all_bodies;
  for (const auto& b : bodies) all_bodies += b + "\n";
  EXPECT_NE(all_bodies.find("\"kind\":\"threshold_above\",\"device\":\"gw-1\",\"site\":\"lab\""),
            std::string::npos)
      << all_bodies;
  EXPECT_NE(all_bodies.find("\"value\":31,\"threshold\":30,"), std::string::npos) << all_bodies;
  EXPECT_NE(all_bodies.find("\"value\":32,\"threshold\":30,"), std::string::npos) << all_bodies;
  EXPECT_NE(all_bodies.find("\"kind\":\"threshold_cleared\""), std::string::npos) << all_bodies;

  // dead: 3 deliveries x 3 attempts, then 3 DLQ entries with the body and the last error.
  ASSERT_TRUE(
      wait_until([&] { return sql("SELECT count(*) FROM dlq WHERE reason = 11") == 3; }, 30s))
      << log();
  EXPECT_EQ(dead.count(), 9u);
  EXPECT_EQ(sql("SELECT count(*) FROM dlq WHERE topic = 'webhook/dead' AND detail LIKE "
                "'%gave up after 3 attempts: HTTP 500%' AND CAST(payload AS TEXT) LIKE "
                "'{\"kind\":\"threshold_%'"),
            3);
  EXPECT_EQ(sql("SELECT count(*) FROM dlq WHERE reason <> 11"), 0);
  // Replay leaves webhook entries alone: they are not messages to validate.
  EXPECT_NE(tool("dlq replay --reason webhook_gave_up").find("3 still rejected"),
            std::string::npos);
  const std::string metrics = test_support::http_get(metrics_port_, "/metrics");
  EXPECT_NE(metrics.find("outpost_collector_webhook_delivered_total 3"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("outpost_collector_webhook_gave_up_total 3"), std::string::npos);
  EXPECT_NE(metrics.find("outpost_collector_rules_tripped 1"), std::string::npos);
  EXPECT_NE(metrics.find("outpost_collector_dlq_total{reason=\"webhook_gave_up\"} 3"),
            std::string::npos);
  EXPECT_EQ(collector_->stop(SIGTERM), 0);
}

TEST_F(CollectorIntegration, SigtermHandsWebhookDeliveriesStillPendingToTheDlq) {
  test_support::TestHttpServer hung([](std::size_t) { return test_support::Reply{200, true}; });
  std::string text = test_support::read_text(config_);
  text.replace(text.find("[events]\n"), 9, "[events]\nwebhook_stop_grace = \"200ms\"\n");
  std::ofstream(config_) << text << "[rules.hot]\nsensor = \"temp\"\nabove = 30.0\n"
                         << "[webhooks.hung]\nurl = \"" << hung.url() << "\"\ntimeout = \"60s\"\n";
  start_collector();
  Publisher pub(broker_->uri());
  pub.envelope("outpost/v1/lab/gw-1/data", temp_batch("gw-1", 1, 35));
  ASSERT_TRUE(wait_until([&] { return hung.count() >= 1; }, 30s))
      << test_support::read_text(dir_ / "collector.log");
  EXPECT_EQ(collector_->stop(SIGTERM), 0);
  EXPECT_GE(sql("SELECT count(*) FROM dlq WHERE reason = 11 AND detail LIKE "
                "'%gave up after 1 attempt: collector stopping%' AND "
                "CAST(payload AS TEXT) LIKE '%threshold_above%'"),
            1)
      << test_support::read_text(dir_ / "collector.log");
}

TEST_F(CollectorIntegration, AMessageTheStoreRefusesForGoodIsDeadLetteredAndTheRestIsStored) {
  start_collector();
  Publisher pub(broker_->uri());
  pub.envelope("outpost/v1/lab/gw-1/data", temp_batch("gw-1", 1, 20));
  ASSERT_TRUE(wait_until([&] { return sql("SELECT count(*) FROM readings") == 1; }, 30s));
  // A permanent error for one value only (an operator's trigger, say): SQLITE_CONSTRAINT.
  ASSERT_EQ(sql_exec(db_,
                     "CREATE TRIGGER poison BEFORE INSERT ON readings WHEN NEW.value = 66.6 "
                     "BEGIN SELECT RAISE(ABORT, 'poisoned value'); END"),
            "");
  for (uint64_t seq = 2; seq <= 9; ++seq) {
    pub.envelope("outpost/v1/lab/gw-1/data", temp_batch("gw-1", seq, seq == 5 ? 66.6 : 20));
  }
  const auto log = [&] { return test_support::read_text(dir_ / "collector.log"); };
  ASSERT_TRUE(wait_until([&] { return sql("SELECT count(*) FROM readings") == 8; }, 30s)) << log();
  ASSERT_TRUE(wait_until([&] { return sql("SELECT count(*) FROM dlq") == 1; }, 30s)) << log();
  EXPECT_EQ(sql("SELECT count(*) FROM dlq WHERE reason = 12 AND topic = 'outpost/v1/lab/gw-1/data' "
                "AND detail LIKE '%poisoned value%'"),
            1);
  EXPECT_EQ(sql("SELECT count(*) FROM batches"), 8);
  // Once the cause is gone, replay stores it.
  ASSERT_EQ(sql_exec(db_, "DROP TRIGGER poison"), "");
  EXPECT_NE(tool("dlq replay --reason storage_rejected").find("1 now valid"), std::string::npos);
  EXPECT_EQ(sql("SELECT count(*) FROM readings"), 9);
  EXPECT_EQ(collector_->stop(SIGTERM), 0);
}

TEST_F(CollectorIntegration, BrokenConfigIsRefusedWithFileLineAndKey) {
  std::ofstream(config_) << "[storage]\npath = \"x.db\"\ncommit_max_messages = 0\n";
  Process p({OUTPOST_COLLECTOR_BIN, "--config", config_.string()}, dir_ / "bad.log");
  EXPECT_EQ(p.stop(0, 10s), 78);
  const std::string log = test_support::read_text(dir_ / "bad.log");
  EXPECT_NE(log.find("collector.toml:3"), std::string::npos) << log;
  EXPECT_NE(log.find("storage.commit_max_messages"), std::string::npos) << log;
  EXPECT_FALSE(fs::exists(dir_ / "x.db"));
}

}  // namespace
}  // namespace outpost
