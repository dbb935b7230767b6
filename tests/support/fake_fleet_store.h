// A fake of the shared-mode leader's store (collector::FleetStore): FakeFleetDb is the database
// every collector shares (the fleet feed, the leader lock, devices with their presence and
// sequence lines, the events stored); each FakeFleetStore is one collector's session on it,
// with failure switches: commits that fail transiently or for good, a lock that is lost, a
// session that dies in the middle of a round.
#pragma once

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "outpost/collector/fleet_leader.h"

namespace outpost::test_support {

class FakeFleetStore;

class FakeFleetDb {
 public:
  // Feed rows as collectors' sinks write them; ids in the order of the calls.
  void batch(std::string device, uint64_t epoch, uint64_t seq, int64_t received_us,
             bool stored = true, std::string site = "lab") {
    collector::FeedRow r;
    r.kind = collector::FeedRow::Kind::kBatch;
    r.site = std::move(site);
    r.device = std::move(device);
    r.epoch = epoch;
    r.seq = seq;
    r.received_us = received_us;
    r.stored = stored;
    add(std::move(r));
  }
  void status(std::string device, common::DeviceState state, int64_t received_us,
              std::string site = "lab") {
    collector::FeedRow r;
    r.kind = collector::FeedRow::Kind::kStatus;
    r.site = std::move(site);
    r.device = std::move(device);
    r.state = state;
    r.received_us = received_us;
    add(std::move(r));
  }
  void dlq(int64_t received_us) {
    collector::FeedRow r;
    r.kind = collector::FeedRow::Kind::kDlq;
    r.received_us = received_us;
    add(std::move(r));
  }
  void reading(std::string device, std::string sensor, double value, int64_t time_us,
               int64_t received_us, std::string site = "lab") {
    collector::FeedRow r;
    r.kind = collector::FeedRow::Kind::kReading;
    r.site = std::move(site);
    r.device = std::move(device);
    r.sensor = std::move(sensor);
    r.value = value;
    r.time_us = time_us;
    r.received_us = received_us;
    add(std::move(r));
  }
  void add(collector::FeedRow r) {
    r.id = ++last_id_;
    feed.push_back(std::move(r));
  }

  // A device as the database remembers it (what a restore returns).
  void remember(collector::DeviceRow d) { devices[d.device] = std::move(d); }

  std::vector<collector::FeedRow> feed;                 // not consumed yet
  std::map<std::string, collector::DeviceRow> devices;  // seq_line set once one is stored
  std::vector<collector::EventItem> events;             // stored, in commit order
  const FakeFleetStore* lock_holder = nullptr;
  int commits = 0;

  std::vector<common::EventKind> kinds() const {
    std::vector<common::EventKind> out;
    for (const auto& e : events) out.push_back(e.event.kind);
    return out;
  }
  std::size_t count(common::EventKind kind, const std::string& device = "") const {
    return static_cast<std::size_t>(std::count_if(events.begin(), events.end(), [&](auto& e) {
      return e.event.kind == kind && (device.empty() || e.device == device);
    }));
  }

 private:
  friend class FakeFleetStore;
  void apply(const collector::FleetCommit& c, const std::vector<int64_t>& consumed) {
    std::erase_if(feed, [&](const collector::FeedRow& r) {
      return std::find(consumed.begin(), consumed.end(), r.id) != consumed.end();
    });
    for (const auto& e : c.events) {
      events.push_back(e);
      if (e.presence && devices.contains(e.device)) devices[e.device].presence = *e.presence;
    }
    for (const auto& [device, p] : c.presence) device_row(device, "lab").presence = p;
    for (const auto& u : c.seq_lines) {
      collector::DeviceRow& d = device_row(u.line.device, u.line.site);
      if (!d.seq_line) d.seq_line = collector::SeqLineState{};
      collector::SeqLineState& s = *d.seq_line;
      std::vector<collector::SeqHole> holes =
          u.replace_holes ? std::vector<collector::SeqHole>{} : s.holes;
      std::erase_if(holes, [&](const collector::SeqHole& h) {
        if (std::find(u.removed.begin(), u.removed.end(), h.first) != u.removed.end()) return true;
        return std::any_of(u.line.holes.begin(), u.line.holes.end(),
                           [&](const collector::SeqHole& n) { return n.first == h.first; });
      });
      for (const auto& h : u.line.holes) holes.push_back(h);
      std::sort(holes.begin(), holes.end(),
                [](const auto& a, const auto& b) { return a.first < b.first; });
      s = u.line;
      s.holes = std::move(holes);
    }
    ++commits;
  }
  collector::DeviceRow& device_row(const std::string& device, const std::string& site) {
    auto it = devices.find(device);
    if (it == devices.end()) {
      collector::DeviceRow d;
      d.device = device;
      d.site = site;
      it = devices.emplace(device, std::move(d)).first;
    }
    return it->second;
  }

