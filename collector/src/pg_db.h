// The collector's PostgreSQL database as the writer (PostgresSink) and the reader
// (PostgresReader) share it: one libpq connection, the schema and its migrations, error
// classification. Private to collector/src. Schema and the reasons behind it: docs/storage.md.
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "outpost/collector/postgres.h"
#include "outpost/collector/sink.h"
#include "outpost/common/result.h"

namespace outpost::collector::pg_db {

// The schema version this build creates and reads (the schema_version table).
inline constexpr int kSchemaVersion = 4;

// pg_try_advisory_lock key the shared-mode leader holds on its session ("outpost" in ASCII + 1;
// the schema migrations' transaction lock is "outpost").
inline constexpr int64_t kLeaderLock = 31372865377891189;

// Value types in readings.type (as SQLite's): which value column holds the reading.
enum ValueType : int { kDouble = 0, kInteger = 1, kBool = 2, kString = 3 };
// batches.kind.
enum BatchKind : int { kReadingsKind = 0, kLogsKind = 1 };

// A query's result; owns the PGresult.
class Res {
 public:
  explicit Res(PGresult* r = nullptr) : r_(r) {}
  int rows() const { return r_ ? PQntuples(r_.get()) : 0; }
  bool null(int row, int col) const { return PQgetisnull(r_.get(), row, col) != 0; }
  std::string text(int row, int col) const {
    return std::string(PQgetvalue(r_.get(), row, col),
                       static_cast<std::size_t>(PQgetlength(r_.get(), row, col)));
  }
  int64_t integer(int row, int col) const;
  double real(int row, int col) const;
  // A bytea column in text (hex) form, decoded.
  std::string bytes(int row, int col) const;

 private:
  struct Clear {
    void operator()(PGresult* r) const { PQclear(r); }
  };
  std::unique_ptr<PGresult, Clear> r_;
};

// Parameters of one statement, sent in text form (NULL for nullopt).
using Params = std::vector<std::optional<std::string>>;

// One connection. Reconnects (ensure()) after the server restarted or the network failed.
class Connection {
 public:
  // Connects; with `migrate`, creates or upgrades the schema (the collector), else checks that
  // it is there and of this version (the tools). Errors name the database by its redacted dsn.
  static common::Result<std::unique_ptr<Connection>, SinkError> open(const PostgresOptions& options,
                                                                     bool migrate);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  PGconn* handle() const { return conn_; }
  // Makes sure the connection is up, reconnecting once if it is not; a transient error if
  // the server cannot be reached. `reconnected` tells the caller its caches are stale.
  common::Status<SinkError> ensure(bool& reconnected);

  // Runs `sql` (one statement, or several without parameters): its result, or the error.
  common::Result<Res, SinkError> exec(std::string_view what, const std::string& sql);
  common::Result<Res, SinkError> exec(std::string_view what, const std::string& sql,
                                      const Params& params);
  // Streams `data` (COPY ... FROM STDIN (FORMAT binary) rows, without header or trailer)
  // into `copy_sql`.
  common::Status<SinkError> copy_in(std::string_view what, const std::string& copy_sql,
                                    const std::string& data);
  // `what`, with the server's message; transient for connection loss, shutdown, resource
  // and serialization errors (by SQLSTATE), permanent for the rest (data, constraints).
  SinkError error(std::string_view what, const PGresult* result) const;
  // Rolls back, ignoring errors (the connection may be gone).
  void rollback();

  const std::string& name() const { return name_; }  // the redacted dsn

 private:
  Connection(PGconn* conn, std::string name) : conn_(conn), name_(std::move(name)) {}
  static PGconn* connect(const PostgresOptions& options);

  PGconn* conn_;
  std::string name_;
  PostgresOptions options_;
};

// The devices row's id, the row made (first seen `now_us`) when there is none.
common::Result<int64_t, SinkError> upsert_device(Connection& db, const std::string& site,
                                                 const std::string& device, int64_t now_us);
// Locks the devices rows a transaction is about to update, named by id or by device, in the
// order of their ids. Several collectors update the same rows (counters, statuses, gap counts,
// presence) in one transaction each; each locking them in one order first means two of them
// wait for each other instead of deadlocking (which PostgreSQL breaks by aborting one).
common::Status<SinkError> lock_devices(Connection& db, const std::vector<int64_t>& ids,
                                       const std::vector<std::string>& names);
// Events, each with the gap count and the presence it carries onto its device's row.
common::Status<SinkError> write_events(Connection& db, const std::vector<EventItem>& events);
// Sequence lines and their holes; `device_id` names each line's devices row.
common::Status<SinkError> write_seq_lines(
    Connection& db, const std::vector<SeqLineUpdate>& lines,
    const std::function<common::Result<int64_t, SinkError>(const SeqLineState&)>& device_id);

// Big-endian appenders for binary COPY rows.
void put16(std::string& out, int16_t v);
void put32(std::string& out, int32_t v);
void put64(std::string& out, int64_t v);
// A field: its length, then its bytes.
void put_field(std::string& out, std::string_view bytes);
void put_int64_field(std::string& out, int64_t v);
void put_int16_field(std::string& out, int16_t v);
void put_double_field(std::string& out, double v);
void put_null_field(std::string& out);

// A double as PostgreSQL reads it back exactly (shortest round trip; NaN, Infinity).
std::string float_text(double v);

// The WHERE clause a DlqFilter makes, appending its parameters to `params`: the reader lists
// what the writer's purge removes.
std::string dlq_where(const DlqFilter& filter, Params& params);

// PostgreSQL array literals: {1,2,3} and its parts back (what does not parse is skipped).
std::string array_literal(const std::vector<int64_t>& values);
std::string text_array_literal(const std::vector<std::string>& values);
std::vector<uint64_t> parse_array(std::string_view text);

// Partitions: one per UTC day of received_us, named <table>_pYYYYMMDD.
int64_t day_of(int64_t received_us);
std::string partition_name(std::string_view table, int64_t day);
// The day a partition name stands for; nullopt if it is not one of ours.
std::optional<int64_t> partition_day(std::string_view table, std::string_view name);
inline constexpr int64_t kDayUs = 86'400'000'000LL;
// CREATE TABLE IF NOT EXISTS for that day's partition of `tables` (readings, logs: those of
// them that are natively partitioned).
std::string create_partitions_sql(int64_t day, const std::vector<std::string>& tables);

}  // namespace outpost::collector::pg_db
