// The storage sink: what the collector hands to a database, one transaction at a time.
//
// The collector's storage thread is the only caller. SQLite is the built-in implementation
// (sqlite_sink.h); a PostgreSQL sink (libpq, COPY) can implement the same interface without
// touching ingest. Exactly-once storage is the sink's job: it must store a (device, epoch,
// seq) batch at most once, in the same transaction as its readings, however often the
// batch is handed to it (keyed per batch, not per reading: see docs/storage.md).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "outpost/collector/presence.h"
#include "outpost/common/message.h"
#include "outpost/common/reason.h"
#include "outpost/common/result.h"

namespace outpost::collector {

// Where the raw-message journal stands: everything before it is in the database.
struct JournalPosition {
  uint64_t segment = 0;
  uint64_t offset = 0;

  auto operator<=>(const JournalPosition&) const = default;
};

// A decoded, validated data or logs message.
struct BatchItem {
  std::string site;
  common::Envelope envelope;  // body is ReadingBatch or LogBatch
  int64_t received_us = 0;
};

// A device status (birth, offline, last will): updates the devices table.
struct StatusItem {
  std::string site;
  std::string device;
  common::DeviceStatus status;
  int64_t received_us = 0;
};

struct DlqItem {
  std::string topic;
  std::string payload;  // raw bytes as received
  int64_t received_us = 0;
  common::Reason reason = common::Reason::kNotDecodable;
  std::string detail;
};

struct EventItem {
  std::string device;  // "" for fleet-wide events
  common::Event event;
  // The device's presence from this event on, when the FleetTracker changed it for a reason
  // other than a status message (a status stores its own presence: presence_of()).
  std::optional<Presence> presence = std::nullopt;
};

// A run of sequence numbers a device sent that the collector has not received (fleet.h,
// docs/events.md): open until its data_gap event, then reported until it fills.
struct SeqHole {
  uint64_t first = 0;
  uint64_t last = 0;        // inclusive
  uint64_t epoch = 0;       // of the batch that revealed it (the one just above it)
  int64_t since_us = 0;     // when it was first seen: the grace runs from here
  int64_t reported_us = 0;  // when its data_gap event was raised; 0 = still open

  bool operator==(const SeqHole&) const = default;
};

// A device's sequence line as the FleetTracker keeps it: the highest seq received, the epochs
// that share the line (seq carries on across boots) and its holes. Read back at start
// (Reader::seq_lines) so that gap detection survives a restart of the collector.
struct SeqLineState {
  std::string device;
  std::string site;
  uint64_t max_seq = 0;
  std::vector<uint64_t> epochs;   // of this line, oldest first
  std::vector<uint64_t> retired;  // of lines before a sequence counter reset: ignored
  std::vector<SeqHole> holes;     // ordered by first
};

// What changed in a device's line since the last commit: stored with the commit whose batches
// and events changed it, so that the stored line always matches the stored batches.
struct SeqLineUpdate {
  SeqLineState line;                   // device, site, max_seq, epochs, retired; holes: changed
  bool replace_holes = false;          // every stored hole goes first (a counter reset)
  std::vector<uint64_t> removed = {};  // firsts of holes that are gone (filled or forgotten)
};

// One storage transaction: all of it is stored, or none of it.
struct Transaction {
  std::vector<BatchItem> batches;
  std::vector<StatusItem> statuses;
  std::vector<DlqItem> dlq;
  std::vector<EventItem> events;
  std::optional<JournalPosition> journal;  // recorded with the rest when set
  std::vector<SeqLineUpdate> seq_lines;    // the FleetTracker's lines after this transaction

  bool empty() const {
    return batches.empty() && statuses.empty() && dlq.empty() && events.empty() &&
           seq_lines.empty();
  }
};

// What a commit did with each batch, in the order of Transaction::batches.
enum class BatchOutcome : uint8_t { kStored, kDuplicate };

struct CommitResult {
  std::vector<BatchOutcome> outcomes;
  uint64_t readings_stored = 0;
  uint64_t logs_stored = 0;
  uint64_t dlq_dropped = 0;  // old DLQ entries removed to keep within its bounds
};

struct SinkError {
  std::string message;
  bool transient = false;  // busy, locked, disk full: try again later; nothing was stored
};

class Sink {
 public:
  virtual ~Sink() = default;

  // Stores `tx` atomically. On failure nothing of it is stored.
  virtual common::Result<CommitResult, SinkError> commit(const Transaction& tx) = 0;

  // The journal position recorded by the last commit that had one.
  virtual common::Result<std::optional<JournalPosition>, SinkError> journal_position() = 0;

  // Removes readings and logs received before `cutoff_us`, DLQ entries before
  // `dlq_cutoff_us`, and the dedup keys of batches received before `key_cutoff_us` (kept
  // longer than their rows, so that a late duplicate is still recognised), at most
  // `max_rows` rows of each per call; returns the rows removed.
  virtual common::Result<uint64_t, SinkError> expire(int64_t cutoff_us, int64_t dlq_cutoff_us,
                                                     int64_t key_cutoff_us, uint64_t max_rows) = 0;
};

}  // namespace outpost::collector
