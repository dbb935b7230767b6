// A clustered broker: a 3-node nats-server cluster (Debian's nats-server 2.9, its MQTT listener
// on JetStream) on loopback. The collector holds a persistent session on node 2; simulated
// devices (outpost-sim, direct, QoS 1) publish through node 1 and a real outpost-agent
// (end_to_end) through node 3. Node 2 is killed with SIGKILL while they publish and started
// again, then node 1, the simulator's: every reading the simulator's manifest and the agent's
// feeder say was sent is stored, none twice, and no data gap is left. (NATS 2.9 does not serve
// MQTT shared subscriptions, so this is the single-collector deployment: docs/scale-out.md.)
// Skipped when nats-server is not installed.
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "outpost/common/clock.h"
#include "outpost/common/sqlite.h"
#include "support/daemons.h"
#include "support/manifest.h"
#include "support/process.h"

namespace outpost {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using test_support::Process;
using test_support::wait_until;
using Clock = std::chrono::steady_clock;

constexpr const char* kNatsServer = "/usr/sbin/nats-server";  // Debian installs it there
constexpr int kNodes = 3;
constexpr int kSimDevices = 10;
constexpr const char* kSite = "nats";
constexpr const char* kAgentDevice = "nats-agent";
constexpr int kLinesPerDatagram = 10;

// argv run so that the child gets SIGKILL when the test process dies, even by SIGKILL (a ctest
// timeout): no broker node, agent or collector outlives a run (as in the chaos suite).
std::vector<std::string> dies_with_us(std::vector<std::string> argv) {
  static const bool have_setpriv = ::access("/usr/bin/setpriv", X_OK) == 0;
  if (have_setpriv) argv.insert(argv.begin(), {"/usr/bin/setpriv", "--pdeathsig", "KILL", "--"});
  return argv;
}

// GET http://127.0.0.1:port<path> from nats-server's monitoring listener: the status code and
// the body, {0, ""} when it does not answer within 2 s. (Go keeps HTTP/1.1 connections open:
// the request asks it to close.)
std::pair<int, std::string> monitor_get(int port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr = test_support::loopback_address(port);
  std::string response;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string request =
        "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
        static_cast<ssize_t>(request.size())) {
      char buf[8192];
      ssize_t n;
      while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) response.append(buf, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  const auto body = response.find("\r\n\r\n");
  if (response.size() < 12 || body == std::string::npos) return {0, ""};
  return {std::atoi(response.c_str() + 9), response.substr(body + 4)};
}

// A read-only view of the collector's SQLite file.
class Store {
 public:
  explicit Store(const fs::path& path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
      sqlite3_close(db_);
      db_ = nullptr;
    }
    if (db_) sqlite3_busy_timeout(db_, 5000);
  }
  ~Store() { sqlite3_close(db_); }
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;
  // Calls `row` at each result row of `sql` (one text parameter, if given); false on an error.
  bool each(const std::string& sql, const std::function<void(common::sqlite::Statement&)>& row,
            const std::string& param = "") {
    if (!db_) return false;
    common::sqlite::Statement s(db_, sql);
    if (!s.ok()) return false;
    if (!param.empty()) s.bind(1, param);
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) row(s);
    return rc == SQLITE_DONE;
  }
  int64_t one(const std::string& sql, const std::string& param = "") {
    int64_t v = -1;
    each(
        sql, [&](common::sqlite::Statement& s) { v = s.integer(0); }, param);
    return v;
  }

 private:
  sqlite3* db_ = nullptr;
};

struct Node {
  std::string name;
  int route = 0, mqtt = 0, http = 0;
  fs::path config, log;
  std::unique_ptr<Process> process;
};

