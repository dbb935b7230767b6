// Tests of the payload codec: round trips at the bounds, and every way a payload is refused.
#include "outpost/common/codec.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "outpost/common/limits.h"
#include "support/proto_writer.h"

namespace outpost::common {

// Lets gtest print reasons by name (found by argument-dependent lookup).
void PrintTo(Reason r, std::ostream* os) { *os << reason_name(r); }

namespace {

constexpr int64_t kNow = 1'700'000'000'000'000;  // receive time used by every test, in us
constexpr int64_t kSecond = 1'000'000;

// The typical batch of docs/targets.md: 5 sensors read every second, 50 readings.
Envelope typical_batch() {
  ReadingBatch b;
  b.time_synced = true;
  b.sensor_names = {"temperature", "humidity", "pressure", "co2", "battery"};
  b.units = {"Cel", "%RH", "hPa", "ppm", "V"};
  for (int t = 0; t < 10; ++t) {
    const int64_t ts = kNow - 10 * kSecond + t * kSecond;
    b.readings.push_back({0, ts, 21.37 + t * 0.01});
    b.readings.push_back({1, ts, 45.2 + t * 0.1});
    b.readings.push_back({2, ts, 1013.25});
    b.readings.push_back({3, ts, int64_t{415 + t}});
    b.readings.push_back({4, ts, 3.301});
  }
  return Envelope{kSchemaVersion, "gw-0042", 0x1234abcd, 17, std::move(b)};
}

Envelope with_body(Body body) { return Envelope{kSchemaVersion, "dev-1", 7, 1, std::move(body)}; }

std::vector<uint8_t> must_encode(const Envelope& e) {
  auto r = encode(e);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().detail);
  return r.ok() ? r.value() : std::vector<uint8_t>{};
}

Envelope round_trip(const Envelope& e) {
  auto bytes = must_encode(e);
  auto d = decode(bytes);
  EXPECT_TRUE(d.ok()) << (d.ok() ? "" : d.error().detail);
  return d.ok() ? d.value() : Envelope{};
}

Expectation expect(PayloadKind kind, std::string_view device = "") {
  return Expectation{kind, device, kNow};
}

using Proto = outpost::test_support::ProtoWriter;

Proto envelope_header(uint64_t version = kSchemaVersion) {
  Proto p;
  p.uint(1, version).str(2, "dev-1").uint(3, 7).uint(4, 1);
  return p;
}

Rejection must_reject(std::span<const uint8_t> bytes, PayloadKind kind = PayloadKind::kReadings,
                      std::string_view device = "",
                      const ValidationOptions& options = ValidationOptions{}) {
  auto r = decode_and_validate(bytes, expect(kind, device), options);
  EXPECT_FALSE(r.ok());
  return r.ok() ? Rejection{Reason::kNotDecodable, "unexpectedly accepted"} : r.error();
}

Rejection must_reject(const Envelope& e, PayloadKind kind = PayloadKind::kReadings,
                      std::string_view device = "",
                      const ValidationOptions& options = ValidationOptions{}) {
  return must_reject(must_encode(e), kind, device, options);
}

// ------------------------------------------------------------------ round trips

TEST(Codec, TypicalBatchRoundTripsExactly) {
  const Envelope e = typical_batch();
  EXPECT_EQ(round_trip(e), e);
  EXPECT_TRUE(decode_and_validate(must_encode(e), expect(PayloadKind::kReadings, "gw-0042"),
                                  ValidationOptions{})
                  .ok());
}

TEST(Codec, TypicalBatchIsAtMostTwelveBytesPerReading) {
  const Envelope e = typical_batch();
  const auto bytes = must_encode(e);
  const double per_reading =
      static_cast<double>(bytes.size()) / std::get<ReadingBatch>(e.body).readings.size();
  EXPECT_LE(per_reading, 12.0) << bytes.size() << " bytes";
}

TEST(Codec, EveryValueTypeRoundTripsAtItsBounds) {
  ReadingBatch b;
  b.sensor_names = {"d", "i", "b", "s"};
  const std::vector<Value> values = {
      0.0,
      -0.0,
      21.37,
      -273.15,
      0.1 + 0.2,  // not a short decimal: must travel as a raw double
      std::numeric_limits<double>::max(),
      std::numeric_limits<double>::lowest(),
      std::numeric_limits<double>::denorm_min(),
      std::numeric_limits<double>::epsilon(),
      9007199254740992.0,   // 2^53: the largest decimal mantissa
      9007199254740994.0,   // beyond it
      1e-15,                // smallest decimal scale step
      123456789.123456789,  // more digits than a decimal can hold
      int64_t{0},
      std::numeric_limits<int64_t>::max(),
      std::numeric_limits<int64_t>::min(),
      true,
      false,
      std::string(),
      std::string(kMaxStringValueLength, 'x'),
      std::string("d\xc3\xa9j\xc3\xa0 vu \xe2\x82\xac"),
  };
  for (std::size_t i = 0; i < values.size(); ++i) {
    b.readings.push_back(
        {static_cast<uint32_t>(values[i].index()), kNow + static_cast<int64_t>(i), values[i]});
  }
  const Envelope e = with_body(b);
  const Envelope back = round_trip(e);
  ASSERT_EQ(back, e);
  // -0.0 == 0.0 as doubles, so check the sign survived separately.
  EXPECT_TRUE(std::signbit(std::get<double>(std::get<ReadingBatch>(back.body).readings[1].value)));
}

TEST(Codec, TimestampsAtInt64ExtremesRoundTrip) {
  for (int64_t t : {std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()}) {
    ReadingBatch b;
    b.sensor_names = {"x"};
    b.readings = {{0, t, 1.0}, {0, t, 2.0}};
    const Envelope e = with_body(b);
    EXPECT_EQ(round_trip(e), e);
  }
}

TEST(Codec, BatchSpanningMoreThanInt64OfTimeIsRefusedNotWrapped) {
  ReadingBatch b;
  b.sensor_names = {"x"};
  b.readings = {{0, std::numeric_limits<int64_t>::min(), 1.0},
                {0, std::numeric_limits<int64_t>::max(), 2.0}};
  auto r = encode(with_body(b));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().reason, Reason::kTimestampOutOfBounds);
}

