// Sample data for demos and benchmarks.
#include "outpost/common/sample.h"

#include <cmath>
#include <random>

#include "outpost/common/limits.h"

namespace outpost::common {

Envelope sample_reading_batch(std::string device_id, int64_t start_time_us, int instants,
                              uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> noise(0, 1);
  ReadingBatch b;
  b.time_synced = true;
  b.sensor_names = {"temperature", "humidity", "pressure", "co2", "battery"};
  b.units = {"Cel", "%RH", "hPa", "ppm", "V"};
  double temp = 21.5, hum = 45.0, press = 1013.25, batt = 3.3;
  int64_t co2 = 415;
  for (int t = 0; t < instants; ++t) {
    const int64_t ts = start_time_us + t * int64_t{1'000'000};
    temp += noise(rng) * 0.05;
    hum += noise(rng) * 0.2;
    press += noise(rng) * 0.1;
    batt -= 0.001;
    co2 += std::lround(noise(rng) * 3);
    b.readings.push_back({0, ts, std::round(temp * 100) / 100});
    b.readings.push_back({1, ts, std::round(hum * 10) / 10});
    b.readings.push_back({2, ts, std::round(press * 100) / 100});
    b.readings.push_back({3, ts, co2});
    b.readings.push_back({4, ts, std::round(batt * 1000) / 1000});
  }
  return Envelope{kSchemaVersion, std::move(device_id), 0x9e3779b97f4a7c15ULL, 123456,
                  std::move(b)};
}

}  // namespace outpost::common
