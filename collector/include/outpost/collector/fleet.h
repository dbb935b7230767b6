// What the collector knows about each device between messages, and the events it raises
// from that: device online/offline, device restarted (new epoch), data gaps (sequence
// numbers that never arrived), and a fleet-wide DLQ rate above a threshold.
//
// Pure logic: time is passed in (wall-clock microseconds), nothing is stored here. The
// storage thread owns it and calls it for every message before the message's transaction,
// so the events land in the same transaction. Not thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "outpost/collector/presence.h"
#include "outpost/collector/sink.h"
#include "outpost/common/message.h"

namespace outpost::collector {

struct FleetOptions {
  int64_t offline_after_us = 300'000'000;  // silent this long: offline; 0 = never
  int64_t gap_grace_us = 10'000'000;       // a hole still open after this is a data gap
  uint32_t dlq_rate_per_minute = 100;      // 0 = no dlq_rate events
  std::size_t max_holes_per_epoch = 256;   // beyond this, the oldest hole is reported at once
};

// Presence (how a device stands) is declared in presence.h. The FleetTracker is the one place
// that decides it; what it decides reaches the devices table in the same transaction as the
// message that caused it: a status message by presence_of(), any other change (silence, data
// after silence) as EventItem::presence on the event it raises.

class FleetTracker {
 public:
  explicit FleetTracker(FleetOptions options) : options_(options) {}

  // What the database remembered from before a restart, so that a restart of the
  // collector raises no spurious online/restarted events.
  void remember(std::string_view site, std::string_view device, uint64_t epoch, Presence presence,
                int64_t last_seen_us);

  // A valid data or logs message (stored or duplicate).
  void on_batch(std::string_view site, std::string_view device, uint64_t epoch, uint64_t seq,
                int64_t now_us, std::vector<EventItem>& out);

  // A device status message.
  void on_status(std::string_view site, std::string_view device, const common::DeviceStatus& status,
                 int64_t now_us, std::vector<EventItem>& out);

  // A message put in the dead-letter queue.
  void on_dlq(int64_t now_us);

  // Time-driven events: silent devices, holes older than the grace, the DLQ rate.
  void tick(int64_t now_us, std::vector<EventItem>& out);

  Presence presence(std::string_view device) const;
  std::size_t devices() const { return devices_.size(); }
  uint64_t gaps_reported() const { return gaps_reported_; }

 private:
  struct Hole {
    uint64_t last;  // inclusive; the map key is the first missing seq
    int64_t since_us;
  };
  struct EpochSeqs {
    uint64_t max_seq = 0;
    std::map<uint64_t, Hole> holes;
  };
  struct Device {
    std::string site;
    uint64_t epoch = 0;  // the newest epoch seen; 0 = none yet
    Presence presence = Presence::kUnknown;
    int64_t last_seen_us = 0;
    std::map<uint64_t, EpochSeqs> epochs;  // the newest few only
  };

  Device& device(std::string_view site, std::string_view name);
  void track_seq(std::string_view device, Device& d, uint64_t epoch, uint64_t seq, int64_t now_us,
                 std::vector<EventItem>& out);
  void report_gap(const std::string& device, const Device& d, uint64_t epoch, uint64_t first,
                  const Hole& hole, int64_t now_us, std::vector<EventItem>& out);
  static EventItem event(common::EventKind kind, std::string_view device, std::string_view site,
                         int64_t now_us, std::string detail);

  FleetOptions options_;
  std::unordered_map<std::string, Device> devices_;
  std::vector<int64_t> dlq_times_;  // receive times within the last minute
  bool dlq_rate_raised_ = false;
  uint64_t gaps_reported_ = 0;
};

// Commit acknowledgements for end_to_end agents: the (epoch, seq) of every message of a
// transaction, stored or duplicate, merged into inclusive ranges per device, at most
// kMaxAckRanges ranges per CommitAck (more are split across several acks).
struct AckMessage {
  std::string site;
  std::string device;
  common::CommitAck ack;
};
std::vector<AckMessage> build_acks(const std::vector<BatchItem>& batches);

}  // namespace outpost::collector
