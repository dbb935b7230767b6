// The chaos suite's TCP relay: forwards to the broker, cuts and heals on request.
#include "chaos/relay.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <list>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/process.h"

namespace outpost::chaos {
namespace {

constexpr std::size_t kMaxBuffered = 1 << 20;  // per direction, then stop reading

void reset_and_close(int fd) {
  if (fd < 0) return;
  linger l{1, 0};  // close() sends RST: an abrupt loss, not an orderly FIN
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  ::close(fd);
}

// A listening socket on 127.0.0.1:port (0: any free port); -1 on failure.
int listen_on(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr = test_support::loopback_address(port);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 128) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// One relayed connection: side 0 is the client, side 1 the broker. buf[i] holds what was
// read from side i and not yet written to the other side.
struct Pipe {
  int fd[2] = {-1, -1};
  std::string buf[2];
  bool eof[2] = {false, false};
  bool shut[2] = {false, false};
  bool dead = false;

  void reset() {
    reset_and_close(fd[0]);
    reset_and_close(fd[1]);
    fd[0] = fd[1] = -1;
    dead = true;
  }
};

}  // namespace

Relay::Relay(int target_port) : target_port_(target_port) {
  const int fd = listen_on(0);
  if (fd < 0) throw std::runtime_error("relay: cannot listen");
  sockaddr_in addr{};
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  if (::pipe2(wake_pipe_, O_NONBLOCK | O_CLOEXEC) != 0) {
    ::close(fd);
    throw std::runtime_error("relay: pipe");
  }
  thread_ = std::thread([this, fd] {
    listen_fd_ = fd;
    run();
  });
}

Relay::~Relay() {
  request(3);
  thread_.join();
  ::close(wake_pipe_[0]);
  ::close(wake_pipe_[1]);
}

std::string Relay::uri() const { return "tcp://127.0.0.1:" + std::to_string(port_); }

void Relay::cut() { request(1); }
void Relay::heal() { request(2); }
void Relay::stall() { request(4); }

void Relay::wake() {
  const char c = 1;
  (void)!::write(wake_pipe_[1], &c, 1);
}

void Relay::request(int command) {
  std::lock_guard lock(mu_);
  done_ = 0;
  command_ = command;
  wake();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (done_ != command && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));  // the relay thread answers
  }
  if (done_ != command) throw std::runtime_error("relay: thread did not answer");
}

void Relay::run() {
  std::list<Pipe> pipes;
  bool running = true;
  while (running) {
    std::vector<pollfd> fds;
    fds.push_back({wake_pipe_[0], POLLIN, 0});
    // While stalled only the wake pipe is polled: nothing is read, written, accepted or reset.
    if (listen_fd_ >= 0 && !stalled_) fds.push_back({listen_fd_, POLLIN, 0});
    const std::size_t first_pipe = fds.size();
    // Connections accepted below are polled next time.
    const std::size_t polled = stalled_ ? 0 : pipes.size();
    for (Pipe& p : pipes) {
      if (stalled_) break;
      for (int i = 0; i < 2; ++i) {
        short events = 0;
        if (!p.eof[i] && p.buf[i].size() < kMaxBuffered) events |= POLLIN;
        if (!p.buf[1 - i].empty()) events |= POLLOUT;
        fds.push_back({p.fd[i], events, 0});
      }
    }
    if (::poll(fds.data(), fds.size(), 1000) < 0 && errno != EINTR) break;

    if (fds[0].revents & POLLIN) {
      char drain[64];
      while (::read(wake_pipe_[0], drain, sizeof drain) > 0) {
      }
      const int command = command_.exchange(0);
      if (command == 1 || command == 3) {
        for (Pipe& p : pipes) p.reset();
        pipes.clear();
        if (listen_fd_ >= 0) ::close(listen_fd_);
        listen_fd_ = -1;
        cut_ = command == 1;
        stalled_ = false;
        if (command == 3) running = false;
      } else if (command == 2) {
        if (listen_fd_ < 0) listen_fd_ = listen_on(port_);
        cut_ = listen_fd_ < 0;
        stalled_ = false;
      } else if (command == 4) {
        stalled_ = true;
      }
      if (command != 0) done_ = command;
      continue;  // the poll set changed
    }

    if (listen_fd_ >= 0 && !stalled_ && (fds[1].revents & POLLIN)) {
      while (true) {
        const int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (client < 0) break;
        const int broker = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr = test_support::loopback_address(target_port_);
        if (broker < 0 || ::connect(broker, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
          if (broker >= 0) ::close(broker);
          reset_and_close(client);  // broker down: the client sees it at once
          continue;
        }
        ::fcntl(client, F_SETFL, O_NONBLOCK);
        ::fcntl(broker, F_SETFL, O_NONBLOCK);
        Pipe p;
        p.fd[0] = client;
        p.fd[1] = broker;
        pipes.push_back(std::move(p));
      }
    }

    std::size_t at = first_pipe;
    auto it = pipes.begin();
    for (std::size_t k = 0; k < polled; ++k, ++it) {
      Pipe& p = *it;
      const short revents[2] = {fds[at].revents, fds[at + 1].revents};
      at += 2;
      for (int i = 0; i < 2 && !p.dead; ++i) {
        if (revents[i] & (POLLIN | POLLHUP | POLLERR)) {
          char chunk[65536];
          const ssize_t n = ::recv(p.fd[i], chunk, sizeof chunk, 0);
          if (n > 0) {
            p.buf[i].append(chunk, static_cast<std::size_t>(n));
          } else if (n == 0) {
            p.eof[i] = true;
          } else if (errno != EAGAIN && errno != EINTR) {
            p.reset();  // a reset on one side is passed on as a reset
          }
        }
      }
      for (int i = 0; i < 2 && !p.dead; ++i) {
        std::string& out = p.buf[i];
        if (!out.empty()) {
          const ssize_t n = ::send(p.fd[1 - i], out.data(), out.size(), MSG_NOSIGNAL);
          if (n > 0) {
            out.erase(0, static_cast<std::size_t>(n));
          } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
            p.reset();
          }
        }
        if (!p.dead && p.eof[i] && out.empty() && !p.shut[i]) {
          ::shutdown(p.fd[1 - i], SHUT_WR);  // pass the orderly close on
          p.shut[i] = true;
        }
      }
      if (!p.dead && p.shut[0] && p.shut[1]) {
        ::close(p.fd[0]);
        ::close(p.fd[1]);
        p.dead = true;
      }
    }
    pipes.remove_if([](const Pipe& p) { return p.dead; });
  }
  for (Pipe& p : pipes) p.reset();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  listen_fd_ = -1;
}

}  // namespace outpost::chaos
