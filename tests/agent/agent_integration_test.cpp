// outpost-agent end to end: a real mosquitto on a free loopback port, the real agent binary,
// real SQLite files, real signals. Messages are checked by decoding what the broker delivers.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <set>
#include <stdexcept>

#include "outpost/common/codec.h"
#include "outpost/common/topics.h"
#include "support/broker_test.h"
#include "support/daemons.h"
#include "support/mqtt_clients.h"
#include "support/process.h"

namespace outpost {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using test_support::Process;
using test_support::wait_until;

// Subscribes to everything under outpost/v1/ and keeps what arrives, decoded.
class Subscriber {
 public:
  explicit Subscriber(const std::string& uri, const std::string& user = "",
                      const std::string& password = "")
      : tap_(uri, "outpost/v1/#", user, password) {}

  // Pulls whatever has arrived.
  void pump() {
    for (const auto& msg : tap_.take()) {
      auto topic = common::parse_device_topic(msg->get_topic());
      if (!topic.ok()) continue;
      auto env = common::decode(test_support::payload_bytes(*msg));
      ASSERT_TRUE(env.ok()) << msg->get_topic() << ": " << env.error().detail;
      messages.push_back({topic.value(), std::move(env).value()});
    }
  }

  // Integer readings of data messages, deduplicated by (epoch, seq) as the
  // collector does, in (seal order) sequence order: value -> times stored.
  std::map<int64_t, int> stored_values() {
    pump();
    std::map<std::pair<uint64_t, uint64_t>, const common::Envelope*> unique;
    for (const auto& [topic, env] : messages) {
      if (topic.kind == common::PayloadKind::kReadings) unique[{env.epoch, env.seq}] = &env;
    }
    std::map<int64_t, int> values;
    for (const auto& [id, env] : unique) {
      for (const auto& r : std::get<common::ReadingBatch>(env->body).readings) {
        if (auto* v = std::get_if<int64_t>(&r.value)) ++values[*v];
      }
    }
    return values;
  }

  std::vector<std::pair<common::DeviceTopic, common::Envelope>> messages;

 private:
  test_support::MqttSubscriber tap_;
};

class AgentIntegration : public test_support::BrokerTest {
 protected:
  AgentIntegration() : BrokerTest("outpost_agent_it") {}
  void SetUp() override {
    BrokerTest::SetUp();
    config_ = dir_ / "agent.toml";
    // The ports ("127.0.0.1:0" here) are chosen by each start_agent().
    std::ofstream(config_) << "[metrics]\nlisten = \"127.0.0.1:0\"\n"
                           << "[system]\ninterval = \"0s\"\n"
                           << "[device]\nsite = \"lab\"\nid = \"gw-1\"\n"
                           << "[inputs]\nudp_listen = \"127.0.0.1:0\"\n"
                           << "unix_socket = \"" << (dir_ / "agent.sock").string() << "\"\n"
                           << "[store]\npath = \"" << (dir_ / "agent.db").string() << "\"\n"
                           << "flush_interval = \"50ms\"\n"
                           << "[batch]\nmax_delay = \"100ms\"\nmax_readings = 50\n"
                           << "[mqtt]\nbroker = \"" << broker_->uri() << "\"\n"
                           << "reconnect_min = \"1s\"\nreconnect_max = \"2s\"\n"
                           // No collector here: the broker's PUBACK is the end of delivery.
                           << "data_delivery = \"at_least_once\"\n"
                           << "logs_delivery = \"at_least_once\"\n";
  }
  void TearDown() override {
    agent_.reset();
    BrokerTest::TearDown();
  }

  // Starts the agent, waits until its inputs listen (datagrams sent earlier are lost) and
  // reads back the ports this run of it got.
  void start_agent() {
    std::string error;
    test_support::AgentPorts ports;
    agent_ = test_support::start_outpost_agent({OUTPOST_AGENT_BIN, "--config", config_.string()},
                                               config_, dir_ / "agent.log", ports, error);
    ASSERT_TRUE(agent_) << error;
    udp_port_ = ports.udp;
    metrics_port_ = ports.metrics;
  }

  std::string agent_status() {
    Process p({OUTPOST_AGENT_BIN, "--config", config_.string(), "status"}, dir_ / "status.log");
    p.stop(0, 10s);
    const std::string text = test_support::read_text(dir_ / "status.log");
    fs::remove(dir_ / "status.log");
    return text;
  }