class NatsCluster : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kNatsServer)) {
      GTEST_SKIP() << kNatsServer << " is not installed (scripts/install-deps.sh installs it)";
    }
    dir_ = fs::temp_directory_path() / ("outpost_nats_it_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    // Nine candidate ports at once; a node that finds one taken makes the whole try again.
    for (int attempt = 0; attempt < 5 && !started_; ++attempt) started_ = start_cluster();
    ASSERT_TRUE(started_) << "the nats cluster did not come up: " << logs();
  }
  void TearDown() override {
    feeding_ = false;
    if (feeder_.joinable()) feeder_.join();
    sim_.reset();
    agent_.reset();
    collector_.reset();
    for (auto& n : nodes_) n.process.reset();
    if (!dir_.empty() && !HasFailure()) fs::remove_all(dir_);
    if (HasFailure()) std::cout << timeline_ << "work directory kept: " << dir_ << "\n";
  }

  bool start_cluster() {
    for (auto& n : nodes_) n.process.reset();
    std::set<int> taken;
    auto port = [&] {
      int p = test_support::candidate_port();
      while (taken.count(p)) p = test_support::candidate_port();
      taken.insert(p);
      return p;
    };
    for (int i = 0; i < kNodes; ++i) {
      Node& n = nodes_[i];
      n.name = "n" + std::to_string(i + 1);
      n.route = port();
      n.mqtt = port();
      n.http = port();
      n.config = dir_ / (n.name + ".conf");
      n.log = dir_ / (n.name + ".log");
    }
    for (const Node& n : nodes_) {
      std::ofstream c(n.config);
      // Clients' port: any (nothing here speaks NATS); every other port is fixed, so that a
      // restarted node is found where it was. ack_wait: how long JetStream waits for the
      // collector's PUBACK before it sends a message again (30 s by default).
      c << "server_name: " << n.name << "\nlisten: 127.0.0.1:-1\n"
        << "http: 127.0.0.1:" << n.http << "\n"
        << "jetstream { store_dir: \"" << (dir_ / ("store-" + n.name)).string() << "\" }\n"
        << "cluster { name: outpost, listen: 127.0.0.1:" << n.route << ", routes: [";
      for (int j = 0; j < kNodes; ++j) {
        c << (j ? ", " : "") << "nats://127.0.0.1:" << nodes_[j].route;
      }
      c << "] }\nmqtt { listen: 127.0.0.1:" << n.mqtt << ", ack_wait: \"2s\" }\n";
    }
    for (int i = 0; i < kNodes; ++i) {
      if (!start_node(i)) return false;
    }
    // MQTT needs JetStream, and JetStream a metadata leader the cluster agreed on: /healthz
    // answers 200 once the node's JetStream is current.
    return wait_until([&] { return all_healthy(); }, 30s);
  }

  // Starts node `i` and waits until it listens on its three ports; false if it exits first.
  bool start_node(int i) {
    Node& n = nodes_[i];
    n.process =
        std::make_unique<Process>(dies_with_us({kNatsServer, "-c", n.config.string()}), n.log);
    const bool up = wait_until(
        [&] {
          if (!n.process->running()) return true;
          const auto ports = test_support::listening_tcp_ports(n.process->pid());
          auto has = [&](int p) { return std::find(ports.begin(), ports.end(), p) != ports.end(); };
          return has(n.route) && has(n.mqtt) && has(n.http);
        },
        20s);
    return up && n.process->running();
  }
  void kill_node(int i) {
    nodes_[i].process->stop(SIGKILL);
    nodes_[i].process.reset();
  }
  bool healthy(int i) const {
    return nodes_[i].process && monitor_get(nodes_[i].http, "/healthz").first == 200;
  }
  bool all_healthy() const {
    for (int i = 0; i < kNodes; ++i) {
      if (!healthy(i)) return false;
    }
    return true;
  }
  // Whether node `i` is current with the JetStream metadata leader and every replica of the
  // MQTT streams (messages, sessions, retained) is current with its stream's leader, as each
  // stream's leader sees it (a follower's view of the other replicas is stale): killing another
  // node then leaves every stream a quorum. (Not /healthz alone: it also waits for every
  // consumer, and a consumer of a session deleted during an election can stay behind for good.)
  bool streams_current(int i) const {
    if (!nodes_[i].process) return false;
    if (monitor_get(nodes_[i].http, "/healthz?js-server-only=true").first != 200) return false;
    static const std::regex stream(
        R"re("name":\s*"(\$MQTT_\w+)",[^{]*"cluster":\s*\{[^}]*?"leader":\s*"(\w+)",\s*"replicas":\s*\[([^\]]*)\])re");
    std::set<std::string> current;  // streams whose leader sees every replica current
    for (int j = 0; j < kNodes; ++j) {
      if (!nodes_[j].process) continue;
      const auto [status, body] = monitor_get(nodes_[j].http, "/jsz?accounts=true&streams=true");
      for (std::sregex_iterator it(body.begin(), body.end(), stream), end; it != end; ++it) {
        const std::smatch& m = *it;
        if (m[2] == nodes_[j].name && m.str(3).find("\"current\": false") == std::string::npos &&
            m.str(3).find("\"current\": true") != std::string::npos) {
          current.insert(m[1]);
        }
      }
    }
    return current.size() == 3;
  }
  // The last sequence number of JetStream's MQTT message stream as node `i` has it: every QoS 1
  // message the cluster accepted. -1 if the node does not say.
  int64_t messages_accepted(int i) const {
    const auto [status, body] = monitor_get(nodes_[i].http, "/jsz?accounts=true&streams=true");
    if (status != 200) return -1;
    static const std::regex re(R"re("name":\s*"\$MQTT_msgs"[\s\S]*?"last_seq":\s*(\d+))re");
    std::smatch m;
    return std::regex_search(body, m, re) ? std::stoll(m[1]) : -1;
  }
  // Who leads JetStream as node `i` sees it: the metadata leader and the leaders of the MQTT
  // message and session streams ("?" where it names none), for the printed timeline.
  std::string leaders(int i) const {
    const auto [status, body] = monitor_get(nodes_[i].http, "/jsz?accounts=true&streams=true");
    auto find = [&](const std::string& pattern) {
      std::smatch m;
      return std::regex_search(body, m, std::regex(pattern)) ? std::string(m[1]) : "?";
    };
    return "meta " + find(R"re("meta_cluster":\s*\{[^}]*?"leader":\s*"(\w+)")re") +
           ", $MQTT_msgs " +
           find(R"re("name":\s*"\$MQTT_msgs",[^{]*"cluster":\s*\{[^}]*?"leader":\s*"(\w+)")re") +
           ", $MQTT_sess " +
           find(R"re("name":\s*"\$MQTT_sess",[^{]*"cluster":\s*\{[^}]*?"leader":\s*"(\w+)")re");
  }
  // How many MQTT clients whose id starts with `prefix` node `i` has connected.
  int mqtt_clients(int i, const std::string& prefix) const {
    const auto [status, body] = monitor_get(nodes_[i].http, "/connz?limit=1024");
    if (status != 200) return -1;
    const std::string needle = "\"mqtt_client\": \"" + prefix;
    int n = 0;
    for (auto at = body.find(needle); at != std::string::npos; at = body.find(needle, at + 1)) ++n;
    return n;
  }
  std::string logs() const {
    std::string out;
    for (const Node& n : nodes_) out += "\n--- " + n.name + "\n" + tail(n.log);
    return out;
  }
  static std::string tail(const fs::path& file) {
    const std::string text = test_support::read_text(file);
    return text.size() > 4000 ? "..." + text.substr(text.size() - 4000) : text;
  }
  std::string uri(int i) const { return "tcp://127.0.0.1:" + std::to_string(nodes_[i].mqtt); }

  // The agent's feeder: 10 readings every 50 ms, numbered from 0 in the order its socket took
  // them (a datagram the socket refuses or would block on is sent again).
  void feed() {
    const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, agent_socket_.c_str(), sizeof addr.sun_path - 1);
    auto next = Clock::now();
    while (feeding_) {
      std::string datagram;
      const int64_t now = common::wall_now_us();
      for (int k = 0; k < kLinesPerDatagram; ++k) {
        datagram += "nats value=" + std::to_string(fed_ + k) + "i " + std::to_string(now) + "\n";
      }
      const ssize_t n = ::sendto(fd, datagram.data(), datagram.size(), MSG_DONTWAIT,
                                 reinterpret_cast<sockaddr*>(&addr), sizeof addr);
      if (n == static_cast<ssize_t>(datagram.size())) fed_ += kLinesPerDatagram;
      next += 50ms;
      std::this_thread::sleep_until(next);  // the load's pace, not a synchronisation
    }
    ::close(fd);
  }

  std::string agent_metrics() const {
    const auto [status, body] = monitor_get(agent_metrics_port_, "/metrics");
    return status == 200 ? "\n" + body : "";
  }
  std::string collector_metrics() const {
    const auto [status, body] = monitor_get(collector_metrics_port_, "/metrics");
    return status == 200 ? "\n" + body : "";
  }

  // A line of the printed timeline: seconds since the load started, and what happened.
  void note(const std::string& what) {
    const double s = std::chrono::duration<double>(Clock::now() - load_start_).count();
    char buf[32];
    std::snprintf(buf, sizeof buf, "%6.2f s  ", s);
    timeline_ += buf + what + "\n";
  }

  fs::path dir_;
  bool started_ = false;
  std::array<Node, kNodes> nodes_;
  std::unique_ptr<Process> collector_, agent_, sim_;
  int collector_metrics_port_ = 0, agent_metrics_port_ = 0;
  fs::path agent_socket_;
  std::atomic<bool> feeding_{false};
  std::atomic<int64_t> fed_{0};
  std::thread feeder_;
  Clock::time_point load_start_;
  std::string timeline_;
};

