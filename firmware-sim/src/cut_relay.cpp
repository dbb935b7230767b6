// The loopback relay that lets the simulator cut device connections without DISCONNECT.
#include "cut_relay.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

namespace outpost::sim {
namespace {

void reset_and_close(int fd) {
  if (fd < 0) return;
  linger l{1, 0};  // close() sends RST: an abrupt loss, not an orderly FIN
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  ::close(fd);
}

// Writes all of `n` bytes (sockets are blocking; loopback keeps this short).
bool write_all(int fd, const char* data, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::send(fd, data, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    data += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

}  // namespace

common::Result<std::unique_ptr<CutRelay>> CutRelay::start(const std::string& broker_uri) {
  std::string_view rest = broker_uri;
  if (!rest.starts_with("tcp://")) {
    return common::Error{"cuts need a tcp:// broker URI, got \"" + broker_uri + "\""};
  }
  rest.remove_prefix(6);
  const auto colon = rest.rfind(':');
  if (colon == std::string_view::npos) return common::Error{"broker URI without a port"};
  std::string host(rest.substr(0, colon));
  if (host == "localhost") host = "127.0.0.1";
  int port = 0;
  const auto port_text = rest.substr(colon + 1);
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port <= 0) {
    return common::Error{"bad broker port in \"" + broker_uri + "\""};
  }
  in_addr addr{};
  if (::inet_pton(AF_INET, host.c_str(), &addr) != 1) {
    return common::Error{"cuts need the broker as an IPv4 address, got \"" + host + "\""};
  }
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    return common::Error{std::string("pipe: ") + std::strerror(errno)};
  }
  std::unique_ptr<CutRelay> relay(new CutRelay(addr.s_addr, port, fds[0], fds[1]));
  relay->thread_ = std::thread([r = relay.get()] { r->run(); });
  return relay;
}

CutRelay::CutRelay(uint32_t address, int port, int wake_read, int wake_write)
    : address_(address), broker_port_(port), wake_read_(wake_read), wake_write_(wake_write) {}

CutRelay::~CutRelay() {
  stop_ = true;
  wake();
  if (thread_.joinable()) thread_.join();
  for (auto& [port, fd] : listeners_) ::close(fd);
  for (auto& p : pairs_) {
    ::close(p.client);
    ::close(p.upstream);
  }
  ::close(wake_read_);
  ::close(wake_write_);
}

void CutRelay::wake() {
  const char c = 1;
  [[maybe_unused]] const ssize_t n = ::write(wake_write_, &c, 1);
}

common::Result<int> CutRelay::open_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return common::Error{std::string("socket: ") + std::strerror(errno)};
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 8) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    const std::string why = std::strerror(errno);
    ::close(fd);
    return common::Error{"relay listen: " + why};
  }
  const int port = ntohs(a.sin_port);
  {
    std::lock_guard lock(mu_);
    listeners_[port] = fd;
  }
  wake();
  return port;
}

void CutRelay::cut(int port) {
  {
    std::lock_guard lock(mu_);
    to_cut_.push_back(port);
  }
  wake();
}

void CutRelay::run() {
  std::vector<pollfd> fds;
  char buffer[64 * 1024];
  while (!stop_) {
    fds.clear();
    fds.push_back({wake_read_, POLLIN, 0});
    std::vector<int> listen_ports;
    {
      std::lock_guard lock(mu_);
      for (int port : to_cut_) {
        for (auto& p : pairs_) {
          if (p.port != port) continue;
          reset_and_close(p.client);
          reset_and_close(p.upstream);
          p.client = p.upstream = -1;
        }
        if (auto it = listeners_.find(port); it != listeners_.end()) {
          ::close(it->second);
          listeners_.erase(it);
        }
      }
      to_cut_.clear();
      std::erase_if(pairs_, [](const Pair& p) { return p.client < 0; });
      for (auto& [port, fd] : listeners_) {
        fds.push_back({fd, POLLIN, 0});
        listen_ports.push_back(port);
      }
      for (auto& p : pairs_) {
        fds.push_back({p.client, POLLIN, 0});
        fds.push_back({p.upstream, POLLIN, 0});
      }
    }
    if (::poll(fds.data(), fds.size(), 500) <= 0) continue;
    if (fds[0].revents) {
      char drain[64];
      while (::read(wake_read_, drain, sizeof drain) > 0) {
      }
    }
    std::lock_guard lock(mu_);
    std::size_t i = 1;
    for (int port : listen_ports) {
      const pollfd& l = fds[i++];
      if (!(l.revents & POLLIN)) continue;
      const int client = ::accept4(l.fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) continue;
      const int upstream = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in b{};
      b.sin_family = AF_INET;
      b.sin_addr.s_addr = address_;
      b.sin_port = htons(static_cast<uint16_t>(broker_port_));
      if (upstream < 0 || ::connect(upstream, reinterpret_cast<sockaddr*>(&b), sizeof b) != 0) {
        if (upstream >= 0) ::close(upstream);
        reset_and_close(client);
        continue;
      }
      const int one = 1;
      ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      ::setsockopt(upstream, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      pairs_.push_back({client, upstream, port});
    }
    // Pairs appended just now were not polled; they sit past the polled ones.
    const std::size_t polled_pairs = (fds.size() - i) / 2;
    for (std::size_t k = 0; k < polled_pairs; ++k, i += 2) {
      Pair& p = pairs_[k];
      if (p.client < 0) continue;
      for (int side = 0; side < 2; ++side) {
        if (!(fds[i + side].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        const int from = side == 0 ? p.client : p.upstream;
        const int to = side == 0 ? p.upstream : p.client;
        const ssize_t n = ::recv(from, buffer, sizeof buffer, 0);
        if (n <= 0 || !write_all(to, buffer, static_cast<std::size_t>(n))) {
          // One side went away: pass the loss on to the other, as a broken link would.
          reset_and_close(p.client);
          reset_and_close(p.upstream);
          p.client = p.upstream = -1;
          break;
        }
      }
    }
  }
}

}  // namespace outpost::sim