TEST(Codec, OutOfOrderTimestampsKeepTheirOrder) {
  ReadingBatch b;
  b.sensor_names = {"x"};
  b.readings = {{0, kNow, 1.0}, {0, kNow - 5 * kSecond, 2.0}, {0, kNow + 3, 3.0}};
  const Envelope e = with_body(b);
  EXPECT_EQ(round_trip(e), e);
}

TEST(Codec, FullSizeReadingBatchRoundTrips) {
  ReadingBatch b;
  for (std::size_t i = 0; i < kMaxSensorsPerBatch; ++i) {
    std::string name = "sensor_" + std::to_string(i);
    name.resize(kMaxSensorNameLength, 'n');
    b.sensor_names.push_back(name);
    b.units.push_back(std::string(kMaxUnitLength, 'u'));
  }
  for (std::size_t i = 0; i < kMaxReadingsPerBatch; ++i) {
    b.readings.push_back({static_cast<uint32_t>(i % kMaxSensorsPerBatch),
                          kNow + static_cast<int64_t>(i) * 1000, static_cast<double>(i) / 7});
  }
  Envelope e = with_body(b);
  e.device_id = std::string(kMaxIdLength, 'd');
  e.epoch = std::numeric_limits<uint64_t>::max();
  e.seq = std::numeric_limits<uint64_t>::max();
  const auto bytes = must_encode(e);
  EXPECT_LE(bytes.size(), kMaxPayloadBytes);
  auto d = decode(bytes);
  ASSERT_TRUE(d.ok()) << d.error().detail;
  EXPECT_EQ(d.value(), e);
}

TEST(Codec, FullSizeLogBatchRoundTrips) {
  LogBatch b;
  b.time_synced = true;
  for (std::size_t i = 0; i < kMaxLogRecordsPerBatch; ++i) {
    LogRecord r{kNow + static_cast<int64_t>(i),
                static_cast<Severity>(i % 8),
                std::string(kMaxLogMessageLength, 'm'),
                {}};
    for (std::size_t f = 0; f < kMaxLogFieldsPerRecord; ++f) {
      r.fields.push_back(
          {std::string(kMaxLogKeyLength, 'k'), std::string(kMaxLogValueLength, 'v')});
    }
    b.records.push_back(std::move(r));
  }
  const Envelope e = with_body(b);
  const auto bytes = must_encode(e);
  EXPECT_LE(bytes.size(), kMaxPayloadBytes);
  auto d = decode(bytes);
  ASSERT_TRUE(d.ok()) << d.error().detail;
  EXPECT_EQ(d.value(), e);
}

TEST(Codec, LogBatchWithTextAndFieldsRoundTrips) {
  LogBatch b;
  b.time_synced = true;
  b.records = {{kNow, Severity::kWarning, "disk 91% full\non /data", {{"mount", "/data"}}},
               {kNow + 1, Severity::kError, "sensor timeout", {}}};
  const Envelope e = with_body(b);
  EXPECT_EQ(round_trip(e), e);
  EXPECT_TRUE(validate(e, expect(PayloadKind::kLogs, "dev-1"), {}).ok());
}

TEST(Codec, StatusAckAndEventRoundTrip) {
  DeviceStatus s{DeviceState::kOnline, kNow, true, "0.1.0", 3600, 12, 4096, 1, 2, 3, 4, 1};
  EXPECT_EQ(round_trip(with_body(s)), with_body(s));
  CommitAck a;
  for (uint64_t i = 0; i < kMaxAckRanges; ++i) a.committed.push_back({i, i * 10, i * 10 + 9});
  EXPECT_EQ(round_trip(with_body(a)), with_body(a));
  Event ev{EventKind::kThresholdAbove, kNow, "site-a", "temperature", 81.5, 80, "above 80 for 3 s"};
  EXPECT_EQ(round_trip(with_body(ev)), with_body(ev));
}

TEST(Codec, EncodeIntoReusesTheBufferAndMatchesEncode) {
  std::vector<uint8_t> buffer = {1, 2, 3};
  ASSERT_TRUE(encode_into(typical_batch(), buffer).ok());
  EXPECT_EQ(buffer, must_encode(typical_batch()));
}

// ------------------------------------------------------- what the encoder refuses

TEST(Codec, EncodeRefusesWhatTheDecoderWouldRejectForSize) {
  ReadingBatch too_many;
  too_many.sensor_names = {"x"};
  too_many.readings.assign(kMaxReadingsPerBatch + 1, Reading{0, kNow, 1.0});
  EXPECT_EQ(encode(with_body(too_many)).error().reason, Reason::kOversized);

  ReadingBatch long_string;
  long_string.sensor_names = {"x"};
  long_string.readings = {{0, kNow, std::string(kMaxStringValueLength + 1, 's')}};
  EXPECT_EQ(encode(with_body(long_string)).error().reason, Reason::kOversized);

  Envelope long_id = typical_batch();
  long_id.device_id = std::string(kMaxIdLength + 1, 'd');
  EXPECT_EQ(encode(long_id).error().reason, Reason::kOversized);

  CommitAck many_ranges;
  many_ranges.committed.assign(kMaxAckRanges + 1, SeqRange{1, 1, 1});
  EXPECT_EQ(encode(with_body(many_ranges)).error().reason, Reason::kOversized);
}

// ------------------------------------------------------ rejections, reason by reason

TEST(Codec, EmptyPayloadIsEmpty) {
  EXPECT_EQ(must_reject(std::span<const uint8_t>()).reason, Reason::kEmpty);
}

