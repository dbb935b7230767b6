// Sensor signal models and log line generation.
#include "outpost/sim/signals.h"

#include <algorithm>
#include <array>
#include <cmath>

namespace outpost::sim {
namespace {

constexpr double kDaySeconds = 86400.0;
constexpr std::array<std::string_view, 4> kStates = {"idle", "running", "fault", "maintenance"};

double round_to(double v, double step) {
  const double r = std::round(v / step) * step;
  return r == 0 ? 0.0 : r;  // never -0.0: the codec packs it less compactly
}

// Probability that an event with the given mean interval happens within dt.
double within(double dt, double mean_interval_s) {
  return dt <= 0 ? 0.0 : 1.0 - std::exp(-dt / mean_interval_s);
}

}  // namespace

std::string_view sensor_kind_name(SensorKind kind) {
  switch (kind) {
    case SensorKind::kTemperature:
      return "temperature";
    case SensorKind::kHumidity:
      return "humidity";
    case SensorKind::kVibration:
      return "vibration";
    case SensorKind::kCounter:
      return "counter";
    case SensorKind::kDoor:
      return "door";
    case SensorKind::kState:
      return "state";
  }
  return "?";
}

std::optional<SensorKind> sensor_kind_from_name(std::string_view name) {
  for (auto k : {SensorKind::kTemperature, SensorKind::kHumidity, SensorKind::kVibration,
                 SensorKind::kCounter, SensorKind::kDoor, SensorKind::kState}) {
    if (sensor_kind_name(k) == name) return k;
  }
  return std::nullopt;
}

std::string_view default_unit(SensorKind kind) {
  switch (kind) {
    case SensorKind::kTemperature:
      return "Cel";
    case SensorKind::kHumidity:
      return "%RH";
    case SensorKind::kVibration:
      return "g";
    default:
      return "";
  }
}

SignalGenerator::SignalGenerator(SensorKind kind, uint64_t seed, int64_t wrap)
    : kind_(kind), rng_(seed), wrap_(wrap > 0 ? wrap : 65536) {
  phase_ = rng_.uniform(0, kDaySeconds);
  switch (kind_) {
    case SensorKind::kTemperature:
      base_ = rng_.uniform(17, 25);
      amplitude_ = rng_.uniform(1, 4);
      drift_per_s_ = rng_.normal() * 0.2 / 3600;  // ~0.2 degC per hour
      break;
    case SensorKind::kHumidity:
      base_ = rng_.uniform(35, 60);
      amplitude_ = rng_.uniform(4, 12);
      drift_per_s_ = rng_.normal() * 0.5 / 3600;
      break;
    case SensorKind::kCounter:
      count_ = static_cast<int64_t>(rng_.below(static_cast<uint64_t>(wrap_)));
      break;
    case SensorKind::kState:
      state_ = static_cast<int>(rng_.below(2));
      break;
    default:
      break;
  }
}

double SignalGenerator::slow_signal(double t_s, double dt, double day_sign) {
  // Occasional steps: a window opened, a heater switched on (mean once every 2 hours).
  if (rng_.chance(within(dt, 7200))) offset_ += rng_.normal() * amplitude_ * 0.5;
  const double daily = day_sign * amplitude_ * std::sin(2 * M_PI * (t_s + phase_) / kDaySeconds);
  return base_ + daily + drift_per_s_ * t_s + offset_;
}

common::Value SignalGenerator::next(double t_s) {
  const double dt = last_t_ < 0 ? 0 : std::max(0.0, t_s - last_t_);
  last_t_ = t_s;
  switch (kind_) {
    case SensorKind::kTemperature: {
      const double v = slow_signal(t_s, dt, 1.0) + rng_.normal() * 0.05;
      return round_to(std::clamp(v, -40.0, 85.0), 0.01);
    }
    case SensorKind::kHumidity: {
      const double v = slow_signal(t_s, dt, -1.0) + rng_.normal() * 0.3;
      return round_to(std::clamp(v, 0.0, 100.0), 0.1);
    }
    case SensorKind::kVibration: {
      double v = std::abs(rng_.normal()) * 0.01 + 0.02;
      if (burst_left_ == 0 && rng_.chance(0.02)) {
        burst_left_ = 5 + static_cast<int>(rng_.below(26));
        burst_amplitude_ = rng_.uniform(0.5, 4.0);
      }
      if (burst_left_ > 0) {
        --burst_left_;
        v += burst_amplitude_ * std::abs(std::sin(t_s * 37.0 + burst_left_)) *
             (0.7 + 0.3 * rng_.uniform());
      }
      return round_to(v, 0.001);
    }
    case SensorKind::kCounter: {
      count_ += static_cast<int64_t>(rng_.below(20)) + 1;
      if (count_ >= wrap_) count_ %= wrap_;
      return count_;
    }
    case SensorKind::kDoor: {
      if (open_ ? rng_.chance(0.3) : rng_.chance(0.02)) open_ = !open_;
      return open_;
    }
    case SensorKind::kState: {
      // Mostly stays; running <-> idle often, fault and maintenance rarely and briefly.
      const double u = rng_.uniform();
      if (state_ >= 2) {
        if (u < 0.3) state_ = 0;
      } else if (u < 0.05) {
        state_ = 1 - state_;
      } else if (u < 0.055) {
        state_ = 2 + static_cast<int>(rng_.below(2));
      }
      return std::string(kStates[static_cast<std::size_t>(state_)]);
    }
  }
  return 0.0;
}

LogGenerator::LogGenerator(uint64_t seed) : rng_(seed) {}

common::LogRecord LogGenerator::next(int64_t time_us) {
  struct Template {
    common::Severity severity;
    double weight;
    std::string_view message;
    std::string_view key;
  };
  static constexpr std::array<Template, 9> kTemplates = {{
      {common::Severity::kDebug, 20, "sensor poll complete", "sensors"},
      {common::Severity::kInfo, 30, "uplink ok", "rssi"},
      {common::Severity::kInfo, 20, "config checked, no change", "rev"},
      {common::Severity::kNotice, 10, "firmware update available", "version"},
      {common::Severity::kWarning, 8, "disk almost full", "free_kb"},
      {common::Severity::kWarning, 4, "sensor read retried", "attempt"},
      {common::Severity::kError, 5, "sensor read failed", "errno"},
      {common::Severity::kError, 1, "watchdog near timeout", "ms"},
      {common::Severity::kCritical, 2, "over-temperature shutdown imminent", "temp_c"},
  }};
  double total = 0;
  for (const auto& t : kTemplates) total += t.weight;
  double u = rng_.uniform() * total;
  const Template* chosen = &kTemplates.back();
  for (const auto& t : kTemplates) {
    if (u < t.weight) {
      chosen = &t;
      break;
    }
    u -= t.weight;
  }
  common::LogRecord r;
  r.time_us = time_us;
  r.severity = chosen->severity;
  r.message = std::string(chosen->message);
  r.fields.push_back({std::string(chosen->key), std::to_string(rng_.below(1000))});
  return r;
}

}  // namespace outpost::sim
