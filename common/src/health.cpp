// The answers of /healthz, /readyz and /status.
#include "outpost/common/health.h"

#include <cstdio>

#include "outpost/common/json.h"
#include "outpost/common/time_text.h"

namespace outpost::common {
namespace {

HttpResponse verdict(const std::vector<const std::vector<HealthCheck>*>& groups, const char* good) {
  std::string failing;
  for (const auto* group : groups) {
    for (const HealthCheck& c : *group) {
      if (!c.ok) failing += c.name + ": " + (c.detail.empty() ? "failing" : c.detail) + "\n";
    }
  }
  if (failing.empty()) return HttpResponse{200, "text/plain; charset=utf-8", std::string(good)};
  return HttpResponse{503, "text/plain; charset=utf-8", failing};
}

void append_checks(std::string& out, const std::vector<HealthCheck>& checks) {
  out += "{";
  for (std::size_t i = 0; i < checks.size(); ++i) {
    if (i) out += ",";
    append_json_string(out, checks[i].name);
    out += checks[i].ok ? ":{\"ok\":true" : ":{\"ok\":false";
    if (!checks[i].detail.empty()) {
      out += ",\"detail\":";
      append_json_string(out, checks[i].detail);
    }
    out += "}";
  }
  out += "}";
}

bool all_ok(const std::vector<HealthCheck>& checks) {
  for (const auto& c : checks) {
    if (!c.ok) return false;
  }
  return true;
}

void append_time(std::string& out, const char* key, const std::optional<int64_t>& us) {
  out += ",\"";
  out += key;
  out += "\":";
  if (us) {
    append_json_string(out, format_time_us(*us));
  } else {
    out += "null";
  }
}

}  // namespace

HealthCheck heartbeat_check(std::string name, const Heartbeat& beat,
                            Heartbeat::Clock::time_point now, Heartbeat::Clock::duration max_age) {
  const auto age = beat.age(now);
  if (!age) return HealthCheck{std::move(name), false, "has not run yet"};
  if (*age > max_age) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "no turn for %.1f s (stuck?)",
                  std::chrono::duration<double>(*age).count());
    return HealthCheck{std::move(name), false, buf};
  }
  return HealthCheck{std::move(name), true, ""};
}

HttpResponse healthz(const HealthReport& r) { return verdict({&r.live}, "ok\n"); }

HttpResponse readyz(const HealthReport& r) { return verdict({&r.live, &r.ready}, "ready\n"); }

HttpResponse status_json(const HealthReport& r) {
  std::string out = "{\"program\":";
  append_json_string(out, r.program);
  out += ",\"version\":";
  append_json_string(out, r.version);
  char uptime[48];
  std::snprintf(uptime, sizeof uptime, "%.3f", r.uptime_s);
  out += ",\"uptime_seconds\":";
  out += uptime;
  out += ",\"healthy\":";
  out += all_ok(r.live) ? "true" : "false";
  out += ",\"ready\":";
  out += all_ok(r.live) && all_ok(r.ready) ? "true" : "false";
  out += ",\"live_checks\":";
  append_checks(out, r.live);
  out += ",\"ready_checks\":";
  append_checks(out, r.ready);
  out += ",\"queue_depth\":" + std::to_string(r.queue_depth);
  out += ",\"connected\":";
  out += r.connected ? "true" : "false";
  append_time(out, "last_commit", r.last_commit_unix_us);
  append_time(out, "last_commit_failure", r.last_failure_unix_us);
  out += "}\n";
  return HttpResponse{200, "application/json", out};
}

}  // namespace outpost::common
