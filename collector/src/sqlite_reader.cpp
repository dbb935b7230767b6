// The Reader over SQLite: devices, readings, the DLQ, events and counts for the operator tools.
#include "outpost/collector/sqlite_reader.h"

#include <algorithm>
#include <climits>
#include <map>
#include <string>
#include <string_view>
#include <vector>

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
  // instr() compares bytes: case-sensitive, and no character is a wildcard.
  if (!f.topic_contains.empty()) w += " AND instr(topic, ?5) > 0";
  return w;
}

void bind_dlq(Statement& q, const DlqFilter& f) {
  q.bind(1, f.since_us);
  q.bind(2, f.until_us);
  if (f.reason) q.bind(3, static_cast<int>(*f.reason));
  if (!f.topic_prefix.empty()) q.bind(4, std::string_view(f.topic_prefix));
  if (!f.topic_contains.empty()) q.bind(5, std::string_view(f.topic_contains));
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

// An events row of "SELECT id, time_us, kind, site, device, sensor, value, threshold, detail".
EventRow event_row(Statement& q) {
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
  return row;
}

int64_t clamp_to_int64(uint64_t n) {
  return n > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(n);
}

}  // namespace

SqliteReader::SqliteReader(std::unique_ptr<sqlite_db::Database> db) : db_(std::move(db)) {}

SqliteReader::~SqliteReader() = default;

Result<std::unique_ptr<SqliteReader>, SinkError> SqliteReader::open(const std::string& path) {
  auto db = sqlite_db::Database::open(path, /*create=*/false, /*full_sync=*/false);
  if (!db.ok()) return db.error();
  return std::unique_ptr<SqliteReader>(new SqliteReader(std::move(db).value()));
}

namespace {

// The condition "<column> is one of `ids`" (a JSON array of device ids, bound to ?1), or none.
std::string of_ids(const std::string* ids, const char* column) {
  return ids ? std::string(" WHERE ") + column + " IN (SELECT value FROM json_each(?1))" : "";
}

// The devices whose ids are in `ids` (a JSON array; null: every device), ordered by site, then
// device.
Result<std::vector<DeviceRow>, SinkError> read_devices(sqlite_db::Database& db,
                                                       const std::string* ids) {
  std::vector<DeviceRow> out;
  Statement q(db.prepare(
      "SELECT device, site, first_seen_us, last_seen_us, state, epoch, readings, logs, batches, "
      "duplicates, gaps, last_status, last_data_us FROM devices" +
      of_ids(ids, "id") + " ORDER BY site, device"));
  if (!q.ok()) return db.error("cannot list devices");
  if (ids) q.bind(1, std::string_view(*ids));
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
    d.last_data_us = q.integer(12);
    out.push_back(std::move(d));
  }
  if (rc != SQLITE_DONE) return db.error("cannot list devices");
  return out;
}

// The sequence lines of the devices whose ids are in `ids` (as read_devices), holes by first
// seq.
Result<std::vector<SeqLineState>, SinkError> read_seq_lines(sqlite_db::Database& db,
                                                            const std::string* ids) {
  std::vector<SeqLineState> out;
  std::map<int64_t, std::size_t> index;  // device id -> position in out
  {
    Statement q(db.prepare(
        "SELECT l.device_id, d.device, d.site, l.max_seq, l.epochs, l.retired FROM seq_lines l "
        "JOIN devices d ON d.id = l.device_id" +
        of_ids(ids, "l.device_id") + " ORDER BY l.device_id"));
    if (!q.ok()) return db.error("cannot read sequence lines");
    if (ids) q.bind(1, std::string_view(*ids));
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
      "SELECT device_id, first_seq, last_seq, epoch, since_us, reported_us FROM seq_holes" +
      of_ids(ids, "device_id") + " ORDER BY device_id, first_seq"));
  if (!q.ok()) return db.error("cannot read sequence holes");
  if (ids) q.bind(1, std::string_view(*ids));
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

