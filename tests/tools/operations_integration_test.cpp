// What an operator relies on, over the real binaries: /healthz, /readyz and /status beside
// /metrics (and /metrics passing promtool), one agent per store and one collector per database
// (a second exits 75 naming the first's pid), and the agent's Unix socket (a live one is never
// taken over or deleted, a stale one is replaced, mode set as configured).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

#include "support/broker_test.h"
#include "support/daemons.h"
#include "support/process.h"
#include "support/promtool.h"

namespace outpost {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using test_support::Process;
using test_support::wait_until;

// One request, written as given; the raw response.
std::string http_raw(int port, const std::string& request) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr = test_support::loopback_address(port);
  std::string response;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::send(fd, request.data(), request.size(), 0) == static_cast<ssize_t>(request.size())) {
    char buf[4096];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) response.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return response;
}

int status_of(const std::string& response) {
  return response.size() > 12 ? std::atoi(response.c_str() + 9) : 0;
}

std::string body_of(const std::string& response) {
  const auto at = response.find("\r\n\r\n");
  return at == std::string::npos ? "" : response.substr(at + 4);
}

// A Unix datagram socket bound at `path` and held open (a live reader), or closed (stale).
int bind_unix(const fs::path& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM, 0);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

class Operations : public test_support::BrokerTest {
 protected:
  Operations() : BrokerTest("outpost_ops_it") {}
  void SetUp() override {
    BrokerTest::SetUp();
    socket_ = dir_ / "agent.sock";
    agent_config_ = dir_ / "agent.toml";
    write_agent_config("");
    collector_config_ = dir_ / "collector.toml";
    std::ofstream(collector_config_)
        << "[mqtt]\nbroker = \"" << broker_->uri() << "\"\n"
        << "client_id = \"collector-ops\"\n"
        << "reconnect_min = \"100ms\"\nreconnect_max = \"500ms\"\n"
        << "[storage]\npath = \"" << (dir_ / "c.db").string() << "\"\njournal_dir = \""
        << (dir_ / "journal").string() << "\"\ncommit_interval = \"50ms\"\n"
        << "[metrics]\nlisten = \"127.0.0.1:0\"\n";
  }
  void TearDown() override {
    second_.reset();
    agent_.reset();
    collector_.reset();
    BrokerTest::TearDown();
  }
  void write_agent_config(const std::string& input_keys) {
    std::ofstream(agent_config_) << "[metrics]\nlisten = \"127.0.0.1:0\"\n"
                                 << "[system]\ninterval = \"0s\"\n"
                                 << "[device]\nsite = \"lab\"\nid = \"gw-1\"\n"
                                 << "[inputs]\nudp_listen = \"127.0.0.1:0\"\n"
                                 << "unix_socket = \"" << socket_.string() << "\"\n"
                                 << input_keys << "[store]\npath = \""
                                 << (dir_ / "agent.db").string() << "\"\n"
                                 << "[mqtt]\nbroker = \"" << broker_->uri() << "\"\n"
                                 << "data_delivery = \"at_least_once\"\n";
  }
  void start_agent() {
    std::string error;
    test_support::AgentPorts ports;
    agent_ =
        test_support::start_outpost_agent({OUTPOST_AGENT_BIN, "--config", agent_config_.string()},
                                          agent_config_, dir_ / "agent.log", ports, error);
    ASSERT_TRUE(agent_) << error;
    agent_port_ = ports.metrics;
  }
  void start_collector() {
    std::string error;
    collector_ = test_support::start_outpost_collector(
        {OUTPOST_COLLECTOR_BIN, "--config", collector_config_.string()}, collector_config_,
        dir_ / "collector.log", collector_port_, error);
    ASSERT_TRUE(collector_) << error;
  }
  // Runs `argv` to its end (at most 10 s); its exit code and what it logged.
  int run_to_end(const std::vector<std::string>& argv, const fs::path& log) {
    second_ = std::make_unique<Process>(argv, log);
    return second_->stop(0, 10s);
  }

  fs::path socket_, agent_config_, collector_config_;
  std::unique_ptr<Process> agent_, collector_, second_;
  int agent_port_ = 0;
  int collector_port_ = 0;
};

