// The store-and-forward queue as core code sees it: its plain types and the three small
// interfaces the agent's loops use. Store (store.h) implements all three over SQLite; tests use
// the in-memory fake in tests/support/fake_queue.h.
//
// Every method may fail (disk full, I/O error, a corrupt page): failures come back as
// Status/Result, nothing throws. Implementations are used by one thread at a time.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "outpost/common/message.h"
#include "outpost/common/result.h"

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

// Position of a tailed file, persisted with the queue.
struct TailOffset {
  uint64_t inode = 0;
  uint64_t offset = 0;
};

// Builds the payload of the message that gets sequence number `seq`.
using Encoder = std::function<common::Result<std::vector<uint8_t>>(uint64_t seq)>;

// The send loop's view of sealed messages (Delivery, delivery.h).
class Outbox {
 public:
  virtual ~Outbox() = default;

  // Unacknowledged messages in seal order (oldest first), at most `limit`.
  virtual common::Result<std::vector<OutboxMessage>> outbox(std::size_t limit) = 0;

  // Delivery of message `id` completed: removes it. An unknown id is not an error.
  virtual common::Status<> acknowledge(int64_t id) = 0;

  // Removes every message of `epoch` with first <= seq <= last (commit acks); returns how many.
  virtual common::Result<std::size_t> acknowledge_range(uint64_t epoch, uint64_t first,
                                                        uint64_t last) = 0;
};

// The send loop's view of queued items: how many wait, and sealing them into a message.
class ItemQueue {
 public:
  virtual ~ItemQueue() = default;

  // How many items of `stream` are queued, counting no further than `limit` (cheap).
  virtual common::Result<std::size_t> count(Stream stream, std::size_t limit) = 0;

  // The oldest queued items of `stream`, in arrival order, at most `max_items`.
  virtual common::Result<std::vector<QueueItem>> peek(Stream stream, std::size_t max_items) = 0;

  // Seals a leading run of what peek() returned into one outbox message with the next
  // sequence number, in one transaction; on any failure nothing changes.
  virtual common::Result<OutboxMessage> seal(Stream stream, std::span<const int64_t> item_ids,
                                             const Encoder& encode) = 0;
};

// The flush's view: received items go in, in one transaction, under the quota and policy.
class ItemSink {
 public:
  virtual ~ItemSink() = default;

  virtual common::Result<AppendResult> append(std::span<const QueueItem> items) = 0;

  // Drops queued items older than the age limit (no-op without one); returns how many.
  virtual common::Result<std::size_t> expire(int64_t now_us) = 0;

  virtual common::Status<> set_tail_offset(const std::string& path, TailOffset offset) = 0;
};

// Queue operations whose failures are counted (metric outpost_agent_store_errors_total{op}).
enum class StoreOp : uint8_t {
  kAppend,       // received items could not be persisted: they are lost
  kExpire,       // the age limit could not be applied
  kAcknowledge,  // a delivered message stays queued (sent again after a restart)
  kCommitAck,    // acknowledge_range: acked end_to_end messages stay queued and go again
  kSeal,         // a due batch stays queued; sealing is tried again on the next tick
  kReadOutbox,   // unsent messages could not be read back; tried again on the next tick
  kReadItems,    // count/peek: a batch is not sealed until more input arrives
  kTailOffset,   // a tailed file's position was not saved or read: lines may come twice
  kStats,        // queue figures missing from the status message or metrics
};
inline constexpr std::array kAllStoreOps = {
    StoreOp::kAppend,    StoreOp::kExpire,     StoreOp::kAcknowledge,
    StoreOp::kCommitAck, StoreOp::kSeal,       StoreOp::kReadOutbox,
    StoreOp::kReadItems, StoreOp::kTailOffset, StoreOp::kStats};

// "append", "expire", "acknowledge", "commit_ack", "seal", "read_outbox", "read_items",
// "tail_offset", "stats": the op label's values.
std::string_view store_op_name(StoreOp op);

// Failure counts by operation.
struct StoreErrors {
  std::array<uint64_t, kAllStoreOps.size()> by_op{};

  void add(StoreOp op) { ++by_op[static_cast<std::size_t>(op)]; }
  uint64_t operator[](StoreOp op) const { return by_op[static_cast<std::size_t>(op)]; }
};

}  // namespace outpost::agent
