// Realistic sensor signals and log lines for simulated devices: pure, deterministic per seed.
//
// Each generator owns its random state; the same (kind, seed) and the same sequence of
// calls always give the same values. Not thread-safe (one device, one thread).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "outpost/common/message.h"
#include "outpost/sim/rng.h"

namespace outpost::sim {

enum class SensorKind : uint8_t {
  kTemperature,  // degC, 0.01 resolution: daily cycle, noise, slow drift, occasional steps
  kHumidity,     // %RH 0..100, 0.1 resolution: daily cycle opposite to temperature
  kVibration,    // g >= 0, 0.001 resolution: quiet baseline with bursts
  kCounter,      // integer, increases and wraps at `wrap` back to 0
  kDoor,         // bool: true while open
  kState,        // string: idle, running, fault, maintenance (a Markov chain)
};

// "temperature", "humidity", "vibration", "counter", "door", "state".
std::string_view sensor_kind_name(SensorKind kind);
std::optional<SensorKind> sensor_kind_from_name(std::string_view name);
// The unit a kind reports by default ("Cel", "%RH", "g", "" for the others).
std::string_view default_unit(SensorKind kind);

// One configured sensor of a device. With count > 1 a device has `count` sensors of
// this kind named "<name>.0", "<name>.1", ...
struct SensorSpec {
  std::string name;  // sensor name (1..64 printable ASCII)
  SensorKind kind = SensorKind::kTemperature;
  uint32_t count = 1;    // sensors of this kind on each device
  std::string unit;      // empty: default_unit(kind)
  int64_t wrap = 65536;  // counters: value wraps to 0 on reaching this
};

// The values of one sensor over time.
class SignalGenerator {
 public:
  SignalGenerator(SensorKind kind, uint64_t seed, int64_t wrap = 65536);

  // The reading at `t_s` seconds of simulated time since the device first started.
  // Calls must come with non-decreasing t_s; rare events (steps, bursts, flips) are
  // drawn per call with probabilities scaled by the time since the previous call.
  common::Value next(double t_s);

  SensorKind kind() const { return kind_; }

 private:
  double slow_signal(double t_s, double dt, double day_sign);

  SensorKind kind_;
  Rng rng_;
  int64_t wrap_;
  double last_t_ = -1;
  double base_ = 0;       // long-run level
  double amplitude_ = 0;  // daily half-swing
  double phase_ = 0;      // seconds into the day at t = 0
  double drift_per_s_ = 0;
  double offset_ = 0;   // accumulated steps
  int burst_left_ = 0;  // vibration: readings left in the current burst
  double burst_amplitude_ = 0;
  int64_t count_ = 0;  // counter value
  bool open_ = false;  // door
  int state_ = 0;      // index into the state names
};

// Log lines with a realistic mix of severities (mostly info and debug, some warnings,
// rare errors and criticals), messages with key/value fields.
class LogGenerator {
 public:
  explicit LogGenerator(uint64_t seed);
  common::LogRecord next(int64_t time_us);

 private:
  Rng rng_;
};

}  // namespace outpost::sim
