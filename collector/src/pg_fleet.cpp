// The shared-mode leader's store over PostgreSQL (PostgresFleetStore), and the writes of
// events, presence and sequence lines the sink and the leader share.
#include <algorithm>
#include <unordered_map>

#include "outpost/collector/postgres.h"
#include "pg_db.h"

namespace outpost::collector {

namespace {

using common::Result;
using common::Status;

std::string num(int64_t v) { return std::to_string(v); }
std::string num(uint64_t v) { return std::to_string(static_cast<int64_t>(v)); }

}  // namespace

namespace pg_db {

Result<int64_t, SinkError> upsert_device(Connection& db, const std::string& site,
                                         const std::string& device, int64_t now_us) {
  // An existing row is only read, never locked (a DO UPDATE would lock it until the commit, and
  // collectors of one shared group that lock devices rows in different orders deadlock).
  auto r =
      db.exec("cannot add device " + device, "SELECT id FROM devices WHERE device = $1", {device});
  if (!r.ok()) return r.error();
  if (r.value().rows() == 0) {
    r = db.exec("cannot add device " + device,
                "INSERT INTO devices (device, site, first_seen_us, last_seen_us) VALUES ($1, $2, "
                "$3, $3) ON CONFLICT (device) DO NOTHING RETURNING id",
                {device, site, num(now_us)});
    if (!r.ok()) return r.error();
  }
  if (r.value().rows() == 0) {  // another collector added it since our first look
    r = db.exec("cannot add device " + device, "SELECT id FROM devices WHERE device = $1",
                {device});
    if (!r.ok()) return r.error();
    if (r.value().rows() == 0) return SinkError{"device " + device + " vanished", true};
  }
  return r.value().integer(0, 0);
}

Status<SinkError> lock_devices(Connection& db, const std::vector<int64_t>& ids,
                               const std::vector<std::string>& names) {
  if (ids.empty() && names.empty()) return {};
  auto r = db.exec("cannot lock the devices rows",
                   "SELECT 1 FROM devices WHERE id = ANY($1::bigint[]) OR device = ANY($2::text[]) "
                   "ORDER BY id FOR NO KEY UPDATE",
                   {pg_db::array_literal(ids), pg_db::text_array_literal(names)});
  if (!r.ok()) return r.error();
  return {};
}

Status<SinkError> write_events(Connection& db, const std::vector<EventItem>& events) {
  for (const EventItem& ev : events) {
    const common::Event& e = ev.event;
    auto r =
        db.exec("cannot store an event",
                "INSERT INTO events (time_us, kind, site, device, sensor, value, threshold, "
                "detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                {num(e.time_us), std::string(common::event_kind_name(e.kind)), e.site, ev.device,
                 e.sensor, pg_db::float_text(e.value), pg_db::float_text(e.threshold), e.detail});
    if (!r.ok()) return r.error();
    if (!ev.device.empty()) {
      // The presence the FleetTracker decided along with this event, and the gap count:
      // the batches reported missing that have not arrived since.
      const bool gap = e.kind == common::EventKind::kDataGap;
      const bool resolved = e.kind == common::EventKind::kDataGapResolved;
      if (gap || resolved || ev.presence) {
        const auto n = static_cast<int64_t>(e.value);
        auto u = db.exec(
            "cannot update a device",
            "UPDATE devices SET gaps = greatest(gaps + $1, 0), state = coalesce($2, state) "
            "WHERE device = $3",
            {num(gap        ? n
                 : resolved ? -n
                            : int64_t{0}),
             ev.presence ? std::optional<std::string>(std::string(presence_name(*ev.presence)))
                         : std::optional<std::string>(),
             ev.device});
        if (!u.ok()) return u.error();
      }
    }
  }