TEST(Codec, EnvelopeWithoutBodyIsEmpty) {
  const auto p = envelope_header();
  const Rejection r = must_reject(p.bytes);
  EXPECT_EQ(r.reason, Reason::kEmpty);
  EXPECT_NE(r.detail.find("body"), std::string::npos);
}

TEST(Codec, BatchWithoutReadingsIsEmpty) {
  ReadingBatch b;
  b.sensor_names = {"x"};
  EXPECT_EQ(must_reject(with_body(b)).reason, Reason::kEmpty);
  EXPECT_EQ(must_reject(with_body(LogBatch{}), PayloadKind::kLogs).reason, Reason::kEmpty);
  EXPECT_EQ(must_reject(with_body(CommitAck{}), PayloadKind::kAck).reason, Reason::kEmpty);
}

TEST(Codec, EveryTruncationOfAValidPayloadIsRejectedWithoutCrashing) {
  const auto bytes = must_encode(typical_batch());
  for (std::size_t n = 1; n < bytes.size(); ++n) {
    auto r = decode_and_validate(std::span(bytes.data(), n),
                                 expect(PayloadKind::kReadings, "gw-0042"), {});
    // The batch's length prefix means no cut can drop readings and still
    // decode; a cut before the body leaves an envelope without one.
    ASSERT_FALSE(r.ok()) << "prefix of " << n << " bytes accepted";
    EXPECT_TRUE(r.error().reason == Reason::kNotDecodable || r.error().reason == Reason::kEmpty)
        << n << ": " << r.error().detail;
  }
}

TEST(Codec, RandomBytesAreRejectedWithoutCrashing) {
  std::mt19937 rng(42);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<int> length(1, 400);
  int rejected = 0;
  for (int i = 0; i < 2000; ++i) {
    std::vector<uint8_t> junk(length(rng));
    for (auto& b : junk) b = static_cast<uint8_t>(byte(rng));
    auto r = decode_and_validate(junk, expect(PayloadKind::kReadings, "dev-1"), {});
    if (!r.ok()) {
      ++rejected;
      EXPECT_FALSE(reason_name(r.error().reason).empty());
    }
  }
  EXPECT_EQ(rejected, 2000);
}

TEST(Codec, WrongWireTypeIsNotDecodable) {
  // device_id (field 2) sent as a varint instead of bytes.
  Proto p;
  p.uint(1, kSchemaVersion).uint(2, 12345);
  EXPECT_EQ(must_reject(p.bytes).reason, Reason::kNotDecodable);
  // schema_version sent as a length-delimited field.
  Proto q;
  q.str(1, "v1");
  EXPECT_EQ(must_reject(q.bytes).reason, Reason::kNotDecodable);
}

TEST(Codec, BodySentAsScalarIsRejected) {
  auto p = envelope_header();
  p.uint(5, 1);  // the readings body as a varint
  EXPECT_FALSE(decode(p.bytes).ok());
}

TEST(Codec, TwoBodiesAreNotDecodable) {
  auto bytes = must_encode(typical_batch());
  Proto status;
  status.uint(1, 1);  // DeviceStatus.state = ONLINE
  Proto extra;
  extra.len(7, status.bytes);
  bytes.insert(bytes.end(), extra.bytes.begin(), extra.bytes.end());
  const Rejection r = must_reject(bytes);
  EXPECT_EQ(r.reason, Reason::kNotDecodable);
  EXPECT_NE(r.detail.find("more than one body"), std::string::npos);
}

TEST(Codec, FutureSchemaVersionIsUnsupportedEvenIfTheRestIsUnreadable) {
  auto p = envelope_header(2);
  p.tag(42, 7);  // wire type 7 does not exist in protobuf
  const Rejection r = must_reject(p.bytes);
  EXPECT_EQ(r.reason, Reason::kUnsupportedVersion);
  EXPECT_NE(r.detail.find("schema version 2"), std::string::npos);
}

TEST(Codec, MissingOrZeroSchemaVersionIsUnsupported) {
  Envelope e = typical_batch();
  e.schema_version = 0;
  EXPECT_EQ(must_reject(e).reason, Reason::kUnsupportedVersion);
  e.schema_version = 2;
  EXPECT_EQ(must_reject(e).reason, Reason::kUnsupportedVersion);
}

TEST(Codec, ValidProtobufOfTheWrongMessageTypeIsRejected) {
  // A bare DeviceStatus, not wrapped in an Envelope: field 1 = state reads as version 1...
  Proto status;
  status.uint(1, 1).uint(2, 5).str(4, "0.1.0");
  // ...but its field 2 is a varint where the envelope has the device id's bytes.
  EXPECT_EQ(must_reject(status.bytes).reason, Reason::kNotDecodable);
  // ...and a well-formed Envelope whose body is a log batch, on a data topic.
  LogBatch logs;
  logs.records = {{kNow, Severity::kInfo, "hello", {}}};
  const Rejection w = must_reject(with_body(logs), PayloadKind::kReadings);
  EXPECT_EQ(w.reason, Reason::kWrongMessageType);
  EXPECT_NE(w.detail.find("expected a readings message, got logs"), std::string::npos);
}

TEST(Codec, DeviceIdDifferentFromTopicIsIdentityMismatch) {
  const Rejection r = must_reject(typical_batch(), PayloadKind::kReadings, "gw-0043");
  EXPECT_EQ(r.reason, Reason::kIdentityMismatch);
  EXPECT_NE(r.detail.find("gw-0042"), std::string::npos);
}

TEST(Codec, InvalidDeviceIdCharsetIsInvalidField) {
  for (const std::string& bad :
       std::vector<std::string>{"", "a/b", "a+b", "a#b", "a b", std::string("a\0b", 3)}) {
    Envelope e = typical_batch();
    e.device_id = bad;
    EXPECT_EQ(must_reject(e).reason, Reason::kInvalidField) << bad;
  }
}

