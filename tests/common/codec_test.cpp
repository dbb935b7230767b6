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
  b.time_synced = false;  // e.g. fake-hwclock restored a stale time at boot
  b.sensor_names = {"x"};
  b.readings = {{0, 86400 * kSecond, 1.0}};
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
