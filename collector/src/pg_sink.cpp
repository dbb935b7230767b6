// The PostgreSQL sink: one transaction per batch of messages, exactly-once per (device, epoch,
// seq) by claiming the keys first, then binary COPY of only the new batches' rows.
#include <algorithm>
#include <cstdio>
#include <map>
#include <set>
#include <unordered_map>

#include "outpost/collector/postgres.h"
#include "outpost/common/clock.h"
#include "outpost/common/json.h"
#include "pg_db.h"
#include "stored_json.h"

namespace outpost::collector {

namespace {

using common::Result;
using common::Status;
using pg_db::Params;

std::string num(int64_t v) { return std::to_string(v); }
std::string num(uint64_t v) { return std::to_string(static_cast<int64_t>(v)); }

}  // namespace

struct PostgresSink::Impl {
  std::unique_ptr<pg_db::Connection> db;
  PostgresOptions options;
  std::unordered_map<std::string, int64_t> device_ids;
  struct Sensor {
    int64_t id;
    std::string unit;
  };
  std::unordered_map<std::string, Sensor> sensor_ids;  // key: device id, '\0', name
  std::set<int64_t> partition_days;                    // days whose partitions exist
  // readings and logs, those of them partitioned natively (by us): a table an operator made a
  // TimescaleDB hypertable is left to its own retention (docs/storage.md).
  std::vector<std::string> partitioned;
  std::vector<int64_t> dlq_remove;
  uint64_t dlq_entries = 0;

