// The Reader over SQLite: devices, readings, the DLQ, events and counts for the operator tools.
#include "outpost/collector/sqlite_reader.h"

#include <algorithm>
#include <map>

#include "sqlite_db.h"

namespace outpost::collector {

using common::Result;
using common::Status;
using sqlite_db::Statement;

namespace sqlite_db {

std::string dlq_where(const DlqFilter& f) {
  std::string w = " WHERE received_us BETWEEN ?1 AND ?2";
  if (f.reason) w += " AND reason = ?3";
  if (!f.topic_prefix.empty()) w += " AND substr(topic, 1, length(?4)) = ?4";
  return w;
}

void bind_dlq(Statement& q, const DlqFilter& f) {
  q.bind(1, f.since_us);
  q.bind(2, f.until_us);
  if (f.reason) q.bind(3, static_cast<int>(*f.reason));
  if (!f.topic_prefix.empty()) q.bind(4, std::string_view(f.topic_prefix));
}

}  // namespace sqlite_db

namespace {

DlqRow dlq_row(Statement& q) {
  DlqRow row;
  row.id = q.integer(0);
  row.received_us = q.integer(1);
  row.topic = q.text(2);
  row.payload = q.blob(3);
  row.reason = static_cast<common::Reason>(q.integer(4));
  row.detail = q.text(5);
  return row;
}

}  // namespace

SqliteReader::SqliteReader(std::unique_ptr<sqlite_db::Database> db) : db_(std::move(db)) {}

SqliteReader::~SqliteReader() = default;

Result<std::unique_ptr<SqliteReader>, SinkError> SqliteReader::open(const std::string& path) {
  auto db = sqlite_db::Database::open(path, /*create=*/false, /*full_sync=*/false);
  if (!db.ok()) return db.error();
  return std::unique_ptr<SqliteReader>(new SqliteReader(std::move(db).value()));
}

Result<std::vector<DeviceRow>, SinkError> SqliteReader::devices() {
  sqlite_db::Database& db = *db_;
  std::vector<DeviceRow> out;
  Statement q(db.prepare(
      "SELECT device, site, first_seen_us, last_seen_us, state, epoch, readings, logs, batches, "
      "duplicates, gaps, last_status FROM devices ORDER BY site, device"));
  if (!q.ok()) return db.error("cannot list devices");
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) {
    DeviceRow d;
    d.device = q.text(0);
    d.site = q.text(1);
    d.first_seen_us = q.integer(2);
    d.last_seen_us = q.integer(3);
    // The state column holds presence_name() of what the FleetTracker decided.
    d.presence = presence_from_name(q.text(4)).value_or(Presence::kUnknown);
    d.epoch = static_cast<uint64_t>(q.integer(5));
    d.readings = static_cast<uint64_t>(q.integer(6));
    d.logs = static_cast<uint64_t>(q.integer(7));
    d.batches = static_cast<uint64_t>(q.integer(8));
    d.duplicates = static_cast<uint64_t>(q.integer(9));
    d.gaps = static_cast<uint64_t>(q.integer(10));
    d.last_status = q.text(11);
    out.push_back(std::move(d));
  }
  if (rc != SQLITE_DONE) return db.error("cannot list devices");
  return out;
}

Result<std::vector<SeqLineState>, SinkError> SqliteReader::seq_lines() {
  sqlite_db::Database& db = *db_;
  std::vector<SeqLineState> out;
  std::map<int64_t, std::size_t> index;  // device id -> position in out
  {
    Statement q(db.prepare(
        "SELECT l.device_id, d.device, d.site, l.max_seq, l.epochs, l.retired FROM seq_lines l "
        "JOIN devices d ON d.id = l.device_id ORDER BY l.device_id"));
    if (!q.ok()) return db.error("cannot read sequence lines");
    int rc;
    while ((rc = q.step()) == SQLITE_ROW) {
      SeqLineState line;
      line.device = q.text(1);
      line.site = q.text(2);
      line.max_seq = static_cast<uint64_t>(q.integer(3));
      line.epochs = sqlite_db::split_numbers(q.text(4));
      line.retired = sqlite_db::split_numbers(q.text(5));
      index[q.integer(0)] = out.size();
      out.push_back(std::move(line));
    }
    if (rc != SQLITE_DONE) return db.error("cannot read sequence lines");
  }
  Statement q(db.prepare(
      "SELECT device_id, first_seq, last_seq, epoch, since_us, reported_us FROM seq_holes "
      "ORDER BY device_id, first_seq"));
  if (!q.ok()) return db.error("cannot read sequence holes");
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) {
    auto it = index.find(q.integer(0));
    if (it == index.end()) continue;  // a line that is gone
    out[it->second].holes.push_back(
        SeqHole{static_cast<uint64_t>(q.integer(1)), static_cast<uint64_t>(q.integer(2)),
                static_cast<uint64_t>(q.integer(3)), q.integer(4), q.integer(5)});
  }
  if (rc != SQLITE_DONE) return db.error("cannot read sequence holes");
  return out;
}

