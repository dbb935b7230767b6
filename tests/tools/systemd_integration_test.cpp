// The real outpost-agent and outpost-collector under a stand-in for systemd: NOTIFY_SOCKET and
// WATCHDOG_USEC point at the test's socket. READY=1 once each does its job (a collector with
// no broker included), WATCHDOG=1 keeps coming, SIGHUP is RELOADING=1 then READY=1 with the new
// log level in force and the settings that wait for a restart named, a broken file on SIGHUP
// keeps it running, SIGTERM is STOPPING=1 and exit 0; a collector waiting for PostgreSQL at
// start extends the start timeout; under the journal, lines carry "<N>".
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "support/broker_test.h"
#include "support/daemons.h"
#include "support/notify_socket.h"
#include "support/process.h"

namespace outpost {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using test_support::has_line;
using test_support::NotifySocket;
using test_support::Process;
using test_support::value_of;

// WATCHDOG_USEC for the children: a ping every 0.5 s.
constexpr const char* kWatchdogUsec = "1000000";

class Systemd : public test_support::BrokerTest {
 protected:
  Systemd() : BrokerTest("outpost_sd_it") {}
  void SetUp() override {
    BrokerTest::SetUp();
    systemd_ = std::make_unique<NotifySocket>((dir_ / "notify").string());
    agent_config_ = dir_ / "agent.toml";
    collector_config_ = dir_ / "collector.toml";
  }
  void TearDown() override {
    process_.reset();
    systemd_.reset();
    BrokerTest::TearDown();
  }
  // `program` behind env(1), which sets the variables systemd would and execs it (same pid).
  std::vector<std::string> under_systemd(const std::string& program, const fs::path& config,
                                         std::vector<std::string> extra_env = {}) {
    std::vector<std::string> argv = {"env", "NOTIFY_SOCKET=" + systemd_->address(),
                                     std::string("WATCHDOG_USEC=") + kWatchdogUsec};
    argv.insert(argv.end(), extra_env.begin(), extra_env.end());
    argv.insert(argv.end(), {program, "--config", config.string()});
    return argv;
  }
  // Ports 0 until the agent started (start_outpost_agent assigns them), then the ones it holds.
  void write_agent_config(const std::string& level, const std::string& broker) {
    const auto at = [](int port) { return "\"127.0.0.1:" + std::to_string(port) + "\"\n"; };
    std::ofstream(agent_config_) << "[metrics]\nlisten = " << at(ports_.metrics)
                                 << "[system]\ninterval = \"0s\"\n"
                                 << "[device]\nsite = \"lab\"\nid = \"gw-1\"\n"
                                 << "[inputs]\nudp_listen = " << at(ports_.udp)
                                 << "unix_socket = \"" << (dir_ / "agent.sock").string() << "\"\n"
                                 << "[store]\npath = \"" << (dir_ / "agent.db").string() << "\"\n"
                                 << "[mqtt]\nbroker = \"" << broker << "\"\n"
                                 << "[log]\nlevel = \"" << level << "\"\n";
  }
  void write_collector_config(const std::string& level, const std::string& broker,
                              const std::string& commit_interval = "50ms") {
    std::ofstream(collector_config_) << "[mqtt]\nbroker = \"" << broker << "\"\n"
                                     << "client_id = \"collector-sd\"\n"
                                     << "reconnect_min = \"100ms\"\nreconnect_max = \"500ms\"\n"
                                     << "[storage]\npath = \"" << (dir_ / "c.db").string()
                                     << "\"\ncommit_interval = \"" << commit_interval << "\"\n"
                                     << "[metrics]\nlisten = \"\"\n"
                                     << "[log]\nlevel = \"" << level << "\"\n";
  }
  void break_config(const fs::path& config) {
    std::ofstream(config, std::ios::app) << "[mqtt\nthis is not toml\n";
  }
  // The index of the next datagram with `line` from `from` on; fails the test without one.
  std::size_t expect_line(const std::string& line, std::size_t from,
                          std::chrono::milliseconds timeout = 10s) {
    const auto at = systemd_->wait_for_line(line, from, timeout);
    EXPECT_TRUE(at) << "no " << line << " after message " << from << "; log:\n"
                    << test_support::read_text(log_);
    return at ? *at : systemd_->messages().size();
  }
  std::string message(std::size_t at) {
    const auto all = systemd_->messages();
    return at < all.size() ? all[at] : "";
  }
  // Three more WATCHDOG=1 after `from`: the pings keep coming.
  void expect_pings(std::size_t from) {
    std::size_t at = from;
    for (int i = 0; i < 3; ++i) at = expect_line("WATCHDOG=1", at) + 1;
  }
  // SIGHUP: RELOADING=1 (with MONOTONIC_USEC) and then READY=1; returns the READY's index.
  std::size_t reload(std::size_t from) {
    EXPECT_EQ(::kill(process_->pid(), SIGHUP), 0);
    const std::size_t reloading = expect_line("RELOADING=1", from);
    EXPECT_TRUE(value_of(message(reloading), "MONOTONIC_USEC")) << message(reloading);
    return expect_line("READY=1", reloading + 1);
  }