  return {};
}

Status<SinkError> write_seq_lines(
    Connection& db, const std::vector<SeqLineUpdate>& lines,
    const std::function<Result<int64_t, SinkError>(const SeqLineState&)>& device_id) {
  for (const SeqLineUpdate& u : lines) {
    auto dev = device_id(u.line);
    if (!dev.ok()) return dev.error();
    const std::string id = num(dev.value());
    std::vector<int64_t> epochs(u.line.epochs.begin(), u.line.epochs.end());
    std::vector<int64_t> retired(u.line.retired.begin(), u.line.retired.end());
    auto r = db.exec(
        "cannot record a sequence line",
        "INSERT INTO seq_lines (device_id, max_seq, epochs, retired) VALUES ($1, "
        "$2, $3, $4) ON CONFLICT (device_id) DO UPDATE SET max_seq = "
        "EXCLUDED.max_seq, epochs = EXCLUDED.epochs, retired = EXCLUDED.retired",
        {id, num(u.line.max_seq), pg_db::array_literal(epochs), pg_db::array_literal(retired)});
    if (!r.ok()) return r.error();
    if (u.replace_holes) {
      auto d = db.exec("cannot reset sequence holes", "DELETE FROM seq_holes WHERE device_id = $1",
                       {id});
      if (!d.ok()) return d.error();
    }
    if (!u.removed.empty()) {
      std::vector<int64_t> firsts(u.removed.begin(), u.removed.end());
      auto d = db.exec("cannot remove a sequence hole",
                       "DELETE FROM seq_holes WHERE device_id = $1 AND first_seq = ANY($2)",
                       {id, pg_db::array_literal(firsts)});
      if (!d.ok()) return d.error();
    }
    for (const SeqHole& h : u.line.holes) {
      auto i = db.exec(
          "cannot record a sequence hole",
          "INSERT INTO seq_holes (device_id, first_seq, last_seq, epoch, since_us, "
          "reported_us) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (device_id, "
          "first_seq) DO UPDATE SET last_seq = EXCLUDED.last_seq, epoch = "
          "EXCLUDED.epoch, since_us = EXCLUDED.since_us, reported_us = "
          "EXCLUDED.reported_us",
          {id, num(h.first), num(h.last), num(h.epoch), num(h.since_us), num(h.reported_us)});
      if (!i.ok()) return i.error();
    }
  }
  return {};
}

}  // namespace pg_db

struct PostgresFleetStore::Impl {
  PostgresOptions options;
  std::unique_ptr<pg_db::Connection> db;  // holds the lock and runs the rounds
  bool leading = false;
  std::unordered_map<std::string, int64_t> device_ids;  // committed rows only

  bool alive() const { return db && PQstatus(db->handle()) == CONNECTION_OK; }
};

PostgresFleetStore::PostgresFleetStore(PostgresOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
}

PostgresFleetStore::~PostgresFleetStore() = default;  // closing the session frees the lock

Result<bool, SinkError> PostgresFleetStore::try_lead() {
  Impl& m = *impl_;
  if (!m.db) {
    auto db = pg_db::Connection::open(m.options, /*migrate=*/false);
    if (!db.ok()) return db.error();
    m.db = std::move(db).value();
  } else {
    bool reconnected = false;
    if (auto s = m.db->ensure(reconnected); !s.ok()) {
      m.leading = false;
      return s.error();
    }
    if (reconnected) {
      m.leading = false;  // a new session holds nothing
      m.device_ids.clear();
    }
  }
  if (m.leading) return true;
  auto r = m.db->exec("cannot try for the leader lock",
                      "SELECT pg_try_advisory_lock(" + num(pg_db::kLeaderLock) + ")");
  if (!r.ok()) return r.error();
  m.leading = r.value().text(0, 0) == "t";
  return m.leading;
}

bool PostgresFleetStore::still_leading() {
  if (!impl_->alive()) impl_->leading = false;
  return impl_->leading;
}

void PostgresFleetStore::resign() {
  Impl& m = *impl_;
  if (m.alive() && m.leading) {
    m.db->rollback();
    (void)m.db->exec("cannot give up the leader lock",
                     "SELECT pg_advisory_unlock(" + num(pg_db::kLeaderLock) + ")");
  }
  m.leading = false;
}

