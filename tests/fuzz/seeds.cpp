// Valid and broken payloads that seed the decoder fuzzer and its regression test.
#include "seeds.h"

#include <cmath>
#include <limits>

#include "outpost/common/limits.h"
#include "support/proto_writer.h"

namespace outpost::common::seeds {
namespace {

constexpr int64_t kNow = kReceiveTimeUs;

using Proto = outpost::test_support::ProtoWriter;

Envelope envelope(Body body, std::string device = kTopicDevice) {
  return Envelope{kSchemaVersion, std::move(device), 0x5eed, 42, std::move(body)};
}

std::vector<uint8_t> bytes_of(const Envelope& e) {
  auto r = encode(e);
  return r.ok() ? r.value() : std::vector<uint8_t>{};
}

ReadingBatch typical_readings() {
  ReadingBatch b;
  b.time_synced = true;
  b.sensor_names = {"temperature", "humidity", "pressure", "co2", "battery"};
  b.units = {"Cel", "%RH", "hPa", "ppm", "V"};
  for (int t = 0; t < 10; ++t) {
    const int64_t ts = kNow - 10'000'000 + t * 1'000'000;
    b.readings.push_back({0, ts, 21.37 + t * 0.01});
    b.readings.push_back({1, ts, 45.2});
    b.readings.push_back({2, ts, 1013.25});
    b.readings.push_back({3, ts, int64_t{415 + t}});
    b.readings.push_back({4, ts, 3.301});
  }
  return b;
}

}  // namespace

std::vector<Seed> all_seeds() {
  std::vector<Seed> out;
  auto add = [&out](std::string name, std::vector<uint8_t> bytes) {
    out.push_back({std::move(name) + ".bin", std::move(bytes)});
  };

  // Valid payloads of every kind.
  const auto typical = bytes_of(envelope(typical_readings()));
  add("valid-readings-typical", typical);
  ReadingBatch mixed;
  mixed.sensor_names = {"door", "state", "count", "raw"};
  mixed.readings = {{0, kNow, true},
                    {1, kNow, std::string("idle")},
                    {2, kNow, std::numeric_limits<int64_t>::min()},
                    {3, kNow, 0.1 + 0.2}};
  add("valid-readings-mixed-types", bytes_of(envelope(mixed)));
  LogBatch logs;
  logs.time_synced = true;
  logs.records = {{kNow, Severity::kWarning, "disk 91% full", {{"mount", "/data"}}},
                  {kNow + 5, Severity::kError, "sensor timeout\nretrying", {}}};
  add("valid-logs-two-records", bytes_of(envelope(logs)));
  add("valid-status-online", bytes_of(envelope(DeviceStatus{DeviceState::kOnline, kNow, true,
                                                            "0.1.0", 60, 3, 300, 0, 0, 0, 1, 0})));
  add("valid-status-lost-will",
      bytes_of(envelope(DeviceStatus{DeviceState::kLost, 0, false, "0.1.0"})));
  add("valid-ack-ranges", bytes_of(envelope(CommitAck{{{0x5eed, 1, 40}, {0x5eed, 42, 42}}})));
  add("valid-event-threshold", bytes_of(envelope(Event{EventKind::kThresholdAbove, kNow, "site-a",
                                                       "temperature", 81.5, 80, "hot"})));
  add("valid-event-gap-resolved",
      bytes_of(envelope(Event{EventKind::kDataGapResolved, kNow, "site-a", "", 3, 0,
                              "seq 5..7 arrived after it was reported missing (3 messages)"})));

  // Broken payloads, one or more per reason.
  add("reject-empty-zero-bytes", {});
  Proto header;
  header.uint(1, kSchemaVersion).str(2, kTopicDevice).uint(3, 1).uint(4, 1);
  add("reject-empty-no-body", header.bytes);
  add("reject-not_decodable-truncated",
      std::vector<uint8_t>(typical.begin(), typical.begin() + typical.size() / 2));
  add("reject-not_decodable-random",
      {0x9f, 0x13, 0xff, 0x00, 0x42, 0xde, 0xad, 0xbe, 0xef, 0x07, 0x80, 0x80});
  Proto wire;
  wire.uint(1, kSchemaVersion).uint(2, 7);
  add("reject-not_decodable-wrong-wire-type", wire.bytes);
  Proto future;
  future.uint(1, 2).str(2, kTopicDevice).tag(99, 7);
  add("reject-unsupported_version-v2", future.bytes);
  add("reject-wrong_message_type-logs-on-data-topic", bytes_of(envelope(logs)));
  add("reject-identity_mismatch-other-device", bytes_of(envelope(typical_readings(), "dev-2")));
  Proto long_id;
  long_id.uint(1, kSchemaVersion).str(2, std::string(kMaxIdLength + 1, 'd'));
  add("reject-oversized-device-id", long_id.bytes);
  Proto reading;
  reading.uint(5, 2);
  Proto many;
  many.str(3, "x");
  for (std::size_t i = 0; i <= kMaxReadingsPerBatch; ++i) many.len(5, reading.bytes);
  Proto too_many = header;
  too_many.len(5, many.bytes);
  add("reject-oversized-too-many-readings", too_many.bytes);
  ReadingBatch nan;
  nan.sensor_names = {"x"};
  nan.readings = {{0, kNow, std::nan("")}};
  add("reject-value_out_of_bounds-nan", bytes_of(envelope(nan)));
  ReadingBatch future_time = typical_readings();
  future_time.readings.back().time_us = kNow + 24LL * 3600 * 1'000'000;
  add("reject-timestamp_out_of_bounds-tomorrow", bytes_of(envelope(future_time)));
  ReadingBatch bad_index;
  bad_index.sensor_names = {"x"};
  bad_index.readings = {{3, kNow, 1.0}};
  add("reject-invalid_field-sensor-index", bytes_of(envelope(bad_index)));

  // A reading with two or three value fields: rejected, not reduced to the last one.
  Proto two_values;
  two_values.uint(3, (2137 * 16 + 2) << 1).tag(4, 1);  // decimal 21.37 and f64 0.0
  two_values.bytes.insert(two_values.bytes.end(), 8, 0);
  Proto three_values;
  three_values.uint(5, 84).uint(6, 1).str(7, "on");
  for (const auto& [name, reading] :
       {std::pair{"two-values", two_values}, std::pair{"three-values", three_values}}) {
    Proto batch;
    batch.str(3, "x").len(5, reading.bytes);
    Proto p = header;
    p.len(5, batch.bytes);
    add(std::string("reject-invalid_field-reading-with-") + name, p.bytes);
  }

  // A length past the end of the payload that is also over its field's bound.
  Proto cut_id;
  cut_id.uint(1, kSchemaVersion).tag(2, 2).varint(100);
  cut_id.bytes.insert(cut_id.bytes.end(), 10, 'd');
  add("reject-not_decodable-cut-inside-over-long-device-id", cut_id.bytes);
  Proto cut_value;
  cut_value.tag(7, 2).varint(200);
  cut_value.bytes.insert(cut_value.bytes.end(), 20, 's');
  Proto cut_batch;
  cut_batch.str(3, "x").tag(5, 2).varint(cut_value.bytes.size() + 180);
  cut_batch.bytes.insert(cut_batch.bytes.end(), cut_value.bytes.begin(), cut_value.bytes.end());
  Proto cut_envelope = header;
  cut_envelope.tag(5, 2).varint(cut_batch.bytes.size() + 180);
  cut_envelope.bytes.insert(cut_envelope.bytes.end(), cut_batch.bytes.begin(),
                            cut_batch.bytes.end());
  add("reject-not_decodable-cut-inside-over-long-string-value", cut_envelope.bytes);

  // Negative enum values (ten-byte varints): unknown values, like any other.
  const auto minus = [](int64_t v) { return static_cast<uint64_t>(v); };
  Proto severity;
  severity.uint(2, minus(-1)).str(3, "msg");
  Proto severity_batch;
  severity_batch.len(3, severity.bytes);
  Proto negative_severity = header;
  negative_severity.len(6, severity_batch.bytes);
  add("reject-invalid_field-negative-severity", negative_severity.bytes);
  Proto state;
  state.uint(1, minus(-1));
  Proto negative_state = header;
  negative_state.len(7, state.bytes);
  add("reject-invalid_field-negative-device-state", negative_state.bytes);
  Proto kind;
  kind.uint(1, minus(-7));
  Proto negative_kind = header;
  negative_kind.len(9, kind.bytes);
  add("reject-invalid_field-negative-event-kind", negative_kind.bytes);

  // Text faults, each with its own detail.
  for (const auto& [name, value] :
       {std::pair{"nul-in-string-value", std::string("on\0off", 6)},
        std::pair{"escape-in-string-value", std::string("ab\x1b[31m")},
        std::pair{"invalid-utf8-string-value", std::string("ok\xc0\xaf")}}) {
    ReadingBatch text;
    text.sensor_names = {"state"};
    text.readings = {{0, kNow, value}};
    add(std::string("reject-invalid_field-") + name, bytes_of(envelope(text)));
  }
  ReadingBatch spaced;
  spaced.sensor_names = {"room temp"};
  spaced.readings = {{0, kNow, 1.0}};
  add("reject-invalid_field-space-in-sensor-name", bytes_of(envelope(spaced)));

  // Times that cannot be right, even from a clock that says it is not synchronised.
  for (const auto& [name, t] : {std::pair{"unsynced-seconds-as-microseconds", kNow / 1'000'000},
                                std::pair{"unsynced-clock-never-set", int64_t{42'000'000}},
                                std::pair{"unsynced-nanoseconds-as-microseconds", kNow * 1000}}) {
    ReadingBatch implausible;
    implausible.sensor_names = {"x"};
    implausible.readings = {{0, t, 1.0}};
    add(std::string("reject-timestamp_out_of_bounds-") + name, bytes_of(envelope(implausible)));
  }
  ReadingBatch stale;  // fake-hwclock restored a time saved two years ago: plausible, kept
  stale.sensor_names = {"x"};
  stale.readings = {{0, kNow - 2 * 365 * 86'400'000'000LL, 1.0}};
  add("valid-readings-unsynced-stale-clock", bytes_of(envelope(stale)));
  return out;
}

}  // namespace outpost::common::seeds
