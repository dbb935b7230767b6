// The collector's storage decisions: which queued messages share a transaction, when it
// commits, how a failing commit is retried, isolated or given up, and what is handed on after
// a commit (acks, events, webhooks, the journal position). Pure logic over small interfaces
// and an injected clock; the service (collector.cpp) supplies Paho, SQLite and the journal.
//
// Guarantees it carries:
// - A message is acked, its events published and its journal position released only after the
//   transaction holding it committed. A batch already stored (a re-send) is acked again.
// - Each transaction carries the FleetTracker's sequence lines as its messages and events left
//   them, and the data_gap_resolved events of the late batches it stores (docs/events.md): gap
//   detection restarts from exactly what was committed.
// - A transient failure (busy, locked, disk full) is retried with backoff (50 ms doubling to
//   5 s) for as long as it takes: nothing is dropped.
// - A permanent failure, kPermanentFailureAttempts times in a row, is isolated: the messages
//   are committed one by one, the one the store refuses goes to the DLQ as storage_rejected,
//   the rest is stored, and the journal position is committed last.
// - At shutdown a commit that keeps failing gives up after kShutdownAttempts: the journal still
//   holds its messages (its position is not released), so the next start replays them.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "outpost/collector/config.h"
#include "outpost/collector/counters.h"
#include "outpost/collector/fleet.h"
#include "outpost/collector/ingest.h"
#include "outpost/collector/rules.h"
#include "outpost/collector/sink.h"
#include "outpost/collector/webhook.h"
#include "outpost/common/logging.h"
#include "outpost/common/message.h"
#include "outpost/common/result.h"

namespace outpost::collector {

// One classified message, and the journal position just after it (none when its journal
// write failed: then it is stored but cannot move the position).
struct StorageWork {
  Classified item;
  std::optional<JournalPosition> journal;
};

// Time as the storage loop sees it. wall_us() may be called from any thread (webhook
// give-ups stamp their DLQ entry with it); the rest from the loop's thread only.
class StorageClock {
 public:
  virtual ~StorageClock() = default;
  // Unix microseconds: receive times of DLQ entries, retention cutoffs, reading latency.
  virtual int64_t wall_us() = 0;
  // Monotonic: commit interval, the fleet tick, the retention schedule, rate-limited logs.
  virtual std::chrono::steady_clock::time_point steady() = 0;
  // The wait between two attempts of a failing commit.
  virtual void sleep_for(std::chrono::milliseconds d) = 0;
};

// The real clocks and std::this_thread::sleep_for.
class SystemStorageClock final : public StorageClock {
 public:
  int64_t wall_us() override;
  std::chrono::steady_clock::time_point steady() override;
  void sleep_for(std::chrono::milliseconds d) override;
};

// Where the storage thread takes its messages from (the bounded queue the MQTT thread fills).
// Called from the loop's thread only.
class WorkSource {
 public:
  virtual ~WorkSource() = default;
  // The next message, waiting until `deadline` at most (a StorageClock::steady() time);
  // nullopt on timeout, or at once when drained().
  virtual std::optional<StorageWork> pop_until(std::chrono::steady_clock::time_point deadline) = 0;
  // True once no message will come any more (closed for shutdown and empty).
  virtual bool drained() = 0;
};

// The MQTT connection acks and events go out on. Called from the loop's thread only.
class Publisher {
 public:
  virtual ~Publisher() = default;
  virtual bool connected() = 0;
  // Hands `bytes` to the connection at QoS 1, not retained. An error means it is not sent
  // (the loop counts it as skipped); must not throw.
  virtual common::Status<> publish(const std::string& topic, const std::vector<uint8_t>& bytes) = 0;
};

// Encodes `envelope` and hands it to `publisher` (QoS 1, not retained): how the storage loop
// and the fleet leader publish. What is not sent (publisher down, refused, not encodable) is
// counted (publish_skipped, encode_failures) and logged through `log`; true once handed over.
bool publish_envelope(Publisher& publisher, const std::string& topic,
                      const common::Envelope& envelope, Counters& counters,
                      common::RateLimiter& log, std::chrono::steady_clock::time_point now);

// Where committed events go besides MQTT: the webhook dispatcher. Loop's thread only.
class EventForwarder {
 public:
  virtual ~EventForwarder() = default;
  // Queues `event` for delivery; never blocks on the network. What cannot be delivered comes
  // back through StorageLoop::webhook_gave_up, from any thread.
  virtual void post(std::string_view device, const common::Event& event) = 0;
  // Called once, at the end of StorageLoop::run(): deliveries in flight get their grace
  // period; those left are handed back (webhook_gave_up) before stop() returns.
  virtual void stop() = 0;
};

// The raw-message journal's one storage-side operation. Loop's thread only.
class JournalRelease {
 public:
  virtual ~JournalRelease() = default;
  // Everything before `committed` is in the database: its segments may go.
  virtual void release(JournalPosition committed) = 0;
};

// The storage thread's logic. Owns the FleetTracker (if any) and the RuleEngine; borrows the rest,
// which must outlive it. One thread calls add(), flush(), journal_position() and run() (the
// start-up thread for the journal replay, then the storage thread); begin_shutdown() and
// webhook_gave_up() may be called from any thread.
class StorageLoop {
 public:
  static constexpr int kPermanentFailureAttempts = 3;  // then isolate the poison message
  static constexpr int kShutdownAttempts = 20;         // at shutdown: then give up (journal keeps)
  static constexpr int64_t kBackoffStartMs = 50;       // retry backoff, doubling...
  static constexpr int64_t kBackoffMaxMs = 5000;       // ...up to this
  static constexpr uint64_t kRetentionChunkRows = 50'000;  // rows per expire() between commits

