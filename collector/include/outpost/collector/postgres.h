// The PostgreSQL storage backend ([storage] kind = "postgres"): the collector's writer
// (PostgresSink) and the tools' reader (PostgresReader) over libpq. Schema, partitions and the
// reasons behind them: docs/storage.md.
//
// Each object is one connection, used by one thread at a time: the collector's storage thread
// owns the sink it commits with; each tool opens its own. libpq stays out of this header.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "outpost/collector/fleet_leader.h"
#include "outpost/collector/reader.h"
#include "outpost/collector/sink.h"

namespace outpost::collector {

namespace pg_db {
class Connection;
}

struct PostgresOptions {
  std::string dsn;       // libpq connection string (key=value or postgresql:// URI)
  std::string password;  // overrides one in the dsn; "" = the dsn's or libpq's own (never logged)
  uint64_t dlq_max_entries = 1'000'000;  // oldest entries removed beyond this, counted
  int partitions_ahead_days = 2;         // daily partitions created this far ahead of today
  std::string application_name = "outpost-collector";  // the session's, in pg_stat_activity
  // Shared mode (several collectors on one database, fleet_leader.h): the sink writes the fleet
  // feed with every commit, and leaves the presence a status gives to the leader.
  bool fleet_feed = false;
  std::vector<std::string> feed_sensors = {};  // readings of these go to the feed (rules' sensors)
  // Shared mode: this collector's own row of each device's counters (device_counts), so that
  // collectors storing the same devices never wait for each other's devices rows. Its client id.
  std::string member = {};
};

class PostgresSink final : public Sink {
 public:
  // Connects and creates or migrates the schema (schema_version). Fails if the server cannot
  // be reached (transient) or the database holds a newer schema than this build knows.
  static common::Result<std::unique_ptr<PostgresSink>, SinkError> open(
      const PostgresOptions& options);
  ~PostgresSink() override;
  PostgresSink(const PostgresSink&) = delete;
  PostgresSink& operator=(const PostgresSink&) = delete;

  // One PostgreSQL transaction: claims the batches' keys (INSERT ... ON CONFLICT DO NOTHING
  // RETURNING), streams only the new batches' readings and log records with binary COPY, then
  // devices, statuses, events, sequence lines, DLQ and journal position. A lost connection is
  // a transient error (the next commit reconnects); errors the server gives are classified by
  // SQLSTATE.
  common::Result<CommitResult, SinkError> commit(const Transaction& tx) override;
  common::Result<std::optional<JournalPosition>, SinkError> journal_position() override;
  // Drops whole daily partitions of readings and logs that end at or before `cutoff_us` (never
  // row-by-row deletes: a partition goes once all of it is older), deletes DLQ entries and
  // batch keys in chunks of `max_rows`, and creates the partitions of the days ahead.
  common::Result<uint64_t, SinkError> expire(int64_t cutoff_us, int64_t dlq_cutoff_us,
                                             int64_t key_cutoff_us, uint64_t max_rows) override;

  // As SqliteSink's: `dlq replay` and `dlq purge`.
  void remove_dlq_on_next_commit(std::vector<int64_t> ids);
  common::Result<uint64_t, SinkError> purge_dlq(const DlqFilter& filter);

 private:
  struct Impl;
  explicit PostgresSink(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The shared-mode leader's store (FleetStore): a session of its own holds the leader lock
// (pg_try_advisory_lock) and runs each round's transaction, so a round commits only while its
// session, and with it the lock, is alive. Connects lazily (try_lead), to a database the sink
// has set up. One thread.
class PostgresFleetStore final : public FleetStore {
 public:
  explicit PostgresFleetStore(PostgresOptions options);
  ~PostgresFleetStore() override;
  PostgresFleetStore(const PostgresFleetStore&) = delete;
  PostgresFleetStore& operator=(const PostgresFleetStore&) = delete;

  common::Result<bool, SinkError> try_lead() override;
  bool still_leading() override;
  void resign() override;
  common::Result<std::vector<DeviceRow>, SinkError> restore() override;
  common::Result<std::vector<FeedRow>, SinkError> take(std::size_t max_rows,
                                                       int64_t received_before_us) override;
  common::Status<SinkError> commit(const FleetCommit& derived) override;
  void abort() override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class PostgresReader final : public Reader {
 public:
  // Connects to a database the collector has set up (no schema, or another version, fails
  // with a clear message); never changes it.
  static common::Result<std::unique_ptr<PostgresReader>, SinkError> open(
      const PostgresOptions& options);
  ~PostgresReader() override;
  PostgresReader(const PostgresReader&) = delete;
  PostgresReader& operator=(const PostgresReader&) = delete;

  common::Result<std::vector<DeviceRow>, SinkError> devices() override;
  common::Result<std::vector<SeqLineState>, SinkError> seq_lines() override;
  common::Result<FleetChanges, SinkError> fleet_changes(uint64_t revision) override;
  common::Status<SinkError> query_readings(
      const ReadingQuery& query, const std::function<void(const ReadingRow&)>& row) override;
  common::Status<SinkError> query_logs(const LogQuery& query,
                                       const std::function<void(const LogRow&)>& row) override;
  common::Result<std::vector<DlqRow>, SinkError> dlq(const DlqFilter& filter) override;
  common::Result<uint64_t, SinkError> dlq_count(const DlqFilter& filter) override;
  common::Result<std::vector<DlqBucket>, SinkError> dlq_histogram(int64_t since_us,
                                                                  int64_t bucket_us) override;
  common::Result<std::map<std::string, uint64_t>, SinkError> dlq_topics() override;
  common::Result<std::optional<DlqRow>, SinkError> dlq_entry(int64_t id) override;
  common::Result<std::vector<EventRow>, SinkError> events(uint64_t limit) override;
  common::Result<std::vector<EventRow>, SinkError> find_events(const EventQuery& query) override;
  common::Result<std::vector<SensorRow>, SinkError> sensors(const std::string& device) override;
  common::Result<std::vector<SeriesBucket>, SinkError> series(const SeriesQuery& query) override;
  common::Result<std::map<common::Reason, uint64_t>, SinkError> dlq_reasons() override;
  common::Result<std::map<std::string, uint64_t>, SinkError> event_kinds() override;
  common::Result<std::map<std::string, uint64_t>, SinkError> counts() override;

 private:
  explicit PostgresReader(std::unique_ptr<pg_db::Connection> db);
  std::unique_ptr<pg_db::Connection> db_;
};

}  // namespace outpost::collector
