// The collector's SQLite connection, schema and statement cache.
#include "sqlite_db.h"

#include <charconv>
#include <filesystem>
#include <iterator>

namespace outpost::collector::sqlite_db {

namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS devices (
  id INTEGER PRIMARY KEY,
  device TEXT NOT NULL UNIQUE,
  site TEXT NOT NULL,
  first_seen_us INTEGER NOT NULL,
  last_seen_us INTEGER NOT NULL,
  last_data_us INTEGER NOT NULL DEFAULT 0,
  state TEXT NOT NULL DEFAULT 'unknown',
  epoch INTEGER NOT NULL DEFAULT 0,
  readings INTEGER NOT NULL DEFAULT 0,
  logs INTEGER NOT NULL DEFAULT 0,
  batches INTEGER NOT NULL DEFAULT 0,
  duplicates INTEGER NOT NULL DEFAULT 0,
  gaps INTEGER NOT NULL DEFAULT 0,
  last_status TEXT NOT NULL DEFAULT '',
  changed INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS sensors (
  id INTEGER PRIMARY KEY,
  device_id INTEGER NOT NULL,
  name TEXT NOT NULL,
  unit TEXT NOT NULL DEFAULT '',
  UNIQUE (device_id, name));
CREATE TABLE IF NOT EXISTS batches (
  device_id INTEGER NOT NULL,
  epoch INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  kind INTEGER NOT NULL,
  first_row INTEGER NOT NULL,
  last_row INTEGER NOT NULL,
  min_time_us INTEGER NOT NULL,
  max_time_us INTEGER NOT NULL,
  received_us INTEGER NOT NULL,
  time_synced INTEGER NOT NULL,
  PRIMARY KEY (device_id, epoch, seq)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS batches_by_received ON batches (kind, received_us);
CREATE TABLE IF NOT EXISTS readings (
  id INTEGER PRIMARY KEY,
  sensor_id INTEGER NOT NULL,
  time_us INTEGER NOT NULL,
  value,
  type INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS logs (
  id INTEGER PRIMARY KEY,
  device_id INTEGER NOT NULL,
  time_us INTEGER NOT NULL,
  severity INTEGER NOT NULL,
  message TEXT NOT NULL,
  fields TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY,
  time_us INTEGER NOT NULL,
  kind TEXT NOT NULL,
  site TEXT NOT NULL,
  device TEXT NOT NULL,
  sensor TEXT NOT NULL,
  value REAL NOT NULL,
  threshold REAL NOT NULL,
  detail TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS dlq (
  id INTEGER PRIMARY KEY,
  received_us INTEGER NOT NULL,
  topic TEXT NOT NULL,
  payload BLOB NOT NULL,
  reason INTEGER NOT NULL,
  detail TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS seq_lines (
  device_id INTEGER PRIMARY KEY,
  max_seq INTEGER NOT NULL,
  epochs TEXT NOT NULL,
  retired TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS seq_holes (
  device_id INTEGER NOT NULL,
  first_seq INTEGER NOT NULL,
  last_seq INTEGER NOT NULL,
  epoch INTEGER NOT NULL,
  since_us INTEGER NOT NULL,
  reported_us INTEGER NOT NULL,
  PRIMARY KEY (device_id, first_seq)) WITHOUT ROWID;
CREATE VIEW IF NOT EXISTS reading_rows AS
  SELECT d.device, d.site, s.name AS sensor, s.unit, r.time_us, r.value, r.type
  FROM readings r JOIN sensors s ON s.id = r.sensor_id JOIN devices d ON d.id = s.device_id;
)sql";

// The schema's version, kept in PRAGMA user_version (0: a database made before versions were
// kept). kSchema above is the newest version's; migration i takes a database from version i to
// i + 1, and must also do the right thing on tables kSchema has just created.
constexpr int kSchemaVersion = 2;

// Version 1: devices.last_data_us, the receive time of the device's newest readings batch,
// filled from the batches ledger (a device whose batch keys have expired keeps 0 until its next
// batch).
bool add_last_data_us(Database& db) {
  Statement has(
      db.prepare("SELECT count(*) FROM pragma_table_info('devices') WHERE name = 'last_data_us'"));
  if (!has.ok() || has.step() != SQLITE_ROW) return false;
  if (has.integer(0) > 0) return true;
  has.reset();
  return db.exec(
      "ALTER TABLE devices ADD COLUMN last_data_us INTEGER NOT NULL DEFAULT 0; "
      "UPDATE devices SET last_data_us = coalesce((SELECT max(b.received_us) FROM batches b "
      "WHERE b.device_id = devices.id AND b.kind = 0), 0);");
}

// Version 2: devices.changed, the revision of the last commit that changed the device's row or
// sequence line (meta 'revision' is the newest commit's), so that a reader can ask for what
// changed since it last looked. Not indexed: an index would cost every commit about a tenth
// more on small messages (each changes the key of every device it touches), for a read that
// scans 100,000 devices in about 15 ms. Devices of an older file start at 0.
bool add_changed(Database& db) {
  Statement has(
      db.prepare("SELECT count(*) FROM pragma_table_info('devices') WHERE name = 'changed'"));
  if (!has.ok() || has.step() != SQLITE_ROW) return false;
  const bool present = has.integer(0) > 0;
  has.reset();
  return present || db.exec("ALTER TABLE devices ADD COLUMN changed INTEGER NOT NULL DEFAULT 0");
}

constexpr bool (*kMigrations[])(Database&) = {add_last_data_us, add_changed};
static_assert(std::size(kMigrations) == kSchemaVersion);

// The database's schema version; -1 if it cannot be read.
int schema_version(Database& db) {
  Statement q(db.prepare("PRAGMA user_version"));
  if (!q.ok() || q.step() != SQLITE_ROW) return -1;
  return static_cast<int>(q.integer(0));
}

// Brings an older schema up to this build's; refuses a newer one.
common::Status<SinkError> migrate(Database& db, const std::string& path) {
  int version = schema_version(db);
  if (version < 0) {
    return SinkError{path + ": " + db.error("cannot read the schema version").message, false};
  }
  if (version > kSchemaVersion) {
    return SinkError{path + ": the database has schema version " + std::to_string(version) +
                         "; this build knows up to " + std::to_string(kSchemaVersion),
                     false};
  }
  if (version == kSchemaVersion) return {};
  // One transaction for all steps; the version is read again inside it, since another
  // connection (the collector and a tool opening together) may have migrated meanwhile.
  if (!db.exec("BEGIN IMMEDIATE")) {
    return SinkError{path + ": " + db.error("cannot begin the schema migration").message, false};
  }
  auto fail = [&](std::string_view what) {
    SinkError e{path + ": " + db.error(what).message, false};
    (void)db.exec("ROLLBACK");  // nothing more to do if it fails
    return e;
  };
  version = schema_version(db);
  if (version < 0) return fail("cannot read the schema version");
  for (int v = version; v < kSchemaVersion; ++v) {
    if (!kMigrations[v](db)) {
      return fail("cannot migrate the schema to version " + std::to_string(v + 1));
    }
  }
  if (version < kSchemaVersion &&
      !db.exec(("PRAGMA user_version = " + std::to_string(kSchemaVersion)).c_str())) {
    return fail("cannot record the schema version");
  }
  if (!db.exec("COMMIT")) return fail("cannot commit the schema migration");
  return {};
}

bool is_transient(int code) {
  const int primary = code & 0xff;
  return primary == SQLITE_BUSY || primary == SQLITE_LOCKED || primary == SQLITE_FULL ||
         primary == SQLITE_IOERR;
}

}  // namespace

std::string join_numbers(const std::vector<uint64_t>& numbers) {
  std::string out;
  for (uint64_t n : numbers) {
    if (!out.empty()) out += ' ';
    out += std::to_string(n);
  }
  return out;
}

std::vector<uint64_t> split_numbers(std::string_view text) {
  std::vector<uint64_t> out;
  const char* p = text.data();
  const char* end = text.data() + text.size();
  while (p < end) {
    uint64_t v = 0;
    auto [next, ec] = std::from_chars(p, end, v);
    if (ec == std::errc()) out.push_back(v);
    p = next == p ? p + 1 : next;
    while (p < end && *p == ' ') ++p;
  }
  return out;
}

Database::Database(sqlite3* db)
    : db_(db), cache_(std::make_unique<common::sqlite::StatementCache>(db)) {}

Database::~Database() {
  cache_.reset();
  sqlite3_close_v2(db_);
}

SinkError Database::error(std::string_view what) const {
  return SinkError{std::string(what) + ": " + sqlite3_errmsg(db_),
                   is_transient(sqlite3_extended_errcode(db_))};
}

bool Database::exec(const char* sql) {
  return sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) == SQLITE_OK;
}

common::Result<std::unique_ptr<Database>, SinkError> Database::open(const std::string& path,
                                                                    bool create, bool full_sync) {
  if (!create && !std::filesystem::exists(path)) {
    return SinkError{"no database at " + path, false};
  }
  // SQLite's memory statistics take a global mutex on every allocation: off, before the first
  // connection (later it is refused, SQLITE_MISUSE, and changes nothing). Nothing reads them.
  static const bool memstatus_off = [] {
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    return true;
  }();
  (void)memstatus_off;
  sqlite3* handle = nullptr;
  const int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_NOMUTEX;
  if (sqlite3_open_v2(path.c_str(), &handle, flags, nullptr) != SQLITE_OK) {
    SinkError e{"cannot open " + path + ": " + (handle ? sqlite3_errmsg(handle) : "out of memory"),
                false};
    sqlite3_close_v2(handle);
    return e;
  }
  std::unique_ptr<Database> db(new Database(handle));
  sqlite3_busy_timeout(handle, 5000);
  const std::string pragmas = std::string("PRAGMA journal_mode=WAL; PRAGMA synchronous=") +
                              (full_sync ? "FULL" : "NORMAL") +
                              "; PRAGMA cache_size=-65536; PRAGMA temp_store=MEMORY;";
  if (!db->exec(pragmas.c_str())) {
    return SinkError{
        path + ": " + db->error("not an SQLite database of Outpost's (or unreadable)").message,
        false};
  }
  if (!db->exec(kSchema)) {
    return SinkError{path + ": " + db->error("cannot create the schema").message, false};
  }
  if (auto s = migrate(*db, path); !s.ok()) return s.error();
  return db;
}

}  // namespace outpost::collector::sqlite_db
