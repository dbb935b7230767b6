// The storage read side: what the operator tools (and the collector at start-up) read back
// from a database. Backend-neutral: SQLite implements it (sqlite_reader.h); a PostgreSQL reader
// and a web console can implement the same interface.
//
// A Reader is one connection, used by one thread at a time. It only reads: it never changes
// what the collector stored (writes go through the Sink, sink.h). Every method may fail with a
// SinkError (an unreadable or locked database); none throws.
#pragma once

#include <climits>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "outpost/collector/presence.h"
#include "outpost/collector/sink.h"
#include "outpost/common/message.h"
#include "outpost/common/reason.h"
#include "outpost/common/result.h"

namespace outpost::collector {

// One device as stored: what the FleetTracker remembers across a restart, and its counters.
struct DeviceRow {
  std::string device;
  std::string site;
  int64_t first_seen_us = 0;
  int64_t last_seen_us = 0;
  Presence presence = Presence::kUnknown;  // as the FleetTracker last decided it
  uint64_t epoch = 0;
  uint64_t readings = 0;
  uint64_t logs = 0;
  uint64_t batches = 0;
  uint64_t duplicates = 0;
  uint64_t gaps = 0;
  std::string last_status;  // JSON of the last status message, "" if none
  // Its sequence line (Reader::seq_lines; devices() leaves it empty): what the collector's
  // gap detection restores at start.
  std::optional<SeqLineState> seq_line = std::nullopt;
};

// Which readings query_readings() returns. Times are the readings' own (inclusive bounds).
struct ReadingQuery {
  std::string device = {};  // "" = every device
  std::string sensor = {};  // "" = every sensor
  int64_t since_us = INT64_MIN;
  int64_t until_us = INT64_MAX;
  uint64_t limit = 0;  // 0 = no limit
};

struct ReadingRow {
  std::string device;
  std::string site;
  std::string sensor;
  std::string unit;
  int64_t time_us = 0;
  common::Value value;
  uint64_t epoch = 0;
  uint64_t seq = 0;
};

// Which log records query_logs() returns. Times are the records' own (inclusive bounds).
struct LogQuery {
  std::string device = {};                                         // "" = every device
  common::Severity min_severity = common::Severity::kUnspecified;  // at least this severe
  int64_t since_us = INT64_MIN;
  int64_t until_us = INT64_MAX;
  // "" = any; otherwise the message contains this text, ignoring the case of ASCII letters
  // (no wildcards: % and _ are plain characters).
  std::string contains = {};
  uint64_t limit = 0;  // 0 = no limit
};

struct LogRow {
  std::string device;
  std::string site;
  int64_t time_us = 0;
  common::Severity severity = common::Severity::kInfo;
  std::string message;
  std::vector<common::LogField> fields;  // in the order the device sent them
  uint64_t epoch = 0;
  uint64_t seq = 0;
};

// Which DLQ entries dlq() returns (and purge_dlq() removes). Times are receive times.
struct DlqFilter {
  std::optional<common::Reason> reason = std::nullopt;
  std::string topic_prefix = {};  // "" = any topic
  int64_t since_us = INT64_MIN;
  int64_t until_us = INT64_MAX;
  uint64_t limit = 0;  // 0 = no limit
};

struct DlqRow {
  int64_t id = 0;
  int64_t received_us = 0;
  std::string topic;
  std::string payload;  // raw bytes as received
  common::Reason reason = common::Reason::kNotDecodable;
  std::string detail;
};

struct EventRow {
  int64_t id = 0;
  std::string device;  // "" for fleet-wide events
  common::Event event;
};

class Reader {
 public:
  virtual ~Reader() = default;

  // Every device, ordered by site, then device.
  virtual common::Result<std::vector<DeviceRow>, SinkError> devices() = 0;

  // Every device's sequence line as the last commit left it (what the FleetTracker restores at
  // start: fleet.h), holes ordered by first seq. Devices stored before lines were have none.
  virtual common::Result<std::vector<SeqLineState>, SinkError> seq_lines() = 0;

  // Calls `row` for each matching reading, ordered by batch (a batch's readings together, the
  // batches by their earliest reading), stopping after query.limit rows when it is set.
  virtual common::Status<SinkError> query_readings(
      const ReadingQuery& query, const std::function<void(const ReadingRow&)>& row) = 0;

  // Calls `row` for each matching log record, in the same order as query_readings (a
  // message's records together, the messages by their earliest record), stopping after
  // query.limit rows when it is set.
  virtual common::Status<SinkError> query_logs(const LogQuery& query,
                                               const std::function<void(const LogRow&)>& row) = 0;

  // DLQ entries matching `filter`, oldest first.
  virtual common::Result<std::vector<DlqRow>, SinkError> dlq(const DlqFilter& filter) = 0;
  // One DLQ entry; nullopt if there is none with that id.
  virtual common::Result<std::optional<DlqRow>, SinkError> dlq_entry(int64_t id) = 0;

  // The `limit` most recent events (0: up to a million), oldest first.
  virtual common::Result<std::vector<EventRow>, SinkError> events(uint64_t limit) = 0;

  // DLQ entries per reason (reasons with none left out).
  virtual common::Result<std::map<common::Reason, uint64_t>, SinkError> dlq_reasons() = 0;
  // Events stored, per kind name.
  virtual common::Result<std::map<std::string, uint64_t>, SinkError> event_kinds() = 0;
  // Row counts of the main tables ("readings", "logs", "batches", "dlq", "events", "devices")
  // and the fleet's totals ("duplicates", "gaps").
  virtual common::Result<std::map<std::string, uint64_t>, SinkError> counts() = 0;
};

}  // namespace outpost::collector
