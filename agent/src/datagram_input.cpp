// Reading the agent's datagram sockets on their own thread, with kernel drop counts.
#include "datagram_input.h"

#include <arpa/inet.h>
#include <grp.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "outpost/common/net.h"

namespace outpost::agent {
namespace {

// Bigger than any UDP datagram (65,507 bytes of payload).
constexpr std::size_t kBufferBytes = 64 * 1024;
// Datagrams read from one socket before the other (and the stop request) get a look.
constexpr int kMaxPerDrain = 256;

std::string errno_text() { return std::strerror(errno); }

int receive_buffer(int fd) {
  int granted = 0;
  socklen_t len = sizeof granted;
  if (::getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &granted, &len) != 0) return 0;
  return granted;
}

// Requests `bytes` of receive buffer; returns what the kernel granted (twice what it
// accepted, for its own overhead). Beyond net.core.rmem_max only with CAP_NET_ADMIN.
int set_receive_buffer(int fd, int bytes) {
  (void)::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
  if (receive_buffer(fd) < 2 * bytes) {
    (void)::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes);  // EPERM if not
  }
  return receive_buffer(fd);
}

// The kernel's count of datagrams dropped on a full receive buffer of `fd`.
uint32_t socket_drops(int fd) {
  uint32_t info[SK_MEMINFO_VARS] = {};
  socklen_t len = sizeof info;
  if (fd < 0 || ::getsockopt(fd, SOL_SOCKET, SO_MEMINFO, info, &len) != 0) return 0;
  return len > SK_MEMINFO_DROPS * sizeof(uint32_t) ? info[SK_MEMINFO_DROPS] : 0;
}

void enable_drop_count(int fd) {
  const int on = 1;
  (void)::setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &on, sizeof on);
}

common::Result<int> bind_udp(const std::string& listen) {
  const auto where = common::parse_host_port(listen);
  sockaddr_storage address{};
  socklen_t length = 0;
  if (where) {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&address);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&address);
    if (::inet_pton(AF_INET, where->host.c_str(), &v4->sin_addr) == 1) {
      v4->sin_family = AF_INET;
      v4->sin_port = htons(where->port);
      length = sizeof *v4;
    } else if (::inet_pton(AF_INET6, where->host.c_str(), &v6->sin6_addr) == 1) {
      v6->sin6_family = AF_INET6;
      v6->sin6_port = htons(where->port);
      length = sizeof *v6;
    }
  }
  if (length == 0) return common::Error{"inputs.udp_listen '" + listen + "' is not host:port"};
  const int fd = ::socket(address.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || ::bind(fd, reinterpret_cast<const sockaddr*>(&address), length) != 0) {
    const std::string why = errno_text();
    if (fd >= 0) ::close(fd);
    return common::Error{"cannot listen on udp " + listen + ": " + why};
  }
  return fd;
}

// Whether a process reads the Unix datagram socket at `path`: a connect() to a socket file
// nobody holds any more is refused.
bool socket_is_live(const sockaddr_un& address) {
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const bool live = ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  return live;
}

common::Result<int> bind_unix(const DatagramInput::Options& options, struct stat& bound) {
  const std::string& path = options.unix_socket;
  const std::string fail = "cannot listen on unix socket " + path + ": ";
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.size() >= sizeof address.sun_path) return common::Error{fail + "path too long"};
  std::memcpy(address.sun_path, path.data(), path.size());
  gid_t gid = static_cast<gid_t>(-1);
  if (!options.unix_socket_group.empty()) {
    const group* g = ::getgrnam(options.unix_socket_group.c_str());
    if (!g) return common::Error{fail + "no such group " + options.unix_socket_group};
    gid = g->gr_gid;
  }
  std::error_code ec;
  if (std::filesystem::is_socket(path, ec)) {
    // Another agent's live socket stays (it would silently stop receiving); a socket file a
    // killed run left behind would make bind fail, and is replaced.
    if (socket_is_live(address)) {
      return common::Error{fail +
                           "another process reads it (is another outpost-agent running "
                           "with this inputs.unix_socket?)"};
    }
    std::filesystem::remove(path, ec);
  }
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || ::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    const std::string why = errno_text();
    if (fd >= 0) ::close(fd);
    return common::Error{fail + why};
  }
  if (::chmod(path.c_str(), options.unix_socket_mode) != 0 ||
      (gid != static_cast<gid_t>(-1) && ::chown(path.c_str(), static_cast<uid_t>(-1), gid) != 0) ||
      ::stat(path.c_str(), &bound) != 0) {
    const std::string why = errno_text();
    ::close(fd);
    std::filesystem::remove(path, ec);
    return common::Error{fail + "cannot set its mode or group: " + why};
  }
  return fd;
}

}  // namespace

