// The collector's PostgreSQL connection, schema migrations and error classification.
#include "pg_db.h"

#include <endian.h>

#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <ctime>

#include "outpost/collector/config.h"

namespace outpost::collector::pg_db {

namespace {

// Schema migrations, in order: migration i takes a database from version i to i + 1. Each runs
// in one transaction with its schema_version row, under an advisory lock (two collectors
// starting together migrate once).
constexpr const char* kMigrations[] = {
    R"sql(
CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE devices (
  id bigserial PRIMARY KEY,
  device text NOT NULL UNIQUE,
  site text NOT NULL,
  first_seen_us bigint NOT NULL,
  last_seen_us bigint NOT NULL,
  state text NOT NULL DEFAULT 'unknown',
  epoch bigint NOT NULL DEFAULT 0,
  readings bigint NOT NULL DEFAULT 0,
  logs bigint NOT NULL DEFAULT 0,
  batches bigint NOT NULL DEFAULT 0,
  duplicates bigint NOT NULL DEFAULT 0,
  gaps bigint NOT NULL DEFAULT 0,
  last_status text NOT NULL DEFAULT '');
CREATE TABLE sensors (
  id bigserial PRIMARY KEY,
  device_id bigint NOT NULL REFERENCES devices (id),
  name text NOT NULL,
  unit text NOT NULL DEFAULT '',
  UNIQUE (device_id, name));
CREATE SEQUENCE batch_ids;
CREATE TABLE batches (
  device_id bigint NOT NULL,
  epoch bigint NOT NULL,
  seq bigint NOT NULL,
  kind smallint NOT NULL,
  batch_id bigint NOT NULL DEFAULT nextval('batch_ids'),
  rows integer NOT NULL,
  min_time_us bigint NOT NULL,
  max_time_us bigint NOT NULL,
  received_us bigint NOT NULL,
  time_synced boolean NOT NULL,
  PRIMARY KEY (device_id, epoch, seq));
CREATE INDEX batches_by_received ON batches (kind, received_us);
CREATE INDEX batches_by_time ON batches (device_id, kind, min_time_us);
CREATE TABLE readings (
  received_us bigint NOT NULL,
  batch_id bigint NOT NULL,
  sensor_id bigint NOT NULL,
  time_us bigint NOT NULL,
  value double precision,
  value_int bigint,
  type smallint NOT NULL,
  value_text text) PARTITION BY RANGE (received_us);
CREATE INDEX readings_by_batch ON readings USING brin (batch_id) WITH (pages_per_range = 16);
CREATE INDEX readings_by_time ON readings USING brin (time_us) WITH (pages_per_range = 32);
CREATE TABLE logs (
  received_us bigint NOT NULL,
  batch_id bigint NOT NULL,
  device_id bigint NOT NULL,
  time_us bigint NOT NULL,
  severity smallint NOT NULL,
  message text NOT NULL,
  fields json NOT NULL) PARTITION BY RANGE (received_us);
CREATE INDEX logs_by_batch ON logs USING brin (batch_id) WITH (pages_per_range = 16);
CREATE TABLE events (
  id bigserial PRIMARY KEY,
  time_us bigint NOT NULL,
  kind text NOT NULL,
  site text NOT NULL,
  device text NOT NULL,
  sensor text NOT NULL,
  value double precision NOT NULL,
  threshold double precision NOT NULL,
  detail text NOT NULL);
CREATE TABLE dlq (
  id bigserial PRIMARY KEY,
  received_us bigint NOT NULL,
  topic text NOT NULL,
  payload bytea NOT NULL,
  reason smallint NOT NULL,
  detail text NOT NULL);
CREATE INDEX dlq_by_received ON dlq (received_us);
CREATE TABLE seq_lines (
  device_id bigint PRIMARY KEY REFERENCES devices (id),
  max_seq bigint NOT NULL,
  epochs bigint[] NOT NULL,
  retired bigint[] NOT NULL);
CREATE TABLE seq_holes (
  device_id bigint NOT NULL,
  first_seq bigint NOT NULL,
  last_seq bigint NOT NULL,
  epoch bigint NOT NULL,
  since_us bigint NOT NULL,
  reported_us bigint NOT NULL,
  PRIMARY KEY (device_id, first_seq));
CREATE VIEW reading_rows AS
  SELECT d.device, d.site, s.name AS sensor, s.unit,
         to_timestamp(r.time_us / 1e6) AS time, r.time_us,
         coalesce(r.value, r.value_int::double precision) AS value, r.value_int, r.value_text,
         r.type
  FROM readings r JOIN sensors s ON s.id = r.sensor_id JOIN devices d ON d.id = s.device_id;
)sql",
    // 2: the fleet feed of shared mode (several collectors on one database): what the leader's
    // fleet logic needs of each stored message, written in the transaction that stores it and
    // deleted by the leader's round that consumes it (docs/storage.md).
    R"sql(
CREATE TABLE fleet_feed (
  id bigserial PRIMARY KEY,
  kind smallint NOT NULL,
  site text NOT NULL,
  device text NOT NULL,
  epoch bigint NOT NULL,
  seq bigint NOT NULL,
  received_us bigint NOT NULL,
  stored boolean NOT NULL,
  state smallint NOT NULL,
  sensor text NOT NULL,
  value double precision NOT NULL,
  time_us bigint NOT NULL);
-- Shared mode: each collector's share of a device's counters, one row per (device, collector):
-- no two collectors update one row, so their transactions never wait for each other here. The
-- devices row keeps what a single collector counts; readers add the two.
CREATE TABLE device_counts (
  device_id bigint NOT NULL REFERENCES devices (id),
  member text NOT NULL,
  last_seen_us bigint NOT NULL,
  epoch bigint NOT NULL,
  readings bigint NOT NULL,
  logs bigint NOT NULL,
  batches bigint NOT NULL,
  duplicates bigint NOT NULL,
  PRIMARY KEY (device_id, member));
)sql",
    // 3: each device's newest stored reading batch (its receive time), kept where last_seen_us
    // is: in the devices row, and in shared mode in each collector's device_counts row. An
    // existing database gets it from the ledger (reading batches only; statuses and logs do not
    // count), in the devices row: readers take the newest of the rows.
    R"sql(
ALTER TABLE devices ADD COLUMN last_data_us bigint NOT NULL DEFAULT 0;
ALTER TABLE device_counts ADD COLUMN last_data_us bigint NOT NULL DEFAULT 0;
UPDATE devices d SET last_data_us = b.last_data_us
  FROM (SELECT device_id, max(received_us) AS last_data_us FROM batches WHERE kind = 0
        GROUP BY device_id) b
  WHERE b.device_id = d.id;
)sql",
    // 4: a `changed` column (the id of the transaction that last wrote the row) on the rows a
    // device's fleet entry is made of, set on insert by its default and on every update by a
    // trigger, whichever collector or tool writes it, so that a reader can ask for the devices
    // changed since an earlier snapshot (Reader::fleet_changes). Not indexed, as in SQLite.
    R"sql(
