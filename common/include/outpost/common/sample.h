// Sample data for demos and benchmarks: the typical batch of docs/targets.md, plausible values.
#pragma once

#include <cstdint>
#include <string>

#include "outpost/common/message.h"

namespace outpost::common {

// Five sensors (temperature 0.01 degC, humidity 0.1 %RH, pressure 0.01 hPa, CO2
// integer ppm, battery 1 mV resolution) read every second, `instants` times from
// `start_time_us`, drifting with seeded noise: 5 * instants readings (10 -> 50).
// The same arguments always give the same batch.
Envelope sample_reading_batch(std::string device_id, int64_t start_time_us, int instants = 10,
                              uint64_t seed = 1);

}  // namespace outpost::common
