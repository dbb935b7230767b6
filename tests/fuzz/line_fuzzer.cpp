// libFuzzer target: the agent's datagram parser (line protocol and log lines) on arbitrary bytes.
//
// Beyond "no crash, no sanitizer report": whatever the parser accepts must be
// something the codec will encode and the collector's validator will accept.
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string_view>

#include "outpost/agent/line_protocol.h"
#include "outpost/common/codec.h"

namespace {

using namespace outpost;

constexpr int64_t kNow = 1'700'000'000'000'000;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto result = agent::parse_datagram(input, kNow);
  for (const auto& line : result.accepted) {
    common::Envelope envelope{common::kSchemaVersion, "dev-1", 1, 1, common::ReadingBatch{}};
    if (line.log) {
      envelope.body = common::LogBatch{false, {*line.log}};
    } else {
      auto& batch = std::get<common::ReadingBatch>(envelope.body);
      for (const auto& r : line.readings) {
        batch.sensor_names.push_back(r.sensor);
        batch.units.push_back(r.unit);
        batch.readings.push_back(
            {static_cast<uint32_t>(batch.sensor_names.size() - 1), r.time_us, r.value});
      }
    }
    auto bytes = common::encode(envelope);
    if (!bytes.ok()) std::abort();
    const auto kind = line.log ? common::PayloadKind::kLogs : common::PayloadKind::kReadings;
    // Unsynced, with the collector's default floor (the parser refuses what is below it,
    // with the same default) and its future skew opened (how far ahead is the collector's
    // policy, applied on arrival: docs/wire-format.md).
    common::ValidationOptions options;
    options.max_unsynced_future_skew_us = std::numeric_limits<int64_t>::max();
    auto back = common::decode_and_validate(bytes.value(), {kind, "dev-1", kNow}, options);
    if (!back.ok()) std::abort();
  }
  return 0;
}
