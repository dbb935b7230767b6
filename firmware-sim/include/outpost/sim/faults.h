// Faults on demand: which ones a run injects, per-batch and per-device decisions drawn from a
// seed, and the construction of malformed payloads. Pure; any thread; never throws.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "outpost/common/message.h"
#include "outpost/common/reason.h"
#include "outpost/common/result.h"
#include "outpost/sim/rng.h"

namespace outpost::sim {

enum class MalformedKind : uint8_t {
  kTruncated,         // a valid encoding cut short inside its body
  kRandomBytes,       // bytes that are no Envelope at all
  kWrongMessageType,  // a LogBatch published on .../data
  kIdentityMismatch,  // the payload's device id is another device's
  kOversized,         // more than kMaxPayloadBytes (256 KiB)
  kNan,               // a ReadingBatch with a NaN reading
  kTimestampFarOff,   // readings years away from now, with time_synced = true
};

inline constexpr std::array<MalformedKind, 7> kAllMalformedKinds = {
    MalformedKind::kTruncated,        MalformedKind::kRandomBytes, MalformedKind::kWrongMessageType,
    MalformedKind::kIdentityMismatch, MalformedKind::kOversized,   MalformedKind::kNan,
    MalformedKind::kTimestampFarOff};

// "truncated", "random_bytes", "wrong_message_type", "identity_mismatch", "oversized", "nan",
// "timestamp_far_off": the manifest's keys.
std::string_view malformed_kind_name(MalformedKind kind);
std::optional<MalformedKind> malformed_kind_from_name(std::string_view name);

// What common::decode_and_validate (default ValidationOptions, the topic's kind and device)
// rejects a payload of this kind with.
common::Reason expected_reason(MalformedKind kind);

// Parses a comma-separated list ("truncated,nan"); "all" means every kind. The error
// names the unknown entry and lists the valid ones.
common::Result<std::vector<MalformedKind>> parse_malformed_kinds(std::string_view csv);

// The faults a run injects. Fractions are probabilities in [0, 1].
struct FaultSettings {
  // Per valid batch: chance of one extra malformed message sent just before it.
  double malformed_fraction = 0;
  // Kinds to choose from (uniformly) for each malformed message.
  std::vector<MalformedKind> malformed_kinds{kAllMalformedKinds.begin(), kAllMalformedKinds.end()};
  // Per valid batch: chance it is published a second time (same epoch and seq).
  double duplicate_fraction = 0;
  // Per valid batch: chance it is held back and published after the next one.
  double out_of_order_fraction = 0;
  // Each device's clock is off by a fixed amount, uniform in +/- this; a device whose
  // clock is off sends time_synced = false. 0: all clocks right and synced.
  int64_t clock_skew_us = 0;
  // Mean time between reboots of one device (new epoch, seq carries on); 0: none.
  int64_t reboot_every_us = 0;
  // Every storm_every, storm_fraction of the devices drop and re-open their connection.
  int64_t storm_every_us = 0;
  double storm_fraction = 0.2;
  // Fraction of devices whose connection is cut once (no DISCONNECT: the broker
  // publishes their last will) at a random time in the middle of the run; they stay silent.
  double cut_fraction = 0;
  // Fraction of devices that stop cleanly once (offline status, DISCONNECT) and stay silent.
  double offline_fraction = 0;
  // Every burst_every, for burst_length, devices read burst_factor times as often.
  int64_t burst_every_us = 0;
  int64_t burst_length_us = 5'000'000;
  uint32_t burst_factor = 10;
};

// What happens to one valid batch.
struct BatchFaults {
  std::optional<MalformedKind> malformed;  // send a malformed message of this kind first
  bool duplicate = false;
  bool out_of_order = false;
};

// Draws the decisions for one batch from the device's fault generator.
BatchFaults draw_batch_faults(const FaultSettings& settings, Rng& rng);

enum class DeviceEventKind : uint8_t { kReboot, kStorm, kCut, kOffline };
std::string_view device_event_name(DeviceEventKind kind);

struct DeviceEvent {
  int64_t at_us = 0;  // offset from the start of the run
  DeviceEventKind kind = DeviceEventKind::kReboot;

  bool operator==(const DeviceEvent&) const = default;
};

// The timeline of one device over a run of `duration_us`, sorted by time: reboots
// (exponential gaps), storms it takes part in (fleet-wide instants), and at most one cut
// or offline stop (after which nothing else happens to it). Same arguments, same events.
std::vector<DeviceEvent> plan_device_events(const FaultSettings& settings, int64_t duration_us,
                                            uint64_t seed, uint32_t device_index);

// True if `offset_us` into the run falls inside a burst window.
bool in_burst(const FaultSettings& settings, int64_t offset_us);

struct MalformedMessage {
  common::PayloadKind topic_kind = common::PayloadKind::kReadings;  // where to publish it
  std::vector<uint8_t> bytes;
};

// Builds a malformed payload from `valid`, a valid ReadingBatch envelope of the sending
// device (with the seq number reserved for malformed messages, see DeviceModel).
// `other_device` is the id used for kIdentityMismatch; `now_us` anchors kTimestampFarOff.
// decode_and_validate rejects the result with expected_reason(kind).
MalformedMessage make_malformed(MalformedKind kind, const common::Envelope& valid,
                                std::string_view other_device, int64_t now_us, Rng& rng);

}  // namespace outpost::sim
