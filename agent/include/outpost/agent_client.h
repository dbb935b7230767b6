// A tiny header-only client for device programs: hand readings and log lines to a local
// outpost-agent without ever blocking. Depends on POSIX sockets only (no Outpost library).
//
//   auto agent = outpost::AgentClient::unix_socket("/run/outpost/agent.sock");
//   agent.reading("temp,room=lab", 21.5);
//   agent.log(outpost::AgentClient::kWarning, "fan speed low");
//
// Fire and forget: a send never waits. If the agent is not running or its socket buffer is
// full, the line is dropped and counted in dropped(). Not thread-safe: one per thread, or
// guard it. Copying is disabled; moving transfers the socket.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <charconv>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>

namespace outpost {

class AgentClient {
 public:
  enum Severity { kTrace, kDebug, kInfo, kNotice, kWarning, kError, kCritical };

  // A client for the agent's Unix datagram socket (inputs.unix_socket).
  static AgentClient unix_socket(const std::string& path) {
    AgentClient c;
    c.fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (c.fd_ >= 0 && path.size() < sizeof addr.sun_path) {
      std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
      std::memcpy(&c.addr_, &addr, sizeof addr);
      c.addr_len_ = sizeof addr;
    }
    return c;
  }

  // A client for the agent's UDP input (inputs.udp_listen), e.g. ("127.0.0.1", 8094).
  static AgentClient udp(const std::string& ipv4, uint16_t port) {
    AgentClient c;
    c.fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    if (c.fd_ >= 0 && ::inet_pton(AF_INET, ipv4.c_str(), &addr.sin_addr) == 1) {
      std::memcpy(&c.addr_, &addr, sizeof addr);
      c.addr_len_ = sizeof addr;
    }
    return c;
  }

  AgentClient(AgentClient&& other) noexcept { *this = std::move(other); }
  AgentClient& operator=(AgentClient&& other) noexcept {
    std::swap(fd_, other.fd_);
    std::swap(addr_, other.addr_);
    std::swap(addr_len_, other.addr_len_);
    std::swap(dropped_, other.dropped_);
    return *this;
  }
  AgentClient(const AgentClient&) = delete;
  AgentClient& operator=(const AgentClient&) = delete;
  ~AgentClient() {
    if (fd_ >= 0) ::close(fd_);
  }

  // Sends raw lines (line protocol or log lines, '\n'-separated) as one datagram.
  bool send_lines(std::string_view lines) {
    if (fd_ < 0 || addr_len_ == 0 ||
        ::sendto(fd_, lines.data(), lines.size(), MSG_DONTWAIT | MSG_NOSIGNAL,
                 reinterpret_cast<const sockaddr*>(&addr_), addr_len_) < 0) {
      ++dropped_;
      return false;
    }
    return true;
  }

  // One reading: `series` is a line-protocol series ("temp" or "temp,room=lab").
  bool reading(std::string_view series, double value) { return send_field(series, number(value)); }
  bool reading(std::string_view series, int64_t value) {
    return send_field(series, number(value) + "i");
  }
  bool reading(std::string_view series, int value) { return reading(series, int64_t{value}); }
  bool reading(std::string_view series, bool value) {
    return send_field(series, value ? "true" : "false");
  }
  bool reading(std::string_view series, std::string_view text) {
    std::string quoted = "\"";
    for (char c : text) {
      if (c == '"' || c == '\\') quoted += '\\';
      quoted += c;
    }
    return send_field(series, quoted + "\"");
  }

  // One log line: "<severity>: <message>" (newlines in the message become spaces).
  bool log(Severity severity, std::string_view message) {
    static constexpr const char* kNames[] = {"trace", "debug", "info",    "notice",
                                             "warn",  "error", "critical"};
    std::string line = kNames[severity < kTrace || severity > kCritical ? kInfo : severity];
    line += ": ";
    for (char c : message) line += (c == '\n' || c == '\r') ? ' ' : c;
    return send_lines(line + "\n");
  }

  // Lines that could not be handed over (no agent, socket buffer full, bad address).
  uint64_t dropped() const { return dropped_; }

 private:
  AgentClient() = default;

  template <typename T>
  static std::string number(T v) {
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    return std::string(buf, r.ptr);
  }

  bool send_field(std::string_view series, const std::string& value) {
    std::string line(series);
    line += " value=";
    line += value;
    line += '\n';
    return send_lines(line);
  }

  int fd_ = -1;
  sockaddr_storage addr_{};
  socklen_t addr_len_ = 0;
  uint64_t dropped_ = 0;
};

}  // namespace outpost