ALTER TABLE devices ADD COLUMN changed xid8 NOT NULL DEFAULT pg_current_xact_id();
ALTER TABLE device_counts ADD COLUMN changed xid8 NOT NULL DEFAULT pg_current_xact_id();
ALTER TABLE seq_lines ADD COLUMN changed xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE FUNCTION outpost_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.changed := pg_current_xact_id();
  RETURN NEW;
END $$;
CREATE TRIGGER devices_changed BEFORE UPDATE ON devices
  FOR EACH ROW EXECUTE FUNCTION outpost_touch();
CREATE TRIGGER device_counts_changed BEFORE UPDATE ON device_counts
  FOR EACH ROW EXECUTE FUNCTION outpost_touch();
CREATE TRIGGER seq_lines_changed BEFORE UPDATE ON seq_lines
  FOR EACH ROW EXECUTE FUNCTION outpost_touch();
)sql",
};
constexpr int kMigrationCount = static_cast<int>(std::size(kMigrations));
static_assert(kMigrationCount == kSchemaVersion);

// pg_advisory_xact_lock key of schema migrations ("outpost" in ASCII, 0x6f7574706f7374).
constexpr const char* kMigrationLock = "SELECT pg_advisory_xact_lock(31372865377891188)";

bool transient_sqlstate(std::string_view state) {
  if (state.size() != 5) return true;  // no SQLSTATE: libpq's own failure (connection)
  const std::string_view cls = state.substr(0, 2);
  // 08 connection, 40 serialization/deadlock, 53 resources (disk full, memory, connections),
  // 57 operator intervention (shutdown, cannot connect now), 58 system (I/O), 55P03 lock
  // not available, XX000 internal error during a crash.
  return cls == "08" || cls == "40" || cls == "53" || cls == "57" || cls == "58" ||
         state == "55P03";
}

}  // namespace

