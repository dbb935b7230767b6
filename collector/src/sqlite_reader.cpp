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
      "duplicates, gaps, last_status, last_data_us FROM devices ORDER BY site, device"));
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
    d.last_data_us = q.integer(12);
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
std::string batches_in_span_sql(int kind, bool by_device, bool newest_first = false) {
  std::string sql =
      "SELECT d.device, d.site, b.epoch, b.seq, b.first_row, b.last_row FROM batches b "
      "JOIN devices d ON d.id = b.device_id WHERE b.kind = " +
      std::to_string(kind) +
      " AND b.last_row >= b.first_row AND b.max_time_us >= ?1 AND b.min_time_us <= ?2";
  if (by_device) sql += " AND d.device = ?3";
  return sql + " ORDER BY b.min_time_us" + (newest_first ? " DESC" : "");
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
  if (query.latest && query.limit) {
    // The newest messages first, each one's records kept together, until `limit` records are
    // in hand; then the oldest of them dropped and the rest given in the usual order.
    std::vector<std::vector<LogRow>> messages;
    uint64_t held = 0;
    LogQuery each = query;
    each.limit = 0;
    std::string current;  // device, epoch and seq of the message being filled
    auto s = logs_in_order(each, /*newest_first=*/true, [&](const LogRow& row) {
      const std::string message =
          row.device + "/" + std::to_string(row.epoch) + "/" + std::to_string(row.seq);
      if (messages.empty() || current != message) {
        if (held >= query.limit) return false;
        messages.emplace_back();
        current = message;
      }
      messages.back().push_back(row);
      ++held;
      return true;
    });
    if (!s.ok()) return s;
    uint64_t skip = held > query.limit ? held - query.limit : 0;
    for (auto m = messages.rbegin(); m != messages.rend(); ++m) {
      for (const LogRow& row : *m) {
        if (skip) {
          --skip;
          continue;
        }
        emit(row);
      }
    }
    return {};
  }
  uint64_t emitted = 0;
  return logs_in_order(query, /*newest_first=*/false, [&](const LogRow& row) {
    emit(row);
    return !(query.limit && ++emitted >= query.limit);
  });
}

Status<SinkError> SqliteReader::logs_in_order(const LogQuery& query, bool newest_first,
                                              const std::function<bool(const LogRow&)>& emit) {
  // As for readings: the logs messages (batches of kind 1) overlapping the time span, then
  // each one's rowid range in `logs`.
  Statement b(db_->prepare(batches_in_span_sql(1, !query.device.empty(), newest_first)));
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
      if (!emit(row)) return {};
    }
    if (lrc != SQLITE_DONE) return db_->error("cannot read log records");
  }
  if (rc != SQLITE_DONE) return db_->error("cannot read batches");
  return {};
}