  // Sends `count` lines "count value=<i>i" starting at `first`, 10 per datagram.
  void send_counts(int first, int count) {
    for (int i = first; i < first + count; i += 10) {
      std::string datagram;
      for (int k = i; k < std::min(first + count, i + 10); ++k) {
        datagram += "count value=" + std::to_string(k) + "i\n";
      }
      test_support::send_udp(udp_port_, datagram);
    }
  }

  std::string agent_log() { return test_support::read_text(dir_ / "agent.log"); }

  fs::path config_;
  int udp_port_ = 0;
  int metrics_port_ = 0;
  std::unique_ptr<Process> agent_;
};

TEST_F(AgentIntegration, LinesSentToTheSocketArriveDecodedOnTheBroker) {
  Subscriber sub(broker_->uri());
  start_agent();
  ASSERT_TRUE(
      wait_until([&] { return agent_log().find("connected to") != std::string::npos; }, 10s))
      << agent_log();
  test_support::send_udp(udp_port_,
                         "temp,room=lab,unit=Cel value=21.5\nnot line protocol\n"
                         "warn: disk almost full | mount=/data\n");
  bool data = false, logs = false;
  ASSERT_TRUE(wait_until(
      [&]() -> bool {
        sub.pump();
        for (const auto& [topic, env] : sub.messages) {
          EXPECT_EQ(topic.site, "lab");
          EXPECT_EQ(topic.device, "gw-1");
          EXPECT_EQ(env.device_id, "gw-1");
          if (topic.kind == common::PayloadKind::kReadings) {
            const auto& b = std::get<common::ReadingBatch>(env.body);
            EXPECT_EQ(b.readings.size(), 1u);
            if (b.readings.empty()) return true;
            EXPECT_EQ(b.sensor_names[b.readings[0].sensor], "temp,room=lab");
            EXPECT_EQ(b.unit_of(b.readings[0].sensor), "Cel");
            EXPECT_EQ(b.readings[0].value, common::Value(21.5));
            data = true;
          }
          if (topic.kind == common::PayloadKind::kLogs) {
            const auto& b = std::get<common::LogBatch>(env.body);
            EXPECT_EQ(b.records.size(), 1u);
            if (b.records.empty()) return true;
            EXPECT_EQ(b.records[0].message, "disk almost full");
            logs = true;
          }
        }
        return data && logs;
      },
      10s))
      << agent_log();
  EXPECT_NE(agent_log().find("rejected input line 2 (syntax)"), std::string::npos);

  // SIGTERM: clean exit, and the retained status says offline.
  EXPECT_EQ(agent_->stop(SIGTERM), 0) << agent_log();
  ASSERT_TRUE(wait_until(
      [&] {
        sub.pump();
        for (const auto& [topic, env] : sub.messages) {
          if (topic.kind == common::PayloadKind::kStatus &&
              std::get<common::DeviceStatus>(env.body).state == common::DeviceState::kOffline) {
            return true;
          }
        }
        return false;
      },
      5s));
}

TEST_F(AgentIntegration, BrokerOutageLosesNothingAndKeepsOrder) {
  start_agent();
  ASSERT_TRUE(
      wait_until([&] { return agent_log().find("connected to") != std::string::npos; }, 10s));
  broker_->stop();
  ASSERT_TRUE(
      wait_until([&] { return agent_log().find("connection to") != std::string::npos; }, 20s))
      << agent_log();
  send_counts(0, 300);
  broker_->start();
  Subscriber sub(broker_->uri());
  ASSERT_TRUE(wait_until([&] { return sub.stored_values().size() == 300; }, 30s))
      << sub.stored_values().size() << " of 300 arrived\n"
      << agent_log();
  for (const auto& [value, times] : sub.stored_values()) EXPECT_EQ(times, 1) << value;
  // Order per device: by sequence number, values never go backwards.
  std::map<uint64_t, const common::Envelope*> by_seq;
  for (const auto& [topic, env] : sub.messages) {
    if (topic.kind == common::PayloadKind::kReadings) by_seq[env.seq] = &env;
  }
  int64_t last = -1;
  for (const auto& [seq, env] : by_seq) {
    for (const auto& r : std::get<common::ReadingBatch>(env->body).readings) {
      const int64_t v = std::get<int64_t>(r.value);
      EXPECT_GT(v, last) << "seq " << seq;
      last = v;
    }
  }
}

TEST_F(AgentIntegration, KillNineKeepsWhatWasPersistedAndNeverReusesASequenceNumber) {
  Subscriber before(broker_->uri());
  start_agent();
  send_counts(0, 10);
  ASSERT_TRUE(wait_until([&] { return before.stored_values().size() == 10; }, 10s)) << agent_log();
  uint64_t max_seq_before = 0;
  for (const auto& [topic, env] : before.messages) {
    if (topic.kind == common::PayloadKind::kReadings)
      max_seq_before = std::max(max_seq_before, env.seq);
  }
  // The broker may hand the message on before its PUBACK reaches the agent; until the agent
  // has removed it, a restart rightly sends it again (at least once). Wait for the removal.
  ASSERT_TRUE(wait_until(
      [&] {
        const auto status = agent_status();
        return status.find("queued items     0\n") != std::string::npos &&
               status.find("unacked messages 0\n") != std::string::npos;
      },
      10s))
      << agent_status();

  broker_->stop();
  send_counts(10, 100);
  // Persisted: the store says so (read by another process, as an operator would).
  ASSERT_TRUE(wait_until(
      [&] { return agent_status().find("queued items     100\n") != std::string::npos; }, 10s))
      << agent_status();
  EXPECT_EQ(agent_->stop(SIGKILL), 128 + SIGKILL);

  broker_->start();
  Subscriber after(broker_->uri());
  start_agent();
  ASSERT_TRUE(wait_until([&] { return after.stored_values().size() == 100; }, 20s))
      << after.stored_values().size() << " of 100 arrived\n"
      << agent_log();
  for (const auto& [value, times] : after.stored_values()) {
    EXPECT_EQ(times, 1) << value;
    EXPECT_GE(value, 10);
  }
  std::set<std::pair<uint64_t, uint64_t>> ids;
  for (const auto& [topic, env] : after.messages) {
    if (topic.kind != common::PayloadKind::kReadings) continue;
    EXPECT_GT(env.seq, max_seq_before) << "sequence number reused after restart";
    ids.insert({env.epoch, env.seq});
  }
  EXPECT_FALSE(ids.empty());
}

TEST_F(AgentIntegration, EndToEndKeepsAMessageUntilTheCollectorAcksIt) {
  std::string config = test_support::read_text(config_);
  const std::string mode = "data_delivery = \"at_least_once\"";
  ASSERT_NE(config.find(mode), std::string::npos);
  config.replace(config.find(mode), mode.size(), "data_delivery = \"end_to_end\"");
  std::ofstream(config_) << config << "ack_timeout = \"1s\"\n";
  Subscriber sub(broker_->uri());
  start_agent();
  send_counts(0, 5);
  // PUBACKed by the broker, yet kept: it comes again after ack_timeout, same epoch and seq.
  uint64_t epoch = 0, seq = 0;
  ASSERT_TRUE(wait_until(
      [&] {
        sub.pump();
        std::map<std::pair<uint64_t, uint64_t>, int> copies;
        for (const auto& [topic, env] : sub.messages) {
          if (topic.kind != common::PayloadKind::kReadings) continue;
          if (++copies[{env.epoch, env.seq}] == 2) {
            epoch = env.epoch;
            seq = env.seq;
            return true;
          }
        }
        return false;
      },
      10s))
      << agent_log();
  EXPECT_NE(agent_status().find("unacked messages 1\n"), std::string::npos) << agent_status();

  // The collector's commit ack (sent here by the test) removes it from the queue.
  test_support::MqttPublisher collector(broker_->uri(), "test-collector");
  const common::Envelope ack{common::kSchemaVersion, "gw-1", 99, 1,
                             common::CommitAck{{{epoch, seq, seq}}}};
  ASSERT_TRUE(collector.publish("outpost/v1/lab/gw-1/ack", ack));
  EXPECT_TRUE(wait_until(
      [&] { return agent_status().find("unacked messages 0\n") != std::string::npos; }, 10s))
      << agent_status() << agent_log();
}

// A loopback UDP port that is bound but takes nothing from anyone else: the socket is connected
// to itself, so a datagram from another socket finds no receiver and the kernel answers with
// port-unreachable, as it does for a port nobody holds. No other socket can take the port.
class UnreadUdpPort {
 public:
  UnreadUdpPort() : fd_(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in addr = test_support::loopback_address(0);
    socklen_t len = sizeof addr;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
        ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      throw std::runtime_error("cannot set up an unread UDP port");
    }
    port_ = ntohs(addr.sin_port);
  }
  ~UnreadUdpPort() { ::close(fd_); }
  UnreadUdpPort(const UnreadUdpPort&) = delete;
  UnreadUdpPort& operator=(const UnreadUdpPort&) = delete;
  int port() const { return port_; }