// A meta value as a number; 0 when it is not there.
Result<int64_t, SinkError> meta_number(sqlite_db::Database& db, const char* key) {
  Statement q(db.prepare("SELECT value FROM meta WHERE key = ?"));
  if (!q.ok()) return db.error("cannot read meta");
  q.bind(1, std::string_view(key));
  const int rc = q.step();
  if (rc == SQLITE_DONE) return int64_t{0};
  if (rc != SQLITE_ROW) return db.error("cannot read meta");
  return q.integer(0);
}

}  // namespace

Result<std::vector<DeviceRow>, SinkError> SqliteReader::devices() {
  return read_devices(*db_, nullptr);
}

Result<std::vector<SeqLineState>, SinkError> SqliteReader::seq_lines() {
  return read_seq_lines(*db_, nullptr);
}

Result<FleetChanges, SinkError> SqliteReader::fleet_changes(uint64_t revision) {
  sqlite_db::Database& db = *db_;
  // One read transaction: the revision and the rows from the same snapshot (a commit between
  // two statements would otherwise be half seen and never asked for again).
  if (!db.exec("BEGIN")) return db.error("cannot begin a read");
  struct End {
    sqlite_db::Database& db;
    ~End() { (void)db.exec("COMMIT"); }  // a read transaction: nothing to lose if it fails
  } end{db};
  auto now = meta_number(db, "revision");
  if (!now.ok()) return now.error();
  auto dlq_now = meta_number(db, "dlq_revision");
  if (!dlq_now.ok()) return dlq_now.error();
  const auto latest = static_cast<uint64_t>(now.value());
  // Nothing recorded yet, or a revision from another file (restored from a backup): all of it.
  const bool complete = revision == 0 || revision > latest;
  FleetChanges out;
  out.complete = complete;
  out.revision = latest;
  // Which devices changed: one scan of devices.changed (unindexed: an index would cost every
  // commit more than the console's reads of it, once a second at most, cost without one).
  std::string ids;
  std::size_t changed = 0;
  if (!complete) {
    Statement q(db.prepare("SELECT id FROM devices WHERE changed > ?1"));
    if (!q.ok()) return db.error("cannot list changed devices");
    q.bind(1, static_cast<int64_t>(revision));
    int rc;
    ids = "[";
    while ((rc = q.step()) == SQLITE_ROW) {
      if (changed++) ids += ',';
      ids += std::to_string(q.integer(0));
    }
    if (rc != SQLITE_DONE) return db.error("cannot list changed devices");
    ids += ']';
  }
  if (complete || changed > 0) {
    const std::string* which = complete ? nullptr : &ids;
    auto rows = read_devices(db, which);
    if (!rows.ok()) return rows.error();
    out.devices = std::move(rows).value();
    auto lines = read_seq_lines(db, which);
    if (!lines.ok()) return lines.error();
    attach_seq_lines(out.devices, std::move(lines).value());
  }
  if (complete || static_cast<uint64_t>(dlq_now.value()) > revision) {
    auto topics = dlq_topics();
    if (!topics.ok()) return topics.error();
    out.dlq_topics = std::move(topics).value();
  }
  return out;
}