int64_t Res::integer(int row, int col) const {
  int64_t v = 0;
  const char* p = PQgetvalue(r_.get(), row, col);
  std::from_chars(p, p + PQgetlength(r_.get(), row, col), v);
  return v;
}

double Res::real(int row, int col) const {
  const std::string t = text(row, col);
  if (t == "NaN") return NAN;
  if (t == "Infinity") return INFINITY;
  if (t == "-Infinity") return -INFINITY;
  return std::strtod(t.c_str(), nullptr);
}

std::string Res::bytes(int row, int col) const {
  std::size_t n = 0;
  unsigned char* raw =
      PQunescapeBytea(reinterpret_cast<const unsigned char*>(PQgetvalue(r_.get(), row, col)), &n);
  if (!raw) return {};
  std::string out(reinterpret_cast<char*>(raw), n);
  PQfreemem(raw);
  return out;
}

PGconn* Connection::connect(const PostgresOptions& options) {
  // Later keywords override earlier ones; dbname is expanded as a connection string, so the
  // dsn's own connect_timeout wins over the default, and a configured password over the dsn's.
  std::vector<const char*> keys = {"connect_timeout", "dbname", "application_name"};
  std::vector<const char*> values = {"5", options.dsn.c_str(), options.application_name.c_str()};
  if (!options.password.empty()) {
    keys.push_back("password");
    values.push_back(options.password.c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  return PQconnectdbParams(keys.data(), values.data(), /*expand_dbname=*/1);
}

common::Result<std::unique_ptr<Connection>, SinkError> Connection::open(
    const PostgresOptions& options, bool migrate) {
  const std::string name = "PostgreSQL " + redacted_dsn(options.dsn);
  PGconn* conn = connect(options);
  if (!conn) return SinkError{name + ": out of memory", true};
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string message = PQerrorMessage(conn);
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
      message.pop_back();
    }
    // The server asked for a password and none was given, or refused the login after the
    // password was sent (wrong password, or a role or database it does not let in): trying
    // again changes nothing. A server that is starting, stopping or recovering refuses before
    // any password, and is retried.
    const bool refused_login = PQconnectionNeedsPassword(conn) || PQconnectionUsedPassword(conn);
    PQfinish(conn);
    if (refused_login) {
      return SinkError{name + ": cannot connect: " + message +
                           " (the server refused the login: check the dsn's user and dbname "
                           "and storage.password_file)",
                       false};
    }
    // A dsn libpq cannot parse will never connect; a server that does not answer may later.
    char* parse_error = nullptr;
    PQconninfoOption* parsed = PQconninfoParse(options.dsn.c_str(), &parse_error);
    const bool parses = parsed != nullptr;
    PQconninfoFree(parsed);
    if (parse_error) PQfreemem(parse_error);
    return SinkError{name + ": cannot connect: " + message, parses};
  }
  std::unique_ptr<Connection> db(new Connection(conn, name));
  db->options_ = options;
  auto r = db->exec("cannot set up the session",
                    "SET client_min_messages = warning; SET TIME ZONE 'UTC'");
  if (!r.ok()) return r.error();
  auto version = db->exec("cannot read the schema version",
                          "SELECT to_regclass('schema_version') IS NOT NULL");
  if (!version.ok()) return version.error();
  int current = 0;
  if (version.value().text(0, 0) == "t") {
    auto v = db->exec("cannot read the schema version",
                      "SELECT coalesce(max(version), 0) FROM schema_version");
    if (!v.ok()) return v.error();
    current = static_cast<int>(v.value().integer(0, 0));
  }
  if (current > kSchemaVersion) {
    return SinkError{name + ": the database has schema version " + std::to_string(current) +
                         "; this outpost-collector knows up to " + std::to_string(kSchemaVersion) +
                         " (upgrade outpost-collector)",
                     false};
  }
  if (current == kSchemaVersion) return db;
  if (!migrate) {
    return SinkError{name + ": " +
                         (current == 0 ? std::string("no Outpost schema (has outpost-collector run "
                                                     "on this database?)")
                                       : "schema version " + std::to_string(current) +
                                             " is older than this build's; start outpost-collector "
                                             "once to migrate it"),
                     false};
  }
  auto fail = [&](const SinkError& e) {
    db->rollback();
    return SinkError{name + ": cannot migrate the schema: " + e.message, e.transient};
  };
  if (auto b = db->exec("begin", "BEGIN"); !b.ok()) return fail(b.error());
  if (auto l = db->exec("lock", kMigrationLock); !l.ok()) return fail(l.error());
  if (auto t = db->exec("schema_version",
                        "CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY, "
                        "applied_us bigint NOT NULL)");
      !t.ok()) {
    return fail(t.error());
  }
  // Read again under the lock: another collector may have migrated meanwhile.
  auto v = db->exec("schema_version", "SELECT coalesce(max(version), 0) FROM schema_version");
  if (!v.ok()) return fail(v.error());
  for (int i = static_cast<int>(v.value().integer(0, 0)); i < kMigrationCount; ++i) {
    if (auto m = db->exec("migration " + std::to_string(i + 1), kMigrations[i]); !m.ok()) {
      return fail(m.error());
    }
    if (auto m = db->exec("schema_version",
                          "INSERT INTO schema_version VALUES ($1, "
                          "(extract(epoch FROM now()) * 1e6)::bigint)",
                          {std::to_string(i + 1)});
        !m.ok()) {
      return fail(m.error());
    }
  }
  if (auto c = db->exec("commit", "COMMIT"); !c.ok()) return fail(c.error());
  return db;
}