  void forget_caches() {
    device_ids.clear();
    sensor_ids.clear();
    partition_days.clear();
  }
  Status<SinkError> find_partitioned() {
    auto r = db->exec("cannot inspect the schema",
                      "SELECT relname FROM pg_class WHERE relkind = 'p' AND oid IN "
                      "('readings'::regclass, 'logs'::regclass) ORDER BY relname DESC");
    if (!r.ok()) return r.error();
    partitioned.clear();
    for (int i = 0; i < r.value().rows(); ++i) partitioned.push_back(r.value().text(i, 0));
    return {};
  }
  bool native(std::string_view table) const {
    return std::find(partitioned.begin(), partitioned.end(), table) != partitioned.end();
  }
  Status<SinkError> connected() {
    bool reconnected = false;
    auto s = db->ensure(reconnected);
    if (reconnected) forget_caches();
    return s;
  }
  Result<int64_t, SinkError> device_id(const std::string& site, const std::string& device,
                                       int64_t now_us);
  static std::string sensor_key(int64_t device, const std::string& name) {
    std::string key = std::to_string(device);
    key += '\0';
    key += name;
    return key;
  }
  bool known_sensor(int64_t device, const std::string& name, std::string_view unit) const;
  Result<int64_t, SinkError> sensor_id(int64_t device, const std::string& name,
                                       std::string_view unit);
  Status<SinkError> ensure_partition(int64_t received_us, std::set<int64_t>& created);
  Result<CommitResult, SinkError> write(const Transaction& tx, std::set<int64_t>& created);
  Status<SinkError> write_feed(const Transaction& tx, const CommitResult& result);
  Result<CommitResult, SinkError> commit(const Transaction& tx);
  Result<uint64_t, SinkError> expire(int64_t cutoff_us, int64_t dlq_cutoff_us,
                                     int64_t key_cutoff_us, uint64_t max_rows);
};

PostgresSink::PostgresSink(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PostgresSink::~PostgresSink() = default;

Result<std::unique_ptr<PostgresSink>, SinkError> PostgresSink::open(
    const PostgresOptions& options) {
  auto db = pg_db::Connection::open(options, /*migrate=*/true);
  if (!db.ok()) return db.error();
  auto impl = std::make_unique<Impl>();
  impl->db = std::move(db).value();
  impl->options = options;
  auto n = impl->db->exec("cannot count the DLQ", "SELECT count(*) FROM dlq");
  if (!n.ok()) return n.error();
  impl->dlq_entries = static_cast<uint64_t>(n.value().integer(0, 0));
  if (auto p = impl->find_partitioned(); !p.ok()) return p.error();
  // Today's partitions and those of the days ahead, before the first row needs them.
  const int64_t today = pg_db::day_of(common::wall_now_us());
  for (int64_t d = today; !impl->partitioned.empty() && d <= today + options.partitions_ahead_days;
       ++d) {
    auto p = impl->db->exec("cannot create partitions",
                            pg_db::create_partitions_sql(d, impl->partitioned));
    if (!p.ok()) return p.error();
    impl->partition_days.insert(d);
  }
  return std::unique_ptr<PostgresSink>(new PostgresSink(std::move(impl)));
}

Result<CommitResult, SinkError> PostgresSink::commit(const Transaction& tx) {
  return impl_->commit(tx);
}

Result<uint64_t, SinkError> PostgresSink::expire(int64_t cutoff_us, int64_t dlq_cutoff_us,
                                                 int64_t key_cutoff_us, uint64_t max_rows) {
  return impl_->expire(cutoff_us, dlq_cutoff_us, key_cutoff_us, max_rows);
}

void PostgresSink::remove_dlq_on_next_commit(std::vector<int64_t> ids) {
  impl_->dlq_remove = std::move(ids);
}

Result<std::optional<JournalPosition>, SinkError> PostgresSink::journal_position() {
  if (auto s = impl_->connected(); !s.ok()) return s.error();
  auto r = impl_->db->exec("cannot read the journal position",
                           "SELECT value FROM meta WHERE key = 'journal'");
  if (!r.ok()) return r.error();
  if (r.value().rows() == 0) return std::optional<JournalPosition>();
  const std::string v = r.value().text(0, 0);
  JournalPosition pos;
  if (std::sscanf(v.c_str(), "%lu:%lu", &pos.segment, &pos.offset) != 2) {
    return SinkError{"bad journal position '" + v + "' in meta", false};
  }
  return std::optional<JournalPosition>(pos);
}

Result<uint64_t, SinkError> PostgresSink::purge_dlq(const DlqFilter& filter) {
  if (auto s = impl_->connected(); !s.ok()) return s.error();
  Params params;
  const std::string where = pg_db::dlq_where(filter, params);
  std::string sql = "WITH gone AS (DELETE FROM dlq WHERE id IN (SELECT id FROM dlq" + where +
                    " ORDER BY id" +
                    (filter.limit ? " LIMIT " + std::to_string(filter.limit) : "") +
                    ") RETURNING 1) SELECT count(*) FROM gone";
  auto r = impl_->db->exec("cannot purge the DLQ", sql, params);
  if (!r.ok()) return r.error();
  const auto n = static_cast<uint64_t>(r.value().integer(0, 0));
  impl_->dlq_entries -= std::min(impl_->dlq_entries, n);
  return n;
}

Result<int64_t, SinkError> PostgresSink::Impl::device_id(const std::string& site,
                                                         const std::string& device,
                                                         int64_t now_us) {
  if (auto it = device_ids.find(device); it != device_ids.end()) return it->second;
  auto r = pg_db::upsert_device(*db, site, device, now_us);
  if (!r.ok()) return r.error();
  device_ids.emplace(device, r.value());
  return r.value();
}

bool PostgresSink::Impl::known_sensor(int64_t device, const std::string& name,
                                      std::string_view unit) const {
  auto it = sensor_ids.find(sensor_key(device, name));
  return it != sensor_ids.end() && (unit.empty() || it->second.unit == unit);
}

Result<int64_t, SinkError> PostgresSink::Impl::sensor_id(int64_t device, const std::string& name,
                                                         std::string_view unit) {
  std::string key = sensor_key(device, name);
  auto it = sensor_ids.find(key);
  if (it != sensor_ids.end() && (unit.empty() || it->second.unit == unit)) return it->second.id;
  // The unit a sensor reports last is the one shown; values are stored as sent.
  auto r = db->exec("cannot add sensor " + name,
                    "INSERT INTO sensors (device_id, name, unit) VALUES ($1, $2, $3) ON CONFLICT "
                    "(device_id, name) DO UPDATE SET unit = CASE WHEN EXCLUDED.unit <> '' THEN "
                    "EXCLUDED.unit ELSE sensors.unit END RETURNING id, unit",
                    {num(device), name, std::string(unit)});
  if (!r.ok()) return r.error();
  const int64_t id = r.value().integer(0, 0);
  sensor_ids[key] = Sensor{id, r.value().text(0, 1)};
  return id;
}

Status<SinkError> PostgresSink::Impl::ensure_partition(int64_t received_us,
                                                       std::set<int64_t>& created) {
  const int64_t day = pg_db::day_of(received_us);
  if (partition_days.contains(day) || created.contains(day)) return {};
  if (partitioned.empty()) return {};
  auto r = db->exec("cannot create a partition", pg_db::create_partitions_sql(day, partitioned));
  if (!r.ok()) return r.error();
  created.insert(day);  // known once the transaction commits
  return {};
}

Result<CommitResult, SinkError> PostgresSink::Impl::commit(const Transaction& tx) {
  if (auto s = connected(); !s.ok()) return s.error();
  if (auto b = db->exec("cannot begin a transaction", "BEGIN"); !b.ok()) return b.error();
  std::set<int64_t> created;
  auto result = write(tx, created);
  if (result.ok()) {
    auto c = db->exec("cannot commit", "COMMIT");
    if (c.ok()) {
      dlq_entries += tx.dlq.size();
      dlq_entries -= std::min<uint64_t>(dlq_entries, result.value().dlq_dropped);
      dlq_remove.clear();
      partition_days.insert(created.begin(), created.end());
      return result;
    }
    result = c.error();
  }
  SinkError e = result.error();
  db->rollback();
  // Ids cached during the rolled-back transaction may not exist: forget them all.
  device_ids.clear();
  sensor_ids.clear();
  return e;
}

Result<CommitResult, SinkError> PostgresSink::Impl::write(const Transaction& tx,
                                                          std::set<int64_t>& created) {
  CommitResult result;
  result.outcomes.assign(tx.batches.size(), BatchOutcome::kDuplicate);
  struct Tally {
    int64_t last_seen_us = 0;
    int64_t last_data_us = 0;  // of the reading batches stored (duplicates do not count)
    uint64_t epoch = 0;
    uint64_t readings = 0, logs = 0, batches = 0, duplicates = 0;
  };
  std::map<int64_t, Tally> tallies;

  // 1. Claim the keys. A key twice in this transaction is claimed by its first copy.
  std::vector<int64_t> dev_of(tx.batches.size());
  std::vector<std::size_t> claimed;  // indexes into tx.batches, first copies only
  {
    std::set<std::tuple<int64_t, uint64_t, uint64_t>> seen;
    std::vector<int64_t> devs, epochs, seqs, kinds, rows, mins, maxs, received;
    std::vector<std::string> synced;
    for (std::size_t i = 0; i < tx.batches.size(); ++i) {
      const BatchItem& item = tx.batches[i];
      const common::Envelope& env = item.envelope;
      auto dev = device_id(item.site, env.device_id, item.received_us);
      if (!dev.ok()) return dev.error();
      dev_of[i] = dev.value();
      Tally& tally = tallies[dev.value()];
      tally.last_seen_us = std::max(tally.last_seen_us, item.received_us);
      if (!seen.emplace(dev.value(), env.epoch, env.seq).second) continue;
      int64_t min_t = INT64_MAX, max_t = INT64_MIN, n = 0;
      int kind = pg_db::kReadingsKind;
      bool time_synced = false;
      if (const auto* batch = std::get_if<common::ReadingBatch>(&env.body)) {
        for (const auto& r : batch->readings) {
          min_t = std::min(min_t, r.time_us);
          max_t = std::max(max_t, r.time_us);
        }
        n = static_cast<int64_t>(batch->readings.size());
        time_synced = batch->time_synced;
      } else if (const auto* logs = std::get_if<common::LogBatch>(&env.body)) {
        kind = pg_db::kLogsKind;
        for (const auto& r : logs->records) {
          min_t = std::min(min_t, r.time_us);
          max_t = std::max(max_t, r.time_us);
        }
        n = static_cast<int64_t>(logs->records.size());
        time_synced = logs->time_synced;
      }
      if (min_t > max_t) min_t = max_t = 0;
      claimed.push_back(i);
      devs.push_back(dev.value());
      epochs.push_back(static_cast<int64_t>(env.epoch));
      seqs.push_back(static_cast<int64_t>(env.seq));
      kinds.push_back(kind);
      rows.push_back(n);
      mins.push_back(min_t);
      maxs.push_back(max_t);
      received.push_back(item.received_us);
      synced.push_back(time_synced ? "t" : "f");
    }
    if (!claimed.empty()) {
      std::string synced_literal = "{";
      for (std::size_t i = 0; i < synced.size(); ++i) {
        synced_literal += (i ? "," : "") + synced[i];
      }
      synced_literal += "}";
      auto r = db->exec(
          "cannot claim batch keys",
          "INSERT INTO batches (device_id, epoch, seq, kind, rows, min_time_us, max_time_us, "
          "received_us, time_synced) SELECT * FROM unnest($1::bigint[], $2::bigint[], "
          "$3::bigint[], $4::smallint[], $5::integer[], $6::bigint[], $7::bigint[], $8::bigint[], "
          "$9::boolean[]) ON CONFLICT DO NOTHING RETURNING device_id, epoch, seq, batch_id",
          {pg_db::array_literal(devs), pg_db::array_literal(epochs), pg_db::array_literal(seqs),
           pg_db::array_literal(kinds), pg_db::array_literal(rows), pg_db::array_literal(mins),
           pg_db::array_literal(maxs), pg_db::array_literal(received), synced_literal});
      if (!r.ok()) return r.error();
      std::map<std::tuple<int64_t, int64_t, int64_t>, int64_t> batch_ids;
      for (int row = 0; row < r.value().rows(); ++row) {
        batch_ids.emplace(std::tuple{r.value().integer(row, 0), r.value().integer(row, 1),
                                     r.value().integer(row, 2)},
                          r.value().integer(row, 3));
      }
      // 2. The sensors of the new batches the cache does not know yet, in (device, name) order:
      // collectors adding the same new sensors at once then take their locks in one order and
      // never deadlock.
      std::map<std::pair<int64_t, std::string>, std::string> new_sensors;  // -> unit
      for (std::size_t k = 0; k < claimed.size(); ++k) {
        if (!batch_ids.count(std::tuple{devs[k], epochs[k], seqs[k]})) continue;
        const auto* batch =
            std::get_if<common::ReadingBatch>(&tx.batches[claimed[k]].envelope.body);
        if (!batch) continue;
        for (std::size_t s = 0; s < batch->sensor_names.size(); ++s) {
          const std::string_view unit = batch->unit_of(static_cast<uint32_t>(s));
          if (!known_sensor(devs[k], batch->sensor_names[s], unit)) {
            new_sensors[{devs[k], batch->sensor_names[s]}] = std::string(unit);
          }
        }
      }
      for (const auto& [key, unit] : new_sensors) {
        if (auto id = sensor_id(key.first, key.second, unit); !id.ok()) return id.error();
      }
      // 3. Only the new batches' rows, in one binary COPY per table.
      std::string readings, logs;
      std::vector<int64_t> sensor_ids;
      for (std::size_t k = 0; k < claimed.size(); ++k) {
        const std::size_t i = claimed[k];
        const BatchItem& item = tx.batches[i];
        const common::Envelope& env = item.envelope;
        auto it = batch_ids.find(std::tuple{devs[k], epochs[k], seqs[k]});
        if (it == batch_ids.end()) continue;  // stored before: a duplicate
        const int64_t batch_id = it->second;
        result.outcomes[i] = BatchOutcome::kStored;
        Tally& tally = tallies[devs[k]];
        ++tally.batches;
        tally.epoch = env.epoch;
        if (auto s = ensure_partition(item.received_us, created); !s.ok()) return s.error();
        if (const auto* batch = std::get_if<common::ReadingBatch>(&env.body)) {
          sensor_ids.assign(batch->sensor_names.size(), 0);
          for (std::size_t s = 0; s < batch->sensor_names.size(); ++s) {
            auto id = sensor_id(devs[k], batch->sensor_names[s],
                                batch->unit_of(static_cast<uint32_t>(s)));
            if (!id.ok()) return id.error();
            sensor_ids[s] = id.value();
          }
          for (const common::Reading& r : batch->readings) {
            pg_db::put16(readings, 8);
            pg_db::put_int64_field(readings, item.received_us);
            pg_db::put_int64_field(readings, batch_id);
            pg_db::put_int64_field(readings, sensor_ids[r.sensor]);
            pg_db::put_int64_field(readings, r.time_us);
            int type = pg_db::kDouble;
            if (const double* d = std::get_if<double>(&r.value)) {
              pg_db::put_double_field(readings, *d);
              pg_db::put_null_field(readings);
            } else if (const int64_t* n = std::get_if<int64_t>(&r.value)) {
              pg_db::put_null_field(readings);
              pg_db::put_int64_field(readings, *n);
              type = pg_db::kInteger;
            } else if (const bool* b = std::get_if<bool>(&r.value)) {
              pg_db::put_null_field(readings);
              pg_db::put_int64_field(readings, *b ? 1 : 0);
              type = pg_db::kBool;
            } else {
              pg_db::put_null_field(readings);
              pg_db::put_null_field(readings);
              type = pg_db::kString;
            }
            pg_db::put_int16_field(readings, static_cast<int16_t>(type));
            if (type == pg_db::kString) {
              pg_db::put_field(readings, std::get<std::string>(r.value));
            } else {
              pg_db::put_null_field(readings);
            }
          }
          tally.last_data_us = std::max(tally.last_data_us, item.received_us);
          tally.readings += batch->readings.size();
          result.readings_stored += batch->readings.size();
        } else if (const auto* lb = std::get_if<common::LogBatch>(&env.body)) {
          for (const common::LogRecord& rec : lb->records) {
            pg_db::put16(logs, 7);
            pg_db::put_int64_field(logs, item.received_us);
            pg_db::put_int64_field(logs, batch_id);
            pg_db::put_int64_field(logs, devs[k]);
            pg_db::put_int64_field(logs, rec.time_us);
            pg_db::put_int16_field(logs, static_cast<int16_t>(rec.severity));
            pg_db::put_field(logs, rec.message);
            pg_db::put_field(logs, fields_json(rec.fields));
          }
          tally.logs += lb->records.size();
          result.logs_stored += lb->records.size();
        }
      }
      if (!readings.empty()) {
        auto s = db->copy_in("cannot store readings",
                             "COPY readings (received_us, batch_id, sensor_id, time_us, value, "
                             "value_int, type, value_text) FROM STDIN (FORMAT binary)",
                             readings);
        if (!s.ok()) return s.error();
      }
      if (!logs.empty()) {
        auto s = db->copy_in("cannot store log records",
                             "COPY logs (received_us, batch_id, device_id, time_us, severity, "
                             "message, fields) FROM STDIN (FORMAT binary)",
                             logs);
        if (!s.ok()) return s.error();
      }
    }
  }
  for (std::size_t i = 0; i < tx.batches.size(); ++i) {
    if (result.outcomes[i] == BatchOutcome::kDuplicate) ++tallies[dev_of[i]].duplicates;
  }

  // 4. The devices' counters, in one statement: in shared mode this collector's own rows of
  // device_counts (no other collector writes them), else the devices rows. In shared mode the
  // devices rows a status or an event updates are locked first, in one order.
  if (options.fleet_feed) {
    std::vector<int64_t> ids;
    for (const StatusItem& st : tx.statuses) {
      auto dev = device_id(st.site, st.device, st.received_us);
      if (!dev.ok()) return dev.error();
      ids.push_back(dev.value());
    }
    std::vector<std::string> names;
    for (const EventItem& ev : tx.events) {
      if (!ev.device.empty()) names.push_back(ev.device);
    }
    if (auto s = pg_db::lock_devices(*db, ids, names); !s.ok()) return s.error();
  }
  if (!tallies.empty()) {
    std::vector<int64_t> ids, seen, data, readings, logs, batches, dups, epochs;
    for (const auto& [id, t] : tallies) {
      ids.push_back(id);
      seen.push_back(t.last_seen_us);
      data.push_back(t.last_data_us);
      readings.push_back(static_cast<int64_t>(t.readings));
      logs.push_back(static_cast<int64_t>(t.logs));
      batches.push_back(static_cast<int64_t>(t.batches));
      dups.push_back(static_cast<int64_t>(t.duplicates));
      epochs.push_back(static_cast<int64_t>(t.epoch));
    }
    Params params = {pg_db::array_literal(ids),      pg_db::array_literal(seen),
                     pg_db::array_literal(readings), pg_db::array_literal(logs),
                     pg_db::array_literal(batches),  pg_db::array_literal(dups),
                     pg_db::array_literal(epochs),   pg_db::array_literal(data)};
    constexpr const char* kTallies =
        "unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], "
        "$6::bigint[], $7::bigint[], $8::bigint[]) AS t(id, seen, readings, logs, batches, dups, "
        "epoch, data)";
    std::string sql;
    if (options.fleet_feed) {
      params.push_back(options.member);
      sql = std::string(
                "INSERT INTO device_counts (device_id, member, last_seen_us, last_data_us, epoch, "
                "readings, logs, batches, duplicates) SELECT t.id, $9, t.seen, t.data, t.epoch, "
                "t.readings, t.logs, t.batches, t.dups FROM ") +
            kTallies +
            " ON CONFLICT (device_id, member) DO UPDATE SET last_seen_us = "
            "greatest(device_counts.last_seen_us, EXCLUDED.last_seen_us), last_data_us = "
            "greatest(device_counts.last_data_us, EXCLUDED.last_data_us), readings = "
            "device_counts.readings + EXCLUDED.readings, logs = device_counts.logs + "
            "EXCLUDED.logs, batches = device_counts.batches + EXCLUDED.batches, duplicates = "
            "device_counts.duplicates + EXCLUDED.duplicates, epoch = CASE WHEN EXCLUDED.epoch <> "
            "0 THEN EXCLUDED.epoch ELSE device_counts.epoch END";
    } else {
      sql = std::string(
                "UPDATE devices d SET last_seen_us = greatest(d.last_seen_us, t.seen), "
                "last_data_us = greatest(d.last_data_us, t.data), readings = d.readings + "
                "t.readings, logs = d.logs + t.logs, batches = d.batches + t.batches, duplicates "
                "= d.duplicates + t.dups, epoch = CASE WHEN t.epoch <> 0 THEN t.epoch ELSE "
                "d.epoch END FROM ") +
            kTallies + " WHERE d.id = t.id";
    }
    auto r =
        db->exec(options.fleet_feed ? "cannot update the device counts" : "cannot update devices",
                 sql, params);
    if (!r.ok()) return r.error();
  }

  for (const StatusItem& st : tx.statuses) {
    auto dev = device_id(st.site, st.device, st.received_us);
    if (!dev.ok()) return dev.error();
    // The presence the FleetTracker gives a status (presence_of); none leaves it as it was. In
    // shared mode the leader stores it, in the order it decides (a late commit here of an older
    // status must not overwrite a newer one).
    const std::optional<Presence> p =
        options.fleet_feed ? std::nullopt : presence_of(st.status.state);
    auto r = db->exec("cannot update a device status",
                      "UPDATE devices SET state = coalesce($1, state), last_status = $2, "
                      "last_seen_us = greatest(last_seen_us, $3) WHERE id = $4",
                      {p ? std::optional<std::string>(std::string(presence_name(*p)))
                         : std::optional<std::string>(),
                       status_json(st.status), num(st.received_us), num(dev.value())});
    if (!r.ok()) return r.error();
  }

  if (auto s = pg_db::write_events(*db, tx.events); !s.ok()) return s.error();
  if (auto s = pg_db::write_seq_lines(
          *db, tx.seq_lines,
          [&](const SeqLineState& line) { return device_id(line.site, line.device, 0); });
      !s.ok()) {
    return s.error();
  }
  if (options.fleet_feed) {
    if (auto s = write_feed(tx, result); !s.ok()) return s.error();
  }

  for (const DlqItem& d : tx.dlq) {
    // bytea in hex text form: any bytes, NUL included.
    std::string hex = "\\x";
    static constexpr char kDigits[] = "0123456789abcdef";
    for (unsigned char c : d.payload) {
      hex += kDigits[c >> 4];
      hex += kDigits[c & 15];
    }
    auto r = db->exec(
        "cannot store a DLQ entry",
        "INSERT INTO dlq (received_us, topic, payload, reason, detail) VALUES ($1, "
        "$2, $3, $4, $5)",
        {num(d.received_us), d.topic, hex, std::to_string(static_cast<int>(d.reason)), d.detail});
    if (!r.ok()) return r.error();
  }
  if (!dlq_remove.empty()) {
    auto r = db->exec("cannot remove DLQ entries",
                      "WITH gone AS (DELETE FROM dlq WHERE id = ANY($1::bigint[]) RETURNING 1) "
                      "SELECT count(*) FROM gone",
                      {pg_db::array_literal(dlq_remove)});
    if (!r.ok()) return r.error();
    result.dlq_dropped += static_cast<uint64_t>(r.value().integer(0, 0));
  }
  const uint64_t entries = dlq_entries + tx.dlq.size() - result.dlq_dropped;
  if (entries > options.dlq_max_entries) {
    auto r = db->exec("cannot bound the DLQ",
                      "WITH gone AS (DELETE FROM dlq WHERE id IN (SELECT id FROM dlq ORDER BY id "
                      "LIMIT $1) RETURNING 1) SELECT count(*) FROM gone",
                      {num(entries - options.dlq_max_entries)});
    if (!r.ok()) return r.error();
    result.dlq_dropped += static_cast<uint64_t>(r.value().integer(0, 0));
  }

  if (tx.journal) {
    auto r =
        db->exec("cannot record the journal position",
                 "INSERT INTO meta (key, value) VALUES ('journal', $1) ON CONFLICT (key) DO "
                 "UPDATE SET value = EXCLUDED.value",
                 {std::to_string(tx.journal->segment) + ":" + std::to_string(tx.journal->offset)});
    if (!r.ok()) return r.error();
  }
  return result;
}

Status<SinkError> PostgresSink::Impl::write_feed(const Transaction& tx,
                                                 const CommitResult& result) {
  // One row per message (and per reading a rule watches), in one binary COPY. Statuses first:
  // a burst's messages share their receive time, and a birth belongs before the data after it.
  std::string rows;
  auto row = [&rows](FeedRow::Kind kind, std::string_view site, std::string_view device,
                     uint64_t epoch, uint64_t seq, int64_t received_us, bool stored, int state,
                     std::string_view sensor, double value, int64_t time_us) {
    pg_db::put16(rows, 11);
    pg_db::put_int16_field(rows, static_cast<int16_t>(kind));
    pg_db::put_field(rows, site);
    pg_db::put_field(rows, device);
    pg_db::put_int64_field(rows, static_cast<int64_t>(epoch));
    pg_db::put_int64_field(rows, static_cast<int64_t>(seq));
    pg_db::put_int64_field(rows, received_us);
    pg_db::put_field(rows, std::string_view(stored ? "\1" : "\0", 1));
    pg_db::put_int16_field(rows, static_cast<int16_t>(state));
    pg_db::put_field(rows, sensor);
    pg_db::put_double_field(rows, value);
    pg_db::put_int64_field(rows, time_us);
  };
  for (const StatusItem& st : tx.statuses) {
    row(FeedRow::Kind::kStatus, st.site, st.device, 0, 0, st.received_us, false,
        static_cast<int>(st.status.state), "", 0, 0);
  }
  const auto& sensors = options.feed_sensors;
  for (std::size_t i = 0; i < tx.batches.size(); ++i) {
    const BatchItem& item = tx.batches[i];
    const common::Envelope& env = item.envelope;
    const bool stored = i < result.outcomes.size() && result.outcomes[i] == BatchOutcome::kStored;
    row(FeedRow::Kind::kBatch, item.site, env.device_id, env.epoch, env.seq, item.received_us,
        stored, 0, "", 0, 0);
    const auto* batch = std::get_if<common::ReadingBatch>(&env.body);
    if (!stored || !batch || sensors.empty()) continue;
    for (const common::Reading& r : batch->readings) {
      if (r.sensor >= batch->sensor_names.size()) continue;
      const std::string& name = batch->sensor_names[r.sensor];
      if (std::find(sensors.begin(), sensors.end(), name) == sensors.end()) continue;
      double value;
      if (const auto* d = std::get_if<double>(&r.value)) {
        value = *d;
      } else if (const auto* n = std::get_if<int64_t>(&r.value)) {
        value = static_cast<double>(*n);
      } else {
        continue;  // bools and strings have no threshold
      }
      row(FeedRow::Kind::kReading, item.site, env.device_id, 0, 0, item.received_us, true, 0, name,
          value, r.time_us);
    }
  }
  for (const DlqItem& d : tx.dlq) {
    // What classification dead-lettered (as the FleetTracker's on_dlq counts it), not what the
    // collector added later (webhook give-ups, messages the store refused).
    if (d.reason == common::Reason::kWebhookGaveUp ||
        d.reason == common::Reason::kStorageRejected) {
      continue;
    }
    row(FeedRow::Kind::kDlq, "", "", 0, 0, d.received_us, false, 0, "", 0, 0);
  }
  if (rows.empty()) return {};
  return db->copy_in("cannot write the fleet feed",
                     "COPY fleet_feed (kind, site, device, epoch, seq, received_us, stored, "
                     "state, sensor, value, time_us) FROM STDIN (FORMAT binary)",
                     rows);
}

Result<uint64_t, SinkError> PostgresSink::Impl::expire(int64_t cutoff_us, int64_t dlq_cutoff_us,
                                                       int64_t key_cutoff_us, uint64_t max_rows) {
  if (auto s = connected(); !s.ok()) return s.error();
  uint64_t removed = 0;
  // Each step is its own statement (autocommit): a partition dropped stays dropped.
  auto parts = db->exec("cannot list partitions",
                        "SELECT p.relname, i.inhparent::regclass::text FROM pg_inherits i "
                        "JOIN pg_class p ON p.oid = i.inhrelid WHERE i.inhparent IN "
                        "('readings'::regclass, 'logs'::regclass)");
  if (!parts.ok()) return parts.error();
  int64_t oldest_kept_day = INT64_MAX;
  for (int row = 0; row < parts.value().rows(); ++row) {
    const std::string name = parts.value().text(row, 0);
    const std::string table = parts.value().text(row, 1);
    const auto day = pg_db::partition_day(table, name);
    if (!day) continue;  // not one of ours (an operator's): left alone
    if ((*day + 1) * pg_db::kDayUs > cutoff_us) {
      oldest_kept_day = std::min(oldest_kept_day, *day);
      continue;
    }
    // What it held, from the ledger (an index range, not a scan of the partition).
    auto n = db->exec(
        "cannot count a partition",
        "SELECT coalesce(sum(rows), 0) FROM batches WHERE kind = $1 AND received_us >= $2 AND "
        "received_us < $3",
        {table == "readings" ? "0" : "1", num(*day * pg_db::kDayUs),
         num((*day + 1) * pg_db::kDayUs)});
    if (!n.ok()) return n.error();
    auto d = db->exec("cannot drop partition " + name, "DROP TABLE IF EXISTS " + name);
    if (!d.ok()) return d.error();
    removed += static_cast<uint64_t>(n.value().integer(0, 0));
    partition_days.erase(*day);
  }
  // Batch keys go only once the rows they point to are gone (never leave rows without their
  // batch, which is how `query` finds them): before the oldest partition still there.
  int64_t key_limit = std::min(key_cutoff_us, cutoff_us);
  if (oldest_kept_day != INT64_MAX) {
    key_limit = std::min(key_limit, oldest_kept_day * pg_db::kDayUs);
  }
  // Keys of readings stored in a table we do not partition stay: we cannot know their rows
  // are gone.
  const std::string kinds = native("readings") ? "(0, 1)" : "(1)";
  auto k = db->exec("cannot expire batch keys",
                    "WITH gone AS (DELETE FROM batches WHERE ctid IN (SELECT ctid FROM batches "
                    "WHERE kind IN " +
                        kinds +
                        " AND received_us < $1 LIMIT $2) RETURNING 1) "
                        "SELECT count(*) FROM gone",
                    {num(key_limit), num(max_rows)});
  if (!k.ok()) return k.error();
  removed += static_cast<uint64_t>(k.value().integer(0, 0));
  auto q = db->exec("cannot expire DLQ entries",
                    "WITH gone AS (DELETE FROM dlq WHERE id IN (SELECT id FROM dlq WHERE "
                    "received_us < $1 ORDER BY id LIMIT $2) RETURNING 1) SELECT count(*) FROM gone",
                    {num(dlq_cutoff_us), num(max_rows)});
  if (!q.ok()) return q.error();
  const auto n = static_cast<uint64_t>(q.value().integer(0, 0));
  removed += n;
  dlq_entries -= std::min(dlq_entries, n);
  // The days ahead, so that no commit waits on a CREATE TABLE.
  const int64_t today = pg_db::day_of(common::wall_now_us());
  for (int64_t d = today; !partitioned.empty() && d <= today + options.partitions_ahead_days; ++d) {
    if (partition_days.contains(d)) continue;
    auto p = db->exec("cannot create partitions", pg_db::create_partitions_sql(d, partitioned));
    if (!p.ok()) return p.error();
    partition_days.insert(d);
  }
  return removed;
}

}  // namespace outpost::collector
