// The agent's store-and-forward queue: an SQLite file (WAL) that every accepted reading and log
// record passes through before it is sent, and every sealed message waits in until it is acked.
//
// Two tables make the queue (docs/agent-store.md):
//   items  - accepted readings and log records, in arrival order, not yet in a message;
//   outbox - messages sealed from items: (epoch, seq) assigned once, encoded payload kept
//            until its delivery completes, so a re-send after a crash carries the same
//            (epoch, seq) and the collector stores it once.
// Every state change is one transaction; no queue state lives outside the file except
// a byte total recomputed at open.
//
// Thread safety: a Store is used by one thread at a time (the agent's store thread).
// Failures come back as Status/Result; nothing throws.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "outpost/common/message.h"
#include "outpost/common/result.h"

struct sqlite3;
struct sqlite3_stmt;

namespace outpost::agent {

enum class Stream : uint8_t { kData = 0, kLogs = 1 };

// What to do when the quota is reached.
enum class DropPolicy : uint8_t {
  kDropOldest,  // evict the oldest data (unsent messages, then queued items) to make room
  kDropNewest,  // refuse what does not fit
};

struct StoreOptions {
  std::string path;                  // the SQLite file; created if missing
  bool full_sync = false;            // synchronous=FULL: survive power loss, slower
  uint64_t max_bytes = 64ull << 20;  // quota for queued items and unsent messages
  int64_t max_age_us = 0;            // drop items older than this; 0 = no limit
  DropPolicy policy = DropPolicy::kDropOldest;
  int cache_kib = 512;  // SQLite page cache, kept small for RSS
};

// One accepted reading or log record.
struct QueueItem {
  int64_t id = 0;  // assigned by the store; 0 before append
  Stream stream = Stream::kData;
  int64_t time_us = 0;
  std::string sensor;     // readings
  std::string unit;       // readings
  common::Value value;    // readings
  common::LogRecord log;  // logs (time_us mirrors log.time_us)

  bool operator==(const QueueItem&) const = default;
};

// A sealed message waiting for its delivery to complete.
struct OutboxMessage {
  int64_t id = 0;
  Stream stream = Stream::kData;
  uint64_t epoch = 0;
  uint64_t seq = 0;
  uint32_t item_count = 0;
  std::vector<uint8_t> payload;
};

struct StoreStats {
  uint64_t queued_items = 0;              // items not yet in a message
  uint64_t outbox_messages = 0;           // sealed, not yet acknowledged
  uint64_t bytes = 0;                     // what counts against max_bytes
  std::optional<int64_t> oldest_time_us;  // oldest queued item
  uint64_t dropped_oldest = 0;            // cumulative, persisted
  uint64_t dropped_newest = 0;
  uint64_t dropped_expired = 0;
  uint32_t store_resets = 0;  // corrupt files moved aside
};

// Result of append(): how many items went in and how many the policy dropped.
struct AppendResult {
  std::size_t accepted = 0;
  std::size_t refused = 0;  // drop_newest: items that did not fit
  std::size_t evicted = 0;  // drop_oldest: older items removed to make room
};

class Store {
 public:
  // Opens (or creates) the store. A file that is not a healthy SQLite database
  // (truncated, corrupt, not SQLite at all) is renamed to "<path>.corrupt-<unix time>",
  // a fresh store is created, and store_resets counts it: the agent keeps working.
  // Fails only if no store can be created at all (directory missing, no permission).
  // `epoch` identifies this run; it is stamped on every message sealed by it.
  static common::Result<std::unique_ptr<Store>> open(const StoreOptions& options, uint64_t epoch);

  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Appends items in one transaction, applying the quota and the drop policy.
  common::Result<AppendResult> append(std::span<const QueueItem> items);

  // The oldest queued items of `stream`, in arrival order, at most `max_items`.
  common::Result<std::vector<QueueItem>> peek(Stream stream, std::size_t max_items);

  // How many items of `stream` are queued, counting no further than `limit`: cheap
  // whatever the backlog, for deciding whether a full batch is waiting.
  common::Result<std::size_t> count(Stream stream, std::size_t limit);

  // Seals the given items into one message: assigns the next sequence number, calls
  // `encode(seq)` for the payload, stores it in the outbox and deletes the items, all in
  // one transaction. The ids must be a leading run of what peek() returned (the oldest
  // items of `stream`, in order); otherwise, or if encode fails, nothing changes.
  using Encoder = std::function<common::Result<std::vector<uint8_t>>(uint64_t seq)>;
  common::Result<OutboxMessage> seal(Stream stream, std::span<const int64_t> item_ids,
                                     const Encoder& encode);

  // Unacknowledged messages in seal order (oldest first), at most `limit`.
  common::Result<std::vector<OutboxMessage>> outbox(std::size_t limit);

  // Delivery of message `id` completed: removes it (by id, so out-of-order
  // completions are fine). Acknowledging an unknown id is not an error.
  common::Status<> acknowledge(int64_t id);

  // Acknowledges every message of `epoch` with first <= seq <= last (end_to_end acks).
  // Returns how many were removed.
  common::Result<std::size_t> acknowledge_range(uint64_t epoch, uint64_t first, uint64_t last);

  // Drops queued items older than max_age_us (no-op without an age limit).
  common::Result<std::size_t> expire(int64_t now_us);

  // Position of a tailed file, persisted with the queue.
  struct TailOffset {
    uint64_t inode = 0;
    uint64_t offset = 0;
  };
  common::Result<std::optional<TailOffset>> tail_offset(const std::string& path);
  common::Status<> set_tail_offset(const std::string& path, TailOffset offset);

  common::Result<StoreStats> stats();

  uint64_t epoch() const { return epoch_; }
  // The last sequence number sealed (in any run); the next seal uses this + 1.
  uint64_t last_seq() const { return last_seq_; }

 private:
  // Statements prepared once and kept (store.cpp has their SQL, in this order).
  enum Query : int {
    kInsertItem,
    kPeek,
    kCount,
    kDeleteItems,
    kInsertOutbox,
    kOutbox,
    kAcknowledge,
    kReadCounter,
    kBumpCounter,
    kStats,
    kBegin,
    kCommit,
    kRollback,
    kCachedQueries
  };

  Store(sqlite3* db, StoreOptions options, uint64_t epoch);
  // The kept statement for `query`, prepared on first use; nullptr if it cannot be.
  sqlite3_stmt* cached(Query query);
  common::Status<> init();
  common::Status<> exec(const char* sql);
  common::Status<> bump_counter(const char* key, uint64_t by);
  common::Result<uint64_t> read_counter(const char* key);
  // Removes the oldest messages, then the oldest items, until `needed` bytes are free.
  common::Result<std::size_t> evict_for(uint64_t needed);

  sqlite3* db_;
  std::array<sqlite3_stmt*, kCachedQueries> cached_{};
  StoreOptions options_;
  uint64_t epoch_;
  uint64_t last_seq_ = 0;
  uint64_t bytes_ = 0;  // mirrors SUM(bytes) of items and outbox; recomputed at open
};

}  // namespace outpost::agent
