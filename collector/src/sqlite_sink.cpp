// The SQLite sink: one transaction per batch of messages, exactly-once per (device, epoch, seq).
#include "outpost/collector/sqlite_sink.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include "outpost/common/json.h"
#include "sqlite_db.h"
#include "stored_json.h"

namespace outpost::collector {

namespace {

using common::Result;
using common::Status;
using sqlite_db::kBool;
using sqlite_db::kDouble;
using sqlite_db::kInteger;
using sqlite_db::kLogsKind;
using sqlite_db::kReadingsKind;
using sqlite_db::kString;
using sqlite_db::Statement;

// Readings go in INSERTs of up to this many rows: one statement step per chunk, not per row
// (the per-row step was the largest part of the storage thread's cost per reading).
constexpr std::size_t kRowsPerInsert = 25;

std::string readings_insert_sql(std::size_t rows) {
  std::string sql = "INSERT INTO readings (sensor_id, time_us, value, type) VALUES (?, ?, ?, ?)";
  for (std::size_t i = 1; i < rows; ++i) sql += ", (?, ?, ?, ?)";
  return sql;
}

}  // namespace

struct SqliteSink::Impl {
  std::unique_ptr<sqlite_db::Database> db;
  SqliteOptions options;
  std::unordered_map<std::string, int64_t> device_ids_;
  struct Sensor {
    int64_t id;
    std::string unit;
  };
  std::unordered_map<std::string, Sensor> sensor_ids_;  // key: device id, '\0', name
  std::vector<int64_t> dlq_remove_;
  uint64_t dlq_entries_ = 0;
  // The revision of the transaction being written (meta 'revision' + 1): what devices.changed
  // is set to for every device it changes, so a reader can ask for what changed (Reader::
  // fleet_changes). 0 outside a transaction.
  int64_t revision_ = 0;
  std::unordered_set<int64_t> marked_;  // devices this transaction has set changed of
  // The statements run once or more per message, held here (they live in the connection's
  // cache): looking one up by its text costs a string and a hash of it each time. Null until
  // first used, and again if it did not prepare (the step then fails with SQLite's message).
  std::vector<sqlite3_stmt*> readings_insert_;  // 1..kRowsPerInsert rows (index: rows - 1)
  sqlite3_stmt* batch_probe_ = nullptr;
  sqlite3_stmt* batch_insert_ = nullptr;

  sqlite3_stmt* kept(sqlite3_stmt*& slot, const char* sql) {
    if (!slot) slot = db->prepare(sql);
    return slot;
  }
  sqlite3_stmt* readings_insert(std::size_t rows) {
    readings_insert_.resize(kRowsPerInsert, nullptr);
    sqlite3_stmt*& slot = readings_insert_[rows - 1];
    if (!slot) slot = db->prepare(readings_insert_sql(rows));
    return slot;
  }
  // Stores `readings` as rows of `sensor_ids` (by Reading::sensor); the rowids of the first
  // and the last row come back in `first_row` and `last_row`.
  Status<SinkError> insert_readings(const std::vector<common::Reading>& readings,
                                    const std::vector<int64_t>& sensor_ids, int64_t& first_row,
                                    int64_t& last_row);

