// The SQLite sink: one transaction per batch of messages, exactly-once per (device, epoch, seq).
#include "outpost/collector/sqlite_sink.h"

#include <algorithm>
#include <filesystem>
#include <map>

#include "outpost/common/json.h"

namespace outpost::collector {

namespace {

using common::Result;
using common::Status;

// Value types in readings.type: SQLite's dynamic typing keeps REAL and INTEGER apart by
// itself; the type column tells a bool from an integer.
enum ValueType : int { kDouble = 0, kInteger = 1, kBool = 2, kString = 3 };
enum BatchKind : int { kReadingsKind = 0, kLogsKind = 1 };

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS devices (
  id INTEGER PRIMARY KEY,
  device TEXT NOT NULL UNIQUE,
  site TEXT NOT NULL,
  first_seen_us INTEGER NOT NULL,
  last_seen_us INTEGER NOT NULL,
  state TEXT NOT NULL DEFAULT 'unknown',
  epoch INTEGER NOT NULL DEFAULT 0,
  readings INTEGER NOT NULL DEFAULT 0,
  logs INTEGER NOT NULL DEFAULT 0,
  batches INTEGER NOT NULL DEFAULT 0,
  duplicates INTEGER NOT NULL DEFAULT 0,
  gaps INTEGER NOT NULL DEFAULT 0,
  last_status TEXT NOT NULL DEFAULT '');
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
CREATE VIEW IF NOT EXISTS reading_rows AS
  SELECT d.device, d.site, s.name AS sensor, s.unit, r.time_us, r.value, r.type
  FROM readings r JOIN sensors s ON s.id = r.sensor_id JOIN devices d ON d.id = s.device_id;
)sql";

// A prepared statement borrowed from the cache, reset and unbound when it goes.
class Use {
 public:
  explicit Use(sqlite3_stmt* s) : s_(s) {}
  ~Use() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  Use(const Use&) = delete;
  Use& operator=(const Use&) = delete;
  sqlite3_stmt* operator*() const { return s_; }
  void bind(int i, int64_t v) { sqlite3_bind_int64(s_, i, v); }
  void bind(int i, uint64_t v) { sqlite3_bind_int64(s_, i, static_cast<int64_t>(v)); }
  void bind(int i, int v) { sqlite3_bind_int(s_, i, v); }
  void bind(int i, double v) { sqlite3_bind_double(s_, i, v); }
  void bind(int i, std::string_view v) {
    // An empty view may have no data pointer, which SQLite would store as NULL.
    sqlite3_bind_text(s_, i, v.empty() ? "" : v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
  }
  void bind_blob(int i, std::string_view v) {
    sqlite3_bind_blob(s_, i, v.empty() ? "" : v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
  }
  int step() { return sqlite3_step(s_); }
  int64_t i64(int col) { return sqlite3_column_int64(s_, col); }
  std::string text(int col) {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, col));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(s_, col))) : "";
  }
  std::string blob(int col) {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(s_, col));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(s_, col))) : "";
  }

 private:
  sqlite3_stmt* s_;
};

bool is_transient(int code) {
  const int primary = code & 0xff;
  return primary == SQLITE_BUSY || primary == SQLITE_LOCKED || primary == SQLITE_FULL ||
         primary == SQLITE_IOERR;
}

std::string fields_json(const std::vector<common::LogField>& fields) {
  std::string out = "{";
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i) out += ',';
    common::append_json_string(out, fields[i].key);
    out += ':';
    common::append_json_string(out, fields[i].value);
  }
  out += '}';
  return out;
}

Presence presence_from_name(std::string_view name) {
  for (Presence p : {Presence::kOnline, Presence::kOffline, Presence::kLost, Presence::kSilent}) {
    if (presence_name(p) == name) return p;
  }
  return Presence::kUnknown;
}

std::string status_json(const common::DeviceStatus& s) {
  common::Envelope e;
  e.body = s;
  return common::to_json(e);
}

}  // namespace

SqliteSink::SqliteSink(sqlite3* db, SqliteOptions options)
    : db_(db), options_(std::move(options)) {}

SqliteSink::~SqliteSink() {
  for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
  sqlite3_close_v2(db_);
}