  // `fleet` comes seeded with what the database remembers of each device. Without one (shared
  // mode: several collectors on one database, fleet_leader.h) the loop only stores, acks and
  // releases the journal: no fleet events, no sequence lines, no threshold rules, no tick; the
  // FleetLeader decides those. `journal` and `webhooks` may be null (no journal, no webhook
  // configured).
  StorageLoop(const CollectorConfig& config, std::optional<FleetTracker> fleet, Sink& sink,
              StorageClock& clock, Counters& counters, JournalRelease* journal,
              EventForwarder* webhooks);

  StorageLoop(const StorageLoop&) = delete;
  StorageLoop& operator=(const StorageLoop&) = delete;

  // From here on, commits publish acks and events on `publisher` (until then they publish
  // nothing: the journal replay at start runs before the broker connection exists). Call
  // before run() starts.
  void attach_publisher(Publisher& publisher) { publisher_ = &publisher; }

  // The journal position recorded by the last commit that had one (where replay starts).
  common::Result<std::optional<JournalPosition>, SinkError> journal_position() {
    return sink_.journal_position();
  }

  // Adds one message (and the fleet events it raises) to the open transaction; commits it
  // once it holds commit_max_messages.
  void add(StorageWork work);

  // Commits the open transaction, if it holds anything (or a journal position).
  void flush();

  // The storage thread: takes messages from `source` until it is drained, committing every
  // commit_interval_us or commit_max_messages, ticking the fleet once a second (its events and
  // webhook give-ups committed at once) and running retention in bounded chunks between
  // commits. Then commits what is left, stops the webhooks and stores what they hand back.
  void run(WorkSource& source);

  // Shutdown has begun: a commit that keeps failing gives up after kShutdownAttempts.
  void begin_shutdown() { stopping_ = true; }

  // A webhook delivery that will not be attempted again: stored in the DLQ (webhook_gave_up)
  // with the next transaction. Any thread; never blocks long.
  void webhook_gave_up(WebhookGaveUp gave_up);

 private:
  // Commits `tx`, retrying with backoff; a permanent failure goes to isolate_failure. Leaves
  // `tx` empty.
  void commit(Transaction& tx);
  void isolate_failure(Transaction& tx, const std::string& error);
  void count_commit(const Transaction& tx, const CommitResult& result, int64_t took_us);
  void after_commit(const Transaction& tx);
  bool publish(const std::string& topic, const common::Envelope& envelope);
  void observe_latencies(const Transaction& tx, const CommitResult& result);
  std::vector<EventItem> evaluate_rules(const Transaction& tx, const CommitResult& result);
  bool take_gave_up(Transaction& tx);
  void tick();
  // Runs one retention chunk (kRetentionChunkRows at most); returns when the next is due.
  std::chrono::steady_clock::time_point expire(std::chrono::steady_clock::time_point now);
  void encode_failed(std::string_view what, std::string_view detail);

  const CollectorConfig config_;
  std::optional<FleetTracker> fleet_;  // none in shared mode
  RuleEngine rules_;
  Sink& sink_;
  StorageClock& clock_;
  Counters& counters_;
  JournalRelease* journal_;
  EventForwarder* webhooks_;
  Publisher* publisher_ = nullptr;

  Transaction tx_;      // the open transaction
  uint32_t in_tx_ = 0;  // messages added to it
  uint64_t epoch_ = 0;  // of the acks and events we publish
  uint64_t event_seq_ = 0;
  std::atomic<bool> stopping_{false};
  std::mutex gave_up_mutex_;
  std::vector<DlqItem> gave_up_;  // webhook deliveries given up, not yet in a transaction

  common::RateLimiter dlq_log_{10, std::chrono::seconds(10)};
  common::RateLimiter publish_log_{3, std::chrono::seconds(30)};
  common::RateLimiter encode_log_{3, std::chrono::seconds(30)};
  common::RateLimiter isolate_log_{10, std::chrono::seconds(30)};
};

}  // namespace outpost::collector
