// Decoded Outpost payloads: plain C++ values, independent of nanopb.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace outpost::common {

// A sensor value keeps its type end to end: 1013.0 stays a double, 1013 an integer.
using Value = std::variant<double, int64_t, bool, std::string>;

struct Reading {
  uint32_t sensor = 0;  // index into ReadingBatch::sensor_names
  int64_t time_us = 0;  // Unix time, microseconds
  Value value;

  bool operator==(const Reading&) const = default;
};

struct ReadingBatch {
  bool time_synced = false;               // device clock was synchronised when read
  std::vector<std::string> sensor_names;  // name table; readings refer to it by index
  std::vector<std::string> units;         // units[i] is sensor_names[i]'s unit; may be shorter
  std::vector<Reading> readings;

  // The unit of sensor i, or "" if it has none.
  std::string_view unit_of(uint32_t sensor) const {
    return sensor < units.size() ? std::string_view(units[sensor]) : std::string_view();
  }
  bool operator==(const ReadingBatch&) const = default;
};

enum class Severity : uint8_t {
  kUnspecified = 0,
  kTrace = 1,
  kDebug = 2,
  kInfo = 3,
  kNotice = 4,
  kWarning = 5,
  kError = 6,
  kCritical = 7,
};

struct LogField {
  std::string key;
  std::string value;

  bool operator==(const LogField&) const = default;
};

struct LogRecord {
  int64_t time_us = 0;
  Severity severity = Severity::kInfo;
  std::string message;
  std::vector<LogField> fields;

  bool operator==(const LogRecord&) const = default;
};

struct LogBatch {
  bool time_synced = false;
  std::vector<LogRecord> records;

  bool operator==(const LogBatch&) const = default;
};

enum class DeviceState : uint8_t {
  kUnspecified = 0,
  kOnline = 1,   // birth, on every connect
  kOffline = 2,  // clean shutdown
  kLost = 3,     // last will, published by the broker
};

struct DeviceStatus {
  DeviceState state = DeviceState::kUnspecified;
  int64_t time_us = 0;
  bool time_synced = false;
  std::string agent_version;
  uint64_t uptime_s = 0;
  uint64_t queue_depth = 0;
  uint64_t queue_bytes = 0;
  uint64_t dropped_oldest = 0;
  uint64_t dropped_newest = 0;
  uint64_t dropped_expired = 0;
  uint64_t rejected_input = 0;
  uint32_t store_resets = 0;

  bool operator==(const DeviceStatus&) const = default;
};

struct SeqRange {
  uint64_t epoch = 0;
  uint64_t first = 0;
  uint64_t last = 0;  // inclusive

  bool operator==(const SeqRange&) const = default;
};

struct CommitAck {
  std::vector<SeqRange> committed;

  bool operator==(const CommitAck&) const = default;
};

enum class EventKind : uint8_t {
  kUnspecified = 0,
  kDeviceOnline = 1,
  kDeviceOffline = 2,
  kDataGap = 3,
  kDeviceRestarted = 4,
  kDlqRate = 5,
  kThresholdAbove = 6,
  kThresholdBelow = 7,
  kThresholdCleared = 8,
  kDataGapResolved = 9,  // batches reported missing (kDataGap) arrived after all
};

struct Event {
  EventKind kind = EventKind::kUnspecified;
  int64_t time_us = 0;
  std::string site;
  std::string sensor;
  double value = 0;
  double threshold = 0;
  std::string detail;

  bool operator==(const Event&) const = default;
};

// Which body an Envelope carries; each goes on its own topic suffix.
enum class PayloadKind : uint8_t { kReadings, kLogs, kStatus, kAck, kEvent };

// "readings", "logs", "status", "ack", "event".
std::string_view payload_kind_name(PayloadKind kind);

// Every event kind but kUnspecified, in numeric order.
inline constexpr EventKind kAllEventKinds[] = {
    EventKind::kDeviceOnline,    EventKind::kDeviceOffline,    EventKind::kDataGap,
    EventKind::kDeviceRestarted, EventKind::kDlqRate,          EventKind::kThresholdAbove,
    EventKind::kThresholdBelow,  EventKind::kThresholdCleared, EventKind::kDataGapResolved};

// "device_online", "data_gap", ...: the <kind> level of an event topic.
std::string_view event_kind_name(EventKind kind);

// The inverse of event_kind_name for kAllEventKinds; nullopt for anything else.
std::optional<EventKind> event_kind_from_name(std::string_view name);

using Body = std::variant<ReadingBatch, LogBatch, DeviceStatus, CommitAck, Event>;

// One MQTT payload. device_id/epoch/seq identify it: the collector stores each
// (device_id, epoch, seq) once however often it arrives.
struct Envelope {
  uint32_t schema_version = 0;
  std::string device_id;
  uint64_t epoch = 0;
  uint64_t seq = 0;
  Body body;

  PayloadKind kind() const { return static_cast<PayloadKind>(body.index()); }
  bool operator==(const Envelope&) const = default;
};

}  // namespace outpost::common
