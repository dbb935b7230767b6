// Prometheus text rendering of the agent's metrics.
#include "outpost/agent/metrics.h"

#include <cstdio>

namespace outpost::agent {
namespace {

class Writer {
 public:
  void family(const char* name, const char* type, const char* help) {
    out_ += "# HELP outpost_agent_";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE outpost_agent_";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  void sample(const char* name, double value, const std::string& labels = "") {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", value);
    out_ += "outpost_agent_";
    out_ += name;
    if (!labels.empty()) out_ += "{" + labels + "}";
    out_ += ' ';
    out_ += buf;
    out_ += '\n';
  }
  void metric(const char* name, const char* type, const char* help, double value) {
    family(name, type, help);
    sample(name, value);
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

double d(uint64_t v) { return static_cast<double>(v); }

}  // namespace

std::string render_metrics(const MetricsSnapshot& m) {
  Writer w;
  w.family("accepted_total", "counter", "Readings and log records accepted from the inputs.");
  w.sample("accepted_total", d(m.accepted_readings), "kind=\"reading\"");
  w.sample("accepted_total", d(m.accepted_logs), "kind=\"log\"");
  w.family("rejected_lines_total", "counter", "Malformed input lines refused, by reason.");
  for (LineError e : kAllLineErrors) {
    const auto it = m.rejected.find(e);
    w.sample("rejected_lines_total", d(it == m.rejected.end() ? 0 : it->second),
             "reason=\"" + std::string(line_error_name(e)) + "\"");
  }
  w.metric("input_kernel_dropped_datagrams_total", "counter",
           "Datagrams the kernel dropped because an input socket's receive buffer was full "
           "(SO_RXQ_OVFL): lost before the agent could read them.",
           d(m.kernel_dropped_datagrams));
  w.metric("persisted_total", "counter", "Items committed to the store.", d(m.persisted));
  w.metric("published_total", "counter", "Messages handed to the MQTT client (re-sends included).",
           d(m.published));
  w.metric("acked_total", "counter",
           "Messages whose delivery completed (PUBACK, or sent for QoS 0).", d(m.acked));
  w.metric("commit_acks_total", "counter", "end_to_end messages the collector confirmed as stored.",
           d(m.commit_acks));
  w.metric("resent_total", "counter", "end_to_end messages sent again after ack_timeout.",
           d(m.resent));
  w.family("dropped_total", "counter", "Items dropped by the queue policy, by reason (persisted).");
  w.sample("dropped_total", d(m.dropped_oldest), "reason=\"oldest\"");
  w.sample("dropped_total", d(m.dropped_newest), "reason=\"newest\"");
  w.sample("dropped_total", d(m.dropped_expired), "reason=\"expired\"");
  w.metric("queue_items", "gauge", "Items in the store not yet sealed into a message.",
           d(m.queue_items));
  w.metric("queue_messages", "gauge", "Sealed messages not yet acknowledged.", d(m.queue_messages));
  w.metric("queue_bytes", "gauge", "Bytes counted against the store quota.", d(m.queue_bytes));
  w.metric("queue_max_bytes", "gauge", "The store quota.", d(m.queue_max_bytes));
  if (m.oldest_item_age_s) {
    w.metric("queue_oldest_item_age_seconds", "gauge", "Age of the oldest queued item.",
             *m.oldest_item_age_s);
  }
  w.metric("store_resets", "gauge", "Corrupt store files moved aside.", d(m.store_resets));
  w.metric("reconnects_total", "counter", "Successful connections to the broker.", d(m.reconnects));
  w.metric("connected", "gauge", "1 if connected to the broker.", m.connected ? 1 : 0);
  w.metric("uptime_seconds", "gauge", "Seconds since the agent started.", m.uptime_s);
  return w.take();
}

}  // namespace outpost::agent
