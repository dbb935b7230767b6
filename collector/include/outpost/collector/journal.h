// The raw-message journal: every message Paho hands us is appended here before anything
// else happens to it, and replayed at start for whatever the database had not committed.
//
// Why: Paho acknowledges a QoS 1 message to the broker before our code sees it (PUBACK on
// receipt), so a collector killed with messages in memory would lose them. Appended with
// one write(2) per burst, a record survives kill -9 (it is in the page cache); with
// full_sync it is also fdatasync'ed (power loss). Files: <dir>/<segment>.journal, records
// [u32 topic length][u32 payload length][i64 received_us][u32 checksum][topic][payload].
// A message cut for its size (RawMessage::cut) is recorded as what is left of it: the top bit
// of its topic length is set and its payload field is the kept first bytes followed by the
// whole length (u64), the bound (u64) and the SHA-256 (32 bytes); a journal reader from before
// cut records stops at the first one as at a torn tail. No record is larger than
// mqtt.max_message_bytes plus its topic, and a burst's buffer larger than 4 MiB is let go.
//
// append() is called by the MQTT thread, release() by the storage thread; replay() once at
// start before either. Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "outpost/collector/ingest.h"
#include "outpost/collector/sink.h"
#include "outpost/common/result.h"

namespace outpost::collector {

class Journal {
 public:
  // Opens `dir` (created if missing). New records go to a fresh segment after the newest.
  static common::Result<std::unique_ptr<Journal>> open(const std::string& dir, bool full_sync,
                                                       uint64_t segment_bytes = 64 << 20);
  ~Journal();

  // Calls `each` for every intact record after `from` (everything if nullopt), in order,
  // with the position just after it. Stops quietly at a torn or corrupt tail.
  common::Result<uint64_t> replay(
      std::optional<JournalPosition> from,
      const std::function<void(RawMessage&&, JournalPosition after)>& each);

  // Appends `messages` in one write; `after[i]` receives the position after message i.
  common::Status<> append(const std::vector<RawMessage>& messages,
                          std::vector<JournalPosition>& after);

  // Deletes the segments wholly before `committed`. A segment that cannot be removed stays
  // (replay starts after the committed position anyway) and the next release tries again.
  [[nodiscard]] common::Status<> release(JournalPosition committed);

  uint64_t bytes_written() const { return bytes_written_; }

 private:
  Journal(std::string dir, bool full_sync, uint64_t segment_bytes, uint64_t next_segment);
  common::Status<> roll();
  std::string path_of(uint64_t segment) const;
  std::vector<uint64_t> segments() const;

  std::string dir_;
  bool full_sync_;
  uint64_t segment_bytes_;
  std::mutex mu_;
  int fd_ = -1;
  uint64_t segment_ = 0;
  uint64_t offset_ = 0;
  uint64_t bytes_written_ = 0;
  std::string buffer_;
};

}  // namespace outpost::collector