Result<std::vector<DlqRow>, SinkError> SqliteReader::dlq(const DlqFilter& filter) {
  std::string sql = "SELECT id, received_us, topic, payload, reason, detail FROM dlq" +
                    sqlite_db::dlq_where(filter) + " ORDER BY id" +
                    (filter.newest_first ? " DESC" : "");
  if (filter.limit || filter.offset) {
    sql += " LIMIT " + (filter.limit ? std::to_string(filter.limit) : std::string("-1"));
  }
  if (filter.offset) sql += " OFFSET " + std::to_string(filter.offset);
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

namespace {

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

}  // namespace

Result<std::vector<EventRow>, SinkError> SqliteReader::find_events(const EventQuery& query) {
  std::string sql =
      "SELECT id, time_us, kind, site, device, sensor, value, threshold, detail FROM events "
      "WHERE id > ?1";
  if (!query.device.empty()) sql += " AND device = ?2";
  sql += query.oldest ? " ORDER BY id" : " ORDER BY id DESC";
  sql += " LIMIT " + std::to_string(query.limit ? query.limit : 1000000);
  Statement q(db_->prepare(sql));
  if (!q.ok()) return db_->error("cannot list events");
  q.bind(1, query.after_id);
  if (!query.device.empty()) q.bind(2, std::string_view(query.device));
  std::vector<EventRow> out;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) out.push_back(event_row(q));
  if (rc != SQLITE_DONE) return db_->error("cannot list events");
  if (!query.oldest) std::reverse(out.begin(), out.end());
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
  if (bucket_us <= 0) return SinkError{"a DLQ histogram's bucket must be positive", false};
  // Floor division, so that buckets before 1970 (never seen, but possible) still line up.
  Statement q(db_->prepare(
      "SELECT (received_us - ((received_us % ?2) + ?2) % ?2) AS b, reason, count(*) FROM dlq "
      "WHERE received_us >= ?1 GROUP BY b, reason ORDER BY b, reason"));
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

Result<std::vector<SensorRow>, SinkError> SqliteReader::sensors(const std::string& device) {
  // A sensor's readings are counted in the rowid ranges of its device's reading batches (the
  // ledger is the index); a batch's range holds the readings of all its sensors.
  Statement q(db_->prepare(
      "SELECT s.name, s.unit, (SELECT count(*) FROM batches b JOIN readings r "
      "ON r.id BETWEEN b.first_row AND b.last_row WHERE b.device_id = d.id AND b.kind = 0 "
      "AND r.sensor_id = s.id) FROM sensors s JOIN devices d ON d.id = s.device_id "
      "WHERE d.device = ?1 ORDER BY s.name"));
  if (!q.ok()) return db_->error("cannot list sensors");
  q.bind(1, std::string_view(device));
  std::vector<SensorRow> out;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) {
    out.push_back(SensorRow{q.text(0), q.text(1), static_cast<uint64_t>(q.integer(2))});
  }
  if (rc != SQLITE_DONE) return db_->error("cannot list sensors");
  return out;
}

Result<std::vector<SeriesBucket>, SinkError> SqliteReader::series(const SeriesQuery& query) {
  if (query.buckets < 1 || query.buckets > 10'000) {
    return SinkError{"a series has 1 to 10000 buckets", false};
  }
  if (query.until_us < query.since_us) {
    return SinkError{"a series' span must not end before it starts", false};
  }
  const auto span = static_cast<unsigned __int128>(query.until_us - query.since_us) + 1;
  const auto width = static_cast<int64_t>((span + query.buckets - 1) / query.buckets);
  // The device's reading batches overlapping the span give the rowid ranges to look in; the
  // readings of the sensor in them are bucketed in SQL. Text values (type 3) are left out.
  Statement q(db_->prepare(
      "SELECT (r.time_us - ?2) / ?4 AS k, min(r.value), max(r.value), avg(r.value), count(*) "
      "FROM batches b JOIN devices d ON d.id = b.device_id "
      "JOIN sensors s ON s.device_id = d.id AND s.name = ?5 "
      "JOIN readings r ON r.id BETWEEN b.first_row AND b.last_row AND r.sensor_id = s.id "
      "WHERE d.device = ?1 AND b.kind = 0 AND b.last_row >= b.first_row "
      "AND b.max_time_us >= ?2 AND b.min_time_us <= ?3 AND r.time_us BETWEEN ?2 AND ?3 "
      "AND r.type != 3 GROUP BY k ORDER BY k"));
  if (!q.ok()) return db_->error("cannot read a series");
  q.bind(1, std::string_view(query.device));
  q.bind(2, query.since_us);
  q.bind(3, query.until_us);
  q.bind(4, width);
  q.bind(5, std::string_view(query.sensor));
  std::vector<SeriesBucket> out;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) {
    out.push_back(SeriesBucket{query.since_us + q.integer(0) * width, q.real(1), q.real(2),
                               q.real(3), static_cast<uint64_t>(q.integer(4))});
  }
  if (rc != SQLITE_DONE) return db_->error("cannot read a series");
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
