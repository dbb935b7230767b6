// Several collectors on one database (shared mode: mqtt.shared_group with PostgreSQL): the one
// collector that decides presence, silence, gaps, restarts, the DLQ rate and threshold rules
// for the whole fleet. Pure logic over a FleetStore and a StorageClock; the PostgreSQL adapter
// is PostgresFleetStore (postgres.h), the fake FakeFleetStore (tests/support). docs/storage.md,
// "Several collectors on one database".
//
// Every collector's sink writes, in the transaction that stores a message, one fleet feed row
// saying what the fleet logic needs of it (FeedRow). Whichever collector holds the leader lock
// takes those rows in rounds: one store transaction takes (deletes) a bounded number of rows,
// and stores the events, sequence lines and presence they lead to; consumption and derived state
// commit together or not at all. A leader that dies mid-round leaves its rows to the next
// leader, which restores exactly the committed state.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "outpost/collector/counters.h"
#include "outpost/collector/fleet.h"
#include "outpost/collector/reader.h"
#include "outpost/collector/rules.h"
#include "outpost/collector/sink.h"
#include "outpost/collector/storage_loop.h"
#include "outpost/common/logging.h"
#include "outpost/common/result.h"

namespace outpost::collector {

// One fleet feed row: what the fleet logic needs of one stored message (or of one reading a
// threshold rule watches).
struct FeedRow {
  enum class Kind : uint8_t { kBatch = 0, kStatus = 1, kDlq = 2, kReading = 3 };
  int64_t id = 0;  // the order rows are fed in
  Kind kind = Kind::kBatch;
  std::string site;    // "" for kDlq
  std::string device;  // "" for kDlq
  uint64_t epoch = 0;  // kBatch
  uint64_t seq = 0;    // kBatch
  int64_t received_us = 0;
  bool stored = false;                                            // kBatch: false = a duplicate
  common::DeviceState state = common::DeviceState::kUnspecified;  // kStatus
  std::string sensor;                                             // kReading
  double value = 0;                                               // kReading
  int64_t time_us = 0;                                            // kReading: the reading's time
};

// What one leader round stores, with the deletion of the rows it took.
struct FleetCommit {
  std::vector<EventItem> events;
  std::vector<SeqLineUpdate> seq_lines;
  // The presence status messages gave their devices, in feed order (the last one wins).
  std::vector<std::pair<std::string, Presence>> presence;
};

// The leader's store. One thread (the leader thread) calls it.
class FleetStore {
 public:
  virtual ~FleetStore() = default;
  // Tries to become the leader (takes the lock without waiting): true when this store holds it
  // now. A store that cannot reach its database answers false (or an error).
  virtual common::Result<bool, SinkError> try_lead() = 0;
  // Whether the lock is still held (the session that holds it is alive).
  virtual bool still_leading() = 0;
  // Gives the lock up (shutdown, or a leader that cannot restore).
  virtual void resign() = 0;
  // What the database remembers of each device, with its sequence line, as at start-up.
  virtual common::Result<std::vector<DeviceRow>, SinkError> restore() = 0;
  // Opens the round's transaction and takes up to `max_rows` feed rows received before
  // `received_before_us` (the oldest ids first), in any order; they are gone only once commit()
  // succeeds.
  virtual common::Result<std::vector<FeedRow>, SinkError> take(std::size_t max_rows,
                                                               int64_t received_before_us) = 0;
  // Stores `derived` and the deletion of the rows take() returned, and commits.
  virtual common::Status<SinkError> commit(const FleetCommit& derived) = 0;
  // Rolls the round back (the rows stay for the next round); nothing else changes.
  virtual void abort() = 0;
};

struct FleetLeaderOptions {
  FleetOptions fleet;
  std::vector<ThresholdRule> rules;
  std::chrono::milliseconds round_interval{200};  // between two rounds while leading
  std::chrono::milliseconds try_interval{1000};   // between two attempts to become leader
  std::size_t max_rows = 5000;                    // feed rows per round
  // A round takes the rows received at least this long ago, and its time (tick, silence, the
  // gap grace) is now minus this: the collectors' commits that are still under way (each one's
  // commit_interval, and the commit) have landed by then, so rows are fed in the order they were
  // received whichever collector stored them. What it adds to the latency of fleet events.
  std::chrono::milliseconds settle{700};
  bool publish_events = true;
  std::string client_id = "outpost-collector";  // the sender of fleet-wide events
};

// The leader's decisions. One thread calls step() (or run()); stop() from any thread.
class FleetLeader {
 public:
  // A permanent failure of a round this many times in a row: its rows are dropped.
  static constexpr int kPermanentFailureAttempts = 3;

  // `webhooks` may be null. `counters` gets the events this leader raises and publishes.
  FleetLeader(FleetLeaderOptions options, FleetStore& store, StorageClock& clock,
              Counters& counters, EventForwarder* webhooks);

  FleetLeader(const FleetLeader&) = delete;
  FleetLeader& operator=(const FleetLeader&) = delete;

  // Committed events are published on `publisher` from then on (a Publisher of this thread's
  // own: StorageLoop's is not shared). Call before run().
  void attach_publisher(Publisher& publisher) { publisher_ = &publisher; }

  // One step: as a candidate, try for the lock when due and restore on gaining it; as the
  // leader, check the lock and run one round when due. Returns when the next step is due
  // (a StorageClock::steady() time).
  std::chrono::steady_clock::time_point step();

  // Steps until stop(), sleeping on the clock in between (at most 100 ms at a time), then
  // resigns.
  void run();
  void stop() { stopping_ = true; }

  // Any thread (the metrics page reads them).
  bool leading() const { return leading_; }
  uint64_t rounds() const { return rounds_; }  // committed
  uint64_t restores() const { return restores_; }

 private:
  bool restore();
  void round();
  void lose(const char* why);
  void after_commit(const std::vector<EventItem>& events);
  bool publish(const std::string& topic, const common::Envelope& envelope);

  FleetLeaderOptions options_;
  FleetStore& store_;
  StorageClock& clock_;
  Counters& counters_;
  EventForwarder* webhooks_;
  Publisher* publisher_ = nullptr;

  std::optional<FleetTracker> fleet_;  // restored: the committed state, plus this round
  std::optional<RuleEngine> rules_;    // in memory; a new leader starts with every rule cleared
  std::atomic<bool> leading_{false};
  int permanent_failures_ = 0;
  std::chrono::steady_clock::time_point next_;
  std::atomic<uint64_t> rounds_{0};
  std::atomic<uint64_t> restores_{0};
  uint64_t epoch_ = 0;  // of the events we publish
  uint64_t event_seq_ = 0;
  std::atomic<bool> stopping_{false};
  common::RateLimiter failure_log_{3, std::chrono::seconds(30)};
  common::RateLimiter publish_log_{3, std::chrono::seconds(30)};
};

}  // namespace outpost::collector