Result<std::vector<DeviceRow>, SinkError> PostgresFleetStore::restore() {
  // As at start-up (main.cpp): the devices, each with its sequence line.
  auto reader = PostgresReader::open(impl_->options);
  if (!reader.ok()) return reader.error();
  auto devices = reader.value()->devices();
  if (!devices.ok()) return devices.error();
  auto lines = reader.value()->seq_lines();
  if (!lines.ok()) return lines.error();
  std::unordered_map<std::string, DeviceRow*> by_name;
  for (auto& d : devices.value()) by_name[d.device] = &d;
  for (auto& line : lines.value()) {
    if (auto it = by_name.find(line.device); it != by_name.end()) {
      it->second->seq_line = std::move(line);
    }
  }
  return std::move(devices).value();
}

Result<std::vector<FeedRow>, SinkError> PostgresFleetStore::take(std::size_t max_rows,
                                                                 int64_t received_before_us) {
  Impl& m = *impl_;
  if (!m.alive()) return SinkError{"the leader's session is gone", true};
  if (auto b = m.db->exec("cannot begin a round", "BEGIN"); !b.ok()) return b.error();
  auto r = m.db->exec(
      "cannot take the fleet feed",
      "DELETE FROM fleet_feed WHERE id IN (SELECT id FROM fleet_feed WHERE received_us < $1 "
      "ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING id, kind, site, device, epoch, "
      "seq, received_us, stored, state, sensor, value, time_us",
      {num(received_before_us), num(static_cast<uint64_t>(max_rows))});
  if (!r.ok()) return r.error();
  const pg_db::Res& q = r.value();
  std::vector<FeedRow> rows;
  rows.reserve(static_cast<std::size_t>(q.rows()));
  for (int i = 0; i < q.rows(); ++i) {
    FeedRow row;
    row.id = q.integer(i, 0);
    row.kind = static_cast<FeedRow::Kind>(q.integer(i, 1));
    row.site = q.text(i, 2);
    row.device = q.text(i, 3);
    row.epoch = static_cast<uint64_t>(q.integer(i, 4));
    row.seq = static_cast<uint64_t>(q.integer(i, 5));
    row.received_us = q.integer(i, 6);
    row.stored = q.text(i, 7) == "t";
    row.state = static_cast<common::DeviceState>(q.integer(i, 8));
    row.sensor = q.text(i, 9);
    row.value = q.real(i, 10);
    row.time_us = q.integer(i, 11);
    rows.push_back(std::move(row));
  }
  return rows;
}

Status<SinkError> PostgresFleetStore::commit(const FleetCommit& derived) {
  Impl& m = *impl_;
  if (!m.alive()) return SinkError{"the leader's session is gone", true};
  std::vector<std::pair<std::string, int64_t>> added;  // cached once the round commits
  auto device_id = [&](const SeqLineState& line) -> Result<int64_t, SinkError> {
    if (auto it = m.device_ids.find(line.device); it != m.device_ids.end()) return it->second;
    auto id = pg_db::upsert_device(*m.db, line.site, line.device, 0);
    if (id.ok()) added.emplace_back(line.device, id.value());
    return id;
  };
  // Lines first: they make a devices row the events and presence below update if none is there.
  if (auto s = pg_db::write_seq_lines(*m.db, derived.seq_lines, device_id); !s.ok()) {
    return s.error();
  }
  std::vector<std::string> touched;
  for (const EventItem& ev : derived.events) {
    if (!ev.device.empty()) touched.push_back(ev.device);
  }
  for (const auto& entry : derived.presence) touched.push_back(entry.first);
  if (auto s = pg_db::lock_devices(*m.db, {}, touched); !s.ok()) return s.error();
  if (auto s = pg_db::write_events(*m.db, derived.events); !s.ok()) return s.error();
  // The last presence each device's statuses gave it.
  std::unordered_map<std::string, Presence> presence;
  for (const auto& [device, p] : derived.presence) presence[device] = p;
  for (const auto& [device, p] : presence) {
    auto r =
        m.db->exec("cannot store a presence", "UPDATE devices SET state = $1 WHERE device = $2",
                   {std::string(presence_name(p)), device});
    if (!r.ok()) return r.error();
  }
  if (auto c = m.db->exec("cannot commit a round", "COMMIT"); !c.ok()) return c.error();
  for (auto& [device, id] : added) m.device_ids.emplace(std::move(device), id);
  return {};
}

void PostgresFleetStore::abort() {
  if (impl_->alive()) impl_->db->rollback();
}

}  // namespace outpost::collector