TEST(Codec, OversizedPayloadIsRejectedBeforeDecoding) {
  std::vector<uint8_t> huge(kMaxPayloadBytes + 1, 0);
  EXPECT_EQ(must_reject(huge).reason, Reason::kOversized);
}

TEST(Codec, OversizedStringOnTheWireIsOversizedNotCut) {
  auto p = envelope_header();
  p.bytes.clear();
  p.uint(1, kSchemaVersion).str(2, std::string(kMaxIdLength + 1, 'd'));
  const Rejection r = must_reject(p.bytes);
  EXPECT_EQ(r.reason, Reason::kOversized);
}

TEST(Codec, TooManySensorsOnTheWireIsOversized) {
  Proto batch;
  for (std::size_t i = 0; i <= kMaxSensorsPerBatch; ++i) batch.str(3, "s" + std::to_string(i));
  auto p = envelope_header();
  p.len(5, batch.bytes);
  EXPECT_EQ(must_reject(p.bytes).reason, Reason::kOversized);
}

TEST(Codec, TooManyReadingsOnTheWireIsOversized) {
  Proto reading;
  reading.uint(5, 2);  // i64 value 1 (zigzag)
  Proto batch;
  batch.str(3, "x");
  for (std::size_t i = 0; i <= kMaxReadingsPerBatch; ++i) batch.len(5, reading.bytes);
  auto p = envelope_header();
  p.len(5, batch.bytes);
  const Rejection r = must_reject(p.bytes);
  EXPECT_EQ(r.reason, Reason::kOversized);
  EXPECT_NE(r.detail.find("readings"), std::string::npos);
}

TEST(Codec, EmbeddedNulInATextFieldIsRejectedNotTruncated) {
  ReadingBatch b;
  b.sensor_names = {std::string("temp\0rature", 11)};
  b.readings = {{0, kNow, 1.0}};
  EXPECT_EQ(must_reject(with_body(b)).reason, Reason::kInvalidField);
  ReadingBatch s;
  s.sensor_names = {"state"};
  s.readings = {{0, kNow, std::string("on\0off", 6)}};
  EXPECT_EQ(must_reject(with_body(s)).reason, Reason::kInvalidField);
}

TEST(Codec, InvalidUtf8IsRejected) {
  ReadingBatch b;
  b.sensor_names = {"state"};
  for (std::string bad : {"\xff", "\xc0\xaf", "\xed\xa0\x80", "\xe2\x82", "\xf4\x90\x80\x80"}) {
    b.readings = {{0, kNow, bad}};
    EXPECT_EQ(must_reject(with_body(b)).reason, Reason::kInvalidField);
  }
}

TEST(Codec, NanAndInfinityAreOutOfBoundsUnlessAllowed) {
  for (double v : {std::nan(""), std::numeric_limits<double>::infinity(),
                   -std::numeric_limits<double>::infinity()}) {
    ReadingBatch b;
    b.sensor_names = {"x"};
    b.readings = {{0, kNow, v}};
    const Rejection r = must_reject(with_body(b));
    EXPECT_EQ(r.reason, Reason::kValueOutOfBounds);
    ValidationOptions allow;
    allow.allow_non_finite = true;
    EXPECT_TRUE(
        decode_and_validate(must_encode(with_body(b)), expect(PayloadKind::kReadings), allow).ok());
  }
}

TEST(Codec, DecimalWithMantissaBeyondTwoToThe53IsOutOfBounds) {
  Proto reading;
  const int64_t packed = (kMaxDecimalMantissa + 1) * 16;
  reading.uint(3, static_cast<uint64_t>(packed) << 1);  // zigzag of a positive value
  Proto batch;
  batch.str(3, "x").len(5, reading.bytes);
  auto p = envelope_header();
  p.len(5, batch.bytes);
  EXPECT_EQ(must_reject(p.bytes).reason, Reason::kValueOutOfBounds);
}

TEST(Codec, ReadingWithoutValueIsInvalid) {
  Proto reading;
  reading.uint(1, 0);
  Proto batch;
  batch.str(3, "x").len(5, reading.bytes);
  auto p = envelope_header();
  p.len(5, batch.bytes);
  EXPECT_EQ(must_reject(p.bytes).reason, Reason::kInvalidField);
}

TEST(Codec, SensorIndexOutsideTheNameTableIsInvalid) {
  ReadingBatch b;
  b.sensor_names = {"a", "b"};
  b.readings = {{2, kNow, 1.0}};
  const Rejection r = must_reject(with_body(b));
  EXPECT_EQ(r.reason, Reason::kInvalidField);
  EXPECT_NE(r.detail.find("sensor index 2"), std::string::npos);
}

TEST(Codec, TimestampsFarInTheFutureOrPastAreOutOfBounds) {
  for (int64_t t : std::vector<int64_t>{kNow + 3600 * kSecond, kNow - 400 * 24 * 3600 * kSecond, 0,
                                        std::numeric_limits<int64_t>::max()}) {
    ReadingBatch b;
    b.time_synced = true;
    b.sensor_names = {"x"};
    b.readings = {{0, kNow, 1.0}, {0, t, 2.0}};
    const Rejection r = must_reject(with_body(b));
    EXPECT_EQ(r.reason, Reason::kTimestampOutOfBounds) << t;
    EXPECT_NE(r.detail.find("reading 1 (x)"), std::string::npos) << r.detail;
  }
}

TEST(Codec, TimestampsJustInsideTheWindowAreAccepted) {
  const ValidationOptions o;
  ReadingBatch b;
  b.time_synced = true;
  b.sensor_names = {"x"};
  b.readings = {{0, kNow + o.max_future_skew_us, 1.0}, {0, kNow - o.max_past_age_us, 2.0}};
  EXPECT_TRUE(
      decode_and_validate(must_encode(with_body(b)), expect(PayloadKind::kReadings), o).ok());
}

