// A clustered broker: a 3-node nats-server cluster (Debian's nats-server, its MQTT listener on
// JetStream) on loopback, devices publishing to one node, the collector subscribed on another
// with a persistent session. The node the collector is on is killed with SIGKILL and started
// again: every batch published meanwhile is stored, none twice. (NATS 2.9 does not serve
// MQTT shared subscriptions, so this is the single-collector deployment: docs/scale-out.md.)
// Skipped when nats-server is not installed.
#include <gtest/gtest.h>
#include <signal.h>

#include <array>
#include <cstdio>
#include <fstream>

#include "outpost/common/clock.h"
#include "outpost/common/sample.h"
#include "support/daemons.h"
#include "support/mqtt_clients.h"
#include "support/process.h"

namespace outpost {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using test_support::Process;
using test_support::wait_until;

constexpr const char* kNatsServer = "/usr/sbin/nats-server";  // Debian installs it there
constexpr int kNodes = 3;

struct Node {
  std::string name;
  int client = 0, route = 0, mqtt = 0;
  fs::path config, log;
  std::unique_ptr<Process> process;
};

class NatsCluster : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kNatsServer)) GTEST_SKIP() << kNatsServer << " is not installed";
    dir_ = fs::temp_directory_path() / ("outpost_nats_it_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    // Candidate ports, all nine at once; a node that finds one taken makes the whole try again.
    for (int attempt = 0; attempt < 5 && !started_; ++attempt) started_ = start_cluster();
    ASSERT_TRUE(started_) << "the nats cluster did not come up: " << logs();
  }
  void TearDown() override {
    collector_.reset();
    for (auto& n : nodes_) n.process.reset();
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  bool start_cluster() {
    for (auto& n : nodes_) n.process.reset();
    for (int i = 0; i < kNodes; ++i) {
      Node& n = nodes_[i];
      n.name = "n" + std::to_string(i + 1);
      n.client = test_support::candidate_port();
      n.route = test_support::candidate_port();
      n.mqtt = test_support::candidate_port();
      n.config = dir_ / (n.name + ".conf");
      n.log = dir_ / (n.name + ".log");
    }
    for (const Node& n : nodes_) {
      std::ofstream c(n.config);
      c << "server_name: " << n.name << "\nlisten: 127.0.0.1:" << n.client << "\n"
        << "jetstream { store_dir: \"" << (dir_ / n.name).string() << "\" }\n"
        << "cluster { name: outpost, listen: 127.0.0.1:" << n.route << ", routes: [";
      for (int j = 0; j < kNodes; ++j) {
        c << (j ? ", " : "") << "nats://127.0.0.1:" << nodes_[j].route;
      }
      c << "] }\nmqtt { listen: 127.0.0.1:" << n.mqtt << " }\n";
    }
    for (int i = 0; i < kNodes; ++i) {
      if (!start_node(i)) return false;
    }
    // MQTT needs JetStream, and JetStream a meta leader agreed by the cluster.
    return wait_until(
        [&] {
          for (const Node& n : nodes_) {
            if (test_support::count_in_file(n.log, "new metadata leader") > 0) return true;
          }
          return false;
        },
        30s);
  }
  // Starts node `i` and waits until it listens on its three ports.
  bool start_node(int i) {
    Node& n = nodes_[i];
    n.process = std::make_unique<Process>(
        std::vector<std::string>{kNatsServer, "-c", n.config.string()}, n.log);
    return wait_until(
               [&] {
                 if (!n.process->running()) return true;
                 const auto ports = test_support::listening_tcp_ports(n.process->pid());
                 auto has = [&](int p) {
                   return std::find(ports.begin(), ports.end(), p) != ports.end();
                 };
                 return has(n.client) && has(n.route) && has(n.mqtt);
               },
               20s) &&
           n.process->running();
  }
  std::string logs() const {
    std::string out;
    for (const Node& n : nodes_) out += "\n--- " + n.name + "\n" + test_support::read_text(n.log);
    return out;
  }
  std::string uri(int i) const { return "tcp://127.0.0.1:" + std::to_string(nodes_[i].mqtt); }

  // "readings stored" of the collector's summary; -1 if the tool fails.
  int64_t stored() const {
    const std::string cmd = std::string(OUTPOST_COLLECTOR_BIN) + " --config " +
                            collector_config_.string() + " summary 2>/dev/null";
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) return -1;
    char line[512];
    int64_t n = -1;
    while (std::fgets(line, sizeof line, p)) {
      long long v = 0;
      if (std::sscanf(line, "readings stored %lld", &v) == 1) n = v;
    }
    ::pclose(p);
    return n;
  }
  std::string summary() const {
    const std::string cmd = std::string(OUTPOST_COLLECTOR_BIN) + " --config " +
                            collector_config_.string() + " summary 2>&1";
    std::string out;
    FILE* p = ::popen(cmd.c_str(), "r");
    char buf[512];
    while (p && std::fgets(buf, sizeof buf, p)) out += buf;
    if (p) ::pclose(p);
    return out;
  }

  fs::path dir_;
  bool started_ = false;
  std::array<Node, kNodes> nodes_;
  fs::path collector_config_;
  std::unique_ptr<Process> collector_;
};

