// Tests of the header-only device client: what it sends parses as intended, and it never blocks.
#include "outpost/agent_client.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <chrono>
#include <filesystem>

#include "outpost/agent/line_protocol.h"

namespace outpost {
namespace {

class AgentClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = (std::filesystem::temp_directory_path() /
             ("outpost_client_" + std::to_string(::getpid()) + ".sock"))
                .string();
    std::filesystem::remove(path_);
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, path_.c_str());
    ASSERT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  }
  void TearDown() override {
    ::close(fd_);
    std::filesystem::remove(path_);
  }
  // The next datagram, parsed as the agent would.
  agent::DatagramResult receive() {
    char buf[4096];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    return agent::parse_datagram(std::string_view(buf, n > 0 ? static_cast<size_t>(n) : 0), 7);
  }

  std::string path_;
  int fd_ = -1;
};

TEST_F(AgentClientTest, ReadingsOfEveryTypeParseBack) {
  auto client = AgentClient::unix_socket(path_);
  ASSERT_TRUE(client.reading("temp,room=lab", 21.5));
  EXPECT_EQ(receive().accepted.at(0).readings.at(0),
            (agent::InputReading{"temp,room=lab", "", common::Value(21.5), 7}));
  ASSERT_TRUE(client.reading("count", int64_t{-42}));
  EXPECT_EQ(receive().accepted.at(0).readings.at(0).value, common::Value(int64_t{-42}));
  ASSERT_TRUE(client.reading("door", true));
  EXPECT_EQ(receive().accepted.at(0).readings.at(0).value, common::Value(true));
  ASSERT_TRUE(client.reading("state", std::string_view("say \"hi\" \\o/")));
  EXPECT_EQ(receive().accepted.at(0).readings.at(0).value,
            common::Value(std::string("say \"hi\" \\o/")));
  ASSERT_TRUE(client.reading("tiny", 1e-300));
  EXPECT_EQ(receive().accepted.at(0).readings.at(0).value, common::Value(1e-300));
  EXPECT_EQ(client.dropped(), 0u);
}

TEST_F(AgentClientTest, LogLinesParseBack) {
  auto client = AgentClient::unix_socket(path_);
  ASSERT_TRUE(client.log(AgentClient::kWarning, "fan speed low\nsecond line"));
  const auto r = receive();
  ASSERT_TRUE(r.accepted.at(0).log);
  EXPECT_EQ(r.accepted[0].log->severity, common::Severity::kWarning);
  EXPECT_EQ(r.accepted[0].log->message, "fan speed low second line");
}

TEST_F(AgentClientTest, NoAgentMeansDroppedAndCountedNotBlocked) {
  auto client = AgentClient::unix_socket(path_ + ".missing");
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 1000; ++i) EXPECT_FALSE(client.reading("x", i));
  EXPECT_EQ(client.dropped(), 1000u);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
}

TEST_F(AgentClientTest, AFullSocketBufferDropsInsteadOfBlocking) {
  auto client = AgentClient::unix_socket(path_);
  // Nobody reads: the receive queue fills, and sends must fail fast rather than wait.
  int ok = 0;
  for (int i = 0; i < 100000 && client.dropped() == 0; ++i) ok += client.reading("x", i);
  EXPECT_GT(ok, 0);
  EXPECT_GT(client.dropped(), 0u);
}

TEST(AgentClient, BadUdpAddressDrops) {
  auto client = AgentClient::udp("not-an-address", 8094);
  EXPECT_FALSE(client.reading("x", 1.0));
  EXPECT_EQ(client.dropped(), 1u);
}

}  // namespace
}  // namespace outpost
