// The Reader over PostgreSQL: devices, readings, the DLQ, events and counts for the operator
// tools and the collector's start-up.
#include <algorithm>
#include <charconv>
#include <map>
#include <string_view>

#include "outpost/collector/postgres.h"
#include "pg_db.h"

namespace outpost::collector {

using common::Result;
using common::Status;
using pg_db::Params;
using pg_db::Res;

namespace {

std::string num(int64_t v) { return std::to_string(v); }

// The elements of a text[] in PostgreSQL's text form ({a,"b c","d\"e"}; NULL never occurs).
std::vector<std::string> text_array(std::string_view s) {
  std::vector<std::string> out;
  if (s.size() < 2 || s.front() != '{') return out;
  std::size_t i = 1;
  while (i < s.size() && s[i] != '}') {
    std::string item;
    if (s[i] == '"') {
      for (++i; i < s.size() && s[i] != '"'; ++i) {
        if (s[i] == '\\' && i + 1 < s.size()) ++i;
        item += s[i];
      }
      ++i;  // the closing quote
    } else {
      for (; i < s.size() && s[i] != ',' && s[i] != '}'; ++i) item += s[i];
    }
    out.push_back(std::move(item));
    if (i < s.size() && s[i] == ',') ++i;
  }
  return out;
}

DlqRow dlq_row(const Res& r, int row) {
  DlqRow d;
  d.id = r.integer(row, 0);
  d.received_us = r.integer(row, 1);
  d.topic = r.text(row, 2);
  d.payload = r.bytes(row, 3);
  d.reason = static_cast<common::Reason>(r.integer(row, 4));
  d.detail = r.text(row, 5);
  return d;
}

// A count from the API (uint64_t) as an SQL LIMIT, 0 meaning none.
std::string limit_sql(uint64_t limit) {
  if (limit == 0) return " LIMIT ALL";
  return " LIMIT " + std::to_string(std::min<uint64_t>(limit, INT64_MAX));
}

// The messages of one kind (0 readings, 1 logs) whose time span overlaps $1..$2, of device $3
// when `by_device`, oldest first: device, site, epoch, seq, batch id and received time (which
// finds the partition that holds its rows).
std::string batches_in_span_sql(int kind, bool by_device) {
  std::string sql =
      "SELECT d.device, d.site, b.epoch, b.seq, b.batch_id, b.received_us FROM batches b "
      "JOIN devices d ON d.id = b.device_id WHERE b.kind = " +
      std::to_string(kind) + " AND b.rows > 0 AND b.max_time_us >= $1 AND b.min_time_us <= $2";
  if (by_device) sql += " AND d.device = $3";
  return sql + " ORDER BY b.min_time_us, b.batch_id";
}

// As batches_in_span_sql ($3 NULL for every device), one page of kBatchPage at a time, newest
// first when `newest_first`: those after (before) the previous page's last (min_time_us,
// batch_id), $4 and $5, with min_time_us as column 6. A query with a limit then reads only as
// much of the ledger as it needs.
constexpr int kBatchPage = 256;
std::string batches_page_sql(int kind, bool by_device, bool newest_first, bool first_page) {
  std::string sql =
      "SELECT d.device, d.site, b.epoch, b.seq, b.batch_id, b.received_us, b.min_time_us FROM "
      "batches b JOIN devices d ON d.id = b.device_id WHERE b.kind = " +
      std::to_string(kind) + " AND b.rows > 0 AND b.max_time_us >= $1 AND b.min_time_us <= $2";
  sql += by_device ? " AND d.device = $3" : " AND $3::text IS NULL";
  if (!first_page) {
    sql += newest_first ? " AND (b.min_time_us, b.batch_id) < ($4::bigint, $5::bigint)"
                        : " AND (b.min_time_us, b.batch_id) > ($4::bigint, $5::bigint)";
  }
  sql += newest_first ? " ORDER BY b.min_time_us DESC, b.batch_id DESC"
                      : " ORDER BY b.min_time_us, b.batch_id";
  return sql + " LIMIT " + std::to_string(kBatchPage);
}

EventRow event_row(const Res& q, int i) {
  EventRow row;
  row.id = q.integer(i, 0);
  row.event.time_us = q.integer(i, 1);
  row.event.kind =
      common::event_kind_from_name(q.text(i, 2)).value_or(common::EventKind::kUnspecified);
  row.event.site = q.text(i, 3);
  row.device = q.text(i, 4);
  row.event.sensor = q.text(i, 5);
  row.event.value = q.real(i, 6);
  row.event.threshold = q.real(i, 7);
  row.event.detail = q.text(i, 8);
  return row;
}

constexpr const char* kEventColumns =
    "SELECT id, time_us, kind, site, device, sensor, value, threshold, detail FROM events";

// A decimal for SQL of a value that may not fit in 64 bits.
std::string wide_num(__int128 v) {
  if (v >= INT64_MIN && v <= INT64_MAX) return std::to_string(static_cast<int64_t>(v));
  const bool negative = v < 0;
  unsigned __int128 u = negative ? -static_cast<unsigned __int128>(v) : v;
  std::string digits;
  for (; u; u /= 10) digits.insert(digits.begin(), static_cast<char>('0' + u % 10));
  return (negative ? "-" : "") + digits;
}

}  // namespace

PostgresReader::PostgresReader(std::unique_ptr<pg_db::Connection> db) : db_(std::move(db)) {}
PostgresReader::~PostgresReader() = default;

Result<std::unique_ptr<PostgresReader>, SinkError> PostgresReader::open(
    const PostgresOptions& options) {
  auto db = pg_db::Connection::open(options, /*migrate=*/false);
  if (!db.ok()) return db.error();
  return std::unique_ptr<PostgresReader>(new PostgresReader(std::move(db).value()));
}

// Shared mode's per-collector counters of each device (device_counts), one row per device:
// the sums, the newest last_seen and the epoch of the collector that saw the device last.
#define DEVICE_COUNTS                                                                       \
  "(SELECT DISTINCT ON (device_id) device_id, max(last_seen_us) OVER w AS last_seen_us, "   \
  "max(last_data_us) OVER w AS last_data_us, epoch, sum(readings) OVER w AS readings, "     \
  "sum(logs) OVER w AS logs, sum(batches) OVER w AS batches, sum(duplicates) OVER w AS "    \
  "duplicates FROM device_counts WINDOW w AS (PARTITION BY device_id) ORDER BY device_id, " \
  "last_seen_us DESC)"

namespace {

// The devices whose ids are in `ids` (an array literal, "{1,2}"; null: every device), ordered by
// site, then device.
Result<std::vector<DeviceRow>, SinkError> read_devices(pg_db::Connection& db,
                                                       const std::string* ids) {
  Params params;
  if (ids) params.push_back(*ids);
  auto r = db.exec(
      "cannot list devices",
      std::string("SELECT d.device, d.site, d.first_seen_us, greatest(d.last_seen_us, "
                  "c.last_seen_us), d.state, coalesce(c.epoch, d.epoch), d.readings + "
                  "coalesce(c.readings, 0), d.logs + coalesce(c.logs, 0), d.batches + "
                  "coalesce(c.batches, 0), d.duplicates + coalesce(c.duplicates, 0), d.gaps, "
                  "d.last_status, greatest(d.last_data_us, c.last_data_us) FROM devices d LEFT "
                  "JOIN " DEVICE_COUNTS " c ON c.device_id = d.id") +
          (ids ? " WHERE d.id = ANY($1::bigint[])" : "") +
          " ORDER BY d.site COLLATE \"C\", d.device COLLATE \"C\"",
      params);
  if (!r.ok()) return r.error();
  const Res& q = r.value();
  std::vector<DeviceRow> out;
  for (int i = 0; i < q.rows(); ++i) {
    DeviceRow d;
    d.device = q.text(i, 0);
    d.site = q.text(i, 1);
    d.first_seen_us = q.integer(i, 2);
    d.last_seen_us = q.integer(i, 3);
    // The state column holds presence_name() of what the FleetTracker decided.
    d.presence = presence_from_name(q.text(i, 4)).value_or(Presence::kUnknown);
    d.epoch = static_cast<uint64_t>(q.integer(i, 5));
    d.readings = static_cast<uint64_t>(q.integer(i, 6));
    d.logs = static_cast<uint64_t>(q.integer(i, 7));
    d.batches = static_cast<uint64_t>(q.integer(i, 8));
    d.duplicates = static_cast<uint64_t>(q.integer(i, 9));
    d.gaps = static_cast<uint64_t>(q.integer(i, 10));
    d.last_status = q.text(i, 11);
    d.last_data_us = q.integer(i, 12);
    out.push_back(std::move(d));
  }
  return out;
}

// The sequence lines of the devices whose ids are in `ids` (as read_devices), holes by first
// seq.
Result<std::vector<SeqLineState>, SinkError> read_seq_lines(pg_db::Connection& db,
                                                            const std::string* ids) {
  Params params;
  if (ids) params.push_back(*ids);
  auto lines =
      db.exec("cannot read sequence lines",
              std::string("SELECT l.device_id, d.device, d.site, l.max_seq, l.epochs, "
                          "l.retired FROM seq_lines l JOIN devices d ON d.id = "
                          "l.device_id") +
                  (ids ? " WHERE l.device_id = ANY($1::bigint[])" : "") + " ORDER BY l.device_id",
              params);
  if (!lines.ok()) return lines.error();
  std::vector<SeqLineState> out;
  std::map<int64_t, std::size_t> index;  // device id -> position in out
  const Res& q = lines.value();
  for (int i = 0; i < q.rows(); ++i) {
    SeqLineState line;
    line.device = q.text(i, 1);
    line.site = q.text(i, 2);
    line.max_seq = static_cast<uint64_t>(q.integer(i, 3));
    line.epochs = pg_db::parse_array(q.text(i, 4));
    line.retired = pg_db::parse_array(q.text(i, 5));
    index[q.integer(i, 0)] = out.size();
    out.push_back(std::move(line));
  }
  auto holes = db.exec("cannot read sequence holes",
                       std::string("SELECT device_id, first_seq, last_seq, epoch, since_us, "
                                   "reported_us FROM seq_holes") +
                           (ids ? " WHERE device_id = ANY($1::bigint[])" : "") +
                           " ORDER BY device_id, first_seq",
                       params);
  if (!holes.ok()) return holes.error();
  const Res& h = holes.value();
  for (int i = 0; i < h.rows(); ++i) {
    auto it = index.find(h.integer(i, 0));
    if (it == index.end()) continue;  // a line that is gone
    out[it->second].holes.push_back(
        SeqHole{static_cast<uint64_t>(h.integer(i, 1)), static_cast<uint64_t>(h.integer(i, 2)),
                static_cast<uint64_t>(h.integer(i, 3)), h.integer(i, 4), h.integer(i, 5)});
  }
  return out;
}

}  // namespace

Result<std::vector<DeviceRow>, SinkError> PostgresReader::devices() {
  return read_devices(*db_, nullptr);
}

Result<std::vector<SeqLineState>, SinkError> PostgresReader::seq_lines() {
  return read_seq_lines(*db_, nullptr);
}

Result<FleetChanges, SinkError> PostgresReader::fleet_changes(uint64_t revision) {
  pg_db::Connection& db = *db_;
  // One snapshot for all of it. Its xmin is the revision handed back: every transaction this
  // snapshot does not see has an id at least that, so the rows the next call finds with
  // changed >= it include every change made after this read (and a few seen already).
  if (auto b = db.exec("cannot begin a read", "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
      !b.ok()) {
    return b.error();
  }
  struct End {
    pg_db::Connection& db;
    ~End() { db.rollback(); }  // read only: nothing to keep
  } end{db};
  auto snap =
      db.exec("cannot read the snapshot", "SELECT pg_snapshot_xmin(pg_current_snapshot())::text");
  if (!snap.ok()) return snap.error();
  uint64_t latest = 0;
  const std::string xmin = snap.value().text(0, 0);
  std::from_chars(xmin.data(), xmin.data() + xmin.size(), latest);
  // A revision from another database (restored, or a new cluster) is past this one's: all.
  const bool complete = revision == 0 || revision > latest;
  FleetChanges out;
  out.complete = complete;
  out.revision = latest;
  std::string ids;
  if (!complete) {
    auto r = db.exec("cannot list changed devices",
                     "SELECT coalesce(array_agg(id), '{}')::text FROM (SELECT id FROM devices "
                     "WHERE changed >= $1::xid8 UNION SELECT device_id FROM device_counts WHERE "
                     "changed >= $1::xid8 UNION SELECT device_id FROM seq_lines WHERE changed >= "
                     "$1::xid8) c",
                     {std::to_string(revision)});
    if (!r.ok()) return r.error();
    ids = r.value().text(0, 0);
  }
  if (complete || ids != "{}") {
    const std::string* which = complete ? nullptr : &ids;
    auto rows = read_devices(db, which);
    if (!rows.ok()) return rows.error();
    out.devices = std::move(rows).value();
    auto lines = read_seq_lines(db, which);
    if (!lines.ok()) return lines.error();
    attach_seq_lines(out.devices, std::move(lines).value());
  }
  // The DLQ keeps no revision here: its counts by topic come with every read.
  auto topics = dlq_topics();
  if (!topics.ok()) return topics.error();
  out.dlq_topics = std::move(topics).value();
  return out;
}

Status<SinkError> PostgresReader::query_readings(
    const ReadingQuery& query, const std::function<void(const ReadingRow&)>& emit) {
  // The batches table is the index: each batch's readings share its batch id (a BRIN index)
  // and its received time (the partition), so no per-reading B-tree slows down COPY.
  Params bp = {num(query.since_us), num(query.until_us)};
  if (!query.device.empty()) bp.push_back(query.device);
  auto b = db_->exec("cannot query batches", batches_in_span_sql(0, !query.device.empty()), bp);
  if (!b.ok()) return b.error();
  std::string rsql =
      "SELECT r.time_us, r.type, r.value, r.value_int, r.value_text, s.name, s.unit FROM "
      "readings r JOIN sensors s ON s.id = r.sensor_id WHERE r.received_us = $1 AND r.batch_id = "
      "$2 AND r.time_us BETWEEN $3 AND $4";
  if (!query.sensor.empty()) rsql += " AND s.name = $5";
  rsql += " ORDER BY r.ctid";  // the order the batch was sent in: COPY appends in order
  uint64_t emitted = 0;
  const Res& batches = b.value();
  for (int i = 0; i < batches.rows(); ++i) {
    ReadingRow row;
    row.device = batches.text(i, 0);
    row.site = batches.text(i, 1);
    row.epoch = static_cast<uint64_t>(batches.integer(i, 2));
    row.seq = static_cast<uint64_t>(batches.integer(i, 3));
    Params rp = {batches.text(i, 5), batches.text(i, 4), num(query.since_us), num(query.until_us)};
    if (!query.sensor.empty()) rp.push_back(query.sensor);
    auto r = db_->exec("cannot read readings", rsql, rp);
    if (!r.ok()) return r.error();
    const Res& rows = r.value();
    for (int k = 0; k < rows.rows(); ++k) {
      row.time_us = rows.integer(k, 0);
      switch (rows.integer(k, 1)) {
        case pg_db::kInteger:
          row.value = rows.integer(k, 3);
          break;
        case pg_db::kBool:
          row.value = rows.integer(k, 3) != 0;
          break;
        case pg_db::kString:
          row.value = rows.text(k, 4);
          break;
        default:
          row.value = rows.real(k, 2);
      }
      row.sensor = rows.text(k, 5);
      row.unit = rows.text(k, 6);
      emit(row);
      if (query.limit && ++emitted >= query.limit) return {};
    }
  }
  return {};
}

Status<SinkError> PostgresReader::query_logs(const LogQuery& query,
                                             const std::function<void(const LogRow&)>& emit) {
  // With a limit and `latest`, the messages are read newest first, each one's records last
  // first, until `limit` are in hand; they are then given in the usual order.
  const bool latest = query.latest && query.limit;
  // The fields' keys and values in the order sent (json, unlike jsonb, keeps it). The text
  // match folds ASCII letters only, as LogQuery::contains promises (translate, not lower(),
  // whose folding depends on the database's locale); strpos has no wildcards.
  constexpr const char* kFold =
      "translate(%s, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')";
  auto fold = [&](const std::string& what) {
    char buf[160];
    std::snprintf(buf, sizeof buf, kFold, what.c_str());
    return std::string(buf);
  };
  std::string lsql =
      "SELECT time_us, severity, message, ARRAY(SELECT key FROM json_each_text(fields)), "
      "ARRAY(SELECT value FROM json_each_text(fields)) FROM logs WHERE received_us = $1 AND "
      "batch_id = $2 AND time_us BETWEEN $3 AND $4 AND severity >= $5";
  if (!query.contains.empty())
    lsql += " AND strpos(" + fold("message") + ", " + fold("$6") + ") > 0";
  lsql += latest ? " ORDER BY ctid DESC" : " ORDER BY ctid";
  uint64_t emitted = 0;
  std::vector<LogRow> newest;  // latest: the records in hand, newest first
  const bool by_device = !query.device.empty();
  std::optional<std::pair<std::string, std::string>> after;  // the last page's last key
  for (;;) {
    Params bp = {num(query.since_us), num(query.until_us),
                 by_device ? std::optional<std::string>(query.device) : std::nullopt};
    if (after) {
      bp.push_back(after->first);
      bp.push_back(after->second);
    }
    auto b = db_->exec("cannot query batches",
                       batches_page_sql(1, by_device, latest, !after.has_value()), bp);
    if (!b.ok()) return b.error();
    const Res& batches = b.value();
    for (int i = 0; i < batches.rows(); ++i) {
      LogRow row;
      row.device = batches.text(i, 0);
      row.site = batches.text(i, 1);
      row.epoch = static_cast<uint64_t>(batches.integer(i, 2));
      row.seq = static_cast<uint64_t>(batches.integer(i, 3));
      Params lp = {batches.text(i, 5), batches.text(i, 4), num(query.since_us), num(query.until_us),
                   std::to_string(static_cast<int>(query.min_severity))};
      if (!query.contains.empty()) lp.push_back(query.contains);
      auto l = db_->exec("cannot read log records",
                         lsql + (latest ? limit_sql(query.limit - newest.size()) : ""), lp);
      if (!l.ok()) return l.error();
      const Res& rows = l.value();
      for (int k = 0; k < rows.rows(); ++k) {
        row.time_us = rows.integer(k, 0);
        row.severity = static_cast<common::Severity>(rows.integer(k, 1));
        row.message = rows.text(k, 2);
        row.fields.clear();
        auto keys = text_array(rows.text(k, 3));
        auto values = text_array(rows.text(k, 4));
        for (std::size_t f = 0; f < keys.size() && f < values.size(); ++f) {
          row.fields.push_back({std::move(keys[f]), std::move(values[f])});
        }
        if (latest) {
          newest.push_back(row);
          if (newest.size() >= query.limit) break;
        } else {
          emit(row);
          if (query.limit && ++emitted >= query.limit) return {};
        }
      }
      if (latest && newest.size() >= query.limit) break;
    }
    if (latest && newest.size() >= query.limit) break;
    if (batches.rows() < kBatchPage) break;
    after.emplace(batches.text(batches.rows() - 1, 6), batches.text(batches.rows() - 1, 4));
  }
  for (auto it = newest.rbegin(); it != newest.rend(); ++it) emit(*it);
  return {};
}

Result<std::vector<DlqRow>, SinkError> PostgresReader::dlq(const DlqFilter& filter) {
  Params params;
  std::string sql = "SELECT id, received_us, topic, payload, reason, detail FROM dlq" +
                    pg_db::dlq_where(filter, params) +
                    (filter.newest_first ? " ORDER BY id DESC" : " ORDER BY id") +
                    limit_sql(filter.limit);
  if (filter.offset) {
    sql += " OFFSET " + std::to_string(std::min<uint64_t>(filter.offset, INT64_MAX));
  }
  auto r = db_->exec("cannot list the DLQ", sql, params);
  if (!r.ok()) return r.error();
  std::vector<DlqRow> out;
  for (int i = 0; i < r.value().rows(); ++i) out.push_back(dlq_row(r.value(), i));
  return out;
}

Result<uint64_t, SinkError> PostgresReader::dlq_count(const DlqFilter& filter) {
  Params params;
  auto r = db_->exec("cannot count the DLQ",
                     "SELECT count(*) FROM dlq" + pg_db::dlq_where(filter, params), params);
  if (!r.ok()) return r.error();
  return static_cast<uint64_t>(r.value().integer(0, 0));
}

Result<std::vector<DlqBucket>, SinkError> PostgresReader::dlq_histogram(int64_t since_us,
                                                                        int64_t bucket_us) {
  if (bucket_us <= 0) {
    return SinkError{"DLQ histogram: the bucket width must be positive, not " + num(bucket_us),
                     false};
  }
  // The bucket is floor(received_us / width) * width: integer division truncates toward zero,
  // so a time before 1970 that is not a multiple moves one bucket down.
  auto r = db_->exec("cannot count the DLQ",
                     "SELECT received_us / $2::bigint * $2::bigint - CASE WHEN received_us % "
                     "$2::bigint < 0 THEN $2::bigint ELSE 0 END AS bucket, reason, count(*) FROM "
                     "dlq WHERE received_us >= $1::bigint GROUP BY 1, 2 ORDER BY 1, 2",
                     {num(since_us), num(bucket_us)});
  if (!r.ok()) return r.error();
  const Res& q = r.value();
  std::vector<DlqBucket> out;
  for (int i = 0; i < q.rows(); ++i) {
    out.push_back(DlqBucket{q.integer(i, 0), static_cast<common::Reason>(q.integer(i, 1)),
                            static_cast<uint64_t>(q.integer(i, 2))});
  }
  return out;
}

Result<std::map<std::string, uint64_t>, SinkError> PostgresReader::dlq_topics() {
  auto r = db_->exec("cannot count the DLQ", "SELECT topic, count(*) FROM dlq GROUP BY topic");
  if (!r.ok()) return r.error();
  std::map<std::string, uint64_t> out;
  for (int i = 0; i < r.value().rows(); ++i) {
    out[r.value().text(i, 0)] = static_cast<uint64_t>(r.value().integer(i, 1));
  }
  return out;
}

Result<std::optional<DlqRow>, SinkError> PostgresReader::dlq_entry(int64_t id) {
  auto r = db_->exec(
      "cannot read the DLQ",
      "SELECT id, received_us, topic, payload, reason, detail FROM dlq WHERE id = $1", {num(id)});
  if (!r.ok()) return r.error();
  if (r.value().rows() == 0) return std::optional<DlqRow>();
  return std::optional<DlqRow>(dlq_row(r.value(), 0));
}

Result<std::vector<EventRow>, SinkError> PostgresReader::events(uint64_t limit) {
  return find_events(EventQuery{.limit = limit});
}

Result<std::vector<EventRow>, SinkError> PostgresReader::find_events(const EventQuery& query) {
  Params params = {num(query.after_id)};
  std::string sql = std::string(kEventColumns) + " WHERE id > $1";
  if (!query.device.empty()) {
    params.push_back(query.device);
    sql += " AND device = $2";
  }
  // The newest ones are found by id descending, and turned around.
  sql += query.oldest ? " ORDER BY id" : " ORDER BY id DESC";
  sql += limit_sql(query.limit ? query.limit : 1'000'000);
  auto r = db_->exec("cannot list events", sql, params);
  if (!r.ok()) return r.error();
  const Res& q = r.value();
  std::vector<EventRow> out;
  for (int i = 0; i < q.rows(); ++i) out.push_back(event_row(q, i));
  if (!query.oldest) std::reverse(out.begin(), out.end());
  return out;
}

Result<std::vector<SensorRow>, SinkError> PostgresReader::sensors(const std::string& device) {
  // Readings have no index by sensor: they are counted through the device's reading batches in
  // the ledger, each batch's rows found as query_readings finds them (its received time picks
  // the partition at run time, its batch id the block range). OFFSET 0 keeps the planner from
  // flattening the lateral subquery into a hash join over every partition.
  auto r = db_->exec(
      "cannot list sensors",
      "WITH dev AS (SELECT id FROM devices WHERE device = $1), counted AS (SELECT r.sensor_id, "
      "count(*) AS n FROM batches b CROSS JOIN LATERAL (SELECT sensor_id FROM readings r WHERE "
      "r.received_us = b.received_us AND r.batch_id = b.batch_id OFFSET 0) r WHERE b.device_id = "
      "(SELECT "
      "id FROM dev) AND b.kind = 0 AND b.rows > 0 GROUP BY r.sensor_id) SELECT s.name, s.unit, "
      "coalesce(c.n, 0) FROM sensors s LEFT JOIN counted c ON c.sensor_id = s.id WHERE "
      "s.device_id = (SELECT id FROM dev) ORDER BY s.name COLLATE \"C\"",
      {device});
  if (!r.ok()) return r.error();
  const Res& q = r.value();
  std::vector<SensorRow> out;
  for (int i = 0; i < q.rows(); ++i) {
    out.push_back(SensorRow{q.text(i, 0), q.text(i, 1), static_cast<uint64_t>(q.integer(i, 2))});
  }
  return out;
}

Result<std::vector<SeriesBucket>, SinkError> PostgresReader::series(const SeriesQuery& query) {
  if (query.buckets < 1 || query.buckets > 10'000) {
    return SinkError{"series: buckets must be 1 .. 10000, not " + std::to_string(query.buckets),
                     false};
  }
  if (query.until_us < query.since_us) {
    return SinkError{
        "series: until (" + num(query.until_us) + ") is before since (" + num(query.since_us) + ")",
        false};
  }
  // The span and the width may not fit in 64 bits (INT64_MIN .. INT64_MAX): 128-bit here, and
  // numeric in SQL then.
  const __int128 span = static_cast<__int128>(query.until_us) - query.since_us + 1;
  const __int128 width = (span + query.buckets - 1) / query.buckets;
  const bool wide = span > INT64_MAX;
  const std::string bucket = wide ? "div(r.time_us::numeric - $3::numeric, $5::numeric)"
                                  : "(r.time_us - $3::bigint) / $5::bigint";
  // The device's reading batches that overlap the span, and of each one its rows of the sensor
  // (as query_readings reads a batch, OFFSET 0 as in sensors()), grouped by bucket in the
  // server.
  auto r = db_->exec(
      "cannot read a series",
      "SELECT " + bucket +
          " AS bucket, min(r.v), max(r.v), avg(r.v), count(*) FROM devices d JOIN sensors s ON "
          "s.device_id = d.id JOIN batches b ON b.device_id = d.id CROSS JOIN LATERAL (SELECT "
          "r.time_us, CASE WHEN r.type = 0 THEN r.value ELSE r.value_int::double precision END "
          "AS v FROM readings r WHERE r.received_us = b.received_us AND r.batch_id = b.batch_id "
          "AND r.sensor_id = s.id AND r.time_us BETWEEN $3::bigint AND $4::bigint AND r.type IN "
          "(0, 1, 2) OFFSET 0) r WHERE d.device = $1 AND s.name = $2 AND b.kind = 0 AND b.rows > 0 "
          "AND "
          "b.max_time_us >= $3::bigint AND b.min_time_us <= $4::bigint GROUP BY 1 ORDER BY 1",
      {query.device, query.sensor, num(query.since_us), num(query.until_us), wide_num(width)});
  if (!r.ok()) return r.error();
  const Res& q = r.value();
  std::vector<SeriesBucket> out;
  for (int i = 0; i < q.rows(); ++i) {
    SeriesBucket b;
    b.start_us = static_cast<int64_t>(query.since_us + width * q.integer(i, 0));
    b.min = q.real(i, 1);
    b.max = q.real(i, 2);
    b.mean = q.real(i, 3);
    b.count = static_cast<uint64_t>(q.integer(i, 4));
    out.push_back(b);
  }
  return out;
}

Result<std::map<std::string, uint64_t>, SinkError> PostgresReader::counts() {
  std::map<std::string, uint64_t> out;
  auto r = db_->exec("cannot count",
                     "SELECT (SELECT count(*) FROM readings), (SELECT count(*) FROM logs), "
                     "(SELECT count(*) FROM batches), (SELECT count(*) FROM dlq), "
                     "(SELECT count(*) FROM events), (SELECT count(*) FROM devices), "
                     "(SELECT coalesce(sum(duplicates), 0) FROM devices) + "
                     "(SELECT coalesce(sum(duplicates), 0) FROM device_counts), "
                     "(SELECT coalesce(sum(gaps), 0) FROM devices)");
  if (!r.ok()) return r.error();
  int col = 0;
  for (const char* key :
       {"readings", "logs", "batches", "dlq", "events", "devices", "duplicates", "gaps"}) {
    out[key] = static_cast<uint64_t>(r.value().integer(0, col++));
  }
  return out;
}

Result<std::map<common::Reason, uint64_t>, SinkError> PostgresReader::dlq_reasons() {
  auto r = db_->exec("cannot count the DLQ",
                     "SELECT reason, count(*) FROM dlq GROUP BY reason ORDER BY reason");
  if (!r.ok()) return r.error();
  std::map<common::Reason, uint64_t> out;
  for (int i = 0; i < r.value().rows(); ++i) {
    out[static_cast<common::Reason>(r.value().integer(i, 0))] =
        static_cast<uint64_t>(r.value().integer(i, 1));
  }
  return out;
}

Result<std::map<std::string, uint64_t>, SinkError> PostgresReader::event_kinds() {
  auto r = db_->exec("cannot count the events",
                     "SELECT kind, count(*) FROM events GROUP BY kind ORDER BY kind");
  if (!r.ok()) return r.error();
  std::map<std::string, uint64_t> out;
  for (int i = 0; i < r.value().rows(); ++i) {
    out[r.value().text(i, 0)] = static_cast<uint64_t>(r.value().integer(i, 1));
  }
  return out;
}

}  // namespace outpost::collector