namespace {

// The messages of one kind (0 readings, 1 logs) whose time span overlaps ?1..?2, of device ?3
// when `by_device`, oldest first (newest first when `reversed`): device, site, epoch, seq and
// their rowid range.
std::string batches_in_span_sql(int kind, bool by_device, bool reversed = false) {
  std::string sql =
      "SELECT d.device, d.site, b.epoch, b.seq, b.first_row, b.last_row FROM batches b "
      "JOIN devices d ON d.id = b.device_id WHERE b.kind = " +
      std::to_string(kind) +
      " AND b.last_row >= b.first_row AND b.max_time_us >= ?1 AND b.min_time_us <= ?2";
  if (by_device) sql += " AND d.device = ?3";
  // first_row breaks ties: rowids are unique per kind, so the order is the same both ways.
  return sql + (reversed ? " ORDER BY b.min_time_us DESC, b.first_row DESC"
                         : " ORDER BY b.min_time_us, b.first_row");
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
  // each one's rowid range in `logs`. The newest `limit` records are the last ones of that
  // order: read backwards until there are enough, then emitted forwards.
  const bool newest = query.latest && query.limit;
  Statement b(db_->prepare(batches_in_span_sql(1, !query.device.empty(), newest)));
  if (!b.ok()) return db_->error("cannot query batches");
  b.bind(1, query.since_us);
  b.bind(2, query.until_us);
  if (!query.device.empty()) b.bind(3, std::string_view(query.device));
  // lower() folds ASCII letters only, as LogQuery::contains promises; instr() has no wildcards.
  std::string lsql =
      "SELECT time_us, severity, message, fields FROM logs WHERE id BETWEEN ?1 AND ?2 "
      "AND time_us BETWEEN ?3 AND ?4 AND severity >= ?5";
  if (!query.contains.empty()) lsql += " AND instr(lower(message), lower(?6)) > 0";
  lsql += newest ? " ORDER BY id DESC" : " ORDER BY id";
  sqlite3_stmt* ls = db_->prepare(lsql);
  if (!ls) return db_->error("cannot query log records");
  Statement fields(db_->prepare("SELECT key, value FROM json_each(?1)"));
  if (!fields.ok()) return db_->error("cannot read log fields");
  std::vector<LogRow> kept;  // newest: what is emitted at the end, newest first
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
    bool full = false;
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
      if (newest) {
        kept.push_back(row);
      } else {
        emit(row);
      }
      if (query.limit && ++emitted >= query.limit) {
        full = true;
        break;
      }
    }
    if (full) break;
    if (lrc != SQLITE_DONE) return db_->error("cannot read log records");
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return db_->error("cannot read batches");
  for (auto it = kept.rbegin(); it != kept.rend(); ++it) emit(*it);
  return {};
}

Result<std::vector<DlqRow>, SinkError> SqliteReader::dlq(const DlqFilter& filter) {
  const std::string sql = "SELECT id, received_us, topic, payload, reason, detail FROM dlq" +
                          sqlite_db::dlq_where(filter) + " ORDER BY id" +
                          (filter.newest_first ? " DESC" : "") + " LIMIT ?6 OFFSET ?7";
  Statement q(db_->prepare(sql));
  if (!q.ok()) return db_->error("cannot list the DLQ");
  sqlite_db::bind_dlq(q, filter);
  // A negative LIMIT is none; both beyond INT64_MAX mean the same as INT64_MAX.
  q.bind(6, filter.limit ? clamp_to_int64(filter.limit) : int64_t{-1});
  q.bind(7, clamp_to_int64(filter.offset));
  std::vector<DlqRow> out;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) out.push_back(dlq_row(q));
  if (rc != SQLITE_DONE) return db_->error("cannot list the DLQ");
  return out;
}

Result<uint64_t, SinkError> SqliteReader::dlq_count(const DlqFilter& filter) {
  Statement q(db_->prepare("SELECT count(*) FROM dlq" + sqlite_db::dlq_where(filter)));
  if (!q.ok()) return db_->error("cannot count the DLQ");
  sqlite_db::bind_dlq(q, filter);
  if (q.step() != SQLITE_ROW) return db_->error("cannot count the DLQ");
  return static_cast<uint64_t>(q.integer(0));
}