  std::unique_ptr<NotifySocket> systemd_;
  fs::path agent_config_, collector_config_, log_;
  std::unique_ptr<Process> process_;
  test_support::AgentPorts ports_;
};

TEST_F(Systemd, AgentReadyPingsReloadsAndStops) {
  write_agent_config("info", broker_->uri());
  log_ = dir_ / "agent.log";
  std::string error;
  process_ = test_support::start_outpost_agent(under_systemd(OUTPOST_AGENT_BIN, agent_config_),
                                               agent_config_, log_, ports_, error);
  ASSERT_TRUE(process_) << error;
  const std::size_t ready = expect_line("READY=1", 0);
  const auto status = value_of(message(ready), "STATUS");
  ASSERT_TRUE(status) << message(ready);
  EXPECT_NE(status->find("to " + broker_->uri() + ", "), std::string::npos) << *status;
  EXPECT_NE(status->find(" queued"), std::string::npos) << *status;
  expect_pings(ready);
  // Connected soon: the status line says so.
  EXPECT_TRUE(systemd_->wait_for(
      [&](const std::string& m) {
        return value_of(m, "STATUS").value_or("").rfind("connected to " + broker_->uri(), 0) == 0;
      },
      0, 10s))
      << test_support::read_text(log_);

  // A new log level applies at once; a changed broker waits for a restart, and is named.
  write_agent_config("error", "tcp://127.0.0.1:1");
  std::size_t at = reload(ready + 1);
  EXPECT_EQ(test_support::count_in_file(log_, "SIGHUP: reloaded " + agent_config_.string() +
                                                  ": log level is now error; changed but applied "
                                                  "only after a restart (still running with the "
                                                  "previous values): mqtt.broker"),
            1u)
      << test_support::read_text(log_);
  expect_pings(at);

  // A broken file: the running configuration stays, and the log says why.
  break_config(agent_config_);
  at = reload(at + 1);
  EXPECT_TRUE(process_->running());
  EXPECT_EQ(test_support::count_in_file(log_, "SIGHUP: " + agent_config_.string() +
                                                  " has errors: keeping the running configuration"),
            1u)
      << test_support::read_text(log_);
  EXPECT_NE(value_of(message(at), "STATUS").value_or("").find("the last reload failed"),
            std::string::npos)
      << message(at);
  expect_pings(at);

  // Stop: STOPPING=1, exit 0, and the info line of the stop is not logged at level error.
  EXPECT_EQ(::kill(process_->pid(), SIGTERM), 0);
  expect_line("STOPPING=1", at + 1);
  EXPECT_EQ(process_->stop(0), 0);  // waits for the exit
  const std::string logged = test_support::read_text(log_);
  EXPECT_NE(logged.find("started:"), std::string::npos) << logged;
  EXPECT_EQ(logged.find("signal 15: stopping"), std::string::npos) << logged;
}

TEST_F(Systemd, CollectorReadyPingsReloadsAndStops) {
  write_collector_config("info", broker_->uri());
  log_ = dir_ / "collector.log";
  process_ =
      std::make_unique<Process>(under_systemd(OUTPOST_COLLECTOR_BIN, collector_config_), log_);
  const std::size_t ready = expect_line("READY=1", 0);
  expect_pings(ready);
  EXPECT_TRUE(systemd_->wait_for(
      [&](const std::string& m) {
        return value_of(m, "STATUS").value_or("").rfind("connected to " + broker_->uri(), 0) == 0;
      },
      0, 10s))
      << test_support::read_text(log_);

  write_collector_config("warn", broker_->uri(), "200ms");
  std::size_t at = reload(ready + 1);
  EXPECT_EQ(test_support::count_in_file(
                log_, "SIGHUP: reloaded " + collector_config_.string() +
                          ": log level is now warn; changed but applied only after a restart "
                          "(still running with the previous values): storage.commit_interval"),
            1u)
      << test_support::read_text(log_);
  expect_pings(at);

  break_config(collector_config_);
  at = reload(at + 1);
  EXPECT_TRUE(process_->running());
  EXPECT_EQ(test_support::count_in_file(log_, "SIGHUP: " + collector_config_.string() +
                                                  " has errors: keeping the running configuration"),
            1u)
      << test_support::read_text(log_);
  expect_pings(at);

  // The file fixed again, unchanged from what runs: a reload with nothing to say at level warn.
  write_collector_config("warn", broker_->uri(), "50ms");
  at = reload(at + 1);
  EXPECT_EQ(value_of(message(at), "STATUS").value_or("").find("reload failed"), std::string::npos)
      << message(at);

  EXPECT_EQ(::kill(process_->pid(), SIGTERM), 0);
  expect_line("STOPPING=1", at + 1);
  EXPECT_EQ(process_->stop(0), 0);  // waits for the exit
  const std::string logged = test_support::read_text(log_);
  EXPECT_EQ(logged.find("draining and stopping"), std::string::npos) << "info, at level warn";
  EXPECT_EQ(logged.find("nothing changed that applies at once"), std::string::npos) << logged;
}

// Ready means storage open and loops started, not "subscribed": with no broker it is ready,
// and the status line says it is connecting.
TEST_F(Systemd, CollectorWithoutABrokerIsReadyAndSaysItIsConnecting) {
  test_support::RefusingPort nobody;
  const std::string broker = "tcp://127.0.0.1:" + std::to_string(nobody.port());
  write_collector_config("info", broker);
  log_ = dir_ / "collector.log";
  process_ =
      std::make_unique<Process>(under_systemd(OUTPOST_COLLECTOR_BIN, collector_config_), log_);
  const std::size_t ready = expect_line("READY=1", 0);
  EXPECT_EQ(value_of(message(ready), "STATUS").value_or("").rfind("connecting to " + broker, 0), 0u)
      << message(ready);
  expect_pings(ready);
  EXPECT_EQ(process_->stop(SIGTERM), 0);
  EXPECT_GE(systemd_->count_line("STOPPING=1"), 1u);
}

// A PostgreSQL server that does not answer at start is waited for: not ready, and each retry
// pushes the start timeout out (EXTEND_TIMEOUT_USEC=) and says why in the status line.
TEST_F(Systemd, CollectorWaitingForPostgresExtendsTheStartTimeoutAndIsNotReady) {
  test_support::RefusingPort nobody;
  std::ofstream(collector_config_) << "[mqtt]\nbroker = \"" << broker_->uri() << "\"\n"
                                   << "[storage]\nkind = \"postgres\"\n"
                                   << "dsn = \"host=127.0.0.1 port=" << nobody.port()
                                   << " dbname=outpost user=outpost connect_timeout=2\"\n"
                                   << "journal_dir = \"" << (dir_ / "journal").string() << "\"\n"
                                   << "[metrics]\nlisten = \"\"\n";
  log_ = dir_ / "collector.log";
  process_ =
      std::make_unique<Process>(under_systemd(OUTPOST_COLLECTOR_BIN, collector_config_), log_);
  // The first wait is 1 s: 31 s more; the second 2 s: 32 s more.
  const std::size_t first = expect_line("EXTEND_TIMEOUT_USEC=31000000", 0);
  expect_line("EXTEND_TIMEOUT_USEC=32000000", first + 1);
  const auto status = systemd_->wait_for(
      [](const std::string& m) {
        return value_of(m, "STATUS").value_or("").rfind("waiting for the database: ", 0) == 0;
      },
      0, 5s);
  ASSERT_TRUE(status) << test_support::read_text(log_);
  EXPECT_NE(message(*status).find("cannot connect"), std::string::npos) << message(*status);
  EXPECT_EQ(systemd_->count_line("READY=1"), 0u);
  EXPECT_EQ(process_->stop(SIGTERM), 0) << test_support::read_text(log_);
}

// Under the journal (JOURNAL_STREAM names stderr's file), each line starts with its priority.
TEST_F(Systemd, AgentLinesCarryJournalPrioritiesWhenStderrIsTheJournal) {
  write_agent_config("info", broker_->uri());
  log_ = dir_ / "agent.log";
  std::ofstream(log_).flush();
  struct stat st {};
  ASSERT_EQ(::stat(log_.c_str(), &st), 0);
  std::string error;
  process_ = test_support::start_outpost_agent(
      under_systemd(
          OUTPOST_AGENT_BIN, agent_config_,
          {"JOURNAL_STREAM=" + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino)}),
      agent_config_, log_, ports_, error);
  ASSERT_TRUE(process_) << error;
  test_support::send_udp(ports_.udp, "not a line\n");  // a warning
  ASSERT_TRUE(test_support::wait_until(
      [&] { return test_support::count_in_file(log_, "<4>warning rejected input line") > 0; }, 10s))
      << test_support::read_text(log_);
  EXPECT_EQ(process_->stop(SIGTERM), 0);
  std::istringstream lines(test_support::read_text(log_));
  int n = 0;
  for (std::string line; std::getline(lines, line); ++n) {
    EXPECT_TRUE(line.rfind("<6>info  ", 0) == 0 || line.rfind("<4>warning ", 0) == 0 ||
                line.rfind("<7>debug ", 0) == 0)
        << line;
  }
  EXPECT_GE(n, 3);
  EXPECT_EQ(test_support::count_in_file(log_, "<6>info  outpost-agent "), 1u)
      << "the start line, without time or program name";
}

}  // namespace
}  // namespace outpost
