// The SQLite storage sink (the embedded default), and the read side the operator tools use.
// Schema and the reasons behind it: docs/storage.md.
//
// One SqliteSink is one connection: the collector's storage thread owns the one it writes
// with; each tool opens its own. WAL mode lets tools read while the collector writes.
#pragma once

#include <sqlite3.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "outpost/collector/fleet.h"
#include "outpost/collector/sink.h"

namespace outpost::collector {

struct SqliteOptions {
  std::string path;
  bool full_sync = false;                // synchronous=FULL instead of NORMAL
  uint64_t dlq_max_entries = 1'000'000;  // oldest entries removed beyond this, counted
  bool create = true;                    // false: fail if the file does not exist (tools)
};

struct DeviceRow {
  std::string device;
  std::string site;
  int64_t first_seen_us = 0;
  int64_t last_seen_us = 0;
  Presence presence = Presence::kUnknown;
  uint64_t epoch = 0;
  uint64_t readings = 0;
  uint64_t logs = 0;
  uint64_t batches = 0;
  uint64_t duplicates = 0;
  uint64_t gaps = 0;
  std::string last_status;  // JSON of the last status message, "" if none
};

struct ReadingQuery {
  std::string device;  // "" = every device
  std::string sensor;  // "" = every sensor
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

struct DlqFilter {
  std::optional<common::Reason> reason;
  std::string topic_prefix;  // "" = any topic
  int64_t since_us = INT64_MIN;
  int64_t until_us = INT64_MAX;
  uint64_t limit = 0;  // 0 = no limit
};

struct DlqRow {
  int64_t id = 0;
  int64_t received_us = 0;
  std::string topic;
  std::string payload;
  common::Reason reason = common::Reason::kNotDecodable;
  std::string detail;
};

struct EventRow {
  int64_t id = 0;
  std::string device;
  common::Event event;
};

class SqliteSink final : public Sink {
 public:
  // Opens (creating if allowed) the database and its schema. A file that is not a database
  // of ours fails with a clear message.
  static common::Result<std::unique_ptr<SqliteSink>, SinkError> open(const SqliteOptions& options);
  ~SqliteSink() override;
  SqliteSink(const SqliteSink&) = delete;
  SqliteSink& operator=(const SqliteSink&) = delete;

  common::Result<CommitResult, SinkError> commit(const Transaction& tx) override;
  common::Result<std::optional<JournalPosition>, SinkError> journal_position() override;
  common::Result<uint64_t, SinkError> expire(int64_t cutoff_us, int64_t dlq_cutoff_us,
                                             int64_t key_cutoff_us, uint64_t max_rows) override;

  // Also in a commit: removes these DLQ entries (replay moves them into storage).
  void remove_dlq_on_next_commit(std::vector<int64_t> ids) { dlq_remove_ = std::move(ids); }

  // Read side (tools, start-up).
  common::Result<std::vector<DeviceRow>, SinkError> devices();
  common::Status<SinkError> query_readings(const ReadingQuery& query,
                                           const std::function<void(const ReadingRow&)>& row);
  common::Result<std::vector<DlqRow>, SinkError> dlq(const DlqFilter& filter);
  common::Result<std::optional<DlqRow>, SinkError> dlq_entry(int64_t id);
  common::Result<uint64_t, SinkError> purge_dlq(const DlqFilter& filter);
  common::Result<std::vector<EventRow>, SinkError> events(uint64_t limit);
  // DLQ entries per reason (reasons with none left out).
  common::Result<std::map<common::Reason, uint64_t>, SinkError> dlq_reasons();
  // Events stored, per kind name.
  common::Result<std::map<std::string, uint64_t>, SinkError> event_kinds();
  // Row counts of the main tables (readings, logs, batches, dlq, events, devices) and the
  // fleet's totals of duplicates and gaps.
  common::Result<std::map<std::string, uint64_t>, SinkError> counts();

 private:
  explicit SqliteSink(sqlite3* db, SqliteOptions options);
  common::Status<SinkError> init_schema();
  common::Result<int64_t, SinkError> device_id(const std::string& site, const std::string& device,
                                               int64_t now_us);
  common::Result<int64_t, SinkError> sensor_id(int64_t device, const std::string& name,
                                               std::string_view unit);
  common::Result<CommitResult, SinkError> write(const Transaction& tx);
  SinkError error(std::string_view what) const;
  sqlite3_stmt* prepare(const char* sql);

  sqlite3* db_;
  SqliteOptions options_;
  std::unordered_map<std::string, int64_t> device_ids_;
  struct Sensor {
    int64_t id;
    std::string unit;
  };
  std::unordered_map<std::string, Sensor> sensor_ids_;  // key: device id, '\0', name
  std::unordered_map<std::string, sqlite3_stmt*> statements_;
  std::vector<int64_t> dlq_remove_;
  uint64_t dlq_entries_ = 0;
};

}  // namespace outpost::collector