Result<std::vector<DlqBucket>, SinkError> SqliteReader::dlq_histogram(int64_t since_us,
                                                                      int64_t bucket_us) {
  if (bucket_us <= 0) {
    return SinkError{
        "DLQ histogram: the bucket width must be positive, not " + std::to_string(bucket_us),
        false};
  }
  // Floor division (SQLite's / truncates towards zero), so a bucket starts at a multiple of
  // the width below its entries even before 1970.
  Statement q(db_->prepare(
      "SELECT (received_us / ?2 - (received_us % ?2 < 0)) * ?2 AS start, reason, count(*) "
      "FROM dlq WHERE received_us >= ?1 GROUP BY start, reason ORDER BY start, reason"));
  if (!q.ok()) return db_->error("cannot count the DLQ");
  q.bind(1, since_us);
  q.bind(2, bucket_us);
  std::vector<DlqBucket> out;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) {
    out.push_back(DlqBucket{q.integer(0), static_cast<common::Reason>(q.integer(1)),
                            static_cast<uint64_t>(q.integer(2))});
  }
  if (rc != SQLITE_DONE) return db_->error("cannot count the DLQ");
  return out;
}

Result<std::map<std::string, uint64_t>, SinkError> SqliteReader::dlq_topics() {
  Statement q(db_->prepare("SELECT topic, count(*) FROM dlq GROUP BY topic"));
  if (!q.ok()) return db_->error("cannot count the DLQ");
  std::map<std::string, uint64_t> out;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) out[q.text(0)] = static_cast<uint64_t>(q.integer(1));
  if (rc != SQLITE_DONE) return db_->error("cannot count the DLQ");
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
    out.push_back(event_row(q));
  }
  if (rc != SQLITE_DONE) return db_->error("cannot list events");
  std::reverse(out.begin(), out.end());
  return out;
}

Result<std::vector<EventRow>, SinkError> SqliteReader::find_events(const EventQuery& query) {
  // The newest ones are read backwards from the end of the table, the oldest forwards from
  // after_id; either way the id (rowid) bounds the scan.
  std::string sql =
      "SELECT id, time_us, kind, site, device, sensor, value, threshold, detail FROM events "
      "WHERE id > ?1";
  if (!query.device.empty()) sql += " AND device = ?2";
  sql += query.oldest ? " ORDER BY id LIMIT ?3" : " ORDER BY id DESC LIMIT ?3";
  Statement q(db_->prepare(sql));
  if (!q.ok()) return db_->error("cannot list events");
  q.bind(1, query.after_id);
  if (!query.device.empty()) q.bind(2, std::string_view(query.device));
  q.bind(3, query.limit ? clamp_to_int64(query.limit) : int64_t{1000000});
  std::vector<EventRow> out;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) out.push_back(event_row(q));
  if (rc != SQLITE_DONE) return db_->error("cannot list events");
  if (!query.oldest) std::reverse(out.begin(), out.end());
  return out;
}

Result<std::vector<SensorRow>, SinkError> SqliteReader::sensors(const std::string& device) {
  std::vector<SensorRow> out;
  std::map<int64_t, std::size_t> index;  // sensor id -> position in out
  {
    Statement q(db_->prepare(
        "SELECT s.id, s.name, s.unit FROM devices d JOIN sensors s ON s.device_id = d.id "
        "WHERE d.device = ?1 ORDER BY s.name"));
    if (!q.ok()) return db_->error("cannot list sensors");
    q.bind(1, std::string_view(device));
    int rc;
    while ((rc = q.step()) == SQLITE_ROW) {
      index[q.integer(0)] = out.size();
      out.push_back(SensorRow{q.text(1), q.text(2), 0});
    }
    if (rc != SQLITE_DONE) return db_->error("cannot list sensors");
  }
  if (out.empty()) return out;
  // The device's readings are its readings batches' rowid ranges (as for query_readings):
  // CROSS JOIN keeps that order, so no reading of another device is visited.
  Statement q(db_->prepare(
      "SELECT r.sensor_id, count(*) FROM devices d CROSS JOIN batches b CROSS JOIN readings r "
      "WHERE d.device = ?1 AND b.device_id = d.id AND b.kind = 0 AND b.last_row >= b.first_row "
      "AND r.id BETWEEN b.first_row AND b.last_row GROUP BY r.sensor_id"));
  if (!q.ok()) return db_->error("cannot count readings");
  q.bind(1, std::string_view(device));
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) {
    auto it = index.find(q.integer(0));
    if (it != index.end()) out[it->second].readings = static_cast<uint64_t>(q.integer(1));
  }
  if (rc != SQLITE_DONE) return db_->error("cannot count readings");
  return out;
}