TEST(Codec, UnsyncedClockIsNotBoundsCheckedUnlessConfigured) {
  ReadingBatch b;
  b.time_synced = false;  // e.g. fake-hwclock restored a time saved a year ago
  b.sensor_names = {"x"};
  b.readings = {{0, kNow - 365 * 86400 * kSecond, 1.0}};
  const auto bytes = must_encode(with_body(b));
  EXPECT_TRUE(decode_and_validate(bytes, expect(PayloadKind::kReadings), {}).ok());
  ValidationOptions strict;
  strict.check_unsynced_timestamps = true;
  EXPECT_EQ(must_reject(bytes, PayloadKind::kReadings, "", strict).reason,
            Reason::kTimestampOutOfBounds);
}

TEST(Codec, TimeDeltasThatOverflowAreRejected) {
  Proto r1;
  r1.uint(2, std::numeric_limits<uint64_t>::max() - 1).uint(5, 2);  // delta = +(2^63 - 1)
  Proto batch;
  batch.str(3, "x").uint(1, 2).len(5, r1.bytes);  // base time 1
  auto p = envelope_header();
  p.len(5, batch.bytes);
  EXPECT_EQ(must_reject(p.bytes).reason, Reason::kTimestampOutOfBounds);
}

TEST(Codec, MoreUnitsThanSensorsIsInvalid) {
  ReadingBatch b;
  b.sensor_names = {"x"};
  b.units = {"V", "A"};
  b.readings = {{0, kNow, 1.0}};
  EXPECT_EQ(must_reject(with_body(b)).reason, Reason::kInvalidField);
}

TEST(Codec, UnknownEnumValuesAreInvalidFields) {
  Proto record;
  record.uint(2, 99).str(3, "msg");  // severity 99
  Proto batch;
  batch.len(3, record.bytes);
  auto p = envelope_header();
  p.len(6, batch.bytes);
  EXPECT_EQ(must_reject(p.bytes, PayloadKind::kLogs).reason, Reason::kInvalidField);

  Proto status;
  status.uint(1, 17);
  auto q = envelope_header();
  q.len(7, status.bytes);
  EXPECT_EQ(must_reject(q.bytes, PayloadKind::kStatus).reason, Reason::kInvalidField);
}

TEST(Codec, StatusValidation) {
  DeviceStatus s;
  EXPECT_EQ(must_reject(with_body(s), PayloadKind::kStatus).reason, Reason::kInvalidField);
  s.state = DeviceState::kLost;  // a last will composed long ago is still accepted
  s.time_synced = true;
  s.time_us = kNow - 365LL * 24 * 3600 * kSecond;
  EXPECT_TRUE(validate(with_body(s), expect(PayloadKind::kStatus), {}).ok());
  s.state = DeviceState::kOnline;
  EXPECT_EQ(must_reject(with_body(s), PayloadKind::kStatus).reason, Reason::kTimestampOutOfBounds);
}

TEST(Codec, AckRangeBackwardsIsInvalid) {
  CommitAck a;
  a.committed = {{1, 10, 9}};
  EXPECT_EQ(must_reject(with_body(a), PayloadKind::kAck).reason, Reason::kInvalidField);
}

TEST(Codec, EventValidation) {
  Event e{EventKind::kDataGap, kNow, "bad site!", "", 0, 0, "seq 5-9 missing"};
  EXPECT_EQ(must_reject(with_body(e), PayloadKind::kEvent).reason, Reason::kInvalidField);
  e.site = "site-a";
  EXPECT_TRUE(validate(with_body(e), expect(PayloadKind::kEvent), {}).ok());
  e.value = std::nan("");
  EXPECT_EQ(must_reject(with_body(e), PayloadKind::kEvent).reason, Reason::kValueOutOfBounds);
}

TEST(Codec, LogFieldKeyMustBePrintable) {
  LogBatch b;
  b.records = {{kNow, Severity::kInfo, "m", {{"bad key", "v"}}}};
  EXPECT_EQ(must_reject(with_body(b), PayloadKind::kLogs).reason, Reason::kInvalidField);
}

TEST(Codec, RejectionDetailsAreShortAndPrintable) {
  Envelope e = typical_batch();
  e.device_id = std::string("\x01\x02", 2) + std::string(60, 'z');
  const Rejection r = must_reject(e);
  for (char c : r.detail) EXPECT_TRUE(c >= 0x20 && c < 0x7f) << r.detail;
  EXPECT_NE(r.detail.find("\\x01"), std::string::npos);
}

// ------------------------------------------- value oneof: rejected, not last-one-wins

// A batch of one good reading and, second, `bad` (a Reading's bytes).
std::vector<uint8_t> batch_with_second_reading(const Proto& bad) {
  Proto good;
  good.uint(5, 2);  // i64 1
  Proto batch;
  batch.str(3, "x").len(5, good.bytes).len(5, bad.bytes);
  auto p = envelope_header();
  p.len(5, batch.bytes);
  return p.bytes;
}

TEST(Codec, ReadingWithTwoValueFieldsIsInvalidNotTheLastOneKept) {
  Proto decimal_and_f64;
  decimal_and_f64.uint(3, (2137 * 16 + 2) << 1).tag(4, 1);         // decimal 21.37, then f64 ...
  for (int i = 0; i < 8; ++i) decimal_and_f64.bytes.push_back(0);  // ... 0.0
  Proto i64_and_s;
  i64_and_s.uint(5, 84).str(7, "idle");
  Proto three;
  three.uint(5, 84).uint(6, 1).str(7, "on");
  for (const auto& [bad, fields] :
       {std::pair{decimal_and_f64, "decimal, f64"}, std::pair{i64_and_s, "i64, s"},
        std::pair{three, "i64, b, s"}}) {
    const Rejection r = must_reject(batch_with_second_reading(bad));
    EXPECT_EQ(r.reason, Reason::kInvalidField) << r.detail;
    EXPECT_NE(r.detail.find("reading 1 has more than one value"), std::string::npos) << r.detail;
    EXPECT_NE(r.detail.find(fields), std::string::npos) << r.detail;
  }
}