 private:
  int fd_;
  int port_ = 0;
};

class AgentSend : public AgentIntegration {
 protected:
  // Runs `outpost-agent --config <config> send <lines...>`: its exit code and what it printed.
  std::pair<int, std::string> send(const fs::path& config, std::vector<std::string> lines) {
    std::vector<std::string> argv = {OUTPOST_AGENT_BIN, "--config", config.string(), "send"};
    argv.insert(argv.end(), lines.begin(), lines.end());
    const fs::path out = dir_ / "send.log";
    fs::remove(out);
    Process p(argv, out);
    const int code = p.stop(0, 10s);
    return {code, test_support::read_text(out)};
  }

  std::string metrics() { return test_support::http_get(metrics_port_, "/metrics"); }
  bool metric_is(const std::string& sample, int value) {
    return metrics().find(sample + " " + std::to_string(value) + "\n") != std::string::npos;
  }
};

TEST_F(AgentSend, ExitsZeroAndTheEscapedLineArrivesUnderItsPercentEncodedName) {
  Subscriber sub(broker_->uri());
  start_agent();
  const auto [code, out] = send(config_, {R"(env,room=lab\ 1 temp=19.25)"});
  ASSERT_EQ(code, 0) << out;
  EXPECT_TRUE(out.empty()) << out;
  ASSERT_TRUE(wait_until(
      [&] {
        sub.pump();
        for (const auto& [topic, env] : sub.messages) {
          if (topic.kind != common::PayloadKind::kReadings) continue;
          const auto& b = std::get<common::ReadingBatch>(env.body);
          for (const auto& r : b.readings) {
            if (b.sensor_names[r.sensor] == "env,room=lab%201.temp" &&
                r.value == common::Value(19.25)) {
              return true;
            }
          }
        }
        return false;
      },
      10s))
      << agent_log();
}

