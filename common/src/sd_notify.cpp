// The sd_notify protocol over $NOTIFY_SOCKET, the watchdog's interval, and the loop that pings it.
#include "outpost/common/sd_notify.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdlib>
#include <cstring>

namespace outpost::common {
namespace {

// A positive whole number, all of `text`.
std::optional<uint64_t> positive(const char* text) {
  if (!text) return std::nullopt;
  const char* end = text + std::strlen(text);
  uint64_t v = 0;
  const auto [at, ec] = std::from_chars(text, end, v);
  if (ec != std::errc() || at != end || at == text || v == 0) return std::nullopt;
  return v;
}

// "STATUS=" and its text on one line.
void append_status(std::string& message, std::string_view status) {
  if (status.empty()) return;
  message += "\nSTATUS=";
  for (char c : status) message += (c == '\n' || c == '\r') ? ' ' : c;
}

int64_t monotonic_us() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000 + ts.tv_nsec / 1000;
}

}  // namespace

std::optional<std::chrono::microseconds> watchdog_ping_interval(const char* usec, const char* pid,
                                                                pid_t self) {
  const auto us = positive(usec);
  if (!us) return std::nullopt;
  if (pid) {
    const auto owner = positive(pid);
    if (!owner || *owner != static_cast<uint64_t>(self)) return std::nullopt;
  }
  // Half the timeout, and never 0 (WATCHDOG_USEC=1).
  return std::chrono::microseconds(static_cast<int64_t>(std::max<uint64_t>(*us / 2, 1)));
}

SdNotifier SdNotifier::from_environment() {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  return SdNotifier(socket ? socket : "",
                    watchdog_ping_interval(std::getenv("WATCHDOG_USEC"),
                                           std::getenv("WATCHDOG_PID"), ::getpid()));
}

SdNotifier::SdNotifier(std::string socket, std::optional<std::chrono::microseconds> watchdog)
    : watchdog_(watchdog) {
  if (socket.empty()) return;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const bool abstract = socket[0] == '@';
  if (!abstract && socket[0] != '/') {
    fail_once("NOTIFY_SOCKET=" + socket + ": neither a path nor an abstract socket (@name)");
    return;
  }
  if (socket.size() > sizeof addr.sun_path - (abstract ? 0 : 1)) {
    fail_once("NOTIFY_SOCKET=" + socket + ": too long for a Unix socket address");
    return;
  }
  std::memcpy(addr.sun_path, socket.data(), socket.size());
  if (abstract) addr.sun_path[0] = '\0';  // the name is the bytes after it, no terminator
  const std::size_t length = offsetof(sockaddr_un, sun_path) + socket.size() + (abstract ? 0 : 1);
  address_.assign(reinterpret_cast<const char*>(&addr), length);
  fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    fail_once(std::string("NOTIFY_SOCKET: socket: ") + std::strerror(errno));
    return;
  }
  // systemd reads its socket at once; should it ever stall, a send gives up after a second
  // rather than hold the caller's event loop.
  const timeval timeout{1, 0};
  (void)::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);  // best effort
}

SdNotifier::~SdNotifier() {
  if (fd_ >= 0) ::close(fd_);
}

bool SdNotifier::notify(std::string_view message) {
  if (fd_ < 0) return false;
  const ssize_t n = ::sendto(fd_, message.data(), message.size(), MSG_NOSIGNAL,
                             reinterpret_cast<const sockaddr*>(address_.data()),
                             static_cast<socklen_t>(address_.size()));
  if (n == static_cast<ssize_t>(message.size())) return true;
  const std::string why = n < 0 ? std::strerror(errno) : "datagram cut short";
  fail_once("cannot notify systemd (NOTIFY_SOCKET): " + why);
  return false;
}

bool SdNotifier::ready(std::string_view status) {
  std::string m = "READY=1";
  append_status(m, status);
  return notify(m);
}

bool SdNotifier::reloading(std::string_view status) {
  std::string m = "RELOADING=1\nMONOTONIC_USEC=" + std::to_string(monotonic_us());
  append_status(m, status);
  return notify(m);
}

bool SdNotifier::stopping(std::string_view status) {
  std::string m = "STOPPING=1";
  append_status(m, status);
  return notify(m);
}

bool SdNotifier::status(std::string_view text) {
  std::string m;
  append_status(m, text);
  return !m.empty() && notify(std::string_view(m).substr(1));  // without the leading newline
}

bool SdNotifier::extend_timeout(std::chrono::microseconds more) {
  return notify("EXTEND_TIMEOUT_USEC=" + std::to_string(more.count()));
}

bool SdNotifier::watchdog() { return notify("WATCHDOG=1"); }

void SdNotifier::fail_once(const std::string& what) {
  if (failure_logged_.exchange(true)) return;
  spdlog::warn("{} (said once; systemd may see this service as not started or hung)", what);
}

NotifyLoop::Clock::duration NotifyLoop::period() const {
  const Clock::duration turn = std::chrono::seconds(1);
  const auto watchdog = notifier_.watchdog_interval();
  return watchdog && *watchdog < turn ? Clock::duration(*watchdog) : turn;
}

void NotifyLoop::turn(const HealthReport& report, const std::string& status,
                      Clock::time_point now) {
  if (!notifier_.enabled()) return;
  if (const auto interval = notifier_.watchdog_interval()) {
    std::string failing;
    for (const HealthCheck& c : report.live) {
      if (!c.ok) failing += (failing.empty() ? "" : "; ") + c.name + ": " + c.detail;
    }
    if (!failing.empty()) {
      if (!holding_) {
        spdlog::error(
            "not pinging the systemd watchdog: {}; systemd restarts the service if "
            "this lasts",
            failing);
      }
      holding_ = true;
    } else {
      if (holding_) spdlog::warn("pinging the systemd watchdog again: every loop turns");
      holding_ = false;
      // Due at the interval, less a turn's worth so that a late timer still beats the timeout.
      if (!last_ping_ || now - *last_ping_ + period() > *interval) {
        if (notifier_.watchdog()) last_ping_ = now;
      }
    }
  }
  if (status != status_ && notifier_.status(status)) status_ = status;
}

void NotifyLoop::ready(const std::string& status) {
  if (notifier_.ready(status)) status_ = status;
}

std::string status_summary(const HealthReport& report, std::string_view broker) {
  std::string s = report.connected ? "connected to " : "connecting to ";
  s += broker;
  s += ", " + std::to_string(report.queue_depth) + " queued";
  for (const auto* group : {&report.live, &report.ready}) {
    for (const HealthCheck& c : *group) {
      if (c.ok) continue;
      s += group == &report.live ? "; stuck: " : "; not ready: ";
      s += c.name + ": " + (c.detail.empty() ? "failing" : c.detail);
    }
  }
  return s;
}

}  // namespace outpost::common
