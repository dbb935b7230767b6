// Prometheus text rendering of the agent's metrics.
#include "outpost/agent/metrics.h"

#include <cstdio>

#include "outpost/agent/delivery.h"
#include "outpost/agent/intake.h"

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

void add_counters(MetricsSnapshot& m, const IntakeCounters& intake,
                  const DeliveryCounters& delivery) {
  m.persisted = intake.persisted;
  m.lost_items = intake.lost;
  for (StoreOp op : kAllStoreOps) {
    m.store_errors[op] += intake.store_errors[op] + delivery.store_errors[op];
  }
  m.published = delivery.published;
  m.acked = delivery.acked;
  m.commit_acks = delivery.commit_acks;
  m.resent = delivery.resent;
  m.reconnects = delivery.reconnects;
  m.connect_failures = delivery.connect_failures;
  m.publish_failures = delivery.publish_failures;
  m.delivery_failures = delivery.delivery_failures;
  m.subscribe_failures = delivery.subscribe_failures;
  m.status_failures = delivery.status_failures;
  m.bad_acks = delivery.bad_acks;
}

void add_store_stats(MetricsSnapshot& m, const StoreStats& s, int64_t now_us) {
  m.queue_items = s.queued_items;
  m.queue_messages = s.outbox_messages;
  m.queue_bytes = s.bytes;
  if (s.oldest_time_us) m.oldest_item_age_s = static_cast<double>(now_us - *s.oldest_time_us) / 1e6;
  m.dropped_oldest = s.dropped_oldest;
  m.dropped_newest = s.dropped_newest;
  m.dropped_expired = s.dropped_expired;
  m.store_resets = s.store_resets;
}

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
  w.metric("lost_items_total", "counter",
           "Received items lost because the store could not persist them "
           "(store_errors_total{op=\"append\"}).",
           d(m.lost_items));
  w.family("store_errors_total", "counter", "Queue operations that failed, by operation.");
  for (StoreOp op : kAllStoreOps) {
    const auto it = m.store_errors.find(op);
    w.sample("store_errors_total", d(it == m.store_errors.end() ? 0 : it->second),
             "op=\"" + std::string(store_op_name(op)) + "\"");
  }
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
  w.family("mqtt_failures_total", "counter",
           "MQTT operations that failed: connect attempts, publishes the client refused, "
           "deliveries it gave up on (both re-sent later), ack subscriptions, status messages.");
  w.sample("mqtt_failures_total", d(m.connect_failures), "op=\"connect\"");
  w.sample("mqtt_failures_total", d(m.publish_failures), "op=\"publish\"");
  w.sample("mqtt_failures_total", d(m.delivery_failures), "op=\"delivery\"");
  w.sample("mqtt_failures_total", d(m.subscribe_failures), "op=\"subscribe\"");
  w.sample("mqtt_failures_total", d(m.status_failures), "op=\"status\"");
  w.metric("bad_acks_total", "counter",
           "Ack messages ignored because they did not decode or validate.", d(m.bad_acks));
  w.metric("connected", "gauge", "1 if connected to the broker.", m.connected ? 1 : 0);
  w.metric("uptime_seconds", "gauge", "Seconds since the agent started.", m.uptime_s);
  return w.take();
}

}  // namespace outpost::agent
