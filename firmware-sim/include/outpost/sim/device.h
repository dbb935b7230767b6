// One simulated device's behaviour, without any I/O: it reads its sensors, batches, numbers
// and encodes messages, and applies the per-batch faults. The I/O layer publishes what it
// returns and reports back which messages went out (see Manifest).
//
// Numbering: valid batches (readings and logs share one counter, as in the agent) take seq
// 1, 2, 3, ... which keeps increasing across reboots while the epoch changes. Malformed
// messages never take one of those: they are numbered from kMalformedSeqBase (2^62) up, a
// range no valid batch reaches. Status messages carry seq 0, as the agent's do.
//
// Not thread-safe: one device is driven by one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "outpost/common/message.h"
#include "outpost/sim/faults.h"
#include "outpost/sim/rng.h"
#include "outpost/sim/signals.h"

namespace outpost::sim {

inline constexpr uint64_t kMalformedSeqBase = uint64_t{1} << 62;

struct DeviceIdentity {
  std::string site;       // topic <site> level
  std::string device_id;  // topic <device> level and the payloads' device_id
  uint32_t index = 0;     // position in the fleet (0-based); seeds the device's generators
};

// What every device of a fleet shares.
struct DeviceSettings {
  std::vector<SensorSpec> sensors;  // at most 64 sensors in all (the batch name table's bound)
  uint32_t batch_size = 50;         // readings per data message (1..1000)
  double logs_per_minute = 1;       // mean log records per minute
  uint32_t max_log_batch = 20;      // log records per logs message at most
  FaultSettings faults;
};

enum class SendRole : uint8_t {
  kValid,      // a batch with a fresh (epoch, seq)
  kDuplicate,  // the same bytes again
  kMalformed,  // a payload the collector must dead-letter
  kStatus,     // birth or offline status (retained)
};

// A message to publish on the device's topic of `topic_kind`.
struct Outgoing {
  common::PayloadKind topic_kind = common::PayloadKind::kReadings;
  std::shared_ptr<const std::vector<uint8_t>> bytes;  // shared by a batch and its duplicate
  SendRole role = SendRole::kValid;
  bool retained = false;
  uint64_t epoch = 0;
  uint64_t seq = 0;
  uint32_t readings = 0;  // readings in a valid batch or its duplicate
  uint32_t logs = 0;      // log records in a valid batch or its duplicate
  MalformedKind malformed = MalformedKind::kTruncated;  // for kMalformed
};

// Sensor names as a device reports them: "<name>" or "<name>.<i>" when count > 1.
std::vector<std::string> expand_sensor_names(const std::vector<SensorSpec>& sensors);

class DeviceModel {
 public:
  // `other_device` is the id put in identity_mismatch payloads.
  DeviceModel(DeviceIdentity identity, const DeviceSettings& settings, uint64_t run_seed,
              std::string other_device);

  // Starts a boot: a new random 64-bit epoch (seq carries on). Call before the first tick
  // and on every reboot.
  void boot(int64_t now_us);

  // Reads every sensor once at wall time `now_us` (the device stamps now_us + skew) and
  // simulated time `t_s` (seconds since the run started); appends the messages that became
  // ready (full batches, logs, faults) to `out`.
  void tick(int64_t now_us, double t_s, std::vector<Outgoing>& out);

  // Seals what is pending (a partial batch, logs, a held-back batch) into `out`.
  void flush(int64_t now_us, std::vector<Outgoing>& out);

  // A retained status message (birth kOnline, kOffline on clean stop, kLost as last will).
  Outgoing status(common::DeviceState state, int64_t now_us) const;

  const DeviceIdentity& identity() const { return identity_; }
  uint64_t epoch() const { return epoch_; }
  uint64_t next_seq() const { return next_seq_; }
  int64_t skew_us() const { return skew_us_; }
  bool time_synced() const { return skew_us_ == 0; }
  uint32_t sensor_count() const { return static_cast<uint32_t>(names_.size()); }

 private:
  void seal_readings(int64_t now_us, std::vector<Outgoing>& out);
  void seal_logs(std::vector<Outgoing>& out);
  void emit(common::Envelope env, uint32_t readings, uint32_t logs, int64_t now_us,
            std::vector<Outgoing>& out);

  DeviceIdentity identity_;
  const DeviceSettings* settings_;
  std::string other_device_;
  std::vector<std::string> names_;
  std::vector<std::string> units_;
  std::vector<SignalGenerator> signals_;
  LogGenerator log_gen_;
  Rng epoch_rng_;
  Rng fault_rng_;
  Rng malformed_rng_;
  int64_t skew_us_ = 0;
  uint64_t epoch_ = 0;
  uint64_t next_seq_ = 1;
  uint64_t next_malformed_seq_ = kMalformedSeqBase;
  int64_t boot_time_us_ = 0;
  double last_t_s_ = 0;
  double log_credit_ = 0;
  std::vector<common::Reading> pending_readings_;
  std::vector<common::LogRecord> pending_logs_;
  std::vector<Outgoing> held_;  // an out-of-order batch (and its duplicate) sent after the next
};

}  // namespace outpost::sim
