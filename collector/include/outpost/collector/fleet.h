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
#include <set>
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
  std::size_t max_holes_per_epoch = 256;   // holes kept per device; beyond, the oldest goes
};

// Presence (how a device stands) is declared in presence.h. The FleetTracker is the one place
// that decides it; what it decides reaches the devices table in the same transaction as the
// message that caused it: a status message by presence_of(), any other change (silence, data
// after silence) as EventItem::presence on the event it raises.
//
// Data gaps (docs/events.md has the rule in full). A device's sequence numbers form one line
// across its boots (agents and simulated devices carry seq on from one epoch to the next), so
// a hole is a run of seqs below the highest received that have not arrived, whichever epoch
// they belong to. A hole still open gap_grace after it was first seen raises data_gap; a
// reported hole that fills later (a late re-send), in whole or in part, raises
// data_gap_resolved for what arrived. A batch of an epoch the line does not know, whose seq is
// neither above the line nor in one of its holes, means the sender's counter was reset: its
// open holes are reported at once and a new line starts at seq 1. A new line (a device the
// database never saw, or after a reset) is judged from seq 1. The line's state is stored with
// every commit (take_commit) and handed back at start (restore), so a restart of the collector
// neither forgets a hole nor invents one.

class FleetTracker {
 public:
  explicit FleetTracker(FleetOptions options) : options_(options) {}

  // What the database remembered from before a restart, so that a restart of the
  // collector raises no spurious online/restarted events. A device remembered without a
  // sequence line (restore) is judged from the first seq it sends from now on.
  void remember(std::string_view site, std::string_view device, uint64_t epoch, Presence presence,
                int64_t last_seen_us);

  // The device's sequence line as stored with the last commit (Reader::seq_lines): its highest
  // seq, its epochs, its holes open and reported. Call after remember().
  void restore(const SeqLineState& line);

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

  // Just before each commit, for the same transaction: the data_gap_resolved events of the
  // late batches added since the last call (consecutive seqs in one event), and the sequence
  // lines that changed since then.
  void take_commit(int64_t now_us, std::vector<EventItem>& events,
                   std::vector<SeqLineUpdate>& lines);

  Presence presence(std::string_view device) const;
  std::size_t devices() const { return devices_.size(); }
  uint64_t gaps_reported() const { return gaps_reported_; }
  // The device's holes, open and reported, ordered by first seq.
  std::vector<SeqHole> holes(std::string_view device) const;

 private:
  struct Hole {
    uint64_t last;  // inclusive; the map key is the first missing seq
    uint64_t epoch;
    int64_t since_us;
    int64_t reported_us = 0;  // 0: open
  };
  struct Line {
    uint64_t max_seq = 0;  // 0: nothing received on this line yet
    std::map<uint64_t, Hole> holes;
    std::vector<uint64_t> epochs;  // the newest few, oldest first
  };
  struct Device {
    std::string site;
    uint64_t epoch = 0;  // the newest epoch seen; 0 = none yet
    Presence presence = Presence::kUnknown;
    // A device_online was raised for this online spell, or it was online when remembered. Data
    // from a device never heard of makes it online without an event, so that its birth, when
    // it comes after the data (in shared mode another collector may commit it later), still
    // announces it, once.
    bool announced = false;
    int64_t last_seen_us = 0;
    bool from_seq_one = true;  // a new line is judged from seq 1 (not for a legacy device)
    Line line;
    std::vector<uint64_t> retired;  // epochs of lines before a counter reset, the newest few
    // Not yet handed to take_commit:
    std::set<uint64_t> dirty_holes;
    bool dirty = false;
    bool replace_holes = false;
    std::map<uint64_t, uint64_t> resolved;  // late seqs of reported holes, first -> last
  };

  Device& device(std::string_view site, std::string_view name);
  void mark(const std::string& name, Device& d);
  void open_hole(const std::string& name, Device& d, uint64_t first, uint64_t last, uint64_t epoch,
                 int64_t now_us, std::vector<EventItem>& out);
  void track_seq(const std::string& name, Device& d, uint64_t epoch, uint64_t seq, int64_t now_us,
                 std::vector<EventItem>& out);
  void reset_line(const std::string& name, Device& d, int64_t now_us, std::vector<EventItem>& out);
  void report_gap(const std::string& name, Device& d, uint64_t first, Hole& hole, int64_t now_us,
                  std::vector<EventItem>& out);
  static EventItem event(common::EventKind kind, std::string_view device, std::string_view site,
                         int64_t now_us, std::string detail);

  FleetOptions options_;
  std::unordered_map<std::string, Device> devices_;
  std::set<std::string> dirty_devices_;
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
