// Test support: a stand-in for systemd's notification socket.
#include "support/notify_socket.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <sstream>
#include <stdexcept>

namespace outpost::test_support {

NotifySocket::NotifySocket(const std::string& path, bool abstract) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() + 1 > sizeof addr.sun_path) throw std::runtime_error("socket path too long");
  std::size_t length = offsetof(sockaddr_un, sun_path);
  if (abstract) {
    std::memcpy(addr.sun_path + 1, path.data(), path.size());
    length += 1 + path.size();
    address_ = "@" + path;
  } else {
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    length += path.size() + 1;
    address_ = path;
    path_ = path;
    ::unlink(path.c_str());
  }
  fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0 ||
      ::bind(fd_, reinterpret_cast<const sockaddr*>(&addr), static_cast<socklen_t>(length)) != 0) {
    const std::string why = std::strerror(errno);
    if (fd_ >= 0) ::close(fd_);
    throw std::runtime_error("cannot bind " + address_ + ": " + why);
  }
  reader_ = std::thread([this] { read_loop(); });
}

NotifySocket::~NotifySocket() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  reader_.join();
  ::close(fd_);
  if (!path_.empty()) ::unlink(path_.c_str());
}

void NotifySocket::read_loop() {
  char buf[8192];
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (stop_) return;
    }
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    const ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0) continue;
    std::lock_guard lock(mutex_);
    messages_.emplace_back(buf, static_cast<std::size_t>(n));
    arrived_.notify_all();
  }
}

std::vector<std::string> NotifySocket::messages() {
  std::lock_guard lock(mutex_);
  return messages_;
}

std::optional<std::size_t> NotifySocket::wait_for(
    const std::function<bool(const std::string&)>& match, std::size_t from,
    std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock lock(mutex_);
  for (std::size_t i = from;;) {
    for (; i < messages_.size(); ++i) {
      if (match(messages_[i])) return i;
    }
    if (arrived_.wait_until(lock, deadline) == std::cv_status::timeout && i == messages_.size()) {
      return std::nullopt;
    }
  }
}

std::optional<std::size_t> NotifySocket::wait_for_line(const std::string& line, std::size_t from,
                                                       std::chrono::milliseconds timeout) {
  return wait_for([&](const std::string& m) { return has_line(m, line); }, from, timeout);
}

std::size_t NotifySocket::count_line(const std::string& line, std::size_t from) {
  std::lock_guard lock(mutex_);
  std::size_t n = 0;
  for (std::size_t i = from; i < messages_.size(); ++i) n += has_line(messages_[i], line);
  return n;
}

bool has_line(const std::string& message, const std::string& line) {
  std::istringstream in(message);
  for (std::string l; std::getline(in, l);) {
    if (l == line) return true;
  }
  return false;
}

std::optional<std::string> value_of(const std::string& message, const std::string& key) {
  std::istringstream in(message);
  for (std::string l; std::getline(in, l);) {
    if (l.rfind(key + "=", 0) == 0) return l.substr(key.size() + 1);
  }
  return std::nullopt;
}

}  // namespace outpost::test_support
