// The run manifest: what the simulator actually published, per device, as JSON that an
// end-to-end check compares a collector's store against. Pure; never throws.
//
// Counting rules (also in firmware-sim/README.md):
//  - a message counts once it was published: QoS >= 1 when the broker's PUBACK arrived,
//    QoS 0 when Paho wrote it; a message that failed is not counted;
//  - readings/logs of a valid batch count once per (epoch, seq), however often it was sent;
//    every further send of that (epoch, seq) counts in duplicates_sent;
//  - epochs lists, per boot, the ranges of seqs of valid batches published (an epoch appears
//    more than once if its seqs have a gap, e.g. a batch whose publish failed).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "outpost/common/result.h"
#include "outpost/sim/device.h"
#include "outpost/sim/faults.h"

namespace outpost::sim {

enum class DeviceMode : uint8_t { kDirect, kAgent };
std::string_view device_mode_name(DeviceMode mode);

struct EpochRange {
  uint64_t epoch = 0;
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;  // inclusive

  bool operator==(const EpochRange&) const = default;
};

// Accumulates what one device published. Not thread-safe: owned by the device's thread.
class DeviceLedger;
common::Result<std::pair<uint32_t, DeviceLedger>> ledger_from_record(std::string_view line);

class DeviceLedger {
 public:
  DeviceLedger() = default;
  DeviceLedger(std::string site, std::string device, DeviceMode mode)
      : site_(std::move(site)), device_(std::move(device)), mode_(mode) {}

  // Records a message the broker accepted (see the counting rules above).
  void record(const Outgoing& message);
  // Agent mode: readings and log lines handed to an agent's socket.
  void add_agent_lines(uint64_t readings, uint64_t logs) {
    readings_sent_ += readings;
    logs_sent_ += logs;
  }
  void add_reboot() { ++reboots_; }
  void add_cut() { ++cuts_; }

  const std::string& site() const { return site_; }
  const std::string& device() const { return device_; }
  DeviceMode mode() const { return mode_; }
  // Seq ranges by boot, in boot order.
  std::vector<EpochRange> epochs() const;
  uint64_t readings_sent() const { return readings_sent_; }
  uint64_t logs_sent() const { return logs_sent_; }
  uint64_t malformed(MalformedKind kind) const {
    return malformed_[static_cast<std::size_t>(kind)];
  }
  uint64_t malformed_total() const;
  uint64_t duplicates_sent() const { return duplicates_sent_; }
  uint64_t status_sent() const { return status_sent_; }
  uint64_t cuts() const { return cuts_; }
  uint64_t reboots() const { return reboots_; }
  uint64_t batches_sent() const { return batches_sent_; }

 private:
  friend common::Result<std::pair<uint32_t, DeviceLedger>> ledger_from_record(std::string_view);
  // Adds seq to the epoch's ranges; false if it was already there.
  bool add_seq(uint64_t epoch, uint64_t seq);

  std::string site_;
  std::string device_;
  DeviceMode mode_ = DeviceMode::kDirect;
  // Per epoch in boot order: first_seq -> last_seq of disjoint, non-adjacent ranges.
  std::vector<std::pair<uint64_t, std::map<uint64_t, uint64_t>>> ranges_;
  uint64_t readings_sent_ = 0;
  uint64_t logs_sent_ = 0;
  std::array<uint64_t, kAllMalformedKinds.size()> malformed_{};
  uint64_t duplicates_sent_ = 0;
  uint64_t status_sent_ = 0;
  uint64_t cuts_ = 0;
  uint64_t reboots_ = 0;
  uint64_t batches_sent_ = 0;
};

struct Manifest {
  uint64_t seed = 0;
  int64_t started_us = 0;   // Unix time the run started
  int64_t finished_us = 0;  // ...and ended (after the last acknowledgement)
  std::vector<DeviceLedger> devices;
};

// {"version":1,"seed":..,"started_us":..,"finished_us":..,"devices":[...],"totals":{...}},
// one device per line; strings escaped per RFC 8259.
std::string to_json(const Manifest& manifest);

// A ledger and its device's fleet index as one line of text (no newline), and back: how the
// shard processes of a large fleet (--processes) hand their results to the parent. Ids are
// [A-Za-z0-9._-], so fields are separated by spaces.
std::string ledger_to_record(uint32_t index, const DeviceLedger& ledger);

}  // namespace outpost::sim