namespace {

// The messages of one kind (0 readings, 1 logs) whose time span overlaps ?1..?2, of device ?3
// when `by_device`, oldest first: device, site, epoch, seq and their rowid range.
std::string batches_in_span_sql(int kind, bool by_device) {
  std::string sql =
      "SELECT d.device, d.site, b.epoch, b.seq, b.first_row, b.last_row FROM batches b "
      "JOIN devices d ON d.id = b.device_id WHERE b.kind = " +
      std::to_string(kind) +
      " AND b.last_row >= b.first_row AND b.max_time_us >= ?1 AND b.min_time_us <= ?2";
  if (by_device) sql += " AND d.device = ?3";
  return sql + " ORDER BY b.min_time_us";
}

}  // namespace

Status<SinkError> SqliteReader::query_readings(const ReadingQuery& query,
                                               const std::function<void(const ReadingRow&)>& emit) {
  // The batches table is the index: each batch's readings are one rowid range, and the
  // batch knows its time span, so no per-reading index slows down the writes.
  Statement b(db_->prepare(batches_in_span_sql(0, !query.device.empty())));
  if (!b.ok()) return db_->error("cannot query batches");
  b.bind(1, query.since_us);
  b.bind(2, query.until_us);
  if (!query.device.empty()) b.bind(3, std::string_view(query.device));
  std::string rsql =
      "SELECT r.time_us, r.value, r.type, s.name, s.unit FROM readings r "
      "JOIN sensors s ON s.id = r.sensor_id WHERE r.id BETWEEN ?1 AND ?2 "
      "AND r.time_us BETWEEN ?3 AND ?4";
  if (!query.sensor.empty()) rsql += " AND s.name = ?5";
  sqlite3_stmt* rs = db_->prepare(rsql);
  if (!rs) return db_->error("cannot query readings");
  uint64_t emitted = 0;
  int rc;
  while ((rc = b.step()) == SQLITE_ROW) {
    ReadingRow row;
    row.device = b.text(0);
    row.site = b.text(1);
    row.epoch = static_cast<uint64_t>(b.integer(2));
    row.seq = static_cast<uint64_t>(b.integer(3));
    Statement r(rs);
    r.bind(1, b.integer(4));
    r.bind(2, b.integer(5));
    r.bind(3, query.since_us);
    r.bind(4, query.until_us);
    if (!query.sensor.empty()) r.bind(5, std::string_view(query.sensor));
    int rrc;
    while ((rrc = r.step()) == SQLITE_ROW) {
      row.time_us = r.integer(0);
      switch (r.integer(2)) {
        case sqlite_db::kInteger:
          row.value = r.integer(1);
          break;
        case sqlite_db::kBool:
          row.value = r.integer(1) != 0;
          break;
        case sqlite_db::kString:
          row.value = r.text(1);
          break;
        default:
          row.value = r.real(1);
      }
      row.sensor = r.text(3);
      row.unit = r.text(4);
      emit(row);
      if (query.limit && ++emitted >= query.limit) return {};
    }
    if (rrc != SQLITE_DONE) return db_->error("cannot read readings");
  }
  if (rc != SQLITE_DONE) return db_->error("cannot read batches");
  return {};
}

Status<SinkError> SqliteReader::query_logs(const LogQuery& query,
                                           const std::function<void(const LogRow&)>& emit) {
  // As for readings: the logs messages (batches of kind 1) overlapping the time span, then
  // each one's rowid range in `logs`.
  Statement b(db_->prepare(batches_in_span_sql(1, !query.device.empty())));
  if (!b.ok()) return db_->error("cannot query batches");
  b.bind(1, query.since_us);
  b.bind(2, query.until_us);
  if (!query.device.empty()) b.bind(3, std::string_view(query.device));
  // lower() folds ASCII letters only, as LogQuery::contains promises; instr() has no wildcards.
  std::string lsql =
      "SELECT time_us, severity, message, fields FROM logs WHERE id BETWEEN ?1 AND ?2 "
      "AND time_us BETWEEN ?3 AND ?4 AND severity >= ?5";
  if (!query.contains.empty()) lsql += " AND instr(lower(message), lower(?6)) > 0";
  sqlite3_stmt* ls = db_->prepare(lsql);
  if (!ls) return db_->error("cannot query log records");
  Statement fields(db_->prepare("SELECT key, value FROM json_each(?1)"));
  if (!fields.ok()) return db_->error("cannot read log fields");
  uint64_t emitted = 0;
  int rc;
  while ((rc = b.step()) == SQLITE_ROW) {
    LogRow row;
    row.device = b.text(0);
    row.site = b.text(1);
    row.epoch = static_cast<uint64_t>(b.integer(2));
    row.seq = static_cast<uint64_t>(b.integer(3));
    Statement l(ls);
    l.bind(1, b.integer(4));
    l.bind(2, b.integer(5));
    l.bind(3, query.since_us);
    l.bind(4, query.until_us);
    l.bind(5, static_cast<int>(query.min_severity));
    if (!query.contains.empty()) l.bind(6, std::string_view(query.contains));
    int lrc;
    while ((lrc = l.step()) == SQLITE_ROW) {
      row.time_us = l.integer(0);
      row.severity = static_cast<common::Severity>(l.integer(1));
      row.message = l.text(2);
      row.fields.clear();
      const std::string json = l.text(3);
      if (!json.empty() && json != "{}") {
        fields.reset();
        fields.bind(1, std::string_view(json));
        int frc;
        while ((frc = fields.step()) == SQLITE_ROW) {
          row.fields.push_back({fields.text(0), fields.text(1)});
        }
        if (frc != SQLITE_DONE) return db_->error("cannot read log fields");
      }
      emit(row);
      if (query.limit && ++emitted >= query.limit) return {};
    }
    if (lrc != SQLITE_DONE) return db_->error("cannot read log records");
  }
  if (rc != SQLITE_DONE) return db_->error("cannot read batches");
  return {};
}

