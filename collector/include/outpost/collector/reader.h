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
  int64_t last_seen_us = 0;  // receive time of its newest message of any kind
  int64_t last_data_us = 0;  // receive time of its newest stored reading batch; 0: none yet
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
  // With a limit: false keeps the oldest `limit` records, true the newest (a device's recent
  // logs). Either way they come in the usual order.
  bool latest = false;
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
  // "" = any; otherwise the topic contains this text (case-sensitive, no wildcards).
  std::string topic_contains = {};
  int64_t since_us = INT64_MIN;
  int64_t until_us = INT64_MAX;
  uint64_t limit = 0;         // 0 = no limit
  uint64_t offset = 0;        // entries skipped first, in the chosen order (dlq() only)
  bool newest_first = false;  // dlq() order: by id, descending when set (dlq() only)
};

// One time bucket of dlq_histogram(): the entries of one reason received in
// [start_us, start_us + bucket width).
struct DlqBucket {
  int64_t start_us = 0;  // a multiple of the bucket width (Unix epoch based)
  common::Reason reason = common::Reason::kNotDecodable;
  uint64_t count = 0;
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

// Which events find_events() returns; always in id order (oldest first).
struct EventQuery {
  std::string device = {};  // "" = every device (fleet-wide events included)
  int64_t after_id = 0;     // only events with a larger id
  uint64_t limit = 100;     // at most this many (0: up to a million)
  // Which ones when more match: false the newest `limit` (a device's recent events), true the
  // oldest `limit` after after_id (following the table: what came after the last one seen).
  bool oldest = false;
};

// One sensor of a device, as stored.
struct SensorRow {
  std::string sensor;
  std::string unit;
  uint64_t readings = 0;  // readings stored of it
};

// A downsampled series: series() cuts [since_us, until_us] into `buckets` equal time buckets
// (the width rounded up to a whole microsecond) and gives each its readings' min, max and mean.
struct SeriesQuery {
  std::string device;
  std::string sensor;
  int64_t since_us = 0;    // inclusive, reading time
  int64_t until_us = 0;    // inclusive, reading time; >= since_us
  uint32_t buckets = 300;  // 1 .. 10,000
};

struct SeriesBucket {
  int64_t start_us = 0;  // since_us + i * width
  double min = 0;
  double max = 0;
  double mean = 0;
  uint64_t count = 0;  // numeric readings in it (>= 1: empty buckets are left out)
};

// What changed in the fleet since an earlier read (Reader::fleet_changes): the console keeps
// the fleet in memory and applies these instead of reading every device again.
struct FleetChanges {
  // true: `devices` holds every device (a full read: replace what you hold); false: only the
  // devices whose row or sequence line changed after the revision asked for.
  bool complete = true;
  std::vector<DeviceRow> devices;  // each with its seq_line when it has one
  // DLQ entries per topic (Reader::dlq_topics); set on a complete read and whenever the DLQ
  // may have changed since the revision asked for, else left empty (what you hold is right).
  std::optional<std::map<std::string, uint64_t>> dlq_topics;
  // Pass this to the next call. 0: the backend keeps no revisions (every read is complete).
  uint64_t revision = 0;
};

// Gives each device of `devices` its line from `lines` (matched by name; a line of a device not
// there is dropped).
void attach_seq_lines(std::vector<DeviceRow>& devices, std::vector<SeqLineState>&& lines);

class Reader {
 public:
  virtual ~Reader() = default;

  // Every device, ordered by site, then device.
  virtual common::Result<std::vector<DeviceRow>, SinkError> devices() = 0;

  // The devices changed after `revision` (one an earlier call returned; 0: every device), with
  // their sequence lines, and the DLQ's topics if it changed: one consistent snapshot. This
  // default reads everything (complete); a backend that records revisions returns less.
  virtual common::Result<FleetChanges, SinkError> fleet_changes(uint64_t revision);

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

  // DLQ entries matching `filter`, oldest first (newest first with filter.newest_first), after
  // skipping filter.offset of them.
  virtual common::Result<std::vector<DlqRow>, SinkError> dlq(const DlqFilter& filter) = 0;
  // How many DLQ entries match `filter`; its limit, offset and order are ignored.
  virtual common::Result<uint64_t, SinkError> dlq_count(const DlqFilter& filter) = 0;
  // Entries received at or after since_us, counted per reason per `bucket_us` (> 0) bucket,
  // ordered by bucket then reason; buckets without entries are left out.
  virtual common::Result<std::vector<DlqBucket>, SinkError> dlq_histogram(int64_t since_us,
                                                                          int64_t bucket_us) = 0;
  // How many DLQ entries each topic has (topics with none left out).
  virtual common::Result<std::map<std::string, uint64_t>, SinkError> dlq_topics() = 0;
  // One DLQ entry; nullopt if there is none with that id.
  virtual common::Result<std::optional<DlqRow>, SinkError> dlq_entry(int64_t id) = 0;

  // The `limit` most recent events (0: up to a million), oldest first.
  virtual common::Result<std::vector<EventRow>, SinkError> events(uint64_t limit) = 0;
  // The events `query` selects, oldest first.
  virtual common::Result<std::vector<EventRow>, SinkError> find_events(const EventQuery& query) = 0;

  // A device's sensors, by name; empty for a device with none (or no such device).
  virtual common::Result<std::vector<SensorRow>, SinkError> sensors(const std::string& device) = 0;
  // A sensor's numeric readings (integers, floating point, booleans as 0 and 1; text and bytes
  // are left out) downsampled into buckets (SeriesQuery), ordered by time.
  virtual common::Result<std::vector<SeriesBucket>, SinkError> series(const SeriesQuery& query) = 0;

  // DLQ entries per reason (reasons with none left out).
  virtual common::Result<std::map<common::Reason, uint64_t>, SinkError> dlq_reasons() = 0;
  // Events stored, per kind name.
  virtual common::Result<std::map<std::string, uint64_t>, SinkError> event_kinds() = 0;
  // Row counts of the main tables ("readings", "logs", "batches", "dlq", "events", "devices")
  // and the fleet's totals ("duplicates", "gaps").
  virtual common::Result<std::map<std::string, uint64_t>, SinkError> counts() = 0;
};

}  // namespace outpost::collector
