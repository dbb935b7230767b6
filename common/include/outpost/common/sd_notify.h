// Telling systemd how a service is doing, without libsystemd: the sd_notify protocol (one
// AF_UNIX datagram of "KEY=value" lines to $NOTIFY_SOCKET) and the watchdog's interval from
// $WATCHDOG_USEC and $WATCHDOG_PID.
//
// Outside systemd (no NOTIFY_SOCKET) every call is a cheap no-op that returns false. A send
// that fails is logged once (a warning) and never stops the program: systemd then restarts or
// times out the service as its unit says, which is the right outcome for a broken channel.
// Every method may be called from any thread; each message is one datagram, sent whole.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "outpost/common/health.h"

namespace outpost::common {

// How often this process must send WATCHDOG=1: half of WATCHDOG_USEC, systemd's advice. nullopt
// when there is no watchdog for it: `usec` unset, not a positive whole number of microseconds,
// or `pid` set and not `self` (the watchdog is for another process, e.g. a parent shell).
// Arguments as the environment holds them (null when unset).
std::optional<std::chrono::microseconds> watchdog_ping_interval(const char* usec, const char* pid,
                                                                pid_t self);

class SdNotifier {
 public:
  // From $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID.
  static SdNotifier from_environment();
  // `socket` as NOTIFY_SOCKET spells it: a path ("/run/systemd/notify"), an abstract name
  // ("@name"), or "" for none. Anything else is logged once and treated as none.
  explicit SdNotifier(std::string socket,
                      std::optional<std::chrono::microseconds> watchdog_interval = std::nullopt);
  ~SdNotifier();
  SdNotifier(const SdNotifier&) = delete;
  SdNotifier& operator=(const SdNotifier&) = delete;

  // Whether there is a socket to tell.
  bool enabled() const { return fd_ >= 0; }
  // How often to send WATCHDOG=1; nullopt without a watchdog (or without a socket).
  std::optional<std::chrono::microseconds> watchdog_interval() const {
    return enabled() ? watchdog_ : std::nullopt;
  }

  // Each returns whether the datagram was sent. `status`, when not empty, is sent in the same
  // datagram as STATUS= (newlines become spaces: one line is all STATUS= holds).
  bool ready(std::string_view status = {});  // READY=1: the program does its job
  // RELOADING=1 with MONOTONIC_USEC= (CLOCK_MONOTONIC now), as systemd's reload wants; READY=1
  // ends the reload.
  bool reloading(std::string_view status = {});
  bool stopping(std::string_view status = {});          // STOPPING=1: shutting down
  bool status(std::string_view text);                   // STATUS=
  bool extend_timeout(std::chrono::microseconds more);  // EXTEND_TIMEOUT_USEC=
  bool watchdog();                                      // WATCHDOG=1
  // Sends `message` (KEY=value lines) as it is.
  bool notify(std::string_view message);

 private:
  void fail_once(const std::string& what);

  int fd_ = -1;
  std::string address_;  // a sockaddr_un, sun_path filled; its length is the address's
  std::optional<std::chrono::microseconds> watchdog_;
  std::atomic<bool> failure_logged_{false};
};

// What a program's event loop tells systemd every turn (period()): WATCHDOG=1 when a ping is
// due and every live check of its HealthReport holds (a stuck loop's stale heartbeat stops the
// pings, and systemd restarts the service once WatchdogSec passes), STATUS= when the summary
// changed. The change to and from "not pinging" is logged once. Used by one thread.
class NotifyLoop {
 public:
  using Clock = std::chrono::steady_clock;
  explicit NotifyLoop(SdNotifier& notifier) : notifier_(notifier) {}

  // Whether the loop has anything to do at all (a socket to tell).
  bool active() const { return notifier_.enabled(); }
  // How often turn() should run: 1 s, or the watchdog's interval when that is shorter.
  Clock::duration period() const;
  void turn(const HealthReport& report, const std::string& status, Clock::time_point now);
  // READY=1 with the status line (at start and at the end of a reload), which turn() then
  // sends again only once it changed.
  void ready(const std::string& status);

 private:
  SdNotifier& notifier_;
  std::optional<Clock::time_point> last_ping_;
  bool holding_ = false;  // not pinging: a live check fails
  std::string status_;
};

// A one-line summary for STATUS=: "connected to tcp://broker:1883, 12 queued", or "connecting
// to ...", then every failing check ("; not ready: store: cannot read the store (see the log)").
std::string status_summary(const HealthReport& report, std::string_view broker);

}  // namespace outpost::common