common::Envelope batch(uint64_t seq) {
  common::Envelope e = common::sample_reading_batch("gw-1", common::wall_now_us(), 10, seq);
  e.epoch = 3;
  e.seq = seq;
  return e;
}

TEST_F(NatsCluster, KillingTheCollectorsNodeLosesNothingAndDoublesNothing) {
  collector_config_ = dir_ / "collector.toml";
  std::ofstream(collector_config_)
      << "[mqtt]\nbroker = \"" << uri(1) << "\"\n"
      << "client_id = \"collector-nats\"\n"
      << "reconnect_min = \"100ms\"\nreconnect_max = \"500ms\"\n"
      << "[storage]\npath = \"" << (dir_ / "c.db").string() << "\"\njournal_dir = \""
      << (dir_ / "journal").string() << "\"\ncommit_interval = \"50ms\"\n"
      << "[metrics]\nlisten = \"127.0.0.1:0\"\n";
  int metrics_port = 0;
  std::string error;
  collector_ = test_support::start_outpost_collector(
      {OUTPOST_COLLECTOR_BIN, "--config", collector_config_.string()}, collector_config_,
      dir_ / "collector.log", metrics_port, error);
  ASSERT_TRUE(collector_) << error << logs();

  test_support::MqttPublisher devices(uri(0), "nats-devices");
  const uint64_t per_batch = 10 * 5;  // 10 instants of the sample's 5 sensors
  uint64_t seq = 0;
  for (; seq < 20; ++seq) ASSERT_TRUE(devices.publish("outpost/v1/lab/gw-1/data", batch(seq + 1)));
  ASSERT_TRUE(wait_until([&] { return stored() == int64_t(seq * per_batch); }, 30s)) << summary();

  // The collector's node dies; the devices go on publishing to theirs.
  nodes_[1].process->stop(SIGKILL);
  for (; seq < 40; ++seq) ASSERT_TRUE(devices.publish("outpost/v1/lab/gw-1/data", batch(seq + 1)));
  ASSERT_TRUE(start_node(1)) << logs();
  for (; seq < 50; ++seq) ASSERT_TRUE(devices.publish("outpost/v1/lab/gw-1/data", batch(seq + 1)));

  ASSERT_TRUE(wait_until([&] { return stored() == int64_t(seq * per_batch); }, 60s))
      << summary() << test_support::read_text(dir_ / "collector.log");
  const std::string s = summary();
  EXPECT_NE(s.find("messages stored      50\n"), std::string::npos) << s;
  EXPECT_NE(s.find("data gaps            0\n"), std::string::npos) << s;
  EXPECT_GE(test_support::count_in_file(dir_ / "collector.log", "connected again"), 1u);
  EXPECT_EQ(collector_->stop(SIGTERM), 0);
}

}  // namespace
}  // namespace outpost