Connection::~Connection() { PQfinish(conn_); }

common::Status<SinkError> Connection::ensure(bool& reconnected) {
  reconnected = false;
  if (PQstatus(conn_) == CONNECTION_OK && PQtransactionStatus(conn_) != PQTRANS_UNKNOWN) {
    return {};
  }
  PQreset(conn_);
  if (PQstatus(conn_) != CONNECTION_OK) {
    std::string message = PQerrorMessage(conn_);
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
      message.pop_back();
    }
    return SinkError{name_ + ": cannot reconnect: " + message, true};
  }
  reconnected = true;
  auto r =
      exec("cannot set up the session", "SET client_min_messages = warning; SET TIME ZONE 'UTC'");
  if (!r.ok()) return r.error();
  return {};
}

SinkError Connection::error(std::string_view what, const PGresult* result) const {
  std::string message = result ? PQresultErrorMessage(result) : "";
  if (message.empty()) message = PQerrorMessage(conn_);
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
    message.pop_back();
  }
  const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  const bool lost = PQstatus(conn_) != CONNECTION_OK;
  const bool transient = lost || transient_sqlstate(state ? state : "");
  std::string out(what);
  out += ": ";
  out += message;
  if (state) {
    out += " (SQLSTATE ";
    out += state;
    out += ")";
  }
  return SinkError{std::move(out), transient};
}

common::Result<Res, SinkError> Connection::exec(std::string_view what, const std::string& sql) {
  return exec(what, sql, {});
}

common::Result<Res, SinkError> Connection::exec(std::string_view what, const std::string& sql,
                                                const Params& params) {
  PGresult* result;
  if (params.empty()) {
    result = PQexec(conn_, sql.c_str());
  } else {
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
    result = PQexecParams(conn_, sql.c_str(), static_cast<int>(params.size()), nullptr,
                          values.data(), nullptr, nullptr, 0);
  }
  const ExecStatusType status = result ? PQresultStatus(result) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return Res(result);
  SinkError e = error(what, result);
  PQclear(result);
  return e;
}

common::Status<SinkError> Connection::copy_in(std::string_view what, const std::string& copy_sql,
                                              const std::string& data) {
  PGresult* start = PQexec(conn_, copy_sql.c_str());
  if (!start || PQresultStatus(start) != PGRES_COPY_IN) {
    SinkError e = error(what, start);
    PQclear(start);
    return e;
  }
  PQclear(start);
  static constexpr char kHeader[] = "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0";
  bool sent = PQputCopyData(conn_, kHeader, 19) == 1;
  constexpr std::size_t kChunk = 1 << 20;
  for (std::size_t at = 0; sent && at < data.size(); at += kChunk) {
    const std::size_t n = std::min(kChunk, data.size() - at);
    sent = PQputCopyData(conn_, data.data() + at, static_cast<int>(n)) == 1;
  }
  if (sent) {
    static constexpr char kTrailer[] = "\377\377";
    sent = PQputCopyData(conn_, kTrailer, 2) == 1;
  }
  if (PQputCopyEnd(conn_, sent ? nullptr : "client failed to send") != 1) {
    return error(what, nullptr);
  }
  SinkError e{"", false};
  bool failed = false;
  while (PGresult* r = PQgetResult(conn_)) {
    if (PQresultStatus(r) != PGRES_COMMAND_OK && !failed) {
      e = error(what, r);
      failed = true;
    }
    PQclear(r);
  }
  if (failed) return e;
  if (!sent) return error(what, nullptr);
  return {};
}

