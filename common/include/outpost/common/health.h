// Health and readiness as the programs report them on /healthz, /readyz and /status, beside
// /metrics on the same listener.
//
// /healthz answers whether the process still works: each of its loops stamps a Heartbeat every
// turn, and a heartbeat older than kHeartbeatMaxAge (a stuck loop) makes it 503. /readyz answers
// whether it does its job now (the agent: store open and inputs bound; the collector: subscribed
// and its last commit did not fail). /status is the JSON a person or a script reads: version,
// uptime, every check, queue depth, connection, last commit. Pure functions of a HealthReport;
// a Heartbeat is stamped and read from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "outpost/common/http_response.h"

namespace outpost::common {

// A loop that did not turn for this long is stuck: /healthz says 503.
inline constexpr std::chrono::seconds kHeartbeatMaxAge{5};

class Heartbeat {
 public:
  using Clock = std::chrono::steady_clock;
  // The loop's thread, once a turn.
  void beat(Clock::time_point now = Clock::now()) {
    ns_.store(now.time_since_epoch().count(), std::memory_order_relaxed);
  }
  // Time since the last beat; nullopt before the first. Any thread.
  std::optional<Clock::duration> age(Clock::time_point now = Clock::now()) const {
    const int64_t ns = ns_.load(std::memory_order_relaxed);
    if (ns == 0) return std::nullopt;
    return now - Clock::time_point(Clock::duration(ns));
  }

 private:
  std::atomic<Clock::rep> ns_{0};
};

// One named condition: "heartbeat" ok, "store" not ok with why.
struct HealthCheck {
  std::string name;
  bool ok = false;
  std::string detail;  // what a person needs to know when it is not ok ("" when ok)
};

// The check for a loop's heartbeat: ok while it beat within `max_age`.
HealthCheck heartbeat_check(std::string name, const Heartbeat& beat,
                            Heartbeat::Clock::time_point now = Heartbeat::Clock::now(),
                            Heartbeat::Clock::duration max_age = kHeartbeatMaxAge);

struct HealthReport {
  std::string program;  // "outpost-agent"
  std::string version;
  double uptime_s = 0;
  std::vector<HealthCheck> live;                // all ok: /healthz 200
  std::vector<HealthCheck> ready;               // all ok (and live): /readyz 200
  uint64_t queue_depth = 0;                     // what waits to be stored or sent
  bool connected = false;                       // to the broker
  std::optional<int64_t> last_commit_unix_us;   // the last successful store commit
  std::optional<int64_t> last_failure_unix_us;  // the last failed one, if any
};

// 200 "ok" when every live check holds, else 503 naming the failing checks.
HttpResponse healthz(const HealthReport& report);
// 200 "ready" when every live and ready check holds, else 503 naming the failing checks.
HttpResponse readyz(const HealthReport& report);
// 200, application/json: the whole report.
HttpResponse status_json(const HealthReport& report);

}  // namespace outpost::common