SinkError SqliteSink::error(std::string_view what) const {
  return SinkError{std::string(what) + ": " + sqlite3_errmsg(db_),
                   is_transient(sqlite3_extended_errcode(db_))};
}

sqlite3_stmt* SqliteSink::prepare(const char* sql) {
  auto it = statements_.find(sql);
  if (it != statements_.end()) return it->second;
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr) != SQLITE_OK) {
    return nullptr;
  }
  statements_.emplace(sql, stmt);
  return stmt;
}

Result<std::unique_ptr<SqliteSink>, SinkError> SqliteSink::open(const SqliteOptions& options) {
  if (!options.create && !std::filesystem::exists(options.path)) {
    return SinkError{"no database at " + options.path, false};
  }
  sqlite3* db = nullptr;
  const int flags =
      SQLITE_OPEN_READWRITE | (options.create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_NOMUTEX;
  if (sqlite3_open_v2(options.path.c_str(), &db, flags, nullptr) != SQLITE_OK) {
    SinkError e{"cannot open " + options.path + ": " + (db ? sqlite3_errmsg(db) : "out of memory"),
                false};
    sqlite3_close_v2(db);
    return e;
  }
  std::unique_ptr<SqliteSink> sink(new SqliteSink(db, options));
  if (auto s = sink->init_schema(); !s.ok()) {
    return SinkError{options.path + ": " + s.error().message, false};
  }
  return sink;
}

Status<SinkError> SqliteSink::init_schema() {
  sqlite3_busy_timeout(db_, 5000);
  const std::string pragmas = std::string("PRAGMA journal_mode=WAL; PRAGMA synchronous=") +
                              (options_.full_sync ? "FULL" : "NORMAL") +
                              "; PRAGMA cache_size=-65536; PRAGMA temp_store=MEMORY;";
  if (sqlite3_exec(db_, pragmas.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) {
    return error("not an SQLite database of Outpost's (or unreadable)");
  }
  if (sqlite3_exec(db_, kSchema, nullptr, nullptr, nullptr) != SQLITE_OK) {
    return error("cannot create the schema");
  }
  Use q(prepare("SELECT count(*) FROM dlq"));
  if (!*q || q.step() != SQLITE_ROW) return error("cannot count the DLQ");
  dlq_entries_ = static_cast<uint64_t>(q.i64(0));
  return {};
}

Result<int64_t, SinkError> SqliteSink::device_id(const std::string& site, const std::string& device,
                                                 int64_t now_us) {
  if (auto it = device_ids_.find(device); it != device_ids_.end()) return it->second;
  {
    Use q(prepare("SELECT id FROM devices WHERE device = ?"));
    q.bind(1, device);
    if (q.step() == SQLITE_ROW) {
      const int64_t id = q.i64(0);
      device_ids_.emplace(device, id);
      return id;
    }
  }
  Use ins(prepare(
      "INSERT INTO devices (device, site, first_seen_us, last_seen_us) VALUES (?, ?, ?, ?)"));
  ins.bind(1, device);
  ins.bind(2, site);
  ins.bind(3, now_us);
  ins.bind(4, now_us);
  if (ins.step() != SQLITE_DONE) return error("cannot add device " + device);
  const int64_t id = sqlite3_last_insert_rowid(db_);
  device_ids_.emplace(device, id);
  return id;
}

Result<int64_t, SinkError> SqliteSink::sensor_id(int64_t device, const std::string& name,
                                                 std::string_view unit) {
  std::string key = std::to_string(device);
  key += '\0';
  key += name;
  auto it = sensor_ids_.find(key);
  if (it == sensor_ids_.end()) {
    Use q(prepare("SELECT id, unit FROM sensors WHERE device_id = ? AND name = ?"));
    q.bind(1, device);
    q.bind(2, name);
    if (q.step() == SQLITE_ROW) {
      it = sensor_ids_.emplace(key, Sensor{q.i64(0), q.text(1)}).first;
    } else {
      Use ins(prepare("INSERT INTO sensors (device_id, name, unit) VALUES (?, ?, ?)"));
      ins.bind(1, device);
      ins.bind(2, name);
      ins.bind(3, unit);
      if (ins.step() != SQLITE_DONE) return error("cannot add sensor " + name);
      return sensor_ids_.emplace(key, Sensor{sqlite3_last_insert_rowid(db_), std::string(unit)})
          .first->second.id;
    }
  }
  if (!unit.empty() && it->second.unit != unit) {
    // The unit a sensor reports last is the one shown; values are stored as sent.
    Use up(prepare("UPDATE sensors SET unit = ? WHERE id = ?"));
    up.bind(1, unit);
    up.bind(2, it->second.id);
    if (up.step() != SQLITE_DONE) return error("cannot update sensor " + name);
    it->second.unit = std::string(unit);
  }
  return it->second.id;
}

Result<CommitResult, SinkError> SqliteSink::commit(const Transaction& tx) {
  if (sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) {
    return error("cannot begin a transaction");
  }
  auto result = write(tx);
  if (result.ok() && sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) == SQLITE_OK) {
    dlq_entries_ += tx.dlq.size();
    dlq_entries_ -= std::min<uint64_t>(dlq_entries_, result.value().dlq_dropped);
    dlq_remove_.clear();
    return result;
  }
  SinkError e = result.ok() ? error("cannot commit") : result.error();
  sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  // Ids cached during the rolled-back transaction may not exist: forget them all.
  device_ids_.clear();
  sensor_ids_.clear();
  return e;
}

Result<CommitResult, SinkError> SqliteSink::write(const Transaction& tx) {
  CommitResult result;
  result.outcomes.reserve(tx.batches.size());
  struct Tally {
    int64_t last_seen_us = 0;
    uint64_t epoch = 0;
    uint64_t readings = 0, logs = 0, batches = 0, duplicates = 0;
  };
  std::map<int64_t, Tally> tallies;
  std::vector<int64_t> sensor_ids;

  for (const BatchItem& item : tx.batches) {
    const common::Envelope& env = item.envelope;
    auto dev = device_id(item.site, env.device_id, item.received_us);
    if (!dev.ok()) return dev.error();
    Tally& tally = tallies[dev.value()];
    tally.last_seen_us = std::max(tally.last_seen_us, item.received_us);
    {
      Use probe(prepare("SELECT 1 FROM batches WHERE device_id = ? AND epoch = ? AND seq = ?"));
      probe.bind(1, dev.value());
      probe.bind(2, env.epoch);
      probe.bind(3, env.seq);
      const int rc = probe.step();
      if (rc == SQLITE_ROW) {
        result.outcomes.push_back(BatchOutcome::kDuplicate);
        ++tally.duplicates;
        continue;
      }
      if (rc != SQLITE_DONE) return error("cannot look up a batch");
    }
    int64_t first_row = 0, last_row = -1;
    int64_t min_t = INT64_MAX, max_t = INT64_MIN;
    bool synced = false;
    int kind = kReadingsKind;
    if (const auto* batch = std::get_if<common::ReadingBatch>(&env.body)) {
      synced = batch->time_synced;
      sensor_ids.assign(batch->sensor_names.size(), 0);
      for (std::size_t i = 0; i < batch->sensor_names.size(); ++i) {
        auto id = sensor_id(dev.value(), batch->sensor_names[i],
                            batch->unit_of(static_cast<uint32_t>(i)));
        if (!id.ok()) return id.error();
        sensor_ids[i] = id.value();
      }
      Use ins(
          prepare("INSERT INTO readings (sensor_id, time_us, value, type) VALUES (?, ?, ?, ?)"));
      for (const common::Reading& r : batch->readings) {
        ins.bind(1, sensor_ids[r.sensor]);
        ins.bind(2, r.time_us);
        int type = kDouble;
        if (const double* d = std::get_if<double>(&r.value)) {
          ins.bind(3, *d);
        } else if (const int64_t* n = std::get_if<int64_t>(&r.value)) {
          ins.bind(3, *n);
          type = kInteger;
        } else if (const bool* b = std::get_if<bool>(&r.value)) {
          ins.bind(3, int64_t{*b ? 1 : 0});
          type = kBool;
        } else {
          ins.bind(3, std::string_view(std::get<std::string>(r.value)));
          type = kString;
        }
        ins.bind(4, type);
        if (ins.step() != SQLITE_DONE) return error("cannot store a reading");
        sqlite3_reset(*ins);
        last_row = sqlite3_last_insert_rowid(db_);
        if (first_row == 0) first_row = last_row;
        min_t = std::min(min_t, r.time_us);
        max_t = std::max(max_t, r.time_us);
      }
      tally.readings += batch->readings.size();
      result.readings_stored += batch->readings.size();
    } else if (const auto* logs = std::get_if<common::LogBatch>(&env.body)) {
      kind = kLogsKind;
      synced = logs->time_synced;
      Use ins(
          prepare("INSERT INTO logs (device_id, time_us, severity, message, fields) VALUES (?, ?, "
                  "?, ?, ?)"));
      for (const common::LogRecord& rec : logs->records) {
        const std::string fields = fields_json(rec.fields);
        ins.bind(1, dev.value());
        ins.bind(2, rec.time_us);
        ins.bind(3, static_cast<int>(rec.severity));
        ins.bind(4, std::string_view(rec.message));
        ins.bind(5, std::string_view(fields));
        if (ins.step() != SQLITE_DONE) return error("cannot store a log record");
        sqlite3_reset(*ins);
        last_row = sqlite3_last_insert_rowid(db_);
        if (first_row == 0) first_row = last_row;
        min_t = std::min(min_t, rec.time_us);
        max_t = std::max(max_t, rec.time_us);
      }
      tally.logs += logs->records.size();
      result.logs_stored += logs->records.size();
    }
    if (min_t > max_t) min_t = max_t = 0;
    Use batch(prepare(
        "INSERT INTO batches (device_id, epoch, seq, kind, first_row, last_row, min_time_us, "
        "max_time_us, received_us, time_synced) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    batch.bind(1, dev.value());
    batch.bind(2, env.epoch);
    batch.bind(3, env.seq);
    batch.bind(4, kind);
    batch.bind(5, first_row);
    batch.bind(6, last_row);
    batch.bind(7, min_t);
    batch.bind(8, max_t);
    batch.bind(9, item.received_us);
    batch.bind(10, synced ? 1 : 0);
    if (batch.step() != SQLITE_DONE) return error("cannot record a batch");
    ++tally.batches;
    tally.epoch = env.epoch;
    result.outcomes.push_back(BatchOutcome::kStored);
  }

  for (const auto& [id, t] : tallies) {
    Use up(
        prepare("UPDATE devices SET last_seen_us = max(last_seen_us, ?), readings = readings + ?, "
                "logs = logs + ?, batches = batches + ?, duplicates = duplicates + ?, "
                "epoch = CASE WHEN ? != 0 THEN ? ELSE epoch END WHERE id = ?"));
    up.bind(1, t.last_seen_us);
    up.bind(2, t.readings);
    up.bind(3, t.logs);
    up.bind(4, t.batches);
    up.bind(5, t.duplicates);
    up.bind(6, t.epoch);
    up.bind(7, t.epoch);
    up.bind(8, id);
    if (up.step() != SQLITE_DONE) return error("cannot update a device");
  }

  for (const StatusItem& st : tx.statuses) {
    auto dev = device_id(st.site, st.device, st.received_us);
    if (!dev.ok()) return dev.error();
    Presence p = Presence::kUnknown;
    if (st.status.state == common::DeviceState::kOnline) p = Presence::kOnline;
    if (st.status.state == common::DeviceState::kOffline) p = Presence::kOffline;
    if (st.status.state == common::DeviceState::kLost) p = Presence::kLost;
    const std::string json = status_json(st.status);
    Use up(prepare(
        "UPDATE devices SET state = ?, last_status = ?, last_seen_us = max(last_seen_us, ?) "
        "WHERE id = ?"));
    up.bind(1, presence_name(p));
    up.bind(2, std::string_view(json));
    up.bind(3, st.received_us);
    up.bind(4, dev.value());
    if (up.step() != SQLITE_DONE) return error("cannot update a device status");
  }

  for (const EventItem& ev : tx.events) {
    const common::Event& e = ev.event;
    Use ins(prepare(
        "INSERT INTO events (time_us, kind, site, device, sensor, value, threshold, detail) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"));
    ins.bind(1, e.time_us);
    ins.bind(2, common::event_kind_name(e.kind));
    ins.bind(3, std::string_view(e.site));
    ins.bind(4, std::string_view(ev.device));
    ins.bind(5, std::string_view(e.sensor));
    ins.bind(6, e.value);
    ins.bind(7, e.threshold);
    ins.bind(8, std::string_view(e.detail));
    if (ins.step() != SQLITE_DONE) return error("cannot store an event");
    if (!ev.device.empty()) {
      // Device state follows its events: offline by silence, online again by data.
      const char* state = nullptr;
      if (e.kind == common::EventKind::kDeviceOffline && e.detail.starts_with("no message")) {
        state = "silent";
      } else if (e.kind == common::EventKind::kDeviceOnline) {
        state = "online";
      }
      if (e.kind == common::EventKind::kDataGap || state) {
        Use up(prepare(
            "UPDATE devices SET gaps = gaps + ?, state = coalesce(?, state) WHERE device = ?"));
        up.bind(1, e.kind == common::EventKind::kDataGap ? 1 : 0);
        if (state) up.bind(2, std::string_view(state));
        up.bind(3, std::string_view(ev.device));
        if (up.step() != SQLITE_DONE) return error("cannot update a device");
      }
    }
  }

  for (const DlqItem& d : tx.dlq) {
    Use ins(prepare(
        "INSERT INTO dlq (received_us, topic, payload, reason, detail) VALUES (?, ?, ?, ?, ?)"));
    ins.bind(1, d.received_us);
    ins.bind(2, std::string_view(d.topic));
    ins.bind_blob(3, d.payload);
    ins.bind(4, static_cast<int>(d.reason));
    ins.bind(5, std::string_view(d.detail));
    if (ins.step() != SQLITE_DONE) return error("cannot store a DLQ entry");
  }
  for (int64_t id : dlq_remove_) {
    Use del(prepare("DELETE FROM dlq WHERE id = ?"));
    del.bind(1, id);
    if (del.step() != SQLITE_DONE) return error("cannot remove a DLQ entry");
    result.dlq_dropped += static_cast<uint64_t>(sqlite3_changes(db_));
  }
  const uint64_t entries = dlq_entries_ + tx.dlq.size() - result.dlq_dropped;
  if (entries > options_.dlq_max_entries) {
    Use del(prepare("DELETE FROM dlq WHERE id IN (SELECT id FROM dlq ORDER BY id LIMIT ?)"));
    del.bind(1, entries - options_.dlq_max_entries);
    if (del.step() != SQLITE_DONE) return error("cannot bound the DLQ");
    result.dlq_dropped += static_cast<uint64_t>(sqlite3_changes(db_));
  }

  if (tx.journal) {
    Use up(prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('journal', ?)"));
    const std::string pos =
        std::to_string(tx.journal->segment) + ":" + std::to_string(tx.journal->offset);
    up.bind(1, std::string_view(pos));
    if (up.step() != SQLITE_DONE) return error("cannot record the journal position");
  }
  return result;
}

Result<std::optional<JournalPosition>, SinkError> SqliteSink::journal_position() {
  Use q(prepare("SELECT value FROM meta WHERE key = 'journal'"));
  if (!*q) return error("cannot read meta");
  const int rc = q.step();
  if (rc == SQLITE_DONE) return std::optional<JournalPosition>();
  if (rc != SQLITE_ROW) return error("cannot read the journal position");
  const std::string v = q.text(0);
  JournalPosition pos;
  if (std::sscanf(v.c_str(), "%lu:%lu", &pos.segment, &pos.offset) != 2) {
    return SinkError{"bad journal position '" + v + "' in meta", false};
  }
  return std::optional<JournalPosition>(pos);
}

Result<uint64_t, SinkError> SqliteSink::expire(int64_t cutoff_us, int64_t dlq_cutoff_us,
                                               int64_t key_cutoff_us, uint64_t max_rows) {
  uint64_t removed = 0;
  if (sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) {
    return error("cannot begin a transaction");
  }
  auto fail = [&](std::string_view what) {
    SinkError e = error(what);
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    return e;
  };
  // Rows are appended in arrival order, so what arrived before the cutoff is a prefix of
  // each table: delete it by rowid range, a bounded chunk at a time. The last batch received
  // before the cutoff (an index probe, not a scan) says where that prefix ends.
  bool rows_caught_up = true;
  for (const auto& [table, kind] : {std::pair{"readings", 0}, std::pair{"logs", 1}}) {
    std::string sql = std::string("SELECT last_row FROM batches WHERE kind = ") +
                      std::to_string(kind) +
                      " AND received_us < ? ORDER BY received_us DESC LIMIT 1";
    sqlite3_stmt* q = prepare(sql.c_str());
    if (!q) return fail("cannot prepare retention");
    int64_t upto = 0;
    {
      Use u(q);
      u.bind(1, cutoff_us);
      if (u.step() == SQLITE_ROW) upto = u.i64(0);
    }
    if (upto <= 0) continue;
    sql = std::string("DELETE FROM ") + table + " WHERE id <= ? AND id <= (SELECT min(id) FROM " +
          table + ") + ?";
    sqlite3_stmt* del = prepare(sql.c_str());
    if (!del) return fail("cannot prepare retention");
    Use d(del);
    d.bind(1, upto);
    d.bind(2, static_cast<int64_t>(max_rows));
    if (d.step() != SQLITE_DONE) return fail("cannot expire rows");
    const auto n = static_cast<uint64_t>(sqlite3_changes(db_));
    removed += n;
    if (n > max_rows) rows_caught_up = false;  // the chunk was full: more rows to go
  }
  // Dedup keys go only once the rows they point to are gone (never leave rows without their
  // batch, which is how `query` finds them).
  if (rows_caught_up && key_cutoff_us <= cutoff_us) {
    Use d(prepare(
        "DELETE FROM batches WHERE (device_id, epoch, seq) IN (SELECT device_id, epoch, seq "
        "FROM batches WHERE kind IN (0, 1) AND received_us < ? ORDER BY kind, received_us "
        "LIMIT ?)"));
    if (!*d) return fail("cannot prepare retention");
    d.bind(1, key_cutoff_us);
    d.bind(2, static_cast<int64_t>(max_rows));
    if (d.step() != SQLITE_DONE) return fail("cannot expire batch keys");
    removed += static_cast<uint64_t>(sqlite3_changes(db_));
  }
  {
    Use d(
        prepare("DELETE FROM dlq WHERE id IN (SELECT id FROM dlq WHERE received_us < ? "
                "ORDER BY id LIMIT ?)"));
    d.bind(1, dlq_cutoff_us);
    d.bind(2, static_cast<int64_t>(max_rows));
    if (d.step() != SQLITE_DONE) return fail("cannot expire DLQ entries");
    const auto n = static_cast<uint64_t>(sqlite3_changes(db_));
    removed += n;
    dlq_entries_ -= std::min(dlq_entries_, n);
  }
  if (sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
    return fail("cannot commit retention");
  }
  return removed;
}

Result<std::vector<DeviceRow>, SinkError> SqliteSink::devices() {
  std::vector<DeviceRow> out;
  Use q(prepare(
      "SELECT device, site, first_seen_us, last_seen_us, state, epoch, readings, logs, batches, "
      "duplicates, gaps, last_status FROM devices ORDER BY site, device"));
  if (!*q) return error("cannot list devices");
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) {
    DeviceRow d;
    d.device = q.text(0);
    d.site = q.text(1);
    d.first_seen_us = q.i64(2);
    d.last_seen_us = q.i64(3);
    d.presence = presence_from_name(q.text(4));
    d.epoch = static_cast<uint64_t>(q.i64(5));
    d.readings = static_cast<uint64_t>(q.i64(6));
    d.logs = static_cast<uint64_t>(q.i64(7));
    d.batches = static_cast<uint64_t>(q.i64(8));
    d.duplicates = static_cast<uint64_t>(q.i64(9));
    d.gaps = static_cast<uint64_t>(q.i64(10));
    d.last_status = q.text(11);
    out.push_back(std::move(d));
  }
  if (rc != SQLITE_DONE) return error("cannot list devices");
  return out;
}

Status<SinkError> SqliteSink::query_readings(const ReadingQuery& query,
                                             const std::function<void(const ReadingRow&)>& emit) {
  // The batches table is the index: each batch's readings are one rowid range, and the
  // batch knows its time span, so no per-reading index slows down the writes.
  std::string sql =
      "SELECT d.device, d.site, b.epoch, b.seq, b.first_row, b.last_row FROM batches b "
      "JOIN devices d ON d.id = b.device_id WHERE b.kind = 0 AND b.last_row >= b.first_row "
      "AND b.max_time_us >= ?1 AND b.min_time_us <= ?2";
  if (!query.device.empty()) sql += " AND d.device = ?3";
  sql += " ORDER BY b.min_time_us";
  sqlite3_stmt* bs = prepare(sql.c_str());
  if (!bs) return error("cannot query batches");
  Use b(bs);
  b.bind(1, query.since_us);
  b.bind(2, query.until_us);
  if (!query.device.empty()) b.bind(3, std::string_view(query.device));
  std::string rsql =
      "SELECT r.time_us, r.value, r.type, s.name, s.unit FROM readings r "
      "JOIN sensors s ON s.id = r.sensor_id WHERE r.id BETWEEN ?1 AND ?2 "
      "AND r.time_us BETWEEN ?3 AND ?4";
  if (!query.sensor.empty()) rsql += " AND s.name = ?5";
  sqlite3_stmt* rs = prepare(rsql.c_str());
  if (!rs) return error("cannot query readings");
  uint64_t emitted = 0;
  int rc;
  while ((rc = b.step()) == SQLITE_ROW) {
    ReadingRow row;
    row.device = b.text(0);
    row.site = b.text(1);
    row.epoch = static_cast<uint64_t>(b.i64(2));
    row.seq = static_cast<uint64_t>(b.i64(3));
    Use r(rs);
    r.bind(1, b.i64(4));
    r.bind(2, b.i64(5));
    r.bind(3, query.since_us);
    r.bind(4, query.until_us);
    if (!query.sensor.empty()) r.bind(5, std::string_view(query.sensor));
    int rrc;
    while ((rrc = r.step()) == SQLITE_ROW) {
      row.time_us = r.i64(0);
      switch (sqlite3_column_int(rs, 2)) {
        case kInteger:
          row.value = r.i64(1);
          break;
        case kBool:
          row.value = r.i64(1) != 0;
          break;
        case kString:
          row.value = r.text(1);
          break;
        default:
          row.value = sqlite3_column_double(rs, 1);
      }
      row.sensor = r.text(3);
      row.unit = r.text(4);
      emit(row);
      if (query.limit && ++emitted >= query.limit) return {};
    }
    if (rrc != SQLITE_DONE) return error("cannot read readings");
  }
  if (rc != SQLITE_DONE) return error("cannot read batches");
  return {};
}

namespace {
std::string dlq_where(const DlqFilter& f) {
  std::string w = " WHERE received_us BETWEEN ?1 AND ?2";
  if (f.reason) w += " AND reason = ?3";
  if (!f.topic_prefix.empty()) w += " AND substr(topic, 1, length(?4)) = ?4";
  return w;
}
void bind_dlq(Use& q, const DlqFilter& f) {
  q.bind(1, f.since_us);
  q.bind(2, f.until_us);
  if (f.reason) q.bind(3, static_cast<int>(*f.reason));
  if (!f.topic_prefix.empty()) q.bind(4, std::string_view(f.topic_prefix));
}
DlqRow dlq_row(Use& q) {
  DlqRow row;
  row.id = q.i64(0);
  row.received_us = q.i64(1);
  row.topic = q.text(2);
  row.payload = q.blob(3);
  row.reason = static_cast<common::Reason>(q.i64(4));
  row.detail = q.text(5);
  return row;
}
}  // namespace

Result<std::vector<DlqRow>, SinkError> SqliteSink::dlq(const DlqFilter& filter) {
  std::string sql = "SELECT id, received_us, topic, payload, reason, detail FROM dlq" +
                    dlq_where(filter) + " ORDER BY id";
  if (filter.limit) sql += " LIMIT " + std::to_string(filter.limit);
  sqlite3_stmt* s = prepare(sql.c_str());
  if (!s) return error("cannot list the DLQ");
  Use q(s);
  bind_dlq(q, filter);
  std::vector<DlqRow> out;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) out.push_back(dlq_row(q));
  if (rc != SQLITE_DONE) return error("cannot list the DLQ");
  return out;
}

Result<std::optional<DlqRow>, SinkError> SqliteSink::dlq_entry(int64_t id) {
  Use q(prepare("SELECT id, received_us, topic, payload, reason, detail FROM dlq WHERE id = ?"));
  q.bind(1, id);
  const int rc = q.step();
  if (rc == SQLITE_ROW) return std::optional<DlqRow>(dlq_row(q));
  if (rc == SQLITE_DONE) return std::optional<DlqRow>();
  return error("cannot read the DLQ");
}

Result<uint64_t, SinkError> SqliteSink::purge_dlq(const DlqFilter& filter) {
  std::string sql = "DELETE FROM dlq WHERE id IN (SELECT id FROM dlq" + dlq_where(filter) +
                    " ORDER BY id" +
                    (filter.limit ? " LIMIT " + std::to_string(filter.limit) : "") + ")";
  sqlite3_stmt* s = prepare(sql.c_str());
  if (!s) return error("cannot purge the DLQ");
  Use q(s);
  bind_dlq(q, filter);
  if (q.step() != SQLITE_DONE) return error("cannot purge the DLQ");
  const auto n = static_cast<uint64_t>(sqlite3_changes(db_));
  dlq_entries_ -= std::min(dlq_entries_, n);
  return n;
}

Result<std::vector<EventRow>, SinkError> SqliteSink::events(uint64_t limit) {
  std::string sql =
      "SELECT id, time_us, kind, site, device, sensor, value, threshold, detail FROM events "
      "ORDER BY id DESC LIMIT " +
      std::to_string(limit ? limit : 1000000);
  sqlite3_stmt* s = prepare(sql.c_str());
  if (!s) return error("cannot list events");
  Use q(s);
  std::vector<EventRow> out;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) {
    EventRow row;
    row.id = q.i64(0);
    row.event.time_us = q.i64(1);
    row.event.kind =
        common::event_kind_from_name(q.text(2)).value_or(common::EventKind::kUnspecified);
    row.event.site = q.text(3);
    row.device = q.text(4);
    row.event.sensor = q.text(5);
    row.event.value = sqlite3_column_double(s, 6);
    row.event.threshold = sqlite3_column_double(s, 7);
    row.event.detail = q.text(8);
    out.push_back(std::move(row));
  }
  if (rc != SQLITE_DONE) return error("cannot list events");
  std::reverse(out.begin(), out.end());
  return out;
}

Result<std::map<std::string, uint64_t>, SinkError> SqliteSink::counts() {
  std::map<std::string, uint64_t> out;
  for (const char* table : {"readings", "logs", "batches", "dlq", "events", "devices"}) {
    const std::string sql = std::string("SELECT count(*) FROM ") + table;
    sqlite3_stmt* s = prepare(sql.c_str());
    if (!s) return error("cannot count");
    Use q(s);
    if (q.step() != SQLITE_ROW) return error("cannot count");
    out[table] = static_cast<uint64_t>(q.i64(0));
  }
  Use q(prepare("SELECT coalesce(sum(duplicates), 0), coalesce(sum(gaps), 0) FROM devices"));
  if (!*q || q.step() != SQLITE_ROW) return error("cannot sum the fleet's counters");
  out["duplicates"] = static_cast<uint64_t>(q.i64(0));
  out["gaps"] = static_cast<uint64_t>(q.i64(1));
  return out;
}

Result<std::map<common::Reason, uint64_t>, SinkError> SqliteSink::dlq_reasons() {
  Use q(prepare("SELECT reason, count(*) FROM dlq GROUP BY reason ORDER BY reason"));
  if (!*q) return error("cannot count the DLQ");
  std::map<common::Reason, uint64_t> out;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) {
    out[static_cast<common::Reason>(q.i64(0))] = static_cast<uint64_t>(q.i64(1));
  }
  if (rc != SQLITE_DONE) return error("cannot count the DLQ");
  return out;
}

Result<std::map<std::string, uint64_t>, SinkError> SqliteSink::event_kinds() {
  Use q(prepare("SELECT kind, count(*) FROM events GROUP BY kind ORDER BY kind"));
  if (!*q) return error("cannot count the events");
  std::map<std::string, uint64_t> out;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) {
    out[q.text(0)] = static_cast<uint64_t>(q.i64(1));
  }
  if (rc != SQLITE_DONE) return error("cannot count the events");
  return out;
}

}  // namespace outpost::collector
