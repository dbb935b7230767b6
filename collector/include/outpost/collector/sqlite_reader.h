// The Reader over the collector's SQLite database (the embedded default).
//
// One SqliteReader is one connection, used by one thread at a time; each tool opens its own.
// WAL mode lets it read while the collector writes.
#pragma once

#include <memory>
#include <string>

#include "outpost/collector/reader.h"

namespace outpost::collector {

namespace sqlite_db {
class Database;
}

class SqliteReader final : public Reader {
 public:
  // Opens an existing database (no file at `path` fails) and makes sure its schema is there.
  // A file that is not a database of ours fails with a clear message.
  static common::Result<std::unique_ptr<SqliteReader>, SinkError> open(const std::string& path);
  ~SqliteReader() override;
  SqliteReader(const SqliteReader&) = delete;
  SqliteReader& operator=(const SqliteReader&) = delete;

  common::Result<std::vector<DeviceRow>, SinkError> devices() override;
  common::Result<std::vector<SeqLineState>, SinkError> seq_lines() override;
  // Devices changed after `revision` (devices.changed, set by every commit that touches a
  // device): an index range, not a read of every device.
  common::Result<FleetChanges, SinkError> fleet_changes(uint64_t revision) override;
  common::Status<SinkError> query_readings(
      const ReadingQuery& query, const std::function<void(const ReadingRow&)>& row) override;
  common::Status<SinkError> query_logs(const LogQuery& query,
                                       const std::function<void(const LogRow&)>& row) override;
  common::Result<std::vector<DlqRow>, SinkError> dlq(const DlqFilter& filter) override;
  common::Result<std::optional<DlqRow>, SinkError> dlq_entry(int64_t id) override;
  common::Result<uint64_t, SinkError> dlq_count(const DlqFilter& filter) override;
  common::Result<std::vector<DlqBucket>, SinkError> dlq_histogram(int64_t since_us,
                                                                  int64_t bucket_us) override;
  common::Result<std::map<std::string, uint64_t>, SinkError> dlq_topics() override;
  common::Result<std::vector<EventRow>, SinkError> find_events(const EventQuery& query) override;
  common::Result<std::vector<SensorRow>, SinkError> sensors(const std::string& device) override;
  common::Result<std::vector<SeriesBucket>, SinkError> series(const SeriesQuery& query) override;
  common::Result<std::vector<EventRow>, SinkError> events(uint64_t limit) override;
  common::Result<std::map<common::Reason, uint64_t>, SinkError> dlq_reasons() override;
  common::Result<std::map<std::string, uint64_t>, SinkError> event_kinds() override;
  common::Result<std::map<std::string, uint64_t>, SinkError> counts() override;

 private:
  explicit SqliteReader(std::unique_ptr<sqlite_db::Database> db);
  std::unique_ptr<sqlite_db::Database> db_;
};

}  // namespace outpost::collector