Result<std::vector<SeriesBucket>, SinkError> SqliteReader::series(const SeriesQuery& query) {
  if (query.buckets < 1 || query.buckets > 10000) {
    return SinkError{
        "series: the number of buckets must be 1 to 10000, not " + std::to_string(query.buckets),
        false};
  }
  if (query.until_us < query.since_us) {
    return SinkError{"series: the time range ends (" + std::to_string(query.until_us) +
                         ") before it starts (" + std::to_string(query.since_us) + ")",
                     false};
  }
  // until - since fits in 64 unsigned bits; ceil((span + 1) / buckets) is span / buckets + 1,
  // which cannot overflow with two buckets or more (with one, every reading is in bucket 0).
  const uint64_t span =
      static_cast<uint64_t>(query.until_us) - static_cast<uint64_t>(query.since_us);
  const uint64_t width = span / query.buckets + 1;
  // The bucket of a reading, in integers where time_us - since_us fits (any window up to
  // 292,000 years); wider, in floating point, clamped to the buckets there are.
  std::string bucket = "(r.time_us - ?3) / ?5";
  if (query.buckets == 1) {
    bucket = "0";
  } else if (span > static_cast<uint64_t>(INT64_MAX)) {
    bucket = "min(?6, max(0, CAST((r.time_us - ?3 * 1.0) / ?5 AS INTEGER)))";
  }
  // The batches ledger is the index, as for query_readings: the device's readings batches
  // overlapping the window, each one's rowid range, that sensor's numeric readings (types 0
  // double, 1 integer, 2 bool stored as 0 or 1). CROSS JOIN keeps that order.
  Statement q(db_->prepare(
      "SELECT " + bucket +
      " AS k, min(r.value), max(r.value), avg(r.value), count(*) FROM devices d "
      "CROSS JOIN sensors s CROSS JOIN batches b CROSS JOIN readings r "
      "WHERE d.device = ?1 AND s.device_id = d.id AND s.name = ?2 AND b.device_id = d.id "
      "AND b.kind = 0 AND b.last_row >= b.first_row AND b.max_time_us >= ?3 "
      "AND b.min_time_us <= ?4 AND r.id BETWEEN b.first_row AND b.last_row "
      "AND r.sensor_id = s.id AND r.time_us BETWEEN ?3 AND ?4 AND r.type IN (0, 1, 2) "
      "GROUP BY k ORDER BY k"));
  if (!q.ok()) return db_->error("cannot query the series");
  q.bind(1, std::string_view(query.device));
  q.bind(2, std::string_view(query.sensor));
  q.bind(3, query.since_us);
  q.bind(4, query.until_us);
  if (query.buckets > 1) {
    if (span > static_cast<uint64_t>(INT64_MAX)) {
      q.bind(5, static_cast<double>(width));
      q.bind(6, static_cast<int64_t>(query.buckets) - 1);
    } else {
      q.bind(5, static_cast<int64_t>(width));
    }
  }
  std::vector<SeriesBucket> out;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) {
    const int64_t k = std::clamp<int64_t>(q.integer(0), 0, query.buckets - 1);
    SeriesBucket b;
    // since + k * width <= until: exact in unsigned arithmetic, and back in range.
    b.start_us = static_cast<int64_t>(static_cast<uint64_t>(query.since_us) +
                                      static_cast<uint64_t>(k) * width);
    b.min = q.real(1);
    b.max = q.real(2);
    b.mean = q.real(3);
    b.count = static_cast<uint64_t>(q.integer(4));
    out.push_back(b);
  }
  if (rc != SQLITE_DONE) return db_->error("cannot query the series");
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
