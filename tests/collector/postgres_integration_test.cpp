// outpost-collector end to end on PostgreSQL: a real mosquitto, the real collector binary with
// [storage] kind = "postgres" on a cluster the test starts, the real tools, a real server
// restart mid-stream and a server that is not there at start.
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>

#include "outpost/common/clock.h"
#include "outpost/common/limits.h"
#include "outpost/common/sample.h"
#include "support/broker_test.h"
#include "support/daemons.h"
#include "support/mqtt_clients.h"
#include "support/postgres.h"
#include "support/process.h"

namespace outpost {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using test_support::Process;
using test_support::wait_until;

// A password in the dsn: trust authentication ignores it, the logs must never show it.
constexpr const char* kPassword = "hunter2-not-for-logs";

class PostgresIntegration : public test_support::BrokerTest {
 protected:
  PostgresIntegration() : BrokerTest("outpost_pg_it") {}
  static void TearDownTestSuite() { test_support::end_suite_cluster(); }
  void SetUp() override {
    BrokerTest::SetUp();
    std::string why;
    cluster_ = test_support::suite_cluster(why);
    if (!cluster_) GTEST_SKIP() << why;
    database_ = test_support::fresh_database(*cluster_);
    config_ = dir_ / "collector.toml";
    write_config("127.0.0.1:0");
  }
  void TearDown() override {
    collector_.reset();
    BrokerTest::TearDown();
  }
  void write_config(const std::string& metrics) {
    std::ofstream(config_) << "[mqtt]\nbroker = \"" << broker_->uri() << "\"\n"
                           << "client_id = \"collector-pg-it\"\n"
                           << "reconnect_min = \"100ms\"\nreconnect_max = \"500ms\"\n"
                           << "[storage]\nkind = \"postgres\"\n"
                           << "dsn = \"" << cluster_->dsn(database_) << " password=" << kPassword
                           << "\"\n"
                           << "journal_dir = \"" << (dir_ / "journal").string() << "\"\n"
                           << "commit_interval = \"50ms\"\n"
                           << "[metrics]\nlisten = \"" << metrics << "\"\n";
  }
  void start_collector() {
    std::string error;
    collector_ =
        test_support::start_outpost_collector({OUTPOST_COLLECTOR_BIN, "--config", config_.string()},
                                              config_, log_file(), metrics_port_, error);
    ASSERT_TRUE(collector_) << error;
  }
  fs::path log_file() const { return dir_ / "collector.log"; }
  std::string log() const { return test_support::read_text(log_file()); }
  int64_t sql(const std::string& q) {
    try {
      return std::stoll(cluster_->sql(database_, q));
    } catch (const std::exception&) {
      return -1;  // not there yet, or the server is down
    }
  }
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
  static common::Envelope batch(const std::string& device, uint64_t seq) {
    common::Envelope e =
        common::sample_reading_batch(device, common::wall_now_us() - 20'000'000, 10, seq);
    e.epoch = 5;
    e.seq = seq;
    return e;
  }
  static common::Envelope temp_batch(const std::string& device, uint64_t seq, double value) {
    common::ReadingBatch b;
    b.time_synced = true;
    b.sensor_names = {"temp"};
    b.readings = {
        common::Reading{0, common::wall_now_us() - 1'000'000 + static_cast<int64_t>(seq), value}};
    return common::Envelope{common::kSchemaVersion, device, 7, seq, std::move(b)};
  }