  Result<int64_t, SinkError> device_id(const std::string& site, const std::string& device,
                                       int64_t now_us);
  Result<int64_t, SinkError> sensor_id(int64_t device, const std::string& name,
                                       std::string_view unit);
  Result<CommitResult, SinkError> commit(const Transaction& tx);
  Result<CommitResult, SinkError> write(const Transaction& tx);
  Status<SinkError> write_seq_lines(const Transaction& tx);
  Result<std::optional<JournalPosition>, SinkError> journal_position();
  Result<uint64_t, SinkError> expire(int64_t cutoff_us, int64_t dlq_cutoff_us,
                                     int64_t key_cutoff_us, uint64_t max_rows);
  Result<uint64_t, SinkError> purge_dlq(const DlqFilter& filter);
  // In a write transaction: sets revision_ to the last recorded revision + 1.
  Status<SinkError> begin_revision();
  // Records revision_ as the newest (and, with `dlq_changed`, as the DLQ's last change).
  Status<SinkError> record_revision(bool dlq_changed);
  // Sets device `id`'s changed to revision_, unless this transaction already has.
  Status<SinkError> mark_changed(int64_t id);
};

Status<SinkError> SqliteSink::Impl::begin_revision() {
  Statement q(db->prepare("SELECT value FROM meta WHERE key = 'revision'"));
  if (!q.ok()) return db->error("cannot read the revision");
  const int rc = q.step();
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return db->error("cannot read the revision");
  revision_ = (rc == SQLITE_ROW ? q.integer(0) : 0) + 1;
  marked_.clear();
  return {};
}

Status<SinkError> SqliteSink::Impl::record_revision(bool dlq_changed) {
  Statement up(db->prepare(dlq_changed ? "INSERT OR REPLACE INTO meta (key, value) VALUES "
                                         "('revision', ?1), ('dlq_revision', ?1)"
                                       : "INSERT OR REPLACE INTO meta (key, value) VALUES "
                                         "('revision', ?1)"));
  up.bind(1, revision_);
  if (up.step() != SQLITE_DONE) return db->error("cannot record the revision");
  return {};
}

Status<SinkError> SqliteSink::Impl::mark_changed(int64_t id) {
  if (!marked_.insert(id).second) return {};
  Statement up(db->prepare("UPDATE devices SET changed = ?1 WHERE id = ?2 AND changed <> ?1"));
  up.bind(1, revision_);
  up.bind(2, id);
  if (up.step() != SQLITE_DONE) return db->error("cannot mark a device changed");
  return {};
}

SqliteSink::SqliteSink(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

SqliteSink::~SqliteSink() = default;

Result<std::unique_ptr<SqliteSink>, SinkError> SqliteSink::open(const SqliteOptions& options) {
  auto db = sqlite_db::Database::open(options.path, options.create, options.full_sync);
  if (!db.ok()) return db.error();
  auto impl = std::make_unique<Impl>();
  impl->db = std::move(db).value();
  impl->options = options;
  // The writer appends: its working set is the last pages of each table and index, a few MB.
  // SQLite's cache holds every page it has touched up to its bound, so a larger bound only
  // grew the collector's memory with the database (64 MB of it, read by nobody).
  if (!impl->db->exec("PRAGMA cache_size=-8192")) {  // KiB
    return SinkError{options.path + ": " + impl->db->error("cannot set the cache size").message,
                     false};
  }
  Statement q(impl->db->prepare("SELECT count(*) FROM dlq"));
  if (!q.ok() || q.step() != SQLITE_ROW) {
    return SinkError{options.path + ": " + impl->db->error("cannot count the DLQ").message, false};
  }
  impl->dlq_entries_ = static_cast<uint64_t>(q.integer(0));
  return std::unique_ptr<SqliteSink>(new SqliteSink(std::move(impl)));
}

Result<CommitResult, SinkError> SqliteSink::commit(const Transaction& tx) {
  return impl_->commit(tx);
}

Result<std::optional<JournalPosition>, SinkError> SqliteSink::journal_position() {
  return impl_->journal_position();
}

Result<uint64_t, SinkError> SqliteSink::expire(int64_t cutoff_us, int64_t dlq_cutoff_us,
                                               int64_t key_cutoff_us, uint64_t max_rows) {
  return impl_->expire(cutoff_us, dlq_cutoff_us, key_cutoff_us, max_rows);
}

void SqliteSink::remove_dlq_on_next_commit(std::vector<int64_t> ids) {
  impl_->dlq_remove_ = std::move(ids);
}

Result<uint64_t, SinkError> SqliteSink::purge_dlq(const DlqFilter& filter) {
  return impl_->purge_dlq(filter);
}

Result<int64_t, SinkError> SqliteSink::Impl::device_id(const std::string& site,
                                                       const std::string& device, int64_t now_us) {
  if (auto it = device_ids_.find(device); it != device_ids_.end()) return it->second;
  {
    Statement q(db->prepare("SELECT id FROM devices WHERE device = ?"));
    q.bind(1, device);
    if (q.step() == SQLITE_ROW) {
      const int64_t id = q.integer(0);
      device_ids_.emplace(device, id);
      return id;
    }
  }
  Statement ins(
      db->prepare("INSERT INTO devices (device, site, first_seen_us, last_seen_us, changed) "
                  "VALUES (?, ?, ?, ?, ?)"));
  ins.bind(1, device);
  ins.bind(2, site);
  ins.bind(3, now_us);
  ins.bind(4, now_us);
  ins.bind(5, revision_);
  if (ins.step() != SQLITE_DONE) return db->error("cannot add device " + device);
  const int64_t id = sqlite3_last_insert_rowid(db->handle());
  marked_.insert(id);
  device_ids_.emplace(device, id);
  return id;
}

Result<int64_t, SinkError> SqliteSink::Impl::sensor_id(int64_t device, const std::string& name,
                                                       std::string_view unit) {
  std::string key = std::to_string(device);
  key += '\0';
  key += name;
  auto it = sensor_ids_.find(key);
  if (it == sensor_ids_.end()) {
    Statement q(db->prepare("SELECT id, unit FROM sensors WHERE device_id = ? AND name = ?"));
    q.bind(1, device);
    q.bind(2, name);
    if (q.step() == SQLITE_ROW) {
      it = sensor_ids_.emplace(key, Sensor{q.integer(0), q.text(1)}).first;
    } else {
      Statement ins(db->prepare("INSERT INTO sensors (device_id, name, unit) VALUES (?, ?, ?)"));
      ins.bind(1, device);
      ins.bind(2, name);
      ins.bind(3, unit);
      if (ins.step() != SQLITE_DONE) return db->error("cannot add sensor " + name);
      return sensor_ids_
          .emplace(key, Sensor{sqlite3_last_insert_rowid(db->handle()), std::string(unit)})
          .first->second.id;
    }
  }
  if (!unit.empty() && it->second.unit != unit) {
    // The unit a sensor reports last is the one shown; values are stored as sent.
    Statement up(db->prepare("UPDATE sensors SET unit = ? WHERE id = ?"));
    up.bind(1, unit);
    up.bind(2, it->second.id);
    if (up.step() != SQLITE_DONE) return db->error("cannot update sensor " + name);
    it->second.unit = std::string(unit);
  }
  return it->second.id;
}

Result<CommitResult, SinkError> SqliteSink::Impl::commit(const Transaction& tx) {
  if (!db->exec("BEGIN IMMEDIATE")) {
    return db->error("cannot begin a transaction");
  }
  auto result = write(tx);
  revision_ = 0;
  if (result.ok() && db->exec("COMMIT")) {
    dlq_entries_ += tx.dlq.size();
    dlq_entries_ -= std::min<uint64_t>(dlq_entries_, result.value().dlq_dropped);
    dlq_remove_.clear();
    return result;
  }
  SinkError e = result.ok() ? db->error("cannot commit") : result.error();
  (void)db->exec("ROLLBACK");  // nothing more to do if it fails
  // Ids cached during the rolled-back transaction may not exist: forget them all.
  device_ids_.clear();
  sensor_ids_.clear();
  return e;
}

Status<SinkError> SqliteSink::Impl::insert_readings(const std::vector<common::Reading>& readings,
                                                    const std::vector<int64_t>& sensor_ids,
                                                    int64_t& first_row, int64_t& last_row) {
  for (std::size_t at = 0; at < readings.size(); at += kRowsPerInsert) {
    const std::size_t rows = std::min(kRowsPerInsert, readings.size() - at);
    Statement ins(readings_insert(rows));
    for (std::size_t i = 0; i < rows; ++i) {
      const common::Reading& r = readings[at + i];
      const int p = static_cast<int>(4 * i);
      ins.bind(p + 1, sensor_ids[r.sensor]);
      ins.bind(p + 2, r.time_us);
      int type = kDouble;
      if (const double* d = std::get_if<double>(&r.value)) {
        ins.bind(p + 3, *d);
      } else if (const int64_t* n = std::get_if<int64_t>(&r.value)) {
        ins.bind(p + 3, *n);
        type = kInteger;
      } else if (const bool* b = std::get_if<bool>(&r.value)) {
        ins.bind(p + 3, int64_t{*b ? 1 : 0});
        type = kBool;
      } else {
        ins.bind(p + 3, std::string_view(std::get<std::string>(r.value)));
        type = kString;
      }
      ins.bind(p + 4, type);
    }
    if (ins.step() != SQLITE_DONE) return db->error("cannot store a reading");
    // The rows of one INSERT take consecutive rowids (each the largest so far plus one), as
    // the rows of one transaction do: the batch's rows are the range first_row..last_row.
    last_row = sqlite3_last_insert_rowid(db->handle());
    if (first_row == 0) first_row = last_row - static_cast<int64_t>(rows) + 1;
  }
  return {};
}

Result<CommitResult, SinkError> SqliteSink::Impl::write(const Transaction& tx) {
  CommitResult result;
  result.outcomes.reserve(tx.batches.size());
  if (auto s = begin_revision(); !s.ok()) return s.error();
  struct Tally {
    int64_t last_seen_us = 0;
    int64_t last_data_us = 0;  // newest stored readings batch; 0: none in this transaction
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
      Statement probe(kept(batch_probe_,
                           "SELECT 1 FROM batches WHERE device_id = ? AND epoch = ? AND seq = ?"));
      probe.bind(1, dev.value());
      probe.bind(2, env.epoch);
      probe.bind(3, env.seq);
      const int rc = probe.step();
      if (rc == SQLITE_ROW) {
        result.outcomes.push_back(BatchOutcome::kDuplicate);
        ++tally.duplicates;
        continue;
      }
      if (rc != SQLITE_DONE) return db->error("cannot look up a batch");
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
      if (auto s = insert_readings(batch->readings, sensor_ids, first_row, last_row); !s.ok()) {
        return s.error();
      }
      for (const common::Reading& r : batch->readings) {
        min_t = std::min(min_t, r.time_us);
        max_t = std::max(max_t, r.time_us);
      }
      tally.last_data_us = std::max(tally.last_data_us, item.received_us);
      tally.readings += batch->readings.size();
      result.readings_stored += batch->readings.size();
    } else if (const auto* logs = std::get_if<common::LogBatch>(&env.body)) {
      kind = kLogsKind;
      synced = logs->time_synced;
      Statement ins(db->prepare(
          "INSERT INTO logs (device_id, time_us, severity, message, fields) VALUES (?, ?, "
          "?, ?, ?)"));
      for (const common::LogRecord& rec : logs->records) {
        const std::string fields = fields_json(rec.fields);
        ins.bind(1, dev.value());
        ins.bind(2, rec.time_us);
        ins.bind(3, static_cast<int>(rec.severity));
        ins.bind(4, std::string_view(rec.message));
        ins.bind(5, std::string_view(fields));
        if (ins.step() != SQLITE_DONE) return db->error("cannot store a log record");
        ins.reset();
        last_row = sqlite3_last_insert_rowid(db->handle());
        if (first_row == 0) first_row = last_row;
        min_t = std::min(min_t, rec.time_us);
        max_t = std::max(max_t, rec.time_us);
      }
      tally.logs += logs->records.size();
      result.logs_stored += logs->records.size();
    }
    if (min_t > max_t) min_t = max_t = 0;
    Statement batch(
        kept(batch_insert_,
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
    if (batch.step() != SQLITE_DONE) return db->error("cannot record a batch");
    ++tally.batches;
    tally.epoch = env.epoch;
    result.outcomes.push_back(BatchOutcome::kStored);
  }

  for (const auto& [id, t] : tallies) {
    Statement up(
        db->prepare("UPDATE devices SET last_seen_us = max(last_seen_us, ?), "
                    "last_data_us = max(last_data_us, ?), readings = readings + ?, "
                    "logs = logs + ?, batches = batches + ?, duplicates = duplicates + ?, "
                    "epoch = CASE WHEN ? != 0 THEN ? ELSE epoch END, changed = ? WHERE id = ?"));
    up.bind(1, t.last_seen_us);
    up.bind(2, t.last_data_us);
    up.bind(3, t.readings);
    up.bind(4, t.logs);
    up.bind(5, t.batches);
    up.bind(6, t.duplicates);
    up.bind(7, t.epoch);
    up.bind(8, t.epoch);
    up.bind(9, revision_);
    up.bind(10, id);
    if (up.step() != SQLITE_DONE) return db->error("cannot update a device");
    marked_.insert(id);
  }

  for (const StatusItem& st : tx.statuses) {
    auto dev = device_id(st.site, st.device, st.received_us);
    if (!dev.ok()) return dev.error();
    // The presence the FleetTracker gives a status (presence_of); none leaves it as it was.
    const std::optional<Presence> p = presence_of(st.status.state);
    const std::string json = status_json(st.status);
    Statement up(
        db->prepare("UPDATE devices SET state = coalesce(?, state), last_status = ?, "
                    "last_seen_us = max(last_seen_us, ?), changed = ? WHERE id = ?"));
    if (p) up.bind(1, presence_name(*p));
    up.bind(2, std::string_view(json));
    up.bind(3, st.received_us);
    up.bind(4, revision_);
    up.bind(5, dev.value());
    if (up.step() != SQLITE_DONE) return db->error("cannot update a device status");
    marked_.insert(dev.value());
  }

  for (const EventItem& ev : tx.events) {
    const common::Event& e = ev.event;
    Statement ins(db->prepare(
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
    if (ins.step() != SQLITE_DONE) return db->error("cannot store an event");
    if (!ev.device.empty()) {
      // The presence the FleetTracker decided along with this event (silence, data after
      // silence), and the device's gap count.
      // gaps: the batches reported missing that have not arrived since.
      const bool gap = e.kind == common::EventKind::kDataGap;
      const bool resolved = e.kind == common::EventKind::kDataGapResolved;
      if (gap || resolved || ev.presence) {
        const auto n = static_cast<int64_t>(e.value);
        Statement up(
            db->prepare("UPDATE devices SET gaps = max(gaps + ?, 0), state = coalesce(?, state), "
                        "changed = ? WHERE device = ?"));
        up.bind(1, gap ? n : resolved ? -n : int64_t{0});
        if (ev.presence) up.bind(2, presence_name(*ev.presence));
        up.bind(3, revision_);
        up.bind(4, std::string_view(ev.device));
        if (up.step() != SQLITE_DONE) return db->error("cannot update a device");
      }
    }
  }

  if (auto s = write_seq_lines(tx); !s.ok()) return s.error();

  for (const DlqItem& d : tx.dlq) {
    Statement ins(db->prepare(
        "INSERT INTO dlq (received_us, topic, payload, reason, detail) VALUES (?, ?, ?, ?, ?)"));
    ins.bind(1, d.received_us);
    ins.bind(2, std::string_view(d.topic));
    ins.bind_blob(3, d.payload);
    ins.bind(4, static_cast<int>(d.reason));
    ins.bind(5, std::string_view(d.detail));
    if (ins.step() != SQLITE_DONE) return db->error("cannot store a DLQ entry");
  }
  for (int64_t id : dlq_remove_) {
    Statement del(db->prepare("DELETE FROM dlq WHERE id = ?"));
    del.bind(1, id);
    if (del.step() != SQLITE_DONE) return db->error("cannot remove a DLQ entry");
    result.dlq_dropped += static_cast<uint64_t>(sqlite3_changes(db->handle()));
  }
  bool dlq_changed = !tx.dlq.empty() || result.dlq_dropped > 0;
  const uint64_t entries = dlq_entries_ + tx.dlq.size() - result.dlq_dropped;
  if (entries > options.dlq_max_entries) {
    dlq_changed = true;
    Statement del(
        db->prepare("DELETE FROM dlq WHERE id IN (SELECT id FROM dlq ORDER BY id LIMIT ?)"));
    del.bind(1, entries - options.dlq_max_entries);
    if (del.step() != SQLITE_DONE) return db->error("cannot bound the DLQ");
    result.dlq_dropped += static_cast<uint64_t>(sqlite3_changes(db->handle()));
  }

  if (tx.journal) {
    Statement up(db->prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('journal', ?)"));
    const std::string pos =
        std::to_string(tx.journal->segment) + ":" + std::to_string(tx.journal->offset);
    up.bind(1, std::string_view(pos));
    if (up.step() != SQLITE_DONE) return db->error("cannot record the journal position");
  }
  if (auto s = record_revision(dlq_changed); !s.ok()) return s.error();
  return result;
}

Status<SinkError> SqliteSink::Impl::write_seq_lines(const Transaction& tx) {
  for (const SeqLineUpdate& u : tx.seq_lines) {
    auto dev = device_id(u.line.site, u.line.device, 0);
    if (!dev.ok()) return dev.error();
    Statement line(db->prepare(
        "INSERT OR REPLACE INTO seq_lines (device_id, max_seq, epochs, retired) VALUES (?, ?, ?, "
        "?)"));
    line.bind(1, dev.value());
    line.bind(2, u.line.max_seq);
    const std::string epochs = sqlite_db::join_numbers(u.line.epochs);
    const std::string retired = sqlite_db::join_numbers(u.line.retired);
    line.bind(3, std::string_view(epochs));
    line.bind(4, std::string_view(retired));
    if (line.step() != SQLITE_DONE) return db->error("cannot record a sequence line");
    if (auto s = mark_changed(dev.value()); !s.ok()) return s.error();
    if (u.replace_holes) {
      Statement del(db->prepare("DELETE FROM seq_holes WHERE device_id = ?"));
      del.bind(1, dev.value());
      if (del.step() != SQLITE_DONE) return db->error("cannot reset sequence holes");
    }
    for (uint64_t first : u.removed) {
      Statement del(db->prepare("DELETE FROM seq_holes WHERE device_id = ? AND first_seq = ?"));
      del.bind(1, dev.value());
      del.bind(2, first);
      if (del.step() != SQLITE_DONE) return db->error("cannot remove a sequence hole");
    }
    for (const SeqHole& h : u.line.holes) {
      Statement ins(db->prepare(
          "INSERT OR REPLACE INTO seq_holes (device_id, first_seq, last_seq, epoch, since_us, "
          "reported_us) VALUES (?, ?, ?, ?, ?, ?)"));
      ins.bind(1, dev.value());
      ins.bind(2, h.first);
      ins.bind(3, h.last);
      ins.bind(4, h.epoch);
      ins.bind(5, h.since_us);
      ins.bind(6, h.reported_us);
      if (ins.step() != SQLITE_DONE) return db->error("cannot record a sequence hole");
    }
  }
  return {};
}

Result<std::optional<JournalPosition>, SinkError> SqliteSink::Impl::journal_position() {
  Statement q(db->prepare("SELECT value FROM meta WHERE key = 'journal'"));
  if (!q.ok()) return db->error("cannot read meta");
  const int rc = q.step();
  if (rc == SQLITE_DONE) return std::optional<JournalPosition>();
  if (rc != SQLITE_ROW) return db->error("cannot read the journal position");
  const std::string v = q.text(0);
  JournalPosition pos;
  if (std::sscanf(v.c_str(), "%lu:%lu", &pos.segment, &pos.offset) != 2) {
    return SinkError{"bad journal position '" + v + "' in meta", false};
  }
  return std::optional<JournalPosition>(pos);
}

Result<uint64_t, SinkError> SqliteSink::Impl::expire(int64_t cutoff_us, int64_t dlq_cutoff_us,
                                                     int64_t key_cutoff_us, uint64_t max_rows) {
  uint64_t removed = 0;
  if (!db->exec("BEGIN IMMEDIATE")) {
    return db->error("cannot begin a transaction");
  }
  auto fail = [&](std::string_view what) {
    SinkError e = db->error(what);
    (void)db->exec("ROLLBACK");  // nothing more to do if it fails
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
    sqlite3_stmt* q = db->prepare(sql.c_str());
    if (!q) return fail("cannot prepare retention");
    int64_t upto = 0;
    {
      Statement u(q);
      u.bind(1, cutoff_us);
      if (u.step() == SQLITE_ROW) upto = u.integer(0);
    }
    if (upto <= 0) continue;
    sql = std::string("DELETE FROM ") + table + " WHERE id <= ? AND id <= (SELECT min(id) FROM " +
          table + ") + ?";
    sqlite3_stmt* del = db->prepare(sql.c_str());
    if (!del) return fail("cannot prepare retention");
    Statement d(del);
    d.bind(1, upto);
    d.bind(2, static_cast<int64_t>(max_rows));
    if (d.step() != SQLITE_DONE) return fail("cannot expire rows");
    const auto n = static_cast<uint64_t>(sqlite3_changes(db->handle()));
    removed += n;
    if (n > max_rows) rows_caught_up = false;  // the chunk was full: more rows to go
  }
  // Dedup keys go only once the rows they point to are gone (never leave rows without their
  // batch, which is how `query` finds them).
  if (rows_caught_up && key_cutoff_us <= cutoff_us) {
    Statement d(db->prepare(
        "DELETE FROM batches WHERE (device_id, epoch, seq) IN (SELECT device_id, epoch, seq "
        "FROM batches WHERE kind IN (0, 1) AND received_us < ? ORDER BY kind, received_us "
        "LIMIT ?)"));
    if (!d.ok()) return fail("cannot prepare retention");
    d.bind(1, key_cutoff_us);
    d.bind(2, static_cast<int64_t>(max_rows));
    if (d.step() != SQLITE_DONE) return fail("cannot expire batch keys");
    removed += static_cast<uint64_t>(sqlite3_changes(db->handle()));
  }
  {
    Statement d(
        db->prepare("DELETE FROM dlq WHERE id IN (SELECT id FROM dlq WHERE received_us < ? "
                    "ORDER BY id LIMIT ?)"));
    d.bind(1, dlq_cutoff_us);
    d.bind(2, static_cast<int64_t>(max_rows));
    if (d.step() != SQLITE_DONE) return fail("cannot expire DLQ entries");
    const auto n = static_cast<uint64_t>(sqlite3_changes(db->handle()));
    removed += n;
    dlq_entries_ -= std::min(dlq_entries_, n);
    if (n > 0) {
      auto s = begin_revision();
      if (s.ok()) s = record_revision(/*dlq_changed=*/true);
      revision_ = 0;
      if (!s.ok()) return fail("cannot record the revision");
    }
  }
  if (!db->exec("COMMIT")) {
    return fail("cannot commit retention");
  }
  return removed;
}

Result<uint64_t, SinkError> SqliteSink::Impl::purge_dlq(const DlqFilter& filter) {
  std::string sql = "DELETE FROM dlq WHERE id IN (SELECT id FROM dlq" +
                    sqlite_db::dlq_where(filter) + " ORDER BY id" +
                    (filter.limit ? " LIMIT " + std::to_string(filter.limit) : "") + ")";
  if (!db->exec("BEGIN IMMEDIATE")) return db->error("cannot begin a transaction");
  auto fail = [&](std::string_view what) {
    SinkError e = db->error(what);
    revision_ = 0;
    (void)db->exec("ROLLBACK");  // nothing more to do if it fails
    return e;
  };
  uint64_t n = 0;
  {
    sqlite3_stmt* s = db->prepare(sql.c_str());
    if (!s) return fail("cannot purge the DLQ");
    Statement q(s);
    sqlite_db::bind_dlq(q, filter);
    if (q.step() != SQLITE_DONE) return fail("cannot purge the DLQ");
    n = static_cast<uint64_t>(sqlite3_changes(db->handle()));
  }
  if (n > 0) {
    if (!begin_revision().ok() || !record_revision(/*dlq_changed=*/true).ok()) {
      return fail("cannot record the revision");
    }
    revision_ = 0;
  }
  if (!db->exec("COMMIT")) return fail("cannot commit the purge");
  dlq_entries_ -= std::min(dlq_entries_, n);
  return n;
}

}  // namespace outpost::collector