TEST(Codec, EachValueFieldAloneStillDecodes) {
  Proto f64;
  f64.tag(4, 1);
  for (uint8_t byte : {0, 0, 0, 0, 0, 0, 0xf0, 0x3f}) f64.bytes.push_back(byte);  // 1.0
  Proto b;
  b.uint(6, 0);  // false, sent explicitly: presence is what makes it a value
  Proto s;
  s.str(7, "");
  for (const Proto& one : {f64, b, s}) {
    auto d = decode(batch_with_second_reading(one));
    ASSERT_TRUE(d.ok()) << d.error().detail;
    EXPECT_EQ(std::get<ReadingBatch>(d.value().body).readings.size(), 2u);
  }
}

// -------------------------- structure first: bytes that are not there are not_decodable

TEST(Codec, LengthRunningPastTheEndIsNotDecodableEvenWhenOverTheBound) {
  // A device id claiming 100 bytes (bound 64) with 10 present.
  Proto id;
  id.uint(1, kSchemaVersion).tag(2, 2).varint(100);
  for (int i = 0; i < 10; ++i) id.bytes.push_back('d');
  // A string value claiming 200 bytes (bound 128), the payload cut after 20 of them.
  Proto reading;
  reading.tag(7, 2).varint(200);
  for (int i = 0; i < 20; ++i) reading.bytes.push_back('s');
  Proto batch;
  batch.str(3, "x").tag(5, 2).varint(reading.bytes.size() + 180);
  batch.bytes.insert(batch.bytes.end(), reading.bytes.begin(), reading.bytes.end());
  auto cut_string = envelope_header();
  cut_string.tag(5, 2).varint(batch.bytes.size() + 180);
  cut_string.bytes.insert(cut_string.bytes.end(), batch.bytes.begin(), batch.bytes.end());
  // A 65th sensor name (bound 64 names), cut short.
  Proto names;
  for (std::size_t i = 0; i < kMaxSensorsPerBatch; ++i) names.str(3, "s" + std::to_string(i));
  names.tag(3, 2).varint(30).bytes.push_back('z');
  auto cut_array = envelope_header();
  cut_array.tag(5, 2).varint(names.bytes.size() + 29);
  cut_array.bytes.insert(cut_array.bytes.end(), names.bytes.begin(), names.bytes.end());
  for (const auto& bytes : {id.bytes, cut_string.bytes, cut_array.bytes}) {
    const Rejection r = must_reject(bytes);
    EXPECT_EQ(r.reason, Reason::kNotDecodable) << r.detail;
    EXPECT_NE(r.detail.find("claims"), std::string::npos) << r.detail;
  }
}

TEST(Codec, LengthRunningPastItsSubmessageIsNotDecodable) {
  // A sensor name claiming 100 bytes inside a batch of 12, with more bytes after the batch:
  // the buffer is long enough, the submessage is not.
  Proto batch;
  batch.tag(3, 2).varint(100);
  for (int i = 0; i < 10; ++i) batch.bytes.push_back('n');
  auto p = envelope_header();
  p.len(5, batch.bytes);
  for (int i = 0; i < 120; ++i) p.uint(15, 1);  // unknown fields, skipped by any decoder
  const Rejection r = must_reject(p.bytes);
  EXPECT_EQ(r.reason, Reason::kNotDecodable) << r.detail;
}

TEST(Codec, CompleteButOverTheBoundIsStillOversized) {
  Proto reading;
  reading.str(7, std::string(kMaxStringValueLength + 1, 's'));
  EXPECT_EQ(must_reject(batch_with_second_reading(reading)).reason, Reason::kOversized);
  Proto names;
  for (std::size_t i = 0; i <= kMaxSensorsPerBatch; ++i) names.str(3, "s" + std::to_string(i));
  auto p = envelope_header();
  p.len(5, names.bytes);
  EXPECT_EQ(must_reject(p.bytes).reason, Reason::kOversized);
}

// The ten-byte varint of a negative int32 (what protobuf encoders write for an enum of -1).
Proto& negative(Proto& p, uint32_t field, int64_t v) {
  return p.uint(field, static_cast<uint64_t>(v));
}

TEST(Codec, NegativeEnumValuesAreInvalidFieldsNotUndecodable) {
  Proto good;
  good.uint(2, 3).str(3, "fine");
  Proto bad;
  negative(bad, 2, -1).str(3, "msg");
  Proto logs;
  logs.len(3, good.bytes).len(3, bad.bytes);
  auto p = envelope_header();
  p.len(6, logs.bytes);
  Rejection r = must_reject(p.bytes, PayloadKind::kLogs);
  EXPECT_EQ(r.reason, Reason::kInvalidField) << r.detail;
  EXPECT_EQ(r.detail, "log record 1: unknown severity -1");

  Proto status;
  negative(status, 1, -2);
  auto q = envelope_header();
  q.len(7, status.bytes);
  r = must_reject(q.bytes, PayloadKind::kStatus);
  EXPECT_EQ(r.reason, Reason::kInvalidField) << r.detail;
  EXPECT_EQ(r.detail, "unknown device state -2");

  Proto event;
  negative(event, 1, -3);
  auto e = envelope_header();
  e.len(9, event.bytes);
  r = must_reject(e.bytes, PayloadKind::kEvent);
  EXPECT_EQ(r.reason, Reason::kInvalidField) << r.detail;
  EXPECT_EQ(r.detail, "unknown event kind -3");
}

