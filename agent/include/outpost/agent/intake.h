// The way into the queue: received input as queue items, and the flush that persists them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "outpost/agent/clock.h"
#include "outpost/agent/line_protocol.h"
#include "outpost/agent/queue.h"
#include "outpost/common/logging.h"

namespace outpost::agent {

// Appends `readings` to `out` as data items (moving their strings); returns how many.
std::size_t append_readings(std::vector<InputReading>& readings, std::vector<QueueItem>& out);

// A line of a tailed file at `path` as a log item received at `now_us`: parsed as line
// protocol if it is a log record, else its text (invalid UTF-8 and control characters become
// '?', too long a line is cut and says so) at `severity`; a "file" field names the source.
QueueItem tail_line_item(std::string_view line, std::string_view path, int64_t now_us,
                         const LineOptions& options, common::Severity severity);

// Where a tailed file has been read up to, saved with the items read from it.
struct TailMark {
  const std::string* path;
  TailOffset offset;
};

struct IntakeCounters {
  uint64_t persisted = 0;    // items committed to the store
  uint64_t lost = 0;         // received items a failed append could not keep
  StoreErrors store_errors;  // append, expire, tail_offset
};

// Persists what the inputs received, one transaction per flush. Every failure is counted and
// logged at a limited rate; none stops the agent (a full disk loses input, not the process).
// Used on one thread; `sink` and `clock` must outlive it.
class Intake {
 public:
  Intake(ItemSink& sink, const Clock& clock);

  // Appends `items` in one transaction, then saves the `tails` positions, which must follow
  // the lines now persisted (a crash between the two re-reads some lines, never skips any).
  // Returns false if the items could not be persisted: they are lost (counted) and no
  // position is saved.
  bool persist(std::span<const QueueItem> items, std::span<const TailMark> tails);

  // Applies the store's age limit now.
  void expire();

  const IntakeCounters& counters() const { return counters_; }

 private:
  void failed(StoreOp op, const std::string& what, const common::Error& error);

  ItemSink& sink_;
  const Clock& clock_;
  common::RateLimiter error_log_;
  common::RateLimiter quota_log_;
  IntakeCounters counters_;
};

}  // namespace outpost::agent