Result<std::vector<DlqRow>, SinkError> SqliteReader::dlq(const DlqFilter& filter) {
  std::string sql = "SELECT id, received_us, topic, payload, reason, detail FROM dlq" +
                    sqlite_db::dlq_where(filter) + " ORDER BY id";
  if (filter.limit) sql += " LIMIT " + std::to_string(filter.limit);
  Statement q(db_->prepare(sql));
  if (!q.ok()) return db_->error("cannot list the DLQ");
  sqlite_db::bind_dlq(q, filter);
  std::vector<DlqRow> out;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) out.push_back(dlq_row(q));
  if (rc != SQLITE_DONE) return db_->error("cannot list the DLQ");
  return out;
}

Result<std::optional<DlqRow>, SinkError> SqliteReader::dlq_entry(int64_t id) {
  Statement q(
      db_->prepare("SELECT id, received_us, topic, payload, reason, detail FROM dlq WHERE id = ?"));
  if (!q.ok()) return db_->error("cannot read the DLQ");
  q.bind(1, id);
  const int rc = q.step();
  if (rc == SQLITE_ROW) return std::optional<DlqRow>(dlq_row(q));
  if (rc == SQLITE_DONE) return std::optional<DlqRow>();
  return db_->error("cannot read the DLQ");
}

Result<std::vector<EventRow>, SinkError> SqliteReader::events(uint64_t limit) {
  const std::string sql =
      "SELECT id, time_us, kind, site, device, sensor, value, threshold, detail FROM events "
      "ORDER BY id DESC LIMIT " +
      std::to_string(limit ? limit : 1000000);
  Statement q(db_->prepare(sql));
  if (!q.ok()) return db_->error("cannot list events");
  std::vector<EventRow> out;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) {
    EventRow row;
    row.id = q.integer(0);
    row.event.time_us = q.integer(1);
    row.event.kind =
        common::event_kind_from_name(q.text(2)).value_or(common::EventKind::kUnspecified);
    row.event.site = q.text(3);
    row.device = q.text(4);
    row.event.sensor = q.text(5);
    row.event.value = q.real(6);
    row.event.threshold = q.real(7);
    row.event.detail = q.text(8);
    out.push_back(std::move(row));
  }
  if (rc != SQLITE_DONE) return db_->error("cannot list events");
  std::reverse(out.begin(), out.end());
  return out;
}

Result<std::map<std::string, uint64_t>, SinkError> SqliteReader::counts() {
  std::map<std::string, uint64_t> out;
  for (const char* table : {"readings", "logs", "batches", "dlq", "events", "devices"}) {
    Statement q(db_->prepare(std::string("SELECT count(*) FROM ") + table));
    if (!q.ok() || q.step() != SQLITE_ROW) return db_->error("cannot count");
    out[table] = static_cast<uint64_t>(q.integer(0));
  }
  Statement q(
      db_->prepare("SELECT coalesce(sum(duplicates), 0), coalesce(sum(gaps), 0) FROM devices"));
  if (!q.ok() || q.step() != SQLITE_ROW) return db_->error("cannot sum the fleet's counters");
  out["duplicates"] = static_cast<uint64_t>(q.integer(0));
  out["gaps"] = static_cast<uint64_t>(q.integer(1));
  return out;
}

Result<std::map<common::Reason, uint64_t>, SinkError> SqliteReader::dlq_reasons() {
  Statement q(db_->prepare("SELECT reason, count(*) FROM dlq GROUP BY reason ORDER BY reason"));
  if (!q.ok()) return db_->error("cannot count the DLQ");
  std::map<common::Reason, uint64_t> out;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) {
    out[static_cast<common::Reason>(q.integer(0))] = static_cast<uint64_t>(q.integer(1));
  }
  if (rc != SQLITE_DONE) return db_->error("cannot count the DLQ");
  return out;
}

Result<std::map<std::string, uint64_t>, SinkError> SqliteReader::event_kinds() {
  Statement q(db_->prepare("SELECT kind, count(*) FROM events GROUP BY kind ORDER BY kind"));
  if (!q.ok()) return db_->error("cannot count the events");
  std::map<std::string, uint64_t> out;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) out[q.text(0)] = static_cast<uint64_t>(q.integer(1));
  if (rc != SQLITE_DONE) return db_->error("cannot count the events");
  return out;
}

}  // namespace outpost::collector
