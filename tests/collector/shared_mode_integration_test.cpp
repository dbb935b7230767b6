// Shared mode end to end: three real outpost-collector processes in one MQTT shared
// subscription group on one PostgreSQL database (a cluster the test starts), a real mosquitto
// spreading each device's messages over all of them, and a real kill -9 of the leader.
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

constexpr int kCollectors = 3;

class SharedMode : public test_support::BrokerTest {
 protected:
  SharedMode() : BrokerTest("outpost_shared_it") {}
  static void TearDownTestSuite() { test_support::end_suite_cluster(); }
  void SetUp() override {
    BrokerTest::SetUp();
    std::string why;
    cluster_ = test_support::suite_cluster(why);
    if (!cluster_) GTEST_SKIP() << why;
    database_ = test_support::fresh_database(*cluster_);
  }
  void TearDown() override {
    for (auto& c : collectors_) c.reset();
    BrokerTest::TearDown();
  }
  static std::string name(int i) { return "collector-" + std::to_string(i); }
  fs::path log_file(int i) const { return dir_ / (name(i) + ".log"); }
  std::string logs() const {
    std::string out;
    for (int i = 0; i < kCollectors; ++i) {
      out += "--- " + name(i) + "\n" + test_support::read_text(log_file(i));
    }
    return out;
  }
  void start(int i) {
    const fs::path config = dir_ / (name(i) + ".toml");
    // A clean session: a collector killed leaves the group at once (its socket closes), so the
    // broker hands its share to the others instead of queueing it for a session that is gone.
    std::ofstream(config) << "[mqtt]\nbroker = \"" << broker_->uri() << "\"\n"
                          << "client_id = \"" << name(i) << "\"\n"
                          << "shared_group = \"fleet\"\nclean_session = true\n"
                          << "reconnect_min = \"100ms\"\nreconnect_max = \"500ms\"\n"
                          << "[storage]\nkind = \"postgres\"\n"
                          << "dsn = \"" << cluster_->dsn(database_) << "\"\n"
                          << "journal_dir = \"" << (dir_ / (name(i) + ".journal")).string()
                          << "\"\n"
                          << "commit_interval = \"50ms\"\n"
                          << "[events]\noffline_after = \"3s\"\ngap_grace = \"2s\"\n"
                          << "[rules.hot]\nsensor = \"temp\"\nabove = 30.0\nhysteresis = 2.0\n"
                          << "[metrics]\nlisten = \"127.0.0.1:0\"\n";
    std::string error;
    int metrics_port = 0;
    collectors_[i] =
        test_support::start_outpost_collector({OUTPOST_COLLECTOR_BIN, "--config", config.string()},
                                              config, log_file(i), metrics_port, error);
    ASSERT_TRUE(collectors_[i]) << error;
  }
  int64_t sql(const std::string& q) {
    try {
      return std::stoll(cluster_->sql(database_, q));
    } catch (const std::exception&) {
      return -1;
    }
  }
  int64_t events(const std::string& kind, const std::string& device) {
    return sql("SELECT count(*) FROM events WHERE kind = '" + kind + "' AND device = '" + device +
               "'");
  }
  // Which collector holds the leader lock (its session's application_name); -1 if none.
  int leader() {
    std::string holder;
    try {
      holder = cluster_->sql(
          database_,
          "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
          "WHERE l.locktype = 'advisory' AND l.granted AND a.datname = current_database()");
    } catch (const std::exception&) {
      return -1;
    }
    for (int i = 0; i < kCollectors; ++i) {
      if (holder.find(name(i)) != std::string::npos) return i;
    }
    return -1;
  }
  static common::Envelope batch(const std::string& device, uint64_t seq) {
    common::Envelope e =
        common::sample_reading_batch(device, common::wall_now_us() - 2'000'000, 4, seq);
    e.epoch = 9;
    e.seq = seq;
    return e;
  }
  // One reading of the sensor the rule watches.
  static common::Envelope temp(const std::string& device, uint64_t seq, double value) {
    common::ReadingBatch b;
    b.time_synced = true;
    b.sensor_names = {"temp"};
    b.readings = {common::Reading{0, common::wall_now_us() - 1000, value}};
    return common::Envelope{common::kSchemaVersion, device, 9, seq, std::move(b)};
  }
  static common::Envelope birth(const std::string& device) {
    common::DeviceStatus s;
    s.state = common::DeviceState::kOnline;
    s.time_us = common::wall_now_us();
    s.time_synced = true;
    return common::Envelope{common::kSchemaVersion, device, 9, 0, s};
  }