  test_support::Postgres* cluster_ = nullptr;
  std::string database_;
  fs::path config_;
  int metrics_port_ = 0;
  std::unique_ptr<Process> collector_;
};

TEST_F(PostgresIntegration, StoresOnceRecognisesDuplicatesDeadLettersAndEveryToolReadsIt) {
  start_collector();
  test_support::MqttPublisher pub(broker_->uri());
  common::DeviceStatus birth;
  birth.state = common::DeviceState::kOnline;
  birth.time_us = common::wall_now_us();
  birth.time_synced = true;
  ASSERT_TRUE(pub.publish("outpost/v1/lab/gw-1/status",
                          common::Envelope{common::kSchemaVersion, "gw-1", 5, 0, birth}));
  for (uint64_t seq = 1; seq <= 20; ++seq) {
    ASSERT_TRUE(pub.publish("outpost/v1/lab/gw-1/data", batch("gw-1", seq)));
  }
  for (uint64_t seq = 1; seq <= 5; ++seq) {
    ASSERT_TRUE(pub.publish("outpost/v1/lab/gw-1/data", batch("gw-1", seq)));  // sent twice
  }
  ASSERT_TRUE(pub.publish("outpost/v1/lab/gw-1/data", std::string("\x0a\xff\xff", 3)));
  ASSERT_TRUE(wait_until([&] { return sql("SELECT duplicates FROM devices") == 5; }, 30s)) << log();
  ASSERT_TRUE(wait_until([&] { return sql("SELECT count(*) FROM dlq") == 1; }, 30s)) << log();
  EXPECT_EQ(sql("SELECT count(*) FROM readings"), 20 * 50);
  EXPECT_EQ(sql("SELECT count(*) FROM batches"), 20);

  const std::string csv = tool("query --device gw-1 --format csv --limit 3");
  EXPECT_NE(csv.find("gw-1,lab,"), std::string::npos) << csv;
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 4) << csv;  // header and 3 rows
  const std::string devices = tool("devices --format json");
  EXPECT_NE(devices.find("\"gw-1\""), std::string::npos) << devices;
  const std::string summary = tool("summary");
  EXPECT_NE(summary.find("1000"), std::string::npos) << summary;
  ASSERT_TRUE(wait_until([&] { return sql("SELECT count(*) FROM events") >= 1; }, 30s)) << log();
  const std::string events = tool("events");
  EXPECT_NE(events.find("device_online"), std::string::npos) << events;
  EXPECT_NE(tool("devices").find("online"), std::string::npos);
  const std::string dlq = tool("dlq list");
  EXPECT_NE(dlq.find("not_decodable"), std::string::npos) << dlq;
  const int64_t id = sql("SELECT id FROM dlq");
  EXPECT_NE(tool("dlq show " + std::to_string(id)).find("hex       0affff"), std::string::npos);
  EXPECT_NE(tool("dlq purge --reason not_decodable").find("purged 1 entries"), std::string::npos);
  EXPECT_EQ(sql("SELECT count(*) FROM dlq"), 0);
  // --db names an SQLite file: with a PostgreSQL configuration it is refused, not ignored.
  EXPECT_NE(tool("--db other.db summary").find("--db names an SQLite file"), std::string::npos);

  EXPECT_EQ(collector_->stop(SIGTERM), 0);
  // The password never reaches a log; the dsn appears redacted.
  EXPECT_EQ(log().find(kPassword), std::string::npos);
  EXPECT_NE(log().find("password=***"), std::string::npos) << log();
}

TEST_F(PostgresIntegration, ARestartedServerMidStreamLosesNothingAndDoublesNothing) {
  start_collector();
  test_support::MqttPublisher pub(broker_->uri());
  uint64_t seq = 0;
  auto send = [&](int n) {
    for (int i = 0; i < n; ++i) {
      ++seq;
      ASSERT_TRUE(pub.publish("outpost/v1/lab/gw-1/data", batch("gw-1", seq)));
      // Every tenth message again: the duplicate must be recognised across the restart too.
      if (seq % 10 == 0) {
        ASSERT_TRUE(pub.publish("outpost/v1/lab/gw-1/data", batch("gw-1", seq)));
      }
    }
  };
  send(40);
  ASSERT_TRUE(wait_until([&] { return sql("SELECT count(*) FROM batches") == 40; }, 30s)) << log();
  cluster_->stop();
  send(40);  // the collector holds these (queue, journal) while the server is down
  ASSERT_TRUE(wait_until(
      [&] { return test_support::count_in_file(log_file(), "failed (transient)") > 0; }, 30s))
      << log();
  cluster_->start();
  send(40);
  ASSERT_TRUE(wait_until([&] { return sql("SELECT count(*) FROM batches") == 120; }, 60s)) << log();
  ASSERT_TRUE(wait_until([&] { return sql("SELECT duplicates FROM devices") == 12; }, 30s))
      << log();
  EXPECT_EQ(sql("SELECT count(*) FROM readings"), 120 * 50);
  EXPECT_EQ(sql("SELECT count(DISTINCT seq) FROM batches"), 120);
  EXPECT_EQ(sql("SELECT count(*) FROM dlq"), 0);
  EXPECT_EQ(collector_->stop(SIGTERM), 0);
}

TEST_F(PostgresIntegration, AServerNotUpAtStartIsWaitedForThenUsed) {
  cluster_->stop();
  write_config("");  // no metrics port: the collector is started here, not by the helper
  collector_ = std::make_unique<Process>(
      std::vector<std::string>{OUTPOST_COLLECTOR_BIN, "--config", config_.string()}, log_file());
  ASSERT_TRUE(
      wait_until([&] { return test_support::count_in_file(log_file(), "retrying in") >= 2; }, 30s))
      << log();
  EXPECT_TRUE(collector_->running());
  EXPECT_NE(log().find("cannot connect"), std::string::npos) << log();
  EXPECT_EQ(log().find(kPassword), std::string::npos);
  cluster_->start();
  ASSERT_TRUE(wait_until(
      [&] { return test_support::count_in_file(log_file(), test_support::kCollectorReady) > 0; },
      60s))
      << log();
  test_support::MqttPublisher pub(broker_->uri());
  ASSERT_TRUE(pub.publish("outpost/v1/lab/gw-1/data", batch("gw-1", 1)));
  ASSERT_TRUE(wait_until([&] { return sql("SELECT count(*) FROM readings") == 50; }, 30s)) << log();
  EXPECT_EQ(collector_->stop(SIGTERM), 0);
}