TEST_F(Operations, AgentServesHealthReadinessStatusAndLintCleanMetrics) {
  start_agent();
  ASSERT_TRUE(wait_until(
      [&] { return status_of(test_support::http_get(agent_port_, "/healthz")) == 200; }, 10s))
      << test_support::http_get(agent_port_, "/healthz");
  const std::string ready = test_support::http_get(agent_port_, "/readyz");
  EXPECT_EQ(status_of(ready), 200) << ready;
  const std::string status = body_of(test_support::http_get(agent_port_, "/status"));
  EXPECT_NE(status.find("\"program\":\"outpost-agent\""), std::string::npos) << status;
  EXPECT_NE(status.find("\"ready\":true"), std::string::npos) << status;
  EXPECT_NE(status.find("\"store\":{\"ok\":true}"), std::string::npos) << status;
  EXPECT_EQ(status_of(test_support::http_get(agent_port_, "/nope")), 404);
  const std::string post = http_raw(agent_port_, "POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(status_of(post), 405) << post;
  EXPECT_NE(post.find("\r\nAllow: GET, HEAD\r\n"), std::string::npos) << post;
  if (!test_support::have_promtool()) GTEST_SKIP() << "promtool missing: metrics not linted";
  const std::string metrics = body_of(test_support::http_get(agent_port_, "/metrics"));
  ASSERT_NE(metrics.find("outpost_agent_uptime_seconds"), std::string::npos) << metrics;
  EXPECT_EQ(test_support::promtool_problems(metrics), "");
}

TEST_F(Operations, CollectorReadyWhileSubscribedAndMetricsLintClean) {
  start_collector();
  ASSERT_TRUE(wait_until(
      [&] { return status_of(test_support::http_get(collector_port_, "/readyz")) == 200; }, 10s))
      << test_support::http_get(collector_port_, "/readyz");
  EXPECT_EQ(status_of(test_support::http_get(collector_port_, "/healthz")), 200);
  const std::string status = body_of(test_support::http_get(collector_port_, "/status"));
  EXPECT_NE(status.find("\"program\":\"outpost-collector\""), std::string::npos) << status;
  EXPECT_NE(status.find("\"connected\":true"), std::string::npos) << status;
  if (test_support::have_promtool()) {
    const std::string metrics = body_of(test_support::http_get(collector_port_, "/metrics"));
    ASSERT_NE(metrics.find("outpost_collector_commit_seconds_total"), std::string::npos);
    EXPECT_EQ(test_support::promtool_problems(metrics), "");
  }
  // The broker goes: still alive (the storage loop turns), no longer ready.
  broker_->stop();
  ASSERT_TRUE(wait_until(
      [&] { return status_of(test_support::http_get(collector_port_, "/readyz")) == 503; }, 10s));
  const std::string ready = test_support::http_get(collector_port_, "/readyz");
  EXPECT_NE(body_of(ready).find("subscribed: not connected to"), std::string::npos) << ready;
  EXPECT_EQ(status_of(test_support::http_get(collector_port_, "/healthz")), 200);
}

TEST_F(Operations, SecondAgentOnTheStoreExits75AndLeavesTheFirstOnesSocket) {
  start_agent();
  const fs::path log = dir_ / "second.log";
  EXPECT_EQ(run_to_end({OUTPOST_AGENT_BIN, "--config", agent_config_.string()}, log), 75);
  const std::string said = test_support::read_text(log);
  EXPECT_NE(
      said.find("store " + (dir_ / "agent.db").string() +
                " is in use by another outpost-agent (pid " + std::to_string(agent_->pid()) + ")"),
      std::string::npos)
      << said;
  EXPECT_TRUE(fs::is_socket(socket_)) << "the first agent's socket was deleted";
  EXPECT_TRUE(agent_->running());
  // The first one still answers on it.
  EXPECT_EQ(
      run_to_end({OUTPOST_AGENT_BIN, "--config", agent_config_.string(), "send", "temp value=1"},
                 dir_ / "send.log"),
      0)
      << test_support::read_text(dir_ / "send.log");
}

TEST_F(Operations, LiveSocketRefusedStaleSocketReplacedModeApplied) {
  // Another program reads the path: the agent does not take it over.
  const int live = bind_unix(socket_);
  ASSERT_GE(live, 0);
  test_support::assign_ports(agent_config_, test_support::kAgentPorts);
  EXPECT_EQ(run_to_end({OUTPOST_AGENT_BIN, "--config", agent_config_.string()}, dir_ / "live.log"),
            1);
  EXPECT_NE(test_support::read_text(dir_ / "live.log").find("another process reads it"),
            std::string::npos)
      << test_support::read_text(dir_ / "live.log");
  EXPECT_TRUE(fs::is_socket(socket_));
  ::close(live);  // now a stale file: replaced
  write_agent_config("unix_socket_mode = \"0620\"\n");
  start_agent();
  struct stat st {};
  ASSERT_EQ(::stat(socket_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0620u);
  EXPECT_EQ(st.st_gid, ::getegid());
  EXPECT_EQ(agent_->stop(SIGTERM), 0);
  EXPECT_FALSE(fs::exists(socket_)) << "its own socket is removed at exit";
}

TEST_F(Operations, SecondCollectorOnTheDatabaseExits75) {
  start_collector();
  const fs::path log = dir_ / "second.log";
  EXPECT_EQ(run_to_end({OUTPOST_COLLECTOR_BIN, "--config", collector_config_.string()}, log), 75);
  const std::string said = test_support::read_text(log);
  EXPECT_NE(said.find("database " + (dir_ / "c.db").string() +
                      " is in use by another outpost-collector (pid " +
                      std::to_string(collector_->pid()) + ")"),
            std::string::npos)
      << said;
  EXPECT_TRUE(collector_->running());
  // Another database, the same journal directory: refused too.
  EXPECT_EQ(run_to_end({OUTPOST_COLLECTOR_BIN, "--config", collector_config_.string(), "--db",
                        (dir_ / "other.db").string()},
                       dir_ / "third.log"),
            75);
  EXPECT_NE(test_support::read_text(dir_ / "third.log")
                .find("journal " + (dir_ / "journal").string() + " is in use by another"),
            std::string::npos)
      << test_support::read_text(dir_ / "third.log");
}

// A refused connection says why, in words, once: bad credentials are the broker's CONNACK.
TEST_F(Operations, BadCredentialsAreNamedInTheLog) {
  test_support::Mosquitto guarded(dir_ / "guarded");
  guarded.require_password("gw", "right");
  guarded.start();
  std::ofstream(collector_config_)
      << "[mqtt]\nbroker = \"" << guarded.uri() << "\"\n"
      << "username = \"gw\"\npassword = \"wrong\"\n"
      << "reconnect_min = \"50ms\"\nreconnect_max = \"100ms\"\n"
      << "[storage]\npath = \"" << (dir_ / "c.db").string() << "\"\n[metrics]\nlisten = \"\"\n";
  const fs::path log = dir_ / "refused.log";
  collector_ = std::make_unique<Process>(
      std::vector<std::string>{OUTPOST_COLLECTOR_BIN, "--config", collector_config_.string()}, log);
  const std::string words =
      "not authorised (CONNACK 5): the broker refused these credentials (check mqtt.username, "
      "mqtt.password and the broker's ACL)";
  ASSERT_TRUE(wait_until([&] { return test_support::count_in_file(log, words) > 0; }, 10s))
      << test_support::read_text(log);
  // Many failed attempts (50-100 ms apart), one line: the state and its reason did not change.
  ASSERT_TRUE(wait_until(
      [&] {
        return test_support::count_in_file(guarded.log_file(), "not authorised") >= 5 ||
               test_support::count_in_file(guarded.log_file(), "disconnected") >= 5;
      },
      10s));
  EXPECT_EQ(test_support::count_in_file(log, words), 1u) << test_support::read_text(log);
  EXPECT_EQ(test_support::count_in_file(log, "wrong"), 0u) << "the password is never logged";
}

}  // namespace
}  // namespace outpost