  int64_t last_id_ = 0;
};

// One collector's session on a FakeFleetDb.
class FakeFleetStore final : public collector::FleetStore {
 public:
  explicit FakeFleetStore(FakeFleetDb& db) : db_(db) {}
  ~FakeFleetStore() override {
    if (db_.lock_holder == this) db_.lock_holder = nullptr;
  }

  // Failure switches.
  int fail_transient = 0;      // the next this many commits fail (transient); nothing is stored
  int fail_permanent = 0;      // the next this many commits fail (not transient)
  bool down = false;           // the database cannot be reached: try_lead and restore fail
  bool die_in_commit = false;  // the next commit finds the session dead: lock gone, no commit
  // The session is gone (its lock with it), as when the server closes the connection.
  void lose_lock() {
    if (db_.lock_holder == this) db_.lock_holder = nullptr;
    session_alive_ = false;
  }

  int tries = 0, restores = 0, takes = 0, commits = 0, aborts = 0;
  std::vector<std::size_t> taken_sizes;

  common::Result<bool, collector::SinkError> try_lead() override {
    ++tries;
    if (down) return collector::SinkError{"fake: cannot connect", true};
    session_alive_ = true;
    if (db_.lock_holder == nullptr) db_.lock_holder = this;
    return db_.lock_holder == this;
  }
  bool still_leading() override { return session_alive_ && db_.lock_holder == this; }
  void resign() override {
    if (db_.lock_holder == this) db_.lock_holder = nullptr;
  }
  common::Result<std::vector<collector::DeviceRow>, collector::SinkError> restore() override {
    ++restores;
    if (down) return collector::SinkError{"fake: cannot connect", true};
    std::vector<collector::DeviceRow> out;
    for (const auto& [name, d] : db_.devices) out.push_back(d);
    return out;
  }
  common::Result<std::vector<collector::FeedRow>, collector::SinkError> take(
      std::size_t max_rows, int64_t received_before_us) override {
    ++takes;
    if (!still_leading()) return collector::SinkError{"fake: session gone", true};
    taken_.clear();
    std::vector<collector::FeedRow> rows;
    for (const auto& r : db_.feed) {
      if (rows.size() == max_rows) break;
      if (r.received_us >= received_before_us) continue;
      rows.push_back(r);
      taken_.push_back(r.id);
    }
    taken_sizes.push_back(rows.size());
    std::reverse(rows.begin(), rows.end());  // "in any order": the leader must sort them
    return rows;
  }
  common::Status<collector::SinkError> commit(const collector::FleetCommit& derived) override {
    if (die_in_commit) {
      die_in_commit = false;
      lose_lock();
      return collector::SinkError{"fake: server closed the connection", true};
    }
    if (!still_leading()) return collector::SinkError{"fake: session gone", true};
    if (fail_transient > 0) {
      --fail_transient;
      return collector::SinkError{"fake: could not serialize access", true};
    }
    if (fail_permanent > 0) {
      --fail_permanent;
      return collector::SinkError{"fake: value too long", false};
    }
    ++commits;
    db_.apply(derived, taken_);
    taken_.clear();
    return {};
  }
  void abort() override {
    ++aborts;
    taken_.clear();
  }

 private:
  FakeFleetDb& db_;
  bool session_alive_ = false;
  std::vector<int64_t> taken_;
};

}  // namespace outpost::test_support
