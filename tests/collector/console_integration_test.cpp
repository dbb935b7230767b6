// The console over the real outpost-collector and a real mosquitto: the page's files with
// their security headers, the API over the wire (a device published over MQTT shows up, bad
// parameters are 400s), the event stream sends a device's change, replay refuses a wrong token,
// and malformed requests get an answer and hurt nothing.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>

#include "outpost/common/clock.h"
#include "outpost/common/sample.h"
#include "support/broker_test.h"
#include "support/daemons.h"
#include "support/mqtt_clients.h"
#include "support/process.h"

namespace outpost {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using test_support::wait_until;

constexpr const char* kToken = "integration-token-0123";

int connect_to(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr = test_support::loopback_address(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{0, 200'000};  // reads return every 200 ms, so waits keep their deadline
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

// One request as given; the whole response (the server closes after it).
std::string http_raw(int port, const std::string& request) {
  const int fd = connect_to(port);
  std::string response;
  if (fd >= 0 &&
      ::send(fd, request.data(), request.size(), 0) == static_cast<ssize_t>(request.size())) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    char buf[8192];
    while (std::chrono::steady_clock::now() < deadline) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n == 0) break;
      if (n > 0) response.append(buf, static_cast<size_t>(n));
    }
  }
  if (fd >= 0) ::close(fd);
  return response;
}

std::string get(int port, const std::string& target) {
  return http_raw(port, "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
}

int status_of(const std::string& response) {
  return response.size() > 12 ? std::atoi(response.c_str() + 9) : 0;
}

std::string body_of(const std::string& response) {
  const auto at = response.find("\r\n\r\n");
  return at == std::string::npos ? "" : response.substr(at + 4);
}

class ConsoleIntegration : public test_support::BrokerTest {
 protected:
  ConsoleIntegration() : BrokerTest("outpost_console_it") {}
  void SetUp() override {
    BrokerTest::SetUp();
    config_ = dir_ / "collector.toml";
    std::ofstream(config_) << "[mqtt]\nbroker = \"" << broker_->uri() << "\"\n"
                           << "client_id = \"collector-console\"\n"
                           << "reconnect_min = \"100ms\"\nreconnect_max = \"500ms\"\n"
                           << "[storage]\npath = \"" << (dir_ / "c.db").string()
                           << "\"\ncommit_interval = \"50ms\"\n"
                           << "[metrics]\nlisten = \"\"\n"
                           << "[console]\nlisten = \"127.0.0.1:8088\"\ntoken = \"" << kToken
                           << "\"\n";
    std::string error;
    collector_ =
        test_support::start_outpost_collector({OUTPOST_COLLECTOR_BIN, "--config", config_.string()},
                                              config_, dir_ / "collector.log", port_, error);
    ASSERT_TRUE(collector_) << error;
    ASSERT_GT(port_, 0);
  }
  void TearDown() override {
    if (collector_) {
      EXPECT_EQ(collector_->stop(SIGTERM, 10s), 0);
    }
    collector_.reset();
    BrokerTest::TearDown();
  }

  // Publishes one reading batch of `device` (seq `seq`) and waits until the console lists it.
  void publish_and_wait(const std::string& device, uint64_t seq) {
    test_support::MqttPublisher pub(broker_->uri(), "pub-" + device);
    auto e = common::sample_reading_batch(device, common::wall_now_us() - 1'000'000, 2, seq);
    e.epoch = 1;
    e.seq = seq;
    ASSERT_TRUE(pub.publish("outpost/v1/lab/" + device + "/data", e));
    ASSERT_TRUE(wait_until(
        [&] {
          return body_of(get(port_, "/api/v1/fleet?q=" + device)).find("\"" + device + "\"") !=
                 std::string::npos;
        },
        10s))
        << get(port_, "/api/v1/fleet");
  }

  fs::path config_;
  std::unique_ptr<test_support::Process> collector_;
  int port_ = 0;
};

TEST_F(ConsoleIntegration, ServesThePageWithItsPolicyAndTheApiOverTheWire) {
  const std::string page = get(port_, "/");
  EXPECT_EQ(status_of(page), 200) << page;
  EXPECT_NE(page.find("Content-Type: text/html"), std::string::npos) << page.substr(0, 400);
  EXPECT_NE(page.find("Content-Security-Policy: default-src 'self'"), std::string::npos);
  EXPECT_NE(page.find("X-Frame-Options: DENY"), std::string::npos);
  EXPECT_NE(body_of(page).find("<script src=\"app.js\""), std::string::npos);
  const std::string script = get(port_, "/app.js");
  EXPECT_EQ(status_of(script), 200);
  EXPECT_NE(script.find("Content-Type: text/javascript"), std::string::npos);
  EXPECT_EQ(status_of(get(port_, "/vendor/uPlot.iife.min.js")), 200);

  publish_and_wait("gw-1", 1);
  const std::string device = get(port_, "/api/v1/devices/gw-1");
  ASSERT_EQ(status_of(device), 200) << device;
  EXPECT_NE(device.find("Content-Type: application/json"), std::string::npos);
  EXPECT_NE(body_of(device).find("\"site\":\"lab\""), std::string::npos) << device;
  EXPECT_NE(body_of(device).find("\"sensors\":[{\"sensor\":"), std::string::npos) << device;

  EXPECT_EQ(status_of(get(port_, "/api/v1/fleet?limit=0")), 400);
  EXPECT_EQ(status_of(get(port_, "/api/v1/fleet?sort=%zz")), 400);
  EXPECT_EQ(status_of(get(port_, "/api/v1/devices/nobody")), 404);
  EXPECT_EQ(status_of(get(port_, "/nothing-here")), 404);
}

TEST_F(ConsoleIntegration, TheStreamSendsADevicesChange) {
  publish_and_wait("gw-2", 1);
  const int fd = connect_to(port_);
  ASSERT_GE(fd, 0);
  const std::string request = "GET /api/v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  ASSERT_EQ(::send(fd, request.data(), request.size(), 0), static_cast<ssize_t>(request.size()));
  std::string seen;
  const auto read_until = [&](const std::string& text, std::chrono::seconds timeout) {
    return wait_until(
        [&] {
          char buf[8192];
          const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
          if (n > 0) seen.append(buf, static_cast<size_t>(n));
          return seen.find(text) != std::string::npos;
        },
        timeout);
  };
  ASSERT_TRUE(read_until("text/event-stream", 5s)) << seen;
  // The stream's first poll learns the fleet; a change after it is sent.
  test_support::MqttPublisher pub(broker_->uri(), "pub-gw-2b");
  ASSERT_TRUE(wait_until(
      [&] {
        auto e = common::sample_reading_batch("gw-2", common::wall_now_us(), 1, 2);
        e.epoch = 1;
        e.seq = 2;
        if (!pub.publish("outpost/v1/lab/gw-2/data", e)) return false;
        return read_until("event: fleet", 2s);
      },
      15s))
      << seen;
  EXPECT_NE(seen.find("\"device\":\"gw-2\""), std::string::npos) << seen;
  ::close(fd);
}

TEST_F(ConsoleIntegration, ReplayRefusesAWrongTokenAndBadRequestsHurtNothing) {
  const std::string no_token = http_raw(
      port_,
      "POST /api/v1/dlq/replay HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
      "Authorization: Bearer wrong-token-000000000\r\nContent-Length: 10\r\n\r\n{\"ids\":[1]}");
  EXPECT_EQ(status_of(no_token), 403) << no_token;
  EXPECT_NE(body_of(no_token).find("token"), std::string::npos) << no_token;

  for (const std::string& bad :
       {std::string("NONSENSE\r\n\r\n"), std::string("GET /api/v1/fleet HTTP/9.9\r\n\r\n"),
        std::string("GET /api/v1/fleet HTTP/1.1\r\nbad header line\r\n\r\n"),
        "GET /" + std::string(20000, 'a') + " HTTP/1.1\r\n\r\n",
        std::string("POST /api/v1/dlq/replay HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n")}) {
    const std::string r = http_raw(port_, bad);
    const int status = status_of(r);
    EXPECT_TRUE(status >= 400 && status < 600) << bad.substr(0, 60) << " -> " << r.substr(0, 200);
  }
  // A client that connects and says nothing, or goes away mid-request, hurts nothing either.
  const int idle = connect_to(port_);
  const int half = connect_to(port_);
  ASSERT_GE(half, 0);
  ASSERT_GT(::send(half, "GET /api/v1/fl", 14, 0), 0);
  ::close(half);
  EXPECT_EQ(status_of(get(port_, "/api/v1/session")), 200);
  if (idle >= 0) ::close(idle);
  EXPECT_TRUE(collector_->running());
}

}  // namespace
}  // namespace outpost
