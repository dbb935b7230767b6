// Prometheus text exposition of the collector's counters.
#include "outpost/collector/counters.h"

#include <cstdio>
#include <string_view>

#include "outpost/common/message.h"
#include "outpost/common/reason.h"

namespace outpost::collector {
namespace {

// Microseconds as seconds (Prometheus' base unit), to the microsecond.
std::string seconds(uint64_t us) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6f", static_cast<double>(us) / 1e6);
  return buf;
}

}  // namespace

std::string metrics_text(const Counters& c, const LiveGauges& live) {
  std::string out;
  auto family = [&out](std::string_view name, std::string_view type, std::string_view help) {
    out += "# HELP outpost_collector_" + std::string(name) + " " + std::string(help) + "\n";
    out += "# TYPE outpost_collector_" + std::string(name) + " " + std::string(type) + "\n";
  };
  auto sample = [&out](std::string_view name, uint64_t v, std::string_view labels = "") {
    out += "outpost_collector_" + std::string(name) + std::string(labels) + " " +
           std::to_string(v) + "\n";
  };
  auto counter = [&](std::string_view name, std::string_view help, uint64_t v) {
    family(name, "counter", help);
    sample(name, v);
  };
  auto gauge = [&](std::string_view name, std::string_view help, uint64_t v) {
    family(name, "gauge", help);
    sample(name, v);
  };
  counter("received_total", "Messages received from the broker (and replayed from the journal).",
          c.received);
  counter("replayed_total", "Messages replayed from the journal at start.", c.replayed);
  counter("batches_stored_total", "Data and logs messages stored.", c.batches_stored);
  counter("duplicates_total", "Data and logs messages already stored (not stored again).",
          c.duplicates);
  counter("readings_stored_total", "Readings stored.", c.readings_stored);
  counter("logs_stored_total", "Log records stored.", c.logs_stored);
  counter("statuses_total", "Device status messages.", c.statuses);
  family("dlq_total", "counter", "Messages put in the dead-letter queue, by reason.");
  for (common::Reason r : common::kAllReasons) {
    sample("dlq_total", c.dlq_by_reason[static_cast<std::size_t>(r) % 16],
           "{reason=\"" + std::string(common::reason_name(r)) + "\"}");
  }
  counter("dlq_dropped_total", "DLQ entries removed to keep the DLQ within its bounds.",
          c.dlq_dropped);
  family("events_total", "counter", "Events raised, by kind.");
  for (common::EventKind kind : common::kAllEventKinds) {
    sample("events_total", c.events_by_kind[static_cast<std::size_t>(kind) % 16],
           "{kind=\"" + std::string(common::event_kind_name(kind)) + "\"}");
  }
  counter("commits_total", "Storage transactions committed.", c.commits);
  counter("commit_failures_total", "Storage transactions that failed (and were retried).",
          c.commit_failures);
  counter("commits_given_up_total",
          "Transactions given up at shutdown while the store kept failing (the journal keeps "
          "their messages for the next start).",
          c.commits_given_up);
  family("commit_seconds_total", "counter", "Time spent committing storage transactions.");
  out += "outpost_collector_commit_seconds_total " + seconds(c.commit_us_total.load()) + "\n";
  counter("commit_messages_total", "Messages in committed transactions.", c.commit_messages_total);
  counter("acks_published_total", "Commit acknowledgements published.", c.acks_published);
  counter("events_published_total", "Events published on outpost/v1/events/...",
          c.events_published);
  counter("publish_skipped_total",
          "Acks and events not published: the publisher connection was down (events stay in "
          "the database; an agent re-sends what was not acked and is acked again).",
          c.publish_skipped);
  counter("encode_failures_total",
          "Acks and events not published, or storage_rejected DLQ entries stored without topic "
          "or payload, because their topic or bytes could not be encoded.",
          c.encode_failures);
  counter("reconnects_total", "Successful connections to the broker.", c.reconnects);
  counter("connect_failures_total", "Failed attempts to connect and subscribe.",
          c.connect_failures);
  counter("intake_pauses_total",
          "Times the subscription paused because the messages received and not yet taken "
          "reached mqtt.intake_max_bytes (the broker kept the rest of its backlog).",
          c.intake_pauses);
  counter("oversized_cut_total",
          "Messages over mqtt.max_message_bytes: not journaled, their DLQ entry keeps the first "
          "4 KiB, the length and the SHA-256.",
          c.oversized_cut);
  counter("ignored_total",
          "Messages the catch-all subscription brought on Outpost topics no configured filter "
          "matches (the collector's own acks and events): dropped.",
          c.ignored);
  counter("expired_rows_total", "Rows removed by retention.", c.expired_rows);
  counter("retention_failures_total", "Retention runs that failed (retried a minute later).",
          c.retention_failures);
  counter("journal_errors_total", "Journal writes that failed.", c.journal_errors);
  counter("journal_release_failures_total",
          "Committed journal segments that could not be removed (tried again at the next commit).",
          c.journal_release_failures);
  gauge("rules_tripped", "Threshold rules tripped now, per (rule, device).", c.rules_tripped);
  if (live.webhooks) {
    const WebhookStats& w = *live.webhooks;
    counter("webhook_delivered_total", "Webhook deliveries answered with 2xx.", w.delivered);
    counter("webhook_retries_total", "Webhook attempts after the first.", w.retried);
    counter("webhook_gave_up_total",
            "Webhook deliveries given up (into the DLQ), queue full included.", w.gave_up);
    counter("webhook_queue_full_total", "Of those, refused because too many were pending.",
            w.queue_full);
  }
  if (live.fleet_leader) {
    gauge("fleet_leader", "1 while this collector is its shared group's fleet leader.",
          *live.fleet_leader ? 1 : 0);
    counter("leader_rounds_total", "Fleet leader rounds this collector committed.",
            live.leader_rounds);
    counter("leader_restores_total",
            "Times this collector became fleet leader and restored the fleet's state.",
            live.leader_restores);
  }
  gauge("queue_depth", "Messages waiting for the storage thread.", live.queue_depth);
  gauge("connected",
        "1 while the subscriber is connected to the broker (or paused by the intake's bound).",
        live.connected ? 1 : 0);
  gauge("intake_bytes",
        "Messages received and not yet journaled, in bytes (payload and topic, plus 256 a "
        "message).",
        live.intake_bytes);
  gauge("intake_peak_bytes", "The most intake_bytes has been since start.", live.intake_peak_bytes);
  gauge("intake_paused", "1 while the subscription is paused at mqtt.intake_max_bytes.",
        live.intake_paused ? 1 : 0);
  gauge("publisher_connected", "1 while the publisher (acks, events) is connected.",
        live.publisher_connected ? 1 : 0);
  out +=
      "# HELP outpost_collector_reading_latency_seconds From a reading's timestamp to its "
      "commit.\n";
  out += "# TYPE outpost_collector_reading_latency_seconds histogram\n";
  uint64_t cumulative = 0;
  for (std::size_t i = 0; i <= kLatencyBuckets.size(); ++i) {
    cumulative += c.latency_counts[i].load();
    char le[32];
    if (i < kLatencyBuckets.size()) {
      std::snprintf(le, sizeof le, "%g", kLatencyBuckets[i]);
    } else {
      std::snprintf(le, sizeof le, "+Inf");
    }
    out += "outpost_collector_reading_latency_seconds_bucket{le=\"" + std::string(le) + "\"} " +
           std::to_string(cumulative) + "\n";
  }
  out += "outpost_collector_reading_latency_seconds_sum " + seconds(c.latency_sum_us.load()) + "\n";
  out += "outpost_collector_reading_latency_seconds_count " + std::to_string(cumulative) + "\n";
  return out;
}

}  // namespace outpost::collector