common::Result<std::unique_ptr<DatagramInput>> DatagramInput::open(const Options& options) {
  std::unique_ptr<DatagramInput> input(new DatagramInput());
  input->wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (input->wake_fd_ < 0) return common::Error{"eventfd: " + errno_text()};
  if (!options.udp_listen.empty()) {
    auto fd = bind_udp(options.udp_listen);
    if (!fd.ok()) return fd.error();
    input->udp_fd_ = fd.value();
    input->udp_rcvbuf_ = set_receive_buffer(input->udp_fd_, options.receive_buffer_bytes);
    enable_drop_count(input->udp_fd_);
  }
  if (!options.unix_socket.empty()) {
    struct stat bound {};
    auto fd = bind_unix(options, bound);
    if (!fd.ok()) return fd.error();
    input->unix_fd_ = fd.value();
    input->unix_path_ = options.unix_socket;
    input->unix_dev_ = bound.st_dev;
    input->unix_ino_ = bound.st_ino;
    (void)set_receive_buffer(input->unix_fd_, options.receive_buffer_bytes);
    enable_drop_count(input->unix_fd_);
  }
  input->buffer_.resize(kBufferBytes);
  return input;
}

uint64_t DatagramInput::kernel_drops() const {
  return uint64_t{socket_drops(udp_fd_)} + socket_drops(unix_fd_);
}

DatagramInput::~DatagramInput() {
  stop();
  for (int fd : {udp_fd_, unix_fd_, wake_fd_}) {
    if (fd >= 0) ::close(fd);
  }
  struct stat now {};
  if (!unix_path_.empty() && ::stat(unix_path_.c_str(), &now) == 0 && now.st_dev == unix_dev_ &&
      now.st_ino == unix_ino_) {
    std::error_code ec;
    std::filesystem::remove(unix_path_, ec);
  }
}

void DatagramInput::start(Handler handler) {
  handler_ = std::move(handler);
  thread_ = std::thread([this] { run(); });
}

void DatagramInput::stop() {
  if (!thread_.joinable()) return;
  const uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);
  thread_.join();
}

void DatagramInput::run() {
  pollfd fds[3] = {{wake_fd_, POLLIN, 0}, {udp_fd_, POLLIN, 0}, {unix_fd_, POLLIN, 0}};
  while (true) {
    // poll ignores negative descriptors: an input that is off is never ready.
    if (::poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      return;  // EFAULT/EINVAL/ENOMEM: nothing sensible left to read with
    }
    if (fds[0].revents != 0) {
      // Stopping. What the kernel already holds was sent to us, fire-and-forget: take it
      // all before going (the queue is closed by now, so pushes no longer wait).
      while (drain(udp_fd_, udp_drops_seen_) == kMaxPerDrain) {
      }
      while (drain(unix_fd_, unix_drops_seen_) == kMaxPerDrain) {
      }
      return;
    }
    if (fds[1].revents != 0) drain(udp_fd_, udp_drops_seen_);
    if (fds[2].revents != 0) drain(unix_fd_, unix_drops_seen_);
  }
}

int DatagramInput::drain(int fd, uint32_t& last_drop_count) {
  if (fd < 0) return 0;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(uint32_t))];
  int i = 0;
  for (; i < kMaxPerDrain; ++i) {
    iovec iov{buffer_.data(), buffer_.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    const ssize_t n = ::recvmsg(fd, &msg, MSG_DONTWAIT);
    if (n < 0) return i;  // EAGAIN: drained; anything else: try again on the next poll
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
        uint32_t count;
        std::memcpy(&count, CMSG_DATA(c), sizeof count);
        // Cumulative (32 bits): the difference survives its wrap-around.
        const uint32_t new_drops = count - last_drop_count;
        last_drop_count = count;
        const auto now = std::chrono::steady_clock::now();
        if (new_drops > 0 && now - last_drop_warning_ >= std::chrono::seconds(10)) {
          last_drop_warning_ = now;
          spdlog::warn(
              "the kernel dropped {} datagrams: the input socket's receive buffer was full "
              "(outpost_agent_input_kernel_dropped_datagrams_total counts them all)",
              new_drops);
        }
      }
    }
    handler_(std::string_view(buffer_.data(), static_cast<std::size_t>(n)),
             (msg.msg_flags & MSG_TRUNC) != 0);
  }
  return i;
}

}  // namespace outpost::agent