TEST_F(AgentSend, ARefusedLineIsReportedWithItsReasonAndNothingIsSent) {
  Subscriber sub(broker_->uri());
  start_agent();
  const auto [code, out] = send(config_, {"first value=1", "temp value=abc"});
  EXPECT_EQ(code, 3) << out;
  EXPECT_NE(out.find("line 2 refused (invalid_value)"), std::string::npos) << out;
  EXPECT_NE(out.find("nothing sent"), std::string::npos) << out;
  EXPECT_EQ(send(config_, {"# a comment", ""}).first, 3);
  // A valid line sent afterwards arrives, and nothing of the refused call came before it.
  const auto [ok, ok_out] = send(config_, {"second value=2"});
  ASSERT_EQ(ok, 0) << ok_out;
  std::set<std::string> seen;
  ASSERT_TRUE(wait_until(
      [&] {
        sub.pump();
        for (const auto& [topic, env] : sub.messages) {
          if (topic.kind != common::PayloadKind::kReadings) continue;
          const auto& b = std::get<common::ReadingBatch>(env.body);
          for (const auto& r : b.readings) seen.insert(b.sensor_names[r.sensor]);
        }
        return seen.count("second") == 1;
      },
      10s))
      << agent_log();
  EXPECT_EQ(seen.count("first"), 0u);
  EXPECT_TRUE(metric_is("outpost_agent_rejected_lines_total{reason=\"invalid_value\"}", 0))
      << metrics();
}

TEST_F(AgentSend, ExitsOneNamingBothSocketsWhenNoAgentListens) {
  UnreadUdpPort udp;
  const fs::path config = dir_ / "send.toml";
  std::ofstream(config) << "[inputs]\nudp_listen = \"127.0.0.1:" << udp.port() << "\"\n"
                        << "unix_socket = \"" << (dir_ / "absent.sock").string() << "\"\n";
  const auto [code, out] = send(config, {"temp value=1"});
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("absent.sock: no agent listens (No such file or directory)"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("udp 127.0.0.1:" + std::to_string(udp.port()) +
                     ": no agent listens (Connection refused)"),
            std::string::npos)
      << out;
}

