// The operator tools of outpost-collector.
#include "tools.h"

#include <mqtt/async_client.h>

#include <cmath>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <span>

#include "mqtt_options.h"
#include "outpost/collector/ingest.h"
#include "outpost/common/cli.h"
#include "outpost/common/clock.h"
#include "outpost/common/codec.h"
#include "outpost/common/json.h"
#include "outpost/common/time_text.h"
#include "outpost/common/topics.h"
#include "storage.h"

namespace outpost::collector {

using common::wall_now_us;

namespace {

std::string iso_time(int64_t us) { return common::format_time_us(us); }

constexpr std::string_view kSeverityNames[] = {"unspecified", "trace",   "debug", "info",
                                               "notice",      "warning", "error", "critical"};

std::string_view value_type(const common::Value& v) {
  if (std::holds_alternative<double>(v)) return "double";
  if (std::holds_alternative<int64_t>(v)) return "integer";
  if (std::holds_alternative<bool>(v)) return "bool";
  return "string";
}

// A double as JSON writes it, with ".0" added when that form would read as an integer
// (22.0, not 22). NaN and infinities come out as "NaN", "Infinity", "-Infinity", quoted.
std::string double_json(double d) {
  std::string out;
  common::append_json_value(out, common::Value(d));
  if (std::isfinite(d) && out.find_first_of(".eE") == std::string::npos) out += ".0";
  return out;
}

// A value for the table, typed as line protocol writes it: 22.0 (double), 22i (integer),
// true/false (bool), "open" (string, quoted, with \" and \\ escaped).
std::string value_text(const common::Value& v) {
  if (const auto* d = std::get_if<double>(&v)) {
    std::string out = double_json(*d);
    if (out.front() == '"') out = out.substr(1, out.size() - 2);  // NaN, Infinity
    return out;
  }
  if (const auto* n = std::get_if<int64_t>(&v)) return std::to_string(*n) + "i";
  if (const auto* b = std::get_if<bool>(&v)) return *b ? "true" : "false";
  std::string out = "\"";
  for (char c : std::get<std::string>(v)) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// A value for a CSV cell, next to a type column: numbers as JSON writes them (doubles
// always with a point or exponent), true/false, strings as they are.
std::string value_cell(const common::Value& v) {
  if (const auto* d = std::get_if<double>(&v)) {
    std::string out = double_json(*d);
    if (out.front() == '"') out = out.substr(1, out.size() - 2);
    return out;
  }
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  std::string out;
  common::append_json_value(out, v);
  return out;
}

// A value for JSON output: doubles always with a point or exponent (and the "type" key
// beside it says which it is, for NaN and infinities too).
std::string value_json(const common::Value& v) {
  if (const auto* d = std::get_if<double>(&v)) return double_json(*d);
  std::string out;
  common::append_json_value(out, v);
  return out;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

common::Result<std::unique_ptr<Reader>, SinkError> open_db(const CollectorConfig& config) {
  return open_reader(config);
}

int fail(const std::string& message) {
  std::cerr << "outpost-collector: " << message << "\n";
  return common::kExitFailure;
}

}  // namespace

int run_query(const CollectorConfig& config, const QueryArgs& args) {
  auto db = open_db(config);
  if (!db.ok()) return fail(db.error().message);
  if (args.format == "csv") {
    std::printf("device,site,sensor,time,time_us,value,type,unit,epoch,seq\n");
  }
  if (args.format == "table") {
    std::printf("%-24s %-16s %-24s %-20s %s\n", "TIME", "DEVICE", "SENSOR", "VALUE", "UNIT");
  }
  bool first = true;
  if (args.format == "json") std::printf("[");
  uint64_t rows = 0;
  auto s = db.value()->query_readings(args.query, [&](const ReadingRow& r) {
    ++rows;
    if (args.format == "csv") {
      std::printf("%s,%s,%s,%s,%lld,%s,%s,%s,%llu,%llu\n", csv_field(r.device).c_str(),
                  csv_field(r.site).c_str(), csv_field(r.sensor).c_str(),
                  iso_time(r.time_us).c_str(), static_cast<long long>(r.time_us),
                  csv_field(value_cell(r.value)).c_str(), std::string(value_type(r.value)).c_str(),
                  csv_field(r.unit).c_str(), static_cast<unsigned long long>(r.epoch),
                  static_cast<unsigned long long>(r.seq));
    } else if (args.format == "json") {
      std::string o = first ? "\n{" : ",\n{";
      first = false;
      o += "\"device\":";
      common::append_json_string(o, r.device);
      o += ",\"site\":";
      common::append_json_string(o, r.site);
      o += ",\"sensor\":";
      common::append_json_string(o, r.sensor);
      o += ",\"time\":\"" + iso_time(r.time_us) + "\"";
      o += ",\"time_us\":" + std::to_string(r.time_us) + ",\"value\":" + value_json(r.value);
      o += ",\"type\":\"" + std::string(value_type(r.value)) + "\"";
      o += ",\"unit\":";
      common::append_json_string(o, r.unit);
      o += ",\"epoch\":" + std::to_string(r.epoch) + ",\"seq\":" + std::to_string(r.seq) + "}";
      std::fputs(o.c_str(), stdout);
    } else {
      std::printf("%-24s %-16s %-24s %-20s %s\n", iso_time(r.time_us).c_str(), r.device.c_str(),
                  r.sensor.c_str(), value_text(r.value).c_str(), r.unit.c_str());
    }
  });
  if (args.format == "json") std::printf("\n]\n");
  if (!s.ok()) return fail(s.error().message);
  if (args.format == "table") std::fprintf(stderr, "%llu readings\n", (unsigned long long)rows);
  return common::kExitOk;
}

std::optional<common::Severity> parse_severity(std::string_view text) {
  for (int i = 1; i < static_cast<int>(std::size(kSeverityNames)); ++i) {
    if (text == kSeverityNames[i] || text == std::to_string(i)) {
      return static_cast<common::Severity>(i);
    }
  }
  if (text == "warn") return common::Severity::kWarning;
  if (text == "err") return common::Severity::kError;
  return std::nullopt;
}

std::string_view severity_text(common::Severity s) {
  const auto i = static_cast<std::size_t>(s);
  return i < std::size(kSeverityNames) ? kSeverityNames[i] : "unknown";
}

int run_logs(const CollectorConfig& config, const LogsArgs& args) {
  auto db = open_db(config);
  if (!db.ok()) return fail(db.error().message);
  if (args.format == "csv")
    std::printf("device,site,time,time_us,severity,message,fields,epoch,seq\n");
  if (args.format == "table") {
    std::printf("%-24s %-16s %-8s %s\n", "TIME", "DEVICE", "SEVERITY", "MESSAGE");
  }
  if (args.format == "json") std::printf("[");
  uint64_t rows = 0;
  auto s = db.value()->query_logs(args.query, [&](const LogRow& r) {
    std::string fields = "{";
    for (const auto& f : r.fields) {
      if (fields.size() > 1) fields += ',';
      common::append_json_string(fields, f.key);
      fields += ':';
      common::append_json_string(fields, f.value);
    }
    fields += '}';
    const std::string severity(severity_text(r.severity));
    if (args.format == "csv") {
      std::printf("%s,%s,%s,%lld,%s,%s,%s,%llu,%llu\n", csv_field(r.device).c_str(),
                  csv_field(r.site).c_str(), iso_time(r.time_us).c_str(),
                  static_cast<long long>(r.time_us), severity.c_str(), csv_field(r.message).c_str(),
                  csv_field(fields).c_str(), static_cast<unsigned long long>(r.epoch),
                  static_cast<unsigned long long>(r.seq));
    } else if (args.format == "json") {
      std::string o = rows ? ",\n{" : "\n{";
      o += "\"device\":";
      common::append_json_string(o, r.device);
      o += ",\"site\":";
      common::append_json_string(o, r.site);
      o += ",\"time\":\"" + iso_time(r.time_us) + "\"";
      o += ",\"time_us\":" + std::to_string(r.time_us);
      o += ",\"severity\":\"" + severity + "\",\"message\":";
      common::append_json_string(o, r.message);
      o += ",\"fields\":" + fields;
      o += ",\"epoch\":" + std::to_string(r.epoch) + ",\"seq\":" + std::to_string(r.seq) + "}";
      std::fputs(o.c_str(), stdout);
    } else {
      // Fields after the message, key=value as the agent's log lines take them.
      std::string line = r.message;
      for (std::size_t i = 0; i < r.fields.size(); ++i) {
        line += i ? " " : " | ";
        line += r.fields[i].key + "=" + r.fields[i].value;
      }
      std::printf("%-24s %-16s %-8s %s\n", iso_time(r.time_us).c_str(), r.device.c_str(),
                  severity.c_str(), line.c_str());
    }
    ++rows;
  });
  if (args.format == "json") std::printf("\n]\n");
  if (!s.ok()) return fail(s.error().message);
  if (args.format == "table") std::fprintf(stderr, "%llu log records\n", (unsigned long long)rows);
  return common::kExitOk;
}

int run_devices(const CollectorConfig& config, const std::string& format) {
  auto db = open_db(config);
  if (!db.ok()) return fail(db.error().message);
  auto devices = db.value()->devices();
  if (!devices.ok()) return fail(devices.error().message);
  if (format == "json") {
    std::string o = "[";
    for (std::size_t i = 0; i < devices.value().size(); ++i) {
      const DeviceRow& d = devices.value()[i];
      o += i ? ",\n{" : "\n{";
      o += "\"device\":";
      common::append_json_string(o, d.device);
      o += ",\"site\":";
      common::append_json_string(o, d.site);
      o += ",\"state\":\"" + std::string(presence_name(d.presence)) + "\"";
      o += ",\"first_seen_us\":" + std::to_string(d.first_seen_us);
      o += ",\"last_seen_us\":" + std::to_string(d.last_seen_us);
      o += ",\"epoch\":" + std::to_string(d.epoch);
      o += ",\"readings\":" + std::to_string(d.readings);
      o += ",\"logs\":" + std::to_string(d.logs);
      o += ",\"batches\":" + std::to_string(d.batches);
      o += ",\"duplicates\":" + std::to_string(d.duplicates);
      o += ",\"gaps\":" + std::to_string(d.gaps) + "}";
    }
    o += "\n]\n";
    std::fputs(o.c_str(), stdout);
    return common::kExitOk;
  }
  std::printf("%-12s %-20s %-8s %-24s %10s %8s %8s %6s\n", "SITE", "DEVICE", "STATE", "LAST SEEN",
              "READINGS", "LOGS", "DUPS", "GAPS");
  for (const DeviceRow& d : devices.value()) {
    std::printf("%-12s %-20s %-8s %-24s %10llu %8llu %8llu %6llu\n", d.site.c_str(),
                d.device.c_str(), std::string(presence_name(d.presence)).c_str(),
                iso_time(d.last_seen_us).c_str(), (unsigned long long)d.readings,
                (unsigned long long)d.logs, (unsigned long long)d.duplicates,
                (unsigned long long)d.gaps);
  }
  return common::kExitOk;
}

int run_events(const CollectorConfig& config, uint64_t limit) {
  auto db = open_db(config);
  if (!db.ok()) return fail(db.error().message);
  auto events = db.value()->events(limit);
  if (!events.ok()) return fail(events.error().message);
  for (const EventRow& e : events.value()) {
    std::printf("%6lld %s %-18s %-12s %-16s %s\n", static_cast<long long>(e.id),
                iso_time(e.event.time_us).c_str(),
                std::string(common::event_kind_name(e.event.kind)).c_str(), e.event.site.c_str(),
                e.device.c_str(), e.event.detail.c_str());
  }
  return common::kExitOk;
}

int run_summary(const CollectorConfig& config) {
  auto db = open_db(config);
  if (!db.ok()) return fail(db.error().message);
  auto counts = db.value()->counts();
  if (!counts.ok()) return fail(counts.error().message);
  auto& c = counts.value();
  std::printf("database             %s\n", config.path.c_str());
  std::printf("devices              %llu\n", (unsigned long long)c["devices"]);
  std::printf("readings stored      %llu\n", (unsigned long long)c["readings"]);
  std::printf("log records stored   %llu\n", (unsigned long long)c["logs"]);
  std::printf("messages stored      %llu\n", (unsigned long long)c["batches"]);
  std::printf("duplicates absorbed  %llu\n", (unsigned long long)c["duplicates"]);
  std::printf("data gaps            %llu\n", (unsigned long long)c["gaps"]);
  std::printf("events               %llu\n", (unsigned long long)c["events"]);
  auto by_kind = db.value()->event_kinds();
  if (!by_kind.ok()) return fail(by_kind.error().message);
  for (const auto& [kind, n] : by_kind.value()) {
    std::printf("  %-22s %llu\n", kind.c_str(), (unsigned long long)n);
  }
  std::printf("DLQ entries          %llu\n", (unsigned long long)c["dlq"]);
  auto by_reason = db.value()->dlq_reasons();
  if (!by_reason.ok()) return fail(by_reason.error().message);
  for (const auto& [reason, n] : by_reason.value()) {
    std::printf("  %-22s %llu\n", std::string(common::reason_name(reason)).c_str(),
                (unsigned long long)n);
  }
  return common::kExitOk;
}

common::Result<std::vector<ReplayOutcome>, SinkError> replay_dlq_entries(
    const CollectorConfig& config, Reader& reader, const std::vector<int64_t>& ids) {
  std::vector<ReplayOutcome> outcomes;
  Transaction tx;
  std::vector<int64_t> moved;
  std::vector<std::size_t> batch_of;  // outcomes index of each tx.batches entry
  for (const int64_t id : ids) {
    auto row = reader.dlq_entry(id);
    if (!row.ok()) return row.error();
    ReplayOutcome o{id, "", ""};
    if (!row.value()) {
      o.outcome = "missing";
      o.detail = "no DLQ entry " + std::to_string(id);
      outcomes.push_back(std::move(o));
      continue;
    }
    const DlqRow& r = *row.value();
    if (r.reason == common::Reason::kWebhookGaveUp || is_cut_entry(r.reason, r.detail)) {
      o.outcome = "not_replayable";
      o.detail = r.reason == common::Reason::kWebhookGaveUp
                     ? "a webhook delivery, not a message"
                     : "only the first bytes of an oversized message are kept";
      outcomes.push_back(std::move(o));
      continue;
    }
    // Validation runs against the original receive time, with today's options.
    auto c = classify(RawMessage{r.topic, r.payload, r.received_us}, config.validation);
    if (auto* b = std::get_if<BatchItem>(&c)) {
      batch_of.push_back(outcomes.size());
      tx.batches.push_back(std::move(*b));
      o.outcome = "stored";
    } else if (auto* st = std::get_if<StatusItem>(&c)) {
      tx.statuses.push_back(std::move(*st));
      o.outcome = "stored";
      o.detail = "a status";
    } else {
      const auto& bad = std::get<DlqItem>(c);
      o.outcome = "still_bad";
      o.detail = std::string(common::reason_name(bad.reason)) + ": " + bad.detail;
      outcomes.push_back(std::move(o));
      continue;
    }
    moved.push_back(id);
    outcomes.push_back(std::move(o));
  }
  if (moved.empty()) return outcomes;
  return with_writer(
      config,
      [&](auto& sink) -> common::Result<std::vector<ReplayOutcome>, SinkError> {
        sink.remove_dlq_on_next_commit(moved);
        auto result = sink.commit(tx);
        if (!result.ok()) return result.error();
        for (std::size_t i = 0; i < batch_of.size() && i < result.value().outcomes.size(); ++i) {
          if (result.value().outcomes[i] == BatchOutcome::kDuplicate) {
            outcomes[batch_of[i]].outcome = "duplicate";
            outcomes[batch_of[i]].detail = "already stored; the entry is removed";
          }
        }
        return outcomes;
      },
      [](const std::string& message) -> common::Result<std::vector<ReplayOutcome>, SinkError> {
        return SinkError{message, true};
      });
}

int run_dlq(const CollectorConfig& config, const DlqArgs& args) {
  auto db = open_db(config);
  if (!db.ok()) return fail(db.error().message);
  Reader& reader = *db.value();
  switch (args.action) {
    case DlqAction::kList: {
      auto rows = reader.dlq(args.filter);
      if (!rows.ok()) return fail(rows.error().message);
      std::printf("%8s %-24s %-24s %7s %-40s %s\n", "ID", "RECEIVED", "REASON", "BYTES", "TOPIC",
                  "DETAIL");
      for (const auto& r : rows.value()) {
        std::printf("%8lld %-24s %-24s %7zu %-40s %s\n", static_cast<long long>(r.id),
                    iso_time(r.received_us).c_str(),
                    std::string(common::reason_name(r.reason)).c_str(), r.payload.size(),
                    r.topic.c_str(), r.detail.c_str());
      }
      std::fprintf(stderr, "%zu entries\n", rows.value().size());
      return common::kExitOk;
    }
    case DlqAction::kShow: {
      auto row = reader.dlq_entry(args.id);
      if (!row.ok()) return fail(row.error().message);
      if (!row.value()) return fail("no DLQ entry " + std::to_string(args.id));
      const DlqRow& r = *row.value();
      std::printf(
          "id        %lld\nreceived  %s\ntopic     %s\nreason    %s (%d)\ndetail    %s\n"
          "bytes     %zu\n",
          static_cast<long long>(r.id), iso_time(r.received_us).c_str(), r.topic.c_str(),
          std::string(common::reason_name(r.reason)).c_str(), static_cast<int>(r.reason),
          r.detail.c_str(), r.payload.size());
      std::printf("hex       ");
      for (std::size_t i = 0; i < r.payload.size() && i < 4096; ++i) {
        std::printf("%02x", static_cast<unsigned char>(r.payload[i]));
      }
      std::printf("%s\n", r.payload.size() > 4096 ? "..." : "");
      const auto* bytes = reinterpret_cast<const uint8_t*>(r.payload.data());
      auto decoded = common::decode(std::span<const uint8_t>(bytes, r.payload.size()));
      if (decoded.ok()) std::printf("decoded   %s\n", common::to_json(decoded.value()).c_str());
      return common::kExitOk;
    }
    case DlqAction::kReplay: {
      auto rows = reader.dlq(args.filter);
      if (!rows.ok()) return fail(rows.error().message);
      Transaction tx;
      std::vector<int64_t> moved;
      uint64_t still = 0;
      for (const auto& r : rows.value()) {
        if (r.reason == common::Reason::kWebhookGaveUp || is_cut_entry(r.reason, r.detail)) {
          ++still;  // not a message, or only the first bytes of one: nothing to validate again
          continue;
        }
        // Validation runs against the original receive time, with today's options.
        auto c = classify(RawMessage{r.topic, r.payload, r.received_us}, config.validation);
        if (auto* b = std::get_if<BatchItem>(&c)) {
          tx.batches.push_back(std::move(*b));
        } else if (auto* s = std::get_if<StatusItem>(&c)) {
          tx.statuses.push_back(std::move(*s));
        } else {
          ++still;
          continue;
        }
        moved.push_back(r.id);
      }
      return with_writer(
          config,
          [&](auto& sink) {
            sink.remove_dlq_on_next_commit(moved);
            auto result = sink.commit(tx);
            if (!result.ok()) return fail(result.error().message);
            uint64_t dups = 0;
            for (auto o : result.value().outcomes) dups += o == BatchOutcome::kDuplicate;
            std::printf(
                "replayed %zu entries: %zu now valid (%llu readings stored, %llu already "
                "stored), %llu still rejected and kept\n",
                rows.value().size(), moved.size(),
                (unsigned long long)result.value().readings_stored, (unsigned long long)dups,
                (unsigned long long)still);
            return common::kExitOk;
          },
          fail);
    }
    case DlqAction::kPurge: {
      const DlqFilter& f = args.filter;
      const bool filtered = f.reason || !f.topic_prefix.empty() || f.since_us != INT64_MIN ||
                            f.until_us != INT64_MAX || f.limit;
      if (!filtered && !args.yes) {
        std::cerr << "outpost-collector: dlq purge without a filter removes every entry; "
                     "add --all to confirm\n";
        return common::kExitUsage;
      }
      return with_writer(
          config,
          [&](auto& sink) {
            auto n = sink.purge_dlq(f);
            if (!n.ok()) return fail(n.error().message);
            std::printf("purged %llu entries\n", (unsigned long long)n.value());
            return common::kExitOk;
          },
          fail);
    }
  }
  return common::kExitOk;
}

namespace {
volatile std::sig_atomic_t tail_stop = 0;
}

int run_tail(const CollectorConfig& config, const std::string& format, uint64_t count) {
  std::signal(SIGINT, [](int) { tail_stop = 1; });
  std::signal(SIGTERM, [](int) { tail_stop = 1; });
  const std::string client_id = config.client_id + "-tail-" + std::to_string(::getpid());
  mqtt::async_client client(config.broker, client_id, mqtt::create_options(MQTTVERSION_3_1_1));
  try {
    client.start_consuming();
    client.connect(connect_options(config, /*clean_session=*/true))->wait();
    for (const auto& t : config.topics) client.subscribe(t, 0)->wait();
  } catch (const mqtt::exception& e) {
    return fail("cannot follow " + config.broker + ": " + e.what());
  }
  uint64_t seen = 0;
  while (!tail_stop && (count == 0 || seen < count)) {
    mqtt::const_message_ptr msg;
    if (!client.try_consume_message_for(&msg, std::chrono::milliseconds(200))) continue;
    if (!msg) return fail("connection to " + config.broker + " lost");
    ++seen;
    auto c = classify(RawMessage{msg->get_topic(), msg->get_payload(), wall_now_us()},
                      config.validation);
    std::string line;
    if (auto* d = std::get_if<DlqItem>(&c)) {
      line = format == "json" ? "{\"topic\":" : std::string(msg->get_topic()) + " REJECTED ";
      if (format == "json") {
        common::append_json_string(line, msg->get_topic());
        line += ",\"rejected\":\"" + std::string(common::reason_name(d->reason)) + "\"}";
      } else {
        line += std::string(common::reason_name(d->reason)) + ": " + d->detail;
      }
    } else {
      const auto* bytes = reinterpret_cast<const uint8_t*>(msg->get_payload().data());
      auto env = common::decode(std::span<const uint8_t>(bytes, msg->get_payload().size()));
      const std::string json = env.ok() ? common::to_json(env.value()) : "{}";
      line = format == "json" ? json : std::string(msg->get_topic()) + " " + json;
    }
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
  }
  try {
    client.disconnect()->wait_for(std::chrono::seconds(2));
  } catch (const mqtt::exception&) {
  }
  return common::kExitOk;
}

}  // namespace outpost::collector
