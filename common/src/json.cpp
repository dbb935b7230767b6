// JSON rendering of decoded payloads.
#include "outpost/common/json.h"

#include <charconv>
#include <cmath>
#include <cstdio>

namespace outpost::common {
namespace {

void append_double(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "\"NaN\"";
  } else if (std::isinf(v)) {
    out += v > 0 ? "\"Infinity\"" : "\"-Infinity\"";
  } else {
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, v);  // shortest round-trip form
    out.append(buf, r.ptr);
  }
}

template <typename Int>
void append_int(std::string& out, Int v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

void key(std::string& out, std::string_view k) {
  if (out.back() != '{') out += ',';
  out += '"';
  out += k;
  out += "\":";
}

std::string_view severity_name(Severity s) {
  static constexpr std::string_view kNames[] = {"unspecified", "trace",   "debug", "info",
                                                "notice",      "warning", "error", "critical"};
  const auto i = static_cast<std::size_t>(s);
  return i < std::size(kNames) ? kNames[i] : "unknown";
}

std::string_view state_name(DeviceState s) {
  switch (s) {
    case DeviceState::kOnline:
      return "online";
    case DeviceState::kOffline:
      return "offline";
    case DeviceState::kLost:
      return "lost";
    case DeviceState::kUnspecified:
      break;
  }
  return "unspecified";
}

void append_body(std::string& out, const ReadingBatch& b) {
  key(out, "synced");
  out += b.time_synced ? "true" : "false";
  key(out, "readings");
  out += '[';
  for (std::size_t i = 0; i < b.readings.size(); ++i) {
    const Reading& r = b.readings[i];
    if (i) out += ',';
    out += '{';
    key(out, "sensor");
    if (r.sensor < b.sensor_names.size()) {
      append_json_string(out, b.sensor_names[r.sensor]);
    } else {
      append_int(out, r.sensor);  // an unvalidated batch may point outside its table
    }
    key(out, "t");
    append_int(out, r.time_us);
    key(out, "value");
    append_json_value(out, r.value);
    if (auto unit = b.unit_of(r.sensor); !unit.empty()) {
      key(out, "unit");
      append_json_string(out, unit);
    }
    out += '}';
  }
  out += ']';
}

void append_body(std::string& out, const LogBatch& b) {
  key(out, "synced");
  out += b.time_synced ? "true" : "false";
  key(out, "records");
  out += '[';
  for (std::size_t i = 0; i < b.records.size(); ++i) {
    const LogRecord& r = b.records[i];
    if (i) out += ',';
    out += '{';
    key(out, "t");
    append_int(out, r.time_us);
    key(out, "severity");
    append_json_string(out, severity_name(r.severity));
    key(out, "message");
    append_json_string(out, r.message);
    if (!r.fields.empty()) {
      key(out, "fields");
      out += '{';
      for (const auto& f : r.fields) {
        if (out.back() != '{') out += ',';
        append_json_string(out, f.key);
        out += ':';
        append_json_string(out, f.value);
      }
      out += '}';
    }
    out += '}';
  }
  out += ']';
}

void append_body(std::string& out, const DeviceStatus& s) {
  key(out, "state");
  append_json_string(out, state_name(s.state));
  key(out, "t");
  append_int(out, s.time_us);
  key(out, "synced");
  out += s.time_synced ? "true" : "false";
  key(out, "agent_version");
  append_json_string(out, s.agent_version);
  const std::pair<std::string_view, uint64_t> counters[] = {
      {"uptime_s", s.uptime_s},
      {"queue_depth", s.queue_depth},
      {"queue_bytes", s.queue_bytes},
      {"dropped_oldest", s.dropped_oldest},
      {"dropped_newest", s.dropped_newest},
      {"dropped_expired", s.dropped_expired},
      {"rejected_input", s.rejected_input},
      {"store_resets", s.store_resets},
  };
  for (const auto& [name, value] : counters) {
    key(out, name);
    append_int(out, value);
  }
}

void append_body(std::string& out, const CommitAck& a) {
  key(out, "committed");
  out += '[';
  for (std::size_t i = 0; i < a.committed.size(); ++i) {
    if (i) out += ',';
    out += '{';
    key(out, "epoch");
    append_int(out, a.committed[i].epoch);
    key(out, "first");
    append_int(out, a.committed[i].first);
    key(out, "last");
    append_int(out, a.committed[i].last);
    out += '}';
  }
  out += ']';
}

void append_body(std::string& out, const Event& e) {
  key(out, "event");
  append_json_string(out, event_kind_name(e.kind));
  key(out, "t");
  append_int(out, e.time_us);
  key(out, "site");
  append_json_string(out, e.site);
  key(out, "sensor");
  append_json_string(out, e.sensor);
  key(out, "value");
  append_double(out, e.value);
  key(out, "threshold");
  append_double(out, e.threshold);
  key(out, "detail");
  append_json_string(out, e.detail);
}

}  // namespace

void append_json_string(std::string& out, std::string_view text) {
  out += '"';
  for (char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else {
          out += c;  // UTF-8 passes through; the validator has checked it
        }
    }
  }
  out += '"';
}

std::string to_json(const Envelope& e) {
  std::string out = "{";
  key(out, "v");
  append_int(out, e.schema_version);
  key(out, "device");
  append_json_string(out, e.device_id);
  key(out, "epoch");
  append_int(out, e.epoch);
  key(out, "seq");
  append_int(out, e.seq);
  key(out, "kind");
  append_json_string(out, payload_kind_name(e.kind()));
  std::visit([&out](const auto& body) { append_body(out, body); }, e.body);
  out += '}';
  return out;
}

void append_json_value(std::string& out, const Value& v) {
  if (auto* d = std::get_if<double>(&v)) {
    append_double(out, *d);
  } else if (auto* n = std::get_if<int64_t>(&v)) {
    append_int(out, *n);
  } else if (auto* b = std::get_if<bool>(&v)) {
    out += *b ? "true" : "false";
  } else {
    append_json_string(out, std::get<std::string>(v));
  }
}

}  // namespace outpost::common