void Connection::rollback() {
  if (PQstatus(conn_) != CONNECTION_OK) return;
  PQclear(PQexec(conn_, "ROLLBACK"));
}

void put16(std::string& out, int16_t v) {
  const auto u = htobe16(static_cast<uint16_t>(v));
  out.append(reinterpret_cast<const char*>(&u), 2);
}

void put32(std::string& out, int32_t v) {
  const auto u = htobe32(static_cast<uint32_t>(v));
  out.append(reinterpret_cast<const char*>(&u), 4);
}

void put64(std::string& out, int64_t v) {
  const auto u = htobe64(static_cast<uint64_t>(v));
  out.append(reinterpret_cast<const char*>(&u), 8);
}

void put_field(std::string& out, std::string_view bytes) {
  put32(out, static_cast<int32_t>(bytes.size()));
  out.append(bytes);
}

void put_int64_field(std::string& out, int64_t v) {
  put32(out, 8);
  put64(out, v);
}

void put_int16_field(std::string& out, int16_t v) {
  put32(out, 2);
  put16(out, v);
}

void put_double_field(std::string& out, double v) {
  put32(out, 8);
  put64(out, std::bit_cast<int64_t>(v));
}

void put_null_field(std::string& out) { put32(out, -1); }

std::string float_text(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, end);
}

std::string dlq_where(const DlqFilter& f, Params& params) {
  params.push_back(std::to_string(f.since_us));
  params.push_back(std::to_string(f.until_us));
  std::string w = " WHERE received_us BETWEEN $1 AND $2";
  if (f.reason) {
    params.push_back(std::to_string(static_cast<int>(*f.reason)));
    w += " AND reason = $" + std::to_string(params.size());
  }
  if (!f.topic_prefix.empty()) {
    params.push_back(f.topic_prefix);
    const std::string n = "$" + std::to_string(params.size());
    w += " AND left(topic, length(" + n + ")) = " + n;
  }
  if (!f.topic_contains.empty()) {
    // strpos: case-sensitive, and no wildcards (LIKE would treat % and _ as such).
    params.push_back(f.topic_contains);
    w += " AND strpos(topic, $" + std::to_string(params.size()) + ") > 0";
  }
  return w;
}

std::string array_literal(const std::vector<int64_t>& values) {
  std::string out = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i) out += ',';
    out += std::to_string(values[i]);
  }
  return out + "}";
}

std::string text_array_literal(const std::vector<std::string>& values) {
  std::string out = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i) out += ',';
    out += '"';
    for (char c : values[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

std::vector<uint64_t> parse_array(std::string_view text) {
  std::vector<uint64_t> out;
  const char* p = text.data();
  const char* end = p + text.size();
  while (p < end) {
    int64_t v = 0;
    auto [next, ec] = std::from_chars(p, end, v);
    if (ec == std::errc()) {
      out.push_back(static_cast<uint64_t>(v));
      p = next;
    } else {
      ++p;
    }
  }
  return out;
}

int64_t day_of(int64_t received_us) {
  return received_us >= 0 ? received_us / kDayUs : -((-received_us + kDayUs - 1) / kDayUs);
}

std::string partition_name(std::string_view table, int64_t day) {
  const std::time_t t = static_cast<std::time_t>(day * 86400);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y%m%d", &tm);
  return std::string(table) + "_p" + buf;
}

std::optional<int64_t> partition_day(std::string_view table, std::string_view name) {
  const std::string prefix = std::string(table) + "_p";
  if (!name.starts_with(prefix) || name.size() != prefix.size() + 8) return std::nullopt;
  std::tm tm{};
  const std::string digits(name.substr(prefix.size()));
  if (!strptime(digits.c_str(), "%Y%m%d", &tm)) return std::nullopt;
  return static_cast<int64_t>(timegm(&tm)) / 86400;
}

std::string create_partitions_sql(int64_t day, const std::vector<std::string>& tables) {
  std::string sql;
  for (const std::string& table : tables) {
    sql += "CREATE TABLE IF NOT EXISTS " + partition_name(table, day) + " PARTITION OF " + table +
           " FOR VALUES FROM (" + std::to_string(day * kDayUs) + ") TO (" +
           std::to_string((day + 1) * kDayUs) + ");";
  }
  return sql;
}

}  // namespace outpost::collector::pg_db