  test_support::Postgres* cluster_ = nullptr;
  std::string database_;
  std::unique_ptr<Process> collectors_[kCollectors];
};

TEST_F(SharedMode, ThreeCollectorsStoreOnceOneLeaderDecidesAndAnotherTakesOver) {
  for (int i = 0; i < kCollectors; ++i) start(i);
  for (int i = 0; i < kCollectors; ++i) {
    ASSERT_TRUE(wait_until(
        [&] {
          return test_support::read_text(log_file(i)).find("subscribed to") != std::string::npos;
        },
        20s))
        << logs();
  }
  ASSERT_TRUE(wait_until([&] { return leader() >= 0; }, 20s)) << logs();

  // Three devices, seq 1..N each, interleaved: the broker spreads each one's messages over all
  // three collectors.
  constexpr uint64_t kSeqs = 40;
  const std::vector<std::string> devices = {"d1", "d2", "d3"};
  test_support::MqttPublisher pub(broker_->uri());
  for (const auto& d : devices)
    ASSERT_TRUE(pub.publish("outpost/v1/lab/" + d + "/status", birth(d)));
  for (uint64_t seq = 1; seq <= kSeqs; ++seq) {
    for (const auto& d : devices) {
      ASSERT_TRUE(pub.publish("outpost/v1/lab/" + d + "/data", batch(d, seq)));
    }
  }
  ASSERT_TRUE(wait_until([&] { return sql("SELECT count(*) FROM batches") == 3 * kSeqs; }, 30s))
      << logs();
  const auto per_batch = std::get<common::ReadingBatch>(batch("d1", 1).body).readings.size();
  EXPECT_EQ(sql("SELECT count(*) FROM readings"), static_cast<int64_t>(3 * kSeqs * per_batch));
  // Spread over more than one collector (each commit names its collector nowhere, but each
  // collector's journal holds what it received).
  int received_by = 0;
  for (int i = 0; i < kCollectors; ++i) {
    std::error_code ec;
    for (const auto& f : fs::directory_iterator(dir_ / (name(i) + ".journal"), ec)) {
      if (fs::file_size(f.path(), ec) > 0) {
        ++received_by;
        break;
      }
    }
  }
  EXPECT_GE(received_by, 2);
  // Silent once they stop (offline_after 3 s): one device_offline each, decided by the leader.
  for (const auto& d : devices) {
    ASSERT_TRUE(wait_until([&] { return events("device_offline", d) >= 1; }, 20s)) << logs();
  }
  for (const auto& d : devices) {
    EXPECT_EQ(events("device_online", d), 1) << d;
    EXPECT_EQ(events("device_offline", d), 1) << d;
  }
  EXPECT_EQ(sql("SELECT count(*) FROM events WHERE kind = 'data_gap'"), 0) << logs();
  EXPECT_EQ(sql("SELECT max_seq FROM seq_lines l JOIN devices d ON d.id = l.device_id WHERE "
                "d.device = 'd1'"),
            static_cast<int64_t>(kSeqs));
  EXPECT_EQ(sql("SELECT count(*) FROM seq_holes"), 0);
  EXPECT_EQ(sql("SELECT count(*) FROM fleet_feed WHERE received_us < (extract(epoch FROM now()) "
                "* 1e6)::bigint - 5000000"),
            0);  // consumed

  // kill -9 the leader: another collector takes the lock within a few seconds.
  const int old_leader = leader();
  ASSERT_GE(old_leader, 0);
  const auto killed_at = std::chrono::steady_clock::now();
  EXPECT_EQ(collectors_[old_leader]->stop(SIGKILL), 128 + SIGKILL);
  ASSERT_TRUE(wait_until(
      [&] {
        const int l = leader();
        return l >= 0 && l != old_leader;
      },
      15s))
      << logs();
  const auto took = std::chrono::steady_clock::now() - killed_at;
  EXPECT_LT(took, 5s);
  std::printf(
      "leader failover took %lld ms\n",
      static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()));

  // A device that comes up after the failover, skips seq 6 and is cut without a will: online
  // once, the gap once, silent once, each decided by one collector.
  ASSERT_TRUE(pub.publish("outpost/v1/lab/d4/status", birth("d4")));
  // The birth committed before the data is sent: the leader orders what it takes by receive
  // time but takes only rows committed within its settle time (0.7 s), and a slow commit (a
  // sanitizer build) could otherwise land the birth after the data (docs/storage.md).
  ASSERT_TRUE(wait_until(
      [&] {
        return sql("SELECT count(*) FROM devices WHERE device = 'd4' AND last_status <> ''") == 1;
      },
      15s))
      << logs();
  for (uint64_t seq = 1; seq <= 10; ++seq) {
    if (seq == 6) continue;
    ASSERT_TRUE(pub.publish("outpost/v1/lab/d4/data", batch("d4", seq)));
  }
  // Hot readings spread over the collectors that are left: the rule trips once for the fleet
  // (its hysteresis holds across them), and clears once. The cool reading is sent once the hot
  // ones are committed, for the reason the birth above is: a commit later than the settle time
  // is fed out of order, and a hot reading after the cool one would trip the rule again.
  for (uint64_t seq = 1; seq <= 5; ++seq) {
    ASSERT_TRUE(pub.publish("outpost/v1/lab/t1/data", temp("t1", seq, 35.0 + seq)));
  }
  ASSERT_TRUE(wait_until(
      [&] {
        return sql("SELECT count(*) FROM batches b JOIN devices d ON d.id = b.device_id "
                   "WHERE d.device = 't1'") == 5;
      },
      15s))
      << logs();
  ASSERT_TRUE(pub.publish("outpost/v1/lab/t1/data", temp("t1", 6, 20)));
  ASSERT_TRUE(wait_until([&] { return events("threshold_cleared", "t1") >= 1; }, 20s)) << logs();
  EXPECT_EQ(events("threshold_above", "t1"), 1);
  EXPECT_EQ(events("threshold_cleared", "t1"), 1);
  ASSERT_TRUE(wait_until([&] { return events("device_offline", "d4") >= 1; }, 20s)) << logs();
  ASSERT_TRUE(wait_until([&] { return events("data_gap", "d4") >= 1; }, 10s)) << logs();
  EXPECT_EQ(events("device_online", "d4"), 1);
  EXPECT_EQ(events("data_gap", "d4"), 1);
  EXPECT_EQ(events("device_offline", "d4"), 1);
  EXPECT_EQ(sql("SELECT count(*) FROM events WHERE detail LIKE '%seq 6 missing%'"), 1);
  EXPECT_EQ(sql("SELECT gaps FROM devices WHERE device = 'd4'"), 1);
  // Nothing before the failover was decided twice.
  for (const auto& d : devices) {
    EXPECT_EQ(events("device_online", d), 1) << d;
    EXPECT_EQ(events("device_offline", d), 1) << d;
  }
  EXPECT_EQ(sql("SELECT count(*) FROM events WHERE kind = 'data_gap'"), 1) << logs();
  EXPECT_EQ(cluster_->sql(database_, "SELECT state FROM devices WHERE device = 'd4'"), "silent");

  for (int i = 0; i < kCollectors; ++i) {
    if (i != old_leader) {
      EXPECT_EQ(collectors_[i]->stop(SIGTERM), 0) << logs();
    }
  }
}

}  // namespace
}  // namespace outpost
