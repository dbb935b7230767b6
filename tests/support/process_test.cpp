// The test support's ports: read back from the kernel, never picked by bind-and-release.
#include "support/process.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include "support/broker_test.h"

namespace outpost::test_support {
namespace {

using namespace std::chrono_literals;

// A socket of this process on 127.0.0.1, port 0: the kernel's choice.
struct OwnSocket {
  explicit OwnSocket(int type, bool cloexec = true)
      : fd(::socket(AF_INET, type | (cloexec ? SOCK_CLOEXEC : 0), 0)) {
    sockaddr_in addr = loopback_address(0);
    socklen_t len = sizeof addr;
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    port = ntohs(addr.sin_port);
  }
  ~OwnSocket() { ::close(fd); }
  int fd;
  int port = 0;
};

bool has(const std::vector<int>& ports, int port) {
  return std::find(ports.begin(), ports.end(), port) != ports.end();
}

TEST(Ports, AListeningSocketIsReadBackAndABoundOneIsNot) {
  OwnSocket tcp(SOCK_STREAM);
  EXPECT_FALSE(has(listening_tcp_ports(::getpid()), tcp.port)) << "bound, not listening yet";
  ASSERT_EQ(::listen(tcp.fd, 1), 0);
  EXPECT_TRUE(has(listening_tcp_ports(::getpid()), tcp.port));
}

TEST(Ports, ABoundUdpSocketIsReadBack) {
  OwnSocket udp(SOCK_DGRAM);
  EXPECT_TRUE(has(bound_udp_ports(::getpid()), udp.port));
  EXPECT_FALSE(has(listening_tcp_ports(::getpid()), udp.port));
}

TEST(Ports, AChildInheritsNoneOfTheTestsSockets) {
  OwnSocket tcp(SOCK_STREAM, /*cloexec=*/false);
  ASSERT_EQ(::listen(tcp.fd, 1), 0);
  Process sleeper({"sleep", "30"}, "/dev/null");
  // Once it runs `sleep`, the child has closed what it inherited.
  ASSERT_TRUE(wait_until(
      [&] { return read_text("/proc/" + std::to_string(sleeper.pid()) + "/comm") == "sleep\n"; },
      5s));
  EXPECT_FALSE(has(listening_tcp_ports(sleeper.pid()), tcp.port));
  EXPECT_TRUE(has(listening_tcp_ports(::getpid()), tcp.port));
  sleeper.stop(SIGKILL);
}

TEST(Ports, ARefusingPortRefusesConnections) {
  const RefusingPort nobody;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr = loopback_address(nobody.port());
  EXPECT_NE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  EXPECT_EQ(errno, ECONNREFUSED);
  ::close(fd);
}

TEST(MosquittoFixture, APortAnotherProcessHoldsIsRetriedWithAnother) {
  const auto dir = fresh_test_dir("outpost_support_test");
  OwnSocket taken(SOCK_STREAM);
  ASSERT_EQ(::listen(taken.fd, 1), 0);
  Mosquitto::Options options;
  options.first_port = taken.port;  // the first try must fail: this process listens there
  Mosquitto broker(dir / "broker", options);
  broker.start();
  EXPECT_NE(broker.port(), taken.port);
  EXPECT_NE(read_text(broker.log_file()).find("Address already in use"), std::string::npos);
  EXPECT_TRUE(has(listening_tcp_ports(::getpid()), taken.port));
  // A restart keeps the port its clients know.
  const int port = broker.port();
  broker.stop();
  broker.start();
  EXPECT_EQ(broker.port(), port);
  broker.stop();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace outpost::test_support
