// A simulation scenario: the fleet, its sensors, its faults and how to send, as a plain struct
// with defaults, read from TOML (firmware-sim/scenarios/*.toml) and overridable by flags.
// Pure; used by the main thread at start-up; never throws.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "outpost/common/config.h"
#include "outpost/common/result.h"
#include "outpost/sim/device.h"
#include "outpost/sim/faults.h"
#include "outpost/sim/manifest.h"

namespace outpost::sim {

struct Scenario {
  // [run]
  int64_t duration_us = 30'000'000;             // how long devices run (then flush and stop)
  uint64_t seed = 1;                            // everything random derives from it
  DeviceMode mode = DeviceMode::kDirect;        // "direct" or "agent"
  std::string broker = "tcp://127.0.0.1:1883";  // MQTT broker URI
  uint32_t threads = 2;                         // worker threads driving the devices
  uint32_t processes = 1;  // direct mode: shard processes (fork), each with its own Paho threads

  // [fleet]
  std::string site = "sim";                 // topic <site> level of every device
  std::string device_prefix;                // device ids <prefix><NNNN>; default "<site>-"
  uint32_t devices = 10;                    // fleet size (direct mode)
  int64_t period_us = 1'000'000;            // time between two reads of all sensors
  int qos = 1;                              // QoS of data and logs (status is always 1)
  uint32_t connections = 0;                 // MQTT connections; 0: one per device
  uint32_t max_inflight = 32;               // unacknowledged messages per connection
  int64_t connect_timeout_us = 10'000'000;  // a connect not done by then counts as failed
  // Reconnect backoff: doubles from 0.5 s up to this (every program's default, mqtt_settings.h).
  int64_t reconnect_max_us = 30'000'000;
  DeviceSettings device;  // sensors, batch size, logs, faults

  // [agents]
  uint32_t agents = 2;    // agent mode: agents (= devices) to start
  std::string agent_bin;  // agent mode: path of outpost-agent
  std::string work_dir;   // agent mode: configs, stores, logs
  // agent mode: the agents' data_delivery and logs_delivery; "" = from qos (0:
  // fire_and_forget, else at_least_once, which needs no collector); "end_to_end" against one.
  std::string agent_delivery;

  // The id of device `index` (0-based): prefix + 1-based number, zero-padded to 4 digits.
  std::string device_id(uint32_t index) const;
};

// Sensors when a scenario names none: one temperature and one humidity sensor.
std::vector<SensorSpec> default_sensors();

// Reads a scenario file over the defaults of `base`. Errors name file:line:key.
common::Result<Scenario, common::ConfigError> load_scenario(const std::string& path,
                                                            Scenario base = {});
common::Result<Scenario, common::ConfigError> parse_scenario(std::string_view text,
                                                             const std::string& file_name,
                                                             Scenario base = {});

// Checks what no single key can (ids valid, at most 64 sensors per device, batch size,
// fractions, agent mode needs an agent binary, ...) after flags were applied.
common::Status<> check_scenario(const Scenario& scenario);

}  // namespace outpost::sim