TEST_F(PostgresIntegration, ASignalWhileWaitingForTheServerAtStartStopsCleanly) {
  cluster_->stop();
  write_config("");
  collector_ = std::make_unique<Process>(
      std::vector<std::string>{OUTPOST_COLLECTOR_BIN, "--config", config_.string()}, log_file());
  ASSERT_TRUE(
      wait_until([&] { return test_support::count_in_file(log_file(), "retrying in") >= 1; }, 30s))
      << log();
  const auto asked = std::chrono::steady_clock::now();
  EXPECT_EQ(collector_->stop(SIGTERM), 0) << log();
  EXPECT_LT(std::chrono::steady_clock::now() - asked, 5s);  // not after the whole backoff
  EXPECT_NE(log().find("while waiting for the database: stopping"), std::string::npos) << log();
  cluster_->start();
}

TEST_F(PostgresIntegration, AServerThatRefusesTheLoginStopsTheCollectorAtOnce) {
  // One role of this test's own that must give a password: its rule goes first in pg_hba.conf.
  const std::string role = "pw_" + database_;
  cluster_->sql("postgres", "CREATE ROLE " + role + " LOGIN PASSWORD 'the-right-one'");
  const fs::path hba = cluster_->sql("postgres", "SHOW hba_file");
  const std::string rules = test_support::read_text(hba);
  std::ofstream(hba) << "host all " << role << " 127.0.0.1/32 scram-sha-256\n" << rules;
  cluster_->sql("postgres", "SELECT pg_reload_conf()");
  const std::string wrong = "not-the-right-one";
  std::ofstream(config_) << "[mqtt]\nbroker = \"" << broker_->uri() << "\"\n"
                         << "[storage]\nkind = \"postgres\"\n"
                         << "dsn = \"" << cluster_->dsn(database_) << " user=" << role
                         << " password=" << wrong << "\"\n"
                         << "journal_dir = \"" << (dir_ / "journal").string() << "\"\n"
                         << "[metrics]\nlisten = \"\"\n";
  collector_ = std::make_unique<Process>(
      std::vector<std::string>{OUTPOST_COLLECTOR_BIN, "--config", config_.string()}, log_file());
  ASSERT_TRUE(wait_until([&] { return !collector_->running(); }, 20s)) << log();
  EXPECT_EQ(collector_->stop(SIGTERM), 1) << log();
  EXPECT_NE(log().find("the server refused the login"), std::string::npos) << log();
  EXPECT_EQ(test_support::count_in_file(log_file(), "retrying in"), 0) << log();
  EXPECT_EQ(log().find(wrong), std::string::npos) << log();
}

TEST_F(PostgresIntegration, AMessageTheServerRefusesForGoodIsDeadLetteredAndTheRestIsStored) {
  start_collector();
  test_support::MqttPublisher pub(broker_->uri());
  ASSERT_TRUE(pub.publish("outpost/v1/lab/gw-1/data", temp_batch("gw-1", 1, 20)));
  ASSERT_TRUE(wait_until([&] { return sql("SELECT count(*) FROM readings") == 1; }, 30s)) << log();
  // A permanent error for one value only (an operator's trigger, say): SQLSTATE P0001.
  cluster_->sql(database_,
                "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF "
                "NEW.value = 66.6 THEN RAISE EXCEPTION 'poisoned value'; END IF; RETURN NEW; "
                "END $$; CREATE TRIGGER poison BEFORE INSERT ON readings FOR EACH ROW EXECUTE "
                "FUNCTION poison()");
  for (uint64_t seq = 2; seq <= 9; ++seq) {
    ASSERT_TRUE(
        pub.publish("outpost/v1/lab/gw-1/data", temp_batch("gw-1", seq, seq == 5 ? 66.6 : 20)));
  }
  ASSERT_TRUE(wait_until([&] { return sql("SELECT count(*) FROM readings") == 8; }, 30s)) << log();
  ASSERT_TRUE(wait_until([&] { return sql("SELECT count(*) FROM dlq") == 1; }, 30s)) << log();
  EXPECT_EQ(sql("SELECT count(*) FROM dlq WHERE reason = 12 AND topic = 'outpost/v1/lab/gw-1/data' "
                "AND detail LIKE '%poisoned value%'"),
            1);
  EXPECT_EQ(sql("SELECT count(*) FROM batches"), 8);
  // Once the cause is gone, replay stores it.
  cluster_->sql(database_, "DROP TRIGGER poison ON readings");
  EXPECT_NE(tool("dlq replay --reason storage_rejected").find("1 now valid"), std::string::npos);
  EXPECT_EQ(sql("SELECT count(*) FROM readings"), 9);
  EXPECT_EQ(sql("SELECT count(*) FROM dlq"), 0);
  EXPECT_EQ(collector_->stop(SIGTERM), 0);
}

}  // namespace
}  // namespace outpost