TEST_F(AgentSend, ASocketFileLeftByAStoppedAgentIsNoListener) {
  start_agent();
  ASSERT_EQ(agent_->stop(SIGKILL), 128 + SIGKILL);  // leaves its socket file behind
  const fs::path sock = dir_ / "agent.sock";
  ASSERT_TRUE(fs::exists(sock));
  const fs::path config = dir_ / "send.toml";
  std::ofstream(config) << "[inputs]\nudp_listen = \"\"\nunix_socket = \"" << sock.string()
                        << "\"\n";
  const auto [code, out] = send(config, {"temp value=1"});
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("no agent listens (Connection refused)"), std::string::npos) << out;
}

TEST_F(AgentIntegration, MetricsEndpointCountsAcceptedRejectedAndQueue) {
  start_agent();
  test_support::send_udp(udp_port_, "a value=1\nb value=2\nbroken\nc value=oops\n");
  std::string body;
  ASSERT_TRUE(wait_until(
      [&] {
        body = test_support::http_get(metrics_port_, "/metrics");
        return body.find("outpost_agent_accepted_total{kind=\"reading\"} 2\n") != std::string::npos;
      },
      10s))
      << body;
  EXPECT_NE(body.find("HTTP/1.1 200 OK"), std::string::npos);
  EXPECT_NE(body.find("outpost_agent_rejected_lines_total{reason=\"syntax\"} 1\n"),
            std::string::npos)
      << body;
  EXPECT_NE(body.find("outpost_agent_rejected_lines_total{reason=\"invalid_value\"} 1\n"),
            std::string::npos);
  EXPECT_NE(body.find("# TYPE outpost_agent_queue_bytes gauge"), std::string::npos);
  EXPECT_NE(body.find("outpost_agent_dropped_total{reason=\"oldest\"} 0\n"), std::string::npos);
  EXPECT_NE(test_support::http_get(metrics_port_, "/other").find("404 Not Found"),
            std::string::npos);
}