TEST(Codec, EveryUnknownEnumValueIsInvalidWhateverItsEncoding) {
  // Five-byte -1 (an int32 encoder's form), just past the last value, and beyond 32 bits.
  for (uint64_t v : {uint64_t{0xffffffff}, uint64_t{8}, uint64_t{1} << 40}) {
    Proto record;
    record.uint(2, v).str(3, "msg");
    Proto logs;
    logs.len(3, record.bytes);
    auto p = envelope_header();
    p.len(6, logs.bytes);
    const Rejection r = must_reject(p.bytes, PayloadKind::kLogs);
    EXPECT_EQ(r.reason, Reason::kInvalidField) << v << ": " << r.detail;
    EXPECT_NE(r.detail.find("unknown severity"), std::string::npos) << r.detail;
  }
}

TEST(Codec, SensorIndexBeyond32BitsIsInvalidField) {
  Proto reading;
  reading.uint(1, uint64_t{1} << 32).uint(5, 2);
  const Rejection r = must_reject(batch_with_second_reading(reading));
  EXPECT_EQ(r.reason, Reason::kInvalidField) << r.detail;
  EXPECT_EQ(r.detail, "reading 1: sensor index 4294967296 does not fit 32 bits");
}

TEST(Codec, StructuralFaultsWinOverValueFaults) {
  // A negative severity first, then a record cut short: the bytes are not a whole protobuf.
  Proto bad;
  negative(bad, 2, -1);
  Proto logs;
  logs.len(3, bad.bytes).tag(3, 2).varint(50).bytes.push_back(0x08);
  auto p = envelope_header();
  p.len(6, logs.bytes);
  EXPECT_EQ(must_reject(p.bytes, PayloadKind::kLogs).reason, Reason::kNotDecodable);
}

// ------------------------------------------------------- text details say what is wrong

Rejection reject_string_value(std::string value) {
  ReadingBatch b;
  b.sensor_names = {"state"};
  b.readings = {{0, kNow, std::move(value)}};
  return must_reject(with_body(b));
}

TEST(Codec, TextDetailsNameTheFaultAndItsOffset) {
  const std::pair<std::string, std::string> cases[] = {
      {std::string("on\0off", 6), "embedded NUL at byte 2"},
      {"ab\x1b[31m", "control character U+001B (ESC) at byte 2"},
      {"x\x7f", "control character U+007F (DEL) at byte 1"},
      {"x\xc2\x85", "control character U+0085 at byte 1"},
      {"a\xff", "invalid UTF-8 at byte 1: 0xff cannot start a character"},
      {"\x80", "invalid UTF-8 at byte 0: 0x80 is a continuation byte without a lead byte"},
      {"ok\xc0\xaf", "invalid UTF-8 at byte 2: 0xc0 0xaf is an overlong form"},
      {"\xed\xa0\x80", "invalid UTF-8 at byte 0: 0xed 0xa0 0x80 encodes a UTF-16 surrogate"},
      {"\xe2\x82", "invalid UTF-8 at byte 0: 0xe2 0x82 is a sequence cut short"},
      {"\xf4\x90\x80\x80", "invalid UTF-8 at byte 0: 0xf4 0x90 0x80 0x80 is beyond U+10FFFF"},
  };
  for (const auto& [value, detail] : cases) {
    const Rejection r = reject_string_value(value);
    EXPECT_EQ(r.reason, Reason::kInvalidField);
    EXPECT_EQ(r.detail, "reading 0 (state): string value: " + detail);
  }
}

TEST(Codec, TabsAndNewlinesAreTextButNotUnits) {
  ReadingBatch b;
  b.sensor_names = {"state"};
  b.readings = {{0, kNow, std::string("a\tb\r\nc \xc3\xa9")}};
  EXPECT_TRUE(
      decode_and_validate(must_encode(with_body(b)), expect(PayloadKind::kReadings), {}).ok());
  b.units = {"m\ts"};
  EXPECT_EQ(must_reject(with_body(b)).detail,
            "invalid unit 'm\\x09s': control character U+0009 (TAB) at byte 1");
}

TEST(Codec, LogAndStatusTextDetailsSayWhere) {
  LogBatch logs;
  logs.records = {{kNow, Severity::kInfo, "fine", {}},
                  {kNow, Severity::kInfo, "bell\a", {}},
                  {kNow, Severity::kInfo, "m", {{"k", std::string("v\0", 2)}}}};
  EXPECT_EQ(must_reject(with_body(logs), PayloadKind::kLogs).detail,
            "log record 1: message: control character U+0007 (BEL) at byte 4");
  logs.records.erase(logs.records.begin() + 1);
  EXPECT_EQ(must_reject(with_body(logs), PayloadKind::kLogs).detail,
            "log record 1: value of 'k': embedded NUL at byte 1");
  DeviceStatus s{DeviceState::kOnline, kNow, true, "1.0\n"};
  EXPECT_EQ(must_reject(with_body(s), PayloadKind::kStatus).detail,
            "invalid agent version '1.0\\x0a': control character U+000A (LF) at byte 3");
}

TEST(Codec, NameAndIdDetailsStateTheAllowedCharacters) {
  ReadingBatch b;
  b.sensor_names = {"room temp"};
  b.readings = {{0, kNow, 1.0}};
  EXPECT_EQ(must_reject(with_body(b)).detail,
            "invalid sensor name 'room temp': has a space at byte 4; allowed: printable ASCII "
            "without spaces (0x21-0x7e)");
  b.sensor_names = {"temp\xc2\xb0"};
  EXPECT_NE(must_reject(with_body(b)).detail.find("has byte 0xc2 (not ASCII) at byte 4"),
            std::string::npos);
  LogBatch logs;
  logs.records = {{kNow, Severity::kInfo, "m", {{"", "v"}}}};
  EXPECT_EQ(must_reject(with_body(logs), PayloadKind::kLogs).detail,
            "log record 0: invalid field key '': is empty");
  Envelope e = with_body(b);
  e.device_id = "gw/7";
  EXPECT_EQ(must_reject(e).detail,
            "invalid device id 'gw/7': has '/' at byte 2; allowed: A-Z a-z 0-9 . _ -");
}

