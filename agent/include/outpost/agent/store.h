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

#include "outpost/agent/queue.h"
#include "outpost/common/message.h"
#include "outpost/common/result.h"

struct sqlite3;
struct sqlite3_stmt;

namespace outpost::agent {

// Implements the queue interfaces of queue.h, where its plain types (QueueItem, ...) live.
class Store final : public Outbox, public ItemQueue, public ItemSink {
 public:
  // Opens (or creates) the store. A file that is not a healthy SQLite database
  // (truncated, corrupt, not SQLite at all) is renamed to "<path>.corrupt-<unix time>",
  // a fresh store is created, and store_resets counts it: the agent keeps working.
  // Fails only if no store can be created at all (directory missing, no permission).
  // `epoch` identifies this run; it is stamped on every message sealed by it.
  static common::Result<std::unique_ptr<Store>> open(const StoreOptions& options, uint64_t epoch);

  ~Store() override;
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Appends items in one transaction, applying the quota and the drop policy.
  common::Result<AppendResult> append(std::span<const QueueItem> items) override;

  // The oldest queued items of `stream`, in arrival order, at most `max_items`.
  common::Result<std::vector<QueueItem>> peek(Stream stream, std::size_t max_items) override;

  // How many items of `stream` are queued, counting no further than `limit`: cheap
  // whatever the backlog, for deciding whether a full batch is waiting.
  common::Result<std::size_t> count(Stream stream, std::size_t limit) override;

  // Seals the given items into one message: assigns the next sequence number, calls
  // `encode(seq)` for the payload, stores it in the outbox and deletes the items, all in
  // one transaction. The ids must be a leading run of what peek() returned (the oldest
  // items of `stream`, in order); otherwise, or if encode fails, nothing changes.
  using Encoder = std::function<common::Result<std::vector<uint8_t>>(uint64_t seq)>;
  common::Result<OutboxMessage> seal(Stream stream, std::span<const int64_t> item_ids,
                                     const Encoder& encode) override;

  // Unacknowledged messages in seal order (oldest first), at most `limit`.
  common::Result<std::vector<OutboxMessage>> outbox(std::size_t limit) override;

  // Delivery of message `id` completed: removes it (by id, so out-of-order
  // completions are fine). Acknowledging an unknown id is not an error.
  common::Status<> acknowledge(int64_t id) override;

  // Acknowledges every message of `epoch` with first <= seq <= last (end_to_end acks).
  // Returns how many were removed.
  common::Result<std::size_t> acknowledge_range(uint64_t epoch, uint64_t first,
                                                uint64_t last) override;

  // Drops queued items older than max_age_us (no-op without an age limit).
  common::Result<std::size_t> expire(int64_t now_us) override;

  // Position of a tailed file, persisted with the queue.
  using TailOffset = agent::TailOffset;
  common::Result<std::optional<TailOffset>> tail_offset(const std::string& path);
  common::Status<> set_tail_offset(const std::string& path, TailOffset offset) override;

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