TEST_F(NatsCluster, KillingTheCollectorsNodeAndADevicesNodeLosesNothingAndDoublesNothing) {
  constexpr int kDevicesNode = 0, kCollectorNode = 1, kAgentNode = 2;
  const fs::path db = dir_ / "collector.db";
  const fs::path collector_config = dir_ / "collector.toml";
  const fs::path collector_log = dir_ / "collector.log";
  std::ofstream(collector_config) << "[mqtt]\nbroker = \"" << uri(kCollectorNode) << "\"\n"
                                  << "client_id = \"nats-collector\"\n"
                                  << "reconnect_min = \"100ms\"\nreconnect_max = \"500ms\"\n"
                                  << "[storage]\npath = \"" << db.string() << "\"\n"
                                  << "commit_interval = \"50ms\"\n"
                                  << "[metrics]\nlisten = \"127.0.0.1:0\"\n";
  std::string error;
  collector_ = test_support::start_outpost_collector(
      dies_with_us({OUTPOST_COLLECTOR_BIN, "--config", collector_config.string()}),
      collector_config, collector_log, collector_metrics_port_, error);
  ASSERT_TRUE(collector_) << error << logs();

  const fs::path agent_config = dir_ / "agent.toml";
  const fs::path agent_log = dir_ / "agent.log";
  agent_socket_ = dir_ / "agent.sock";
  std::ofstream(agent_config) << "[device]\nsite = \"" << kSite << "\"\nid = \"" << kAgentDevice
                              << "\"\n[inputs]\nudp_listen = \"\"\nunix_socket = \""
                              << agent_socket_.string() << "\"\ntimestamp_precision = \"us\"\n"
                              << "[store]\npath = \"" << (dir_ / "agent.db").string() << "\"\n"
                              << "[batch]\nmax_readings = 50\nmax_delay = \"100ms\"\n"
                              << "[mqtt]\nbroker = \"" << uri(kAgentNode) << "\"\n"
                              << "keepalive = \"5s\"\nreconnect_min = \"100ms\"\n"
                              << "reconnect_max = \"500ms\"\ndata_delivery = \"end_to_end\"\n"
                              << "ack_timeout = \"2s\"\n"
                              << "[system]\ninterval = \"0s\"\n"
                              << "[metrics]\nlisten = \"127.0.0.1:0\"\n";
  test_support::AgentPorts agent_ports;
  agent_ = test_support::start_outpost_agent(
      dies_with_us({OUTPOST_AGENT_BIN, "--config", agent_config.string()}), agent_config, agent_log,
      agent_ports, error);
  ASSERT_TRUE(agent_) << error << logs();
  agent_metrics_port_ = agent_ports.metrics;

  // The load: the agent's feeder, and the simulator until it is told to stop (SIGTERM: it
  // drains, waits for the acknowledgements and writes its manifest).
  load_start_ = Clock::now();
  feeding_ = true;
  feeder_ = std::thread([this] { feed(); });
  const fs::path manifest = dir_ / "manifest.json";
  const fs::path sim_log = dir_ / "sim.log";
  sim_ = std::make_unique<Process>(dies_with_us({OUTPOST_SIM_BIN,
                                                 "--broker",
                                                 uri(kDevicesNode),
                                                 "--site",
                                                 kSite,
                                                 "--devices",
                                                 std::to_string(kSimDevices),
                                                 "--period",
                                                 "100ms",
                                                 "--batch-size",
                                                 "10",
                                                 "--logs-per-minute",
                                                 "0",
                                                 "--reconnect-max",
                                                 "1s",
                                                 "--duration",
                                                 "10m",
                                                 "--seed",
                                                 "7",
                                                 "--threads",
                                                 "1",
                                                 "--progress",
                                                 "--manifest",
                                                 manifest.string()}),
                                   sim_log);
  note("load starts: " + std::to_string(kSimDevices) + " simulated devices on n1, an agent on n3");

  auto stored_of = [&](const std::string& device) {
    Store s(db);
    return s.one(
        "SELECT count(*) FROM readings r JOIN sensors s ON s.id = r.sensor_id JOIN devices d "
        "ON d.id = s.device_id WHERE d.device = ?",
        device);
  };
  ASSERT_TRUE(wait_until(
      [&] { return stored_of(kAgentDevice) > 0 && stored_of(std::string(kSite) + "-0001") > 0; },
      15s))
      << "nothing stored from the devices\n"
      << tail(collector_log) << tail(sim_log) << tail(agent_log) << logs();
  note("readings from both kinds of device stored");

  // Kills node `i` with SIGKILL, waits until the cluster has taken `taken` more messages
  // without it (as node `witness` counts them: proof that it went on accepting the devices'
  // publishes; 0: no wait), and starts it again on its ports.
  auto outage = [&](int i, int witness, int64_t taken) {
    const int64_t before = messages_accepted(witness);
    ASSERT_GE(before, 0) << logs();
    const std::string led = leaders(witness);
    const auto killed_at = Clock::now();
    kill_node(i);
    note("n" + std::to_string(i + 1) + " killed (kill -9); JetStream had taken " +
         std::to_string(before) + " messages; leaders: " + led);
    int64_t now = before;
    std::optional<double> first;  // when the first message after the kill was taken
    if (taken > 0) {
      ASSERT_TRUE(wait_until(
          [&] {
            now = std::max(now, messages_accepted(witness));
            if (!first && now > before) {
              first = std::chrono::duration<double>(Clock::now() - killed_at).count();
            }
            return now >= before + taken;
          },
          25s))
          << "the cluster did not take messages without n" << i + 1 << " (" << now - before
          << " taken)" << logs();
      char took[128];
      std::snprintf(took, sizeof took,
                    "%lld more taken without it, %.2f s after the kill (the first %.2f s after)",
                    static_cast<long long>(now - before),
                    std::chrono::duration<double>(Clock::now() - killed_at).count(), *first);
      note(took);
    }
    ASSERT_TRUE(start_node(i)) << logs();
    note("n" + std::to_string(i + 1) + " started again");
    ASSERT_TRUE(wait_until([&] { return streams_current(i); }, 30s))
        << "n" << i + 1 << " did not catch up: "
        << monitor_get(nodes_[i].http, "/healthz?js-server-only=true").second
        << monitor_get(nodes_[i].http, "/jsz?accounts=true&streams=true").second << logs();
    note("n" + std::to_string(i + 1) + " current with JetStream's leaders");
  };

  // The collector's node: the collector follows its one broker address, so it waits for n2
  // and takes what JetStream kept for its session.
  const std::size_t connects = test_support::count_in_file(collector_log, "connected again");
  outage(kCollectorNode, kDevicesNode, 40);  // 2 s of the devices' messages
  if (HasFatalFailure()) return;
  ASSERT_TRUE(wait_until(
      [&] { return test_support::count_in_file(collector_log, "connected again") > connects; },
      20s))
      << tail(collector_log) << logs();
  note("the collector is connected again");

  // The simulated devices' node, started again at once: every device loses its connection,
  // reconnects (through JetStream's election if n1 led anything) and sends again what was not
  // acknowledged.
  outage(kDevicesNode, kAgentNode, 0);
  if (HasFatalFailure()) return;
  ASSERT_TRUE(
      wait_until([&] { return mqtt_clients(kDevicesNode, "outpost-sim-") == kSimDevices; }, 30s))
      << "the simulated devices did not reconnect to n1\n"
      << tail(sim_log) << logs();
  note("every simulated device connected again");

  // The end of the load: the simulator stops (and waits for its acknowledgements), the feeder
  // stops, and the agent's queue empties once the collector has acknowledged every batch.
  feeding_ = false;
  feeder_.join();
  const int sim_exit = sim_->stop(SIGTERM, 30s);
  sim_.reset();
  note("load ends: the simulator exited with " + std::to_string(sim_exit));
  ASSERT_EQ(sim_exit, 0) << tail(sim_log);
  const auto devices = test_support::read_manifest(manifest);
  ASSERT_EQ(devices.size(), static_cast<std::size_t>(kSimDevices)) << tail(sim_log);

  const int64_t fed = fed_;
  auto agent_done = [&] {
    const std::string m = agent_metrics();
    using test_support::prometheus_sample;
    return prometheus_sample(m, "outpost_agent_accepted_total{kind=\"reading\"}") == fed &&
           prometheus_sample(m, "outpost_agent_persisted_total") == fed &&
           prometheus_sample(m, "outpost_agent_queue_items") == 0 &&
           prometheus_sample(m, "outpost_agent_queue_messages") == 0;
  };
  ASSERT_TRUE(wait_until(agent_done, 20s)) << "the agent did not deliver everything (fed " << fed
                                           << ")" << agent_metrics() << tail(agent_log);
  uint64_t sim_sent = 0;
  for (const auto& [device, d] : devices) sim_sent += d.number("readings_sent");
  Store store(db);
  auto stored_total = [&] { return store.one("SELECT count(*) FROM readings"); };
  ASSERT_TRUE(
      wait_until([&] { return stored_total() >= static_cast<int64_t>(sim_sent) + fed; }, 20s))
      << "stored " << stored_total() << " of " << sim_sent + static_cast<uint64_t>(fed)
      << tail(collector_log);
  note("everything sent is stored");

  // The agent: each value 0 .. fed-1 once.
  std::map<int64_t, int64_t> copies;
  store.each(
      "SELECT r.value, count(*) FROM readings r JOIN sensors s ON s.id = r.sensor_id JOIN "
      "devices d ON d.id = s.device_id WHERE d.device = ? GROUP BY r.value",
      [&](auto& s) { copies[s.integer(0)] = s.integer(1); }, kAgentDevice);
  int64_t agent_lost = 0, agent_twice = 0, agent_unexpected = 0;
  for (int64_t v = 0; v < fed; ++v) {
    if (!copies.count(v)) ++agent_lost;
  }
  for (const auto& [v, n] : copies) {
    if (v < 0 || v >= fed) agent_unexpected += n;
    agent_twice += n - 1;
  }
  // The simulator: every (epoch, seq) of the manifest stored, with the readings it counted,
  // and no batch it did not count (one the broker never acknowledged).
  uint64_t sim_stored = 0, sim_missing_batches = 0, sim_unacked_batches = 0;
  for (const auto& [device, d] : devices) {
    const auto want = d.seqs();
    std::set<std::pair<uint64_t, uint64_t>> have;
    store.each(
        "SELECT b.epoch, b.seq FROM batches b JOIN devices d ON d.id = b.device_id "
        "WHERE d.device = ? AND b.kind = 0",
        [&](auto& s) {
          have.insert({static_cast<uint64_t>(s.integer(0)), static_cast<uint64_t>(s.integer(1))});
        },
        device);
    for (const auto& k : want) sim_missing_batches += have.count(k) ? 0 : 1;
    for (const auto& k : have) sim_unacked_batches += want.count(k) ? 0 : 1;
    sim_stored += static_cast<uint64_t>(stored_of(device));
  }
  const int64_t gaps = store.one("SELECT coalesce(sum(gaps), 0) FROM devices");
  const auto duplicates =
      test_support::prometheus_sample(collector_metrics(), "outpost_collector_duplicates_total");

  std::ostringstream report;
  report << timeline_ << "simulator: " << sim_sent << " readings sent (manifest), " << sim_stored
         << " stored; " << sim_missing_batches << " acknowledged batches missing, "
         << sim_unacked_batches << " stored batches it never counted\n"
         << "agent:     " << fed << " readings fed, " << copies.size() << " distinct stored, "
         << agent_lost << " lost, " << agent_twice << " stored twice, " << agent_unexpected
         << " unexpected; it lost its connection "
         << test_support::count_in_file(agent_log, "connection to") << " times, the broker "
         << "refused its ack subscription "
         << test_support::count_in_file(agent_log, "refused the subscription") << " times\n"
         << "collector: " << duplicates.value_or(-1)
         << " duplicate messages received (re-sends, not stored again); data gaps " << gaps << "\n";
  std::cout << report.str();

  EXPECT_EQ(sim_stored, sim_sent) << report.str();
  EXPECT_EQ(sim_missing_batches, 0u) << report.str();
  EXPECT_EQ(sim_unacked_batches, 0u) << report.str();
  EXPECT_EQ(agent_lost, 0) << report.str();
  EXPECT_EQ(agent_twice, 0) << report.str();
  EXPECT_EQ(agent_unexpected, 0) << report.str();
  EXPECT_EQ(gaps, 0) << report.str();
  EXPECT_EQ(stored_total(), static_cast<int64_t>(sim_sent) + fed) << report.str();
  EXPECT_EQ(agent_->stop(SIGTERM), 0) << tail(agent_log);
  EXPECT_EQ(collector_->stop(SIGTERM), 0) << tail(collector_log);
}

}  // namespace
}  // namespace outpost