// --------------------------------------------------- timestamps that cannot be right

Envelope batch_at(int64_t t, bool synced) {
  ReadingBatch b;
  b.time_synced = synced;
  b.sensor_names = {"x"};
  b.readings = {{0, kNow - kSecond, 1.0}, {0, t, 2.0}};
  return with_body(b);
}

TEST(Codec, TimesBeforeMinTimestampAreOutOfBoundsEvenWhenUnsynced) {
  constexpr int64_t kNowSeconds = kNow / kSecond;
  // Seconds or milliseconds sent as microseconds; a clock never set (1970); before 1970.
  for (int64_t t : {kNowSeconds, kNowSeconds * 1000, int64_t{42} * kSecond, int64_t{-1}}) {
    for (bool synced : {false, true}) {
      const Rejection r = must_reject(batch_at(t, synced));
      EXPECT_EQ(r.reason, Reason::kTimestampOutOfBounds) << t;
      EXPECT_NE(r.detail.find("reading 1 (x)"), std::string::npos) << r.detail;
      EXPECT_NE(r.detail.find("before min_timestamp 2000-01-01T00:00:00Z"), std::string::npos)
          << r.detail;
    }
  }
  EXPECT_NE(must_reject(batch_at(kNowSeconds, false)).detail.find("1970-01-01T00:28:20Z"),
            std::string::npos);
}

TEST(Codec, UnsyncedTimesFarAheadAreOutOfBounds) {
  const Rejection r = must_reject(batch_at(kNow * 1000, false));  // nanoseconds as microseconds
  EXPECT_EQ(r.reason, Reason::kTimestampOutOfBounds);
  EXPECT_NE(r.detail.find("max_unsynced_future_skew"), std::string::npos) << r.detail;
  const ValidationOptions o;
  EXPECT_EQ(must_reject(batch_at(kNow + o.max_unsynced_future_skew_us + 1, false)).reason,
            Reason::kTimestampOutOfBounds);
}

TEST(Codec, PlausibleUnsyncedTimesAreAccepted) {
  const ValidationOptions o;
  // An RTC reset to its epoch, a fake-hwclock time saved years ago, a clock hours ahead.
  for (int64_t t : {o.min_timestamp_us, kNow - 5 * 365 * 86400 * kSecond,
                    kNow + 14 * 3600 * kSecond, kNow + o.max_unsynced_future_skew_us}) {
    auto r =
        decode_and_validate(must_encode(batch_at(t, false)), expect(PayloadKind::kReadings), o);
    EXPECT_TRUE(r.ok()) << t << ": " << r.error().detail;
  }
}

TEST(Codec, MinTimestampIsConfigurable) {
  ValidationOptions o;
  o.min_timestamp_us = 0;  // a lab of boards without any RTC, accepted knowingly
  const auto bytes = must_encode(batch_at(42 * kSecond, false));
  EXPECT_TRUE(decode_and_validate(bytes, expect(PayloadKind::kReadings), o).ok());
  o.min_timestamp_us = kNow;  // a floor above the window's own lower end wins over it
  EXPECT_EQ(must_reject(batch_at(kNow - kSecond, true), PayloadKind::kReadings, "", o).reason,
            Reason::kTimestampOutOfBounds);
}

TEST(Codec, LogTimesHaveTheSameFloor) {
  LogBatch logs;
  logs.records = {{kNow / kSecond, Severity::kInfo, "booted", {}}};
  const Rejection r = must_reject(with_body(logs), PayloadKind::kLogs);
  EXPECT_EQ(r.reason, Reason::kTimestampOutOfBounds);
  EXPECT_NE(r.detail.find("log record 0"), std::string::npos) << r.detail;
}

TEST(Codec, UnsyncedStatusTimeIsNotBoundedSoAnRtclessBirthIsKept) {
  DeviceStatus s{DeviceState::kOnline, 3 * kSecond, false, "0.1.0"};
  EXPECT_TRUE(validate(with_body(s), expect(PayloadKind::kStatus), {}).ok());
  s.time_synced = true;
  EXPECT_EQ(must_reject(with_body(s), PayloadKind::kStatus).reason, Reason::kTimestampOutOfBounds);
}

TEST(Ids, ProblemDescriptionsAgreeWithTheChecks) {
  for (std::string t : {std::string("ok \t\n"), std::string("a\0", 2), std::string("\x1b"),
                        std::string("\x7f"), std::string("\xc2\x85"), std::string("\xc3\xa9"),
                        std::string("\xff"), std::string(kMaxUnitLength + 1, 'u'), std::string(),
                        std::string("a b"), std::string("A-z_9.")}) {
    EXPECT_EQ(is_valid_utf8_text(t), utf8_text_problem(t).empty()) << t;
    EXPECT_EQ(is_valid_unit(t), unit_problem(t).empty()) << t;
    EXPECT_EQ(is_valid_sensor_name(t), sensor_name_problem(t).empty()) << t;
  }
}

TEST(Ids, ValidIdsAndSensorNames) {
  EXPECT_TRUE(is_valid_id("gw-0042.site_a"));
  EXPECT_TRUE(is_valid_id(std::string(kMaxIdLength, 'a')));
  EXPECT_FALSE(is_valid_id(std::string(kMaxIdLength + 1, 'a')));
  EXPECT_FALSE(is_valid_id(""));
  EXPECT_TRUE(is_valid_sensor_name("cpu,host=a.usage_idle"));
  EXPECT_FALSE(is_valid_sensor_name("has space"));
  EXPECT_FALSE(is_valid_sensor_name(std::string(kMaxSensorNameLength + 1, 's')));
}

}  // namespace
}  // namespace outpost::common