TEST_F(AgentIntegration, DatagramsTheKernelDropsAreCountedInMetrics) {
  start_agent();
  // A stopped agent reads nothing: its receive buffer fills and the kernel drops the
  // rest. Comment lines fill the datagrams, so what does get queued adds no readings.
  std::string filler;
  while (filler.size() < 60'000) filler += "#" + std::string(999, 'x') + "\n";
  ASSERT_EQ(::kill(agent_->pid(), SIGSTOP), 0);
  // 60 MB: more than any receive buffer the agent gets (32 MiB with CAP_NET_ADMIN).
  for (int i = 0; i < 1000; ++i) test_support::send_udp(udp_port_, filler);
  ASSERT_EQ(::kill(agent_->pid(), SIGCONT), 0);
  const std::string name = "\noutpost_agent_input_kernel_dropped_datagrams_total ";
  std::string body;
  double dropped = 0;
  ASSERT_TRUE(wait_until(
      [&] {
        body = test_support::http_get(metrics_port_, "/metrics");
        const auto at = body.find(name);
        dropped = at == std::string::npos ? 0 : std::stod(body.substr(at + name.size()));
        return dropped > 0;
      },
      20s))
      << body;
  EXPECT_LE(dropped, 1000);  // datagrams, not bytes or lines
  // And it keeps accepting input (once its buffer has room again).
  EXPECT_TRUE(wait_until(
      [&] {
        test_support::send_udp(udp_port_, "marker value=1i\n");
        body = test_support::http_get(metrics_port_, "/metrics");
        return body.find("outpost_agent_accepted_total{kind=\"reading\"} 0\n") ==
                   std::string::npos &&
               body.find("outpost_agent_accepted_total{kind=\"reading\"} ") != std::string::npos;
      },
      10s))
      << body;
}

TEST_F(AgentIntegration, SystemReadingsArriveWithNoOtherInput) {
  std::string text = test_support::read_text(config_);
  text.replace(text.find("interval = \"0s\""), 15, "interval = \"200ms\"");
  std::ofstream(config_) << text;
  Subscriber sub(broker_->uri());
  start_agent();
  ASSERT_TRUE(wait_until(
      [&] {
        sub.pump();
        for (const auto& [topic, env] : sub.messages) {
          if (topic.kind != common::PayloadKind::kReadings) continue;
          const auto& b = std::get<common::ReadingBatch>(env.body);
          for (const auto& r : b.readings) {
            if (b.sensor_names[r.sensor] == "system.mem_available") {
              return b.unit_of(r.sensor) == "By" && std::get<int64_t>(r.value) > 0;
            }
          }
        }
        return false;
      },
      10s))
      << agent_log();
}

TEST_F(AgentIntegration, SighupReloadsTheLogLevelAndRefusesABrokenFile) {
  start_agent();
  std::ofstream(config_, std::ios::app) << "[log]\nlevel = \"debug\"\n";
  ::kill(agent_->pid(), SIGHUP);
  ASSERT_TRUE(wait_until(
      [&] { return agent_log().find("log level is now debug") != std::string::npos; }, 10s))
      << agent_log();
  std::ofstream(config_, std::ios::app) << "this is not toml\n";
  ::kill(agent_->pid(), SIGHUP);
  ASSERT_TRUE(wait_until(
      [&] { return agent_log().find("keeping the running configuration") != std::string::npos; },
      10s))
      << agent_log();
  EXPECT_TRUE(agent_->running());
  EXPECT_EQ(agent_->stop(SIGTERM), 0);
}

TEST_F(AgentIntegration, TailedFileLinesArriveThroughRotationAndRestart) {
  const fs::path log = dir_ / "app.log";
  std::ofstream(log) << "before the agent started\n";
  std::ofstream(config_, std::ios::app) << "[tail]\nfiles = [\"" << log.string() << "\"]\n"
                                        << "interval = \"50ms\"\n";
  Subscriber sub(broker_->uri());
  auto messages_of = [&] {
    sub.pump();
    std::vector<std::string> out;
    std::set<std::pair<uint64_t, uint64_t>> seen;
    for (const auto& [topic, env] : sub.messages) {
      if (topic.kind != common::PayloadKind::kLogs || !seen.insert({env.epoch, env.seq}).second) {
        continue;
      }
      for (const auto& r : std::get<common::LogBatch>(env.body).records) {
        out.push_back(r.message);
        EXPECT_EQ(r.fields.back().key, "file");
        EXPECT_EQ(r.fields.back().value, log.string());
      }
    }
    return out;
  };
  start_agent();
  std::ofstream(log, std::ios::app) << "one\nerror: two\n";
  ASSERT_TRUE(wait_until([&] { return messages_of().size() == 2; }, 10s)) << agent_log();
  EXPECT_EQ(messages_of(), (std::vector<std::string>{"one", "two"}));  // start_at = end

  fs::rename(log, dir_ / "app.log.1");
  std::ofstream(log) << "three\n";
  ASSERT_TRUE(wait_until([&] { return messages_of().size() == 3; }, 10s)) << agent_log();

  EXPECT_EQ(agent_->stop(SIGTERM), 0);
  std::ofstream(log, std::ios::app) << "four\n";  // written while the agent is down
  start_agent();
  ASSERT_TRUE(wait_until([&] { return messages_of().size() == 4; }, 10s)) << agent_log();
  EXPECT_EQ(messages_of(), (std::vector<std::string>{"one", "two", "three", "four"}));
}

TEST_F(AgentIntegration, FullQuotaShedsByPolicyCountsAndKeepsRunning) {
  std::string text = test_support::read_text(config_);
  text.replace(text.find("flush_interval"), 0, "max_bytes = \"64KiB\"\npolicy = \"drop_newest\"\n");
  std::ofstream(config_) << text;
  broker_->stop();  // nothing leaves: the queue only fills
  start_agent();
  send_counts(0, 3000);
  std::string body;
  ASSERT_TRUE(wait_until(
      [&] {
        body = test_support::http_get(metrics_port_, "/metrics");
        const std::string prefix = "outpost_agent_dropped_total{reason=\"newest\"} ";
        const auto at = body.find(prefix);
        return at != std::string::npos && std::stol(body.substr(at + prefix.size())) > 0;
      },
      10s))
      << body;
  EXPECT_TRUE(agent_->running());
  const std::string status = agent_status();
  EXPECT_NE(status.find("dropped newest   "), std::string::npos);
  EXPECT_EQ(status.find("dropped newest   0\n"), std::string::npos) << status;
  // The oldest readings were kept and are delivered when the broker returns.
  broker_->start();
  Subscriber sub(broker_->uri());
  ASSERT_TRUE(wait_until([&] { return sub.stored_values().count(0) == 1; }, 20s)) << agent_log();
}

TEST_F(AgentIntegration, TimestampsGoingBackwardsNeverReorderDelivery) {
  // A device clock that jumps back (stale time restored at boot): order is by sequence.
  Subscriber sub(broker_->uri());
  start_agent();
  for (int i = 0; i < 30; ++i) {
    const int64_t t_ns = (1'700'000'000LL - (i % 10) * 3600) * 1'000'000'000LL;
    test_support::send_udp(udp_port_,
                           "count value=" + std::to_string(i) + "i " + std::to_string(t_ns) + "\n");
  }
  ASSERT_TRUE(wait_until([&] { return sub.stored_values().size() == 30; }, 10s)) << agent_log();
  std::map<uint64_t, const common::Envelope*> by_seq;
  for (const auto& [topic, env] : sub.messages) {
    if (topic.kind == common::PayloadKind::kReadings) by_seq[env.seq] = &env;
  }
  int64_t expected = 0;
  for (const auto& [seq, env] : by_seq) {
    for (const auto& r : std::get<common::ReadingBatch>(env->body).readings) {
      EXPECT_EQ(std::get<int64_t>(r.value), expected++);
    }
  }
  EXPECT_EQ(expected, 30);
}

TEST_F(AgentIntegration, TlsWithATestCaDeliversAndAWrongCaIsRefused) {
  std::string error;
  ASSERT_TRUE(test_support::make_test_ca(dir_ / "ca", error)) << error;
  ASSERT_TRUE(test_support::make_test_ca(dir_ / "other-ca", error)) << error;
  broker_->stop();
  broker_->enable_tls(dir_ / "ca");
  broker_->start();
  const std::string plain = test_support::read_text(config_);
  auto use_ca = [&](const fs::path& ca) {
    std::string text = plain;
    text.replace(text.find(broker_->uri()), broker_->uri().size(),
                 "ssl://127.0.0.1:" + std::to_string(broker_->tls_port()));
    std::ofstream(config_) << text << "ca_file = \"" << (ca / "ca.pem").string() << "\"\n";
  };

  use_ca(dir_ / "other-ca");  // a broker certificate this CA did not sign: no connection
  start_agent();
  ASSERT_TRUE(wait_until(
      [&] { return agent_log().find("cannot connect to ssl://") != std::string::npos; }, 15s))
      << agent_log();
  EXPECT_EQ(agent_log().find("connected to ssl://"), std::string::npos);
  EXPECT_EQ(agent_->stop(SIGTERM), 0);

  use_ca(dir_ / "ca");
  Subscriber sub(broker_->uri());  // the test listens on the plain listener
  start_agent();
  send_counts(0, 5);
  ASSERT_TRUE(wait_until([&] { return sub.stored_values().size() == 5; }, 15s)) << agent_log();
  EXPECT_NE(agent_log().find("connected to ssl://"), std::string::npos);
}

TEST_F(AgentIntegration, SigtermFlushesAndDeliversWhatWasJustReceived) {
  std::string text = test_support::read_text(config_);
  text.replace(text.find("flush_interval = \"50ms\""), 23, "flush_interval = \"10s\"");
  text.replace(text.find("max_delay = \"100ms\""), 19, "max_delay = \"1h\"");
  std::ofstream(config_) << text;
  Subscriber sub(broker_->uri());
  start_agent();
  ASSERT_TRUE(
      wait_until([&] { return agent_log().find("connected to") != std::string::npos; }, 10s));
  send_counts(0, 20);  // neither flushed (10 s) nor due to be sent (1 h) on its own
  ASSERT_TRUE(wait_until(
      [&] {
        const std::string m = test_support::http_get(metrics_port_, "/metrics");
        return m.find("outpost_agent_accepted_total{kind=\"reading\"} 20\n") != std::string::npos;
      },
      10s));
  // Neither the 10 s flush nor the 1 h batch delay has come: only the stop can deliver them.
  EXPECT_EQ(sub.stored_values().size(), 0u);
  EXPECT_EQ(agent_->stop(SIGTERM), 0);
  ASSERT_TRUE(wait_until([&] { return sub.stored_values().size() == 20; }, 10s)) << agent_log();
}

TEST_F(AgentIntegration, SigtermTakesEverythingTheSocketAlreadyHeld) {
  Subscriber sub(broker_->uri());
  start_agent();
  ASSERT_TRUE(
      wait_until([&] { return agent_log().find("connected to") != std::string::npos; }, 10s));
  // The agent is frozen while 2,000 datagrams pile up in its socket, then told to stop: the
  // senders fired and forgot, so what the kernel took must be taken, persisted and sent.
  ASSERT_EQ(::kill(agent_->pid(), SIGSTOP), 0);
  send_counts(0, 20000);
  ASSERT_EQ(::kill(agent_->pid(), SIGTERM), 0);
  ASSERT_EQ(::kill(agent_->pid(), SIGCONT), 0);
  EXPECT_EQ(agent_->stop(0, 30s), 0) << agent_log();
  EXPECT_NE(agent_log().find("accepted 20000 readings"), std::string::npos) << agent_log();
  ASSERT_TRUE(wait_until([&] { return sub.stored_values().size() == 20000; }, 10s))
      << sub.stored_values().size() << " of 20000 arrived\n"
      << agent_log();
}

TEST_F(AgentIntegration, KillNineUnderLoadRestartsWithoutDuplicates) {
  Subscriber sub(broker_->uri());
  start_agent();
  // Load while the agent is killed: lines keep coming in, some while it is down.
  send_counts(0, 500);
  ASSERT_TRUE(wait_until([&] { return sub.stored_values().size() >= 100; }, 10s)) << agent_log();
  EXPECT_EQ(agent_->stop(SIGKILL), 128 + SIGKILL);
  start_agent();
  send_counts(500, 100);
  // Lines received but not yet flushed at the kill (one 50 ms flush window) may be lost:
  // that is the documented window (the exact persisted-set check is KillNineKeeps... above).
  // Here: the restarted agent delivers new input, and nothing is stored twice.
  ASSERT_TRUE(wait_until(
      [&] {
        const auto values = sub.stored_values();
        for (int i = 500; i < 600; ++i) {
          if (!values.count(i)) return false;
        }
        return true;
      },
      15s))
      << agent_log();
  for (const auto& [value, times] : sub.stored_values()) EXPECT_EQ(times, 1) << value;
}

TEST_F(AgentIntegration, UsernameAndPasswordAreUsedAndNeverLogged) {
  broker_->stop();
  broker_->require_password("gw-1", "s3cret-pa55");
  broker_->start();
  const std::string base = test_support::read_text(config_);
  std::ofstream(config_) << base << "username = \"gw-1\"\npassword = \"wrong-pa55\"\n";
  start_agent();
  ASSERT_TRUE(
      wait_until([&] { return agent_log().find("cannot connect to") != std::string::npos; }, 15s))
      << agent_log();
  EXPECT_EQ(agent_->stop(SIGTERM), 0);

  std::ofstream(config_) << base << "username = \"gw-1\"\npassword = \"s3cret-pa55\"\n";
  Subscriber sub(broker_->uri(), "gw-1", "s3cret-pa55");
  start_agent();
  send_counts(0, 5);
  ASSERT_TRUE(wait_until([&] { return sub.stored_values().size() == 5; }, 15s)) << agent_log();
  EXPECT_EQ(agent_log().find("pa55"), std::string::npos) << agent_log();
}

TEST_F(AgentIntegration, BrokenConfigNamesFileLineAndKeyAndStartsNothing) {
  std::ofstream(config_) << "[store]\n\nflush_interval = \"fast\"\n";
  Process p({OUTPOST_AGENT_BIN, "--config", config_.string()}, dir_ / "agent.log");
  EXPECT_EQ(p.stop(0, 10s), 78);
  EXPECT_NE(agent_log().find("agent.toml:3:18: store.flush_interval: expected a duration"),
            std::string::npos)
      << agent_log();
  EXPECT_FALSE(fs::exists(dir_ / "agent.db"));
}

TEST_F(AgentIntegration, CorruptStoreIsMovedAsideAndTheAgentRuns) {
  std::ofstream(dir_ / "agent.db") << "not a database at all, but it has the right name";
  Subscriber sub(broker_->uri());
  start_agent();
  send_counts(0, 5);
  ASSERT_TRUE(wait_until([&] { return sub.stored_values().size() == 5; }, 10s)) << agent_log();
  EXPECT_NE(agent_log().find("was corrupt: moved aside"), std::string::npos);
  bool moved = false;
  for (const auto& e : fs::directory_iterator(dir_)) {
    moved |= e.path().filename().string().starts_with("agent.db.corrupt-");
  }
  EXPECT_TRUE(moved);
}

}  // namespace
}  // namespace outpost
