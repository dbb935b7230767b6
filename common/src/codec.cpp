// Encoding, decoding and validation of Outpost payloads with nanopb.
#include "outpost/common/codec.h"

#include <pb_decode.h>
#include <pb_encode.h>

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>

#include "outpost.pb.h"
#include "outpost/common/limits.h"

namespace outpost::common {
namespace {

// The nanopb options file and limits.h must agree; a drift fails the build here.
// nanopb bounds a bytes field by its struct size, padding included, so an odd
// max_size would let one byte more in than the array holds: require no padding.
template <typename Bytes>
constexpr std::size_t capacity_of() {
  static_assert(sizeof(Bytes) == offsetof(Bytes, bytes) + sizeof(Bytes::bytes),
                "nanopb max_size must be even (see outpost.options)");
  return sizeof(Bytes::bytes);
}
static_assert(capacity_of<outpost_Envelope_device_id_t>() == kMaxIdLength);
static_assert(capacity_of<outpost_ReadingBatch_sensor_names_t>() == kMaxSensorNameLength);
static_assert(capacity_of<outpost_ReadingBatch_units_t>() == kMaxUnitLength);
static_assert(capacity_of<outpost_Reading_s_t>() == kMaxStringValueLength);
static_assert(capacity_of<outpost_LogRecord_message_t>() == kMaxLogMessageLength);
static_assert(capacity_of<outpost_LogField_key_t>() == kMaxLogKeyLength);
static_assert(capacity_of<outpost_LogField_value_t>() == kMaxLogValueLength);
static_assert(capacity_of<outpost_DeviceStatus_agent_version_t>() == kMaxAgentVersionLength);
static_assert(capacity_of<outpost_Event_site_t>() == kMaxIdLength);
static_assert(capacity_of<outpost_Event_sensor_t>() == kMaxSensorNameLength);
static_assert(capacity_of<outpost_Event_detail_t>() == kMaxEventDetailLength);
static_assert(std::extent_v<decltype(outpost_ReadingBatch::sensor_names)> == kMaxSensorsPerBatch);
static_assert(std::extent_v<decltype(outpost_ReadingBatch::units)> == kMaxSensorsPerBatch);
static_assert(std::extent_v<decltype(outpost_LogRecord::fields)> == kMaxLogFieldsPerRecord);
static_assert(std::extent_v<decltype(outpost_CommitAck::committed)> == kMaxAckRanges);
// Enums are read through memcpy (see raw_enum), which needs their size.
static_assert(sizeof(outpost_Severity) == sizeof(int32_t));
static_assert(sizeof(outpost_DeviceState) == sizeof(int32_t));
static_assert(sizeof(outpost_EventKind) == sizeof(int32_t));

constexpr std::array<double, kMaxDecimalScale + 1> kPow10 = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};

Rejection reject(Reason reason, std::string detail) { return Rejection{reason, std::move(detail)}; }

// ---------------------------------------------------------------- text fields

template <typename Bytes>
std::string to_string(const Bytes& b) {
  return std::string(reinterpret_cast<const char*>(b.bytes), b.size);
}

// Copies `text` into a nanopb bytes field; false if it does not fit.
template <typename Bytes>
bool from_string(std::string_view text, Bytes& out) {
  if (text.size() > sizeof(out.bytes)) return false;
  std::memcpy(out.bytes, text.data(), text.size());
  out.size = static_cast<pb_size_t>(text.size());
  return true;
}

// Reads a nanopb enum field without loading an out-of-range value through the
// C enum type (that load is undefined behaviour in C++, and UBSan flags it).
template <typename E>
int32_t raw_enum(const E& e) {
  int32_t raw;
  std::memcpy(&raw, &e, sizeof raw);
  return raw;
}

// ------------------------------------------------------------------ decimals

// Packs v as m * 16 + s when v == m / 10^s exactly (bit for bit, as the
// decoder will compute it). -0.0, NaN and Inf have no decimal form.
std::optional<int64_t> pack_decimal(double v) {
  if (!std::isfinite(v) || (v == 0 && std::signbit(v))) return std::nullopt;
  constexpr double kLimit = static_cast<double>(kMaxDecimalMantissa);
  for (int s = 0; s <= kMaxDecimalScale; ++s) {
    const double scaled = v * kPow10[s];
    if (!(std::fabs(scaled) <= kLimit)) return std::nullopt;  // larger scales only grow
    const double m = std::nearbyint(scaled);
    if (m / kPow10[s] == v) return static_cast<int64_t>(m) * 16 + s;
  }
  return std::nullopt;
}

std::optional<double> unpack_decimal(int64_t packed) {
  const int s = static_cast<int>(packed & 15);
  const int64_t m = (packed - s) / 16;  // exact: packed - s is a multiple of 16
  if (s > kMaxDecimalScale || m > kMaxDecimalMantissa || m < -kMaxDecimalMantissa) {
    return std::nullopt;
  }
  return static_cast<double>(m) / kPow10[s];
}

// ------------------------------------------------------------------- encoding

struct EncodeContext {
  const Envelope* envelope = nullptr;
  std::optional<Rejection> error;  // set by a callback that returns false
};

bool fail(EncodeContext& ctx, Reason reason, std::string detail) {
  if (!ctx.error) ctx.error = reject(reason, std::move(detail));
  return false;
}

bool encode_reading_list(pb_ostream_t* stream, const pb_field_t* field, void* const* arg) {
  auto& ctx = *static_cast<EncodeContext*>(*arg);
  const auto& batch = std::get<ReadingBatch>(ctx.envelope->body);
  int64_t previous = batch.readings.empty() ? 0 : batch.readings.front().time_us;
  for (std::size_t i = 0; i < batch.readings.size(); ++i) {
    const Reading& in = batch.readings[i];
    outpost_Reading r = outpost_Reading_init_zero;
    r.sensor = in.sensor;
    if (__builtin_sub_overflow(in.time_us, previous, &r.time_delta_us)) {
      return fail(ctx, Reason::kTimestampOutOfBounds,
                  "reading " + std::to_string(i) + ": time difference overflows");
    }
    previous = in.time_us;
    if (const double* d = std::get_if<double>(&in.value)) {
      if (auto packed = pack_decimal(*d)) {
        r.has_decimal = true;
        r.decimal = *packed;
      } else {
        r.has_f64 = true;
        r.f64 = *d;
      }
    } else if (const int64_t* n = std::get_if<int64_t>(&in.value)) {
      r.has_i64 = true;
      r.i64 = *n;
    } else if (const bool* b = std::get_if<bool>(&in.value)) {
      r.has_b = true;
      r.b = *b;
    } else {
      r.has_s = true;
      if (!from_string(std::get<std::string>(in.value), r.s)) {
        return fail(ctx, Reason::kOversized,
                    "reading " + std::to_string(i) + ": string value longer than " +
                        std::to_string(kMaxStringValueLength) + " bytes");
      }
    }
    if (!pb_encode_tag_for_field(stream, field) ||
        !pb_encode_submessage(stream, outpost_Reading_fields, &r)) {
      return false;
    }
  }
  return true;
}

bool encode_readings_body(pb_ostream_t* stream, const pb_field_t* field, void* const* arg) {
  auto& ctx = *static_cast<EncodeContext*>(*arg);
  const auto& in = std::get<ReadingBatch>(ctx.envelope->body);
  if (in.readings.size() > kMaxReadingsPerBatch) {
    return fail(ctx, Reason::kOversized,
                std::to_string(in.readings.size()) + " readings, at most " +
                    std::to_string(kMaxReadingsPerBatch) + " per batch");
  }
  if (in.sensor_names.size() > kMaxSensorsPerBatch || in.units.size() > kMaxSensorsPerBatch) {
    return fail(ctx, Reason::kOversized,
                "more than " + std::to_string(kMaxSensorsPerBatch) + " sensors in one batch");
  }
  outpost_ReadingBatch b = outpost_ReadingBatch_init_zero;
  // The first reading's time is the base, so its own delta is zero and costs nothing.
  b.base_time_us = in.readings.empty() ? 0 : in.readings.front().time_us;
  b.time_synced = in.time_synced;
  b.sensor_names_count = static_cast<pb_size_t>(in.sensor_names.size());
  for (std::size_t i = 0; i < in.sensor_names.size(); ++i) {
    if (!from_string(in.sensor_names[i], b.sensor_names[i])) {
      return fail(ctx, Reason::kOversized,
                  "sensor name '" + in.sensor_names[i] + "' longer than " +
                      std::to_string(kMaxSensorNameLength) + " bytes");
    }
  }
  b.units_count = static_cast<pb_size_t>(in.units.size());
  for (std::size_t i = 0; i < in.units.size(); ++i) {
    if (!from_string(in.units[i], b.units[i])) {
      return fail(ctx, Reason::kOversized,
                  "unit '" + in.units[i] + "' longer than " + std::to_string(kMaxUnitLength));
    }
  }
  b.readings.funcs.encode = &encode_reading_list;
  b.readings.arg = &ctx;
  return pb_encode_tag_for_field(stream, field) &&
         pb_encode_submessage(stream, outpost_ReadingBatch_fields, &b);
}

bool encode_log_list(pb_ostream_t* stream, const pb_field_t* field, void* const* arg) {
  auto& ctx = *static_cast<EncodeContext*>(*arg);
  const auto& batch = std::get<LogBatch>(ctx.envelope->body);
  int64_t previous = batch.records.empty() ? 0 : batch.records.front().time_us;
  for (std::size_t i = 0; i < batch.records.size(); ++i) {
    const LogRecord& in = batch.records[i];
    outpost_LogRecord r = outpost_LogRecord_init_zero;
    if (__builtin_sub_overflow(in.time_us, previous, &r.time_delta_us)) {
      return fail(ctx, Reason::kTimestampOutOfBounds,
                  "log record " + std::to_string(i) + ": time difference overflows");
    }
    previous = in.time_us;
    r.severity = static_cast<outpost_Severity>(in.severity);
    if (!from_string(in.message, r.message)) {
      return fail(ctx, Reason::kOversized,
                  "log record " + std::to_string(i) + ": message longer than " +
                      std::to_string(kMaxLogMessageLength) + " bytes");
    }
    if (in.fields.size() > kMaxLogFieldsPerRecord) {
      return fail(ctx, Reason::kOversized,
                  "log record " + std::to_string(i) + ": more than " +
                      std::to_string(kMaxLogFieldsPerRecord) + " fields");
    }
    r.fields_count = static_cast<pb_size_t>(in.fields.size());
    for (std::size_t f = 0; f < in.fields.size(); ++f) {
      if (!from_string(in.fields[f].key, r.fields[f].key) ||
          !from_string(in.fields[f].value, r.fields[f].value)) {
        return fail(ctx, Reason::kOversized,
                    "log record " + std::to_string(i) + ": field '" + in.fields[f].key +
                        "' key over " + std::to_string(kMaxLogKeyLength) + " or value over " +
                        std::to_string(kMaxLogValueLength) + " bytes");
      }
    }
    if (!pb_encode_tag_for_field(stream, field) ||
        !pb_encode_submessage(stream, outpost_LogRecord_fields, &r)) {
      return false;
    }
  }
  return true;
}

bool encode_logs_body(pb_ostream_t* stream, const pb_field_t* field, void* const* arg) {
  auto& ctx = *static_cast<EncodeContext*>(*arg);
  const auto& in = std::get<LogBatch>(ctx.envelope->body);
  if (in.records.size() > kMaxLogRecordsPerBatch) {
    return fail(ctx, Reason::kOversized,
                std::to_string(in.records.size()) + " log records, at most " +
                    std::to_string(kMaxLogRecordsPerBatch) + " per batch");
  }
  outpost_LogBatch b = outpost_LogBatch_init_zero;
  b.base_time_us = in.records.empty() ? 0 : in.records.front().time_us;
  b.time_synced = in.time_synced;
  b.records.funcs.encode = &encode_log_list;
  b.records.arg = &ctx;
  return pb_encode_tag_for_field(stream, field) &&
         pb_encode_submessage(stream, outpost_LogBatch_fields, &b);
}

Status<Rejection> fill_status(const DeviceStatus& in, outpost_DeviceStatus& out) {
  out.state = static_cast<outpost_DeviceState>(in.state);
  out.time_us = in.time_us;
  out.time_synced = in.time_synced;
  if (!from_string(in.agent_version, out.agent_version)) {
    return reject(Reason::kOversized,
                  "agent version longer than " + std::to_string(kMaxAgentVersionLength) + " bytes");
  }
  out.uptime_s = in.uptime_s;
  out.queue_depth = in.queue_depth;
  out.queue_bytes = in.queue_bytes;
  out.dropped_oldest = in.dropped_oldest;
  out.dropped_newest = in.dropped_newest;
  out.dropped_expired = in.dropped_expired;
  out.rejected_input = in.rejected_input;
  out.store_resets = in.store_resets;
  return {};
}

Status<Rejection> fill_ack(const CommitAck& in, outpost_CommitAck& out) {
  if (in.committed.size() > kMaxAckRanges) {
    return reject(Reason::kOversized, std::to_string(in.committed.size()) +
                                          " ranges in one ack, at most " +
                                          std::to_string(kMaxAckRanges));
  }
  out.committed_count = static_cast<pb_size_t>(in.committed.size());
  for (std::size_t i = 0; i < in.committed.size(); ++i) {
    out.committed[i].epoch = in.committed[i].epoch;
    out.committed[i].first = in.committed[i].first;
    out.committed[i].last = in.committed[i].last;
  }
  return {};
}

Status<Rejection> fill_event(const Event& in, outpost_Event& out) {
  out.kind = static_cast<outpost_EventKind>(in.kind);
  out.time_us = in.time_us;
  out.value = in.value;
  out.threshold = in.threshold;
  if (!from_string(in.site, out.site) || !from_string(in.sensor, out.sensor) ||
      !from_string(in.detail, out.detail)) {
    return reject(Reason::kOversized, "event site, sensor or detail too long");
  }
  return {};
}

bool write_to_vector(pb_ostream_t* stream, const pb_byte_t* buf, size_t count) {
  auto* out = static_cast<std::vector<uint8_t>*>(stream->state);
  out->insert(out->end(), buf, buf + count);
  return true;
}

// ------------------------------------------------------------------- decoding

struct DecodeContext {
  Envelope* out = nullptr;
  int bodies = 0;  // body fields seen; exactly one is valid
  std::optional<Rejection> error;
};

bool fail(DecodeContext& ctx, Reason reason, std::string detail) {
  if (!ctx.error) ctx.error = reject(reason, std::move(detail));
  return false;
}

// The detail for a reading whose value oneof (five optional fields, see outpost.options)
// does not hold exactly one value: nanopb would otherwise keep the last one it saw.
std::string value_count_problem(const outpost_Reading& r, std::size_t index) {
  std::string set;
  for (const auto& [has, name] :
       {std::pair{r.has_decimal, "decimal"}, std::pair{r.has_f64, "f64"},
        std::pair{r.has_i64, "i64"}, std::pair{r.has_b, "b"}, std::pair{r.has_s, "s"}}) {
    if (has) set += std::string(set.empty() ? "" : ", ") + name;
  }
  const std::string where = "reading " + std::to_string(index);
  if (set.empty()) return where + " has no value";
  return where + " has more than one value (" + set +
         "): exactly one of decimal, f64, i64, b, s may be set";
}

// Called once per Reading submessage. Stores the time delta in time_us; the
// caller turns deltas into absolute times once the base time is known (the
// base may come after the readings on the wire).
bool decode_reading(pb_istream_t* stream, const pb_field_t*, void** arg) {
  auto& ctx = *static_cast<DecodeContext*>(*arg);
  auto& readings = std::get<ReadingBatch>(ctx.out->body).readings;
  const std::size_t index = readings.size();
  if (index >= kMaxReadingsPerBatch) {
    return fail(ctx, Reason::kOversized,
                "more than " + std::to_string(kMaxReadingsPerBatch) + " readings in one batch");
  }
  // Zeroed here, so nanopb need not set the defaults a second time (this is the hot loop).
  outpost_Reading r = outpost_Reading_init_zero;
  if (!pb_decode_ex(stream, outpost_Reading_fields, &r, PB_DECODE_NOINIT)) return false;
  if (r.has_decimal + r.has_f64 + r.has_i64 + r.has_b + r.has_s != 1) {
    return fail(ctx, Reason::kInvalidField, value_count_problem(r, index));
  }
  Reading& out = readings.emplace_back();
  out.sensor = r.sensor;
  out.time_us = r.time_delta_us;
  if (r.has_decimal) {
    auto v = unpack_decimal(r.decimal);
    if (!v) {
      return fail(
          ctx, Reason::kValueOutOfBounds,
          "reading " + std::to_string(index) + ": decimal mantissa beyond 2^53 or scale beyond 15");
    }
    out.value = *v;
  } else if (r.has_f64) {
    out.value = r.f64;
  } else if (r.has_i64) {
    out.value = r.i64;
  } else if (r.has_b) {
    out.value = r.b;
  } else {
    out.value = to_string(r.s);
  }
  return true;
}

bool take_body(DecodeContext& ctx, Body body) {
  if (++ctx.bodies > 1) {
    return fail(ctx, Reason::kNotDecodable, "envelope carries more than one body");
  }
  ctx.out->body = std::move(body);
  return true;
}

bool decode_readings_body(pb_istream_t* stream, const pb_field_t*, void** arg) {
  auto& ctx = *static_cast<DecodeContext*>(*arg);
  if (!take_body(ctx, ReadingBatch{})) return false;
  auto& batch = std::get<ReadingBatch>(ctx.out->body);
  // The name tables alone are ~5 kB: fine on the stack, freed on return.
  outpost_ReadingBatch b = outpost_ReadingBatch_init_zero;
  b.readings.funcs.decode = &decode_reading;
  b.readings.arg = &ctx;
  if (!pb_decode(stream, outpost_ReadingBatch_fields, &b)) return false;
  batch.time_synced = b.time_synced;
  batch.sensor_names.reserve(b.sensor_names_count);
  for (pb_size_t i = 0; i < b.sensor_names_count; ++i) {
    batch.sensor_names.push_back(to_string(b.sensor_names[i]));
  }
  batch.units.reserve(b.units_count);
  for (pb_size_t i = 0; i < b.units_count; ++i) batch.units.push_back(to_string(b.units[i]));
  int64_t t = b.base_time_us;
  for (std::size_t i = 0; i < batch.readings.size(); ++i) {
    if (__builtin_add_overflow(t, batch.readings[i].time_us, &t)) {
      return fail(ctx, Reason::kTimestampOutOfBounds,
                  "reading " + std::to_string(i) + ": time overflows 64 bits");
    }
    batch.readings[i].time_us = t;
  }
  return true;
}

bool decode_log_record(pb_istream_t* stream, const pb_field_t*, void** arg) {
  auto& ctx = *static_cast<DecodeContext*>(*arg);
  auto& records = std::get<LogBatch>(ctx.out->body).records;
  if (records.size() >= kMaxLogRecordsPerBatch) {
    return fail(
        ctx, Reason::kOversized,
        "more than " + std::to_string(kMaxLogRecordsPerBatch) + " log records in one batch");
  }
  outpost_LogRecord r = outpost_LogRecord_init_zero;
  if (!pb_decode(stream, outpost_LogRecord_fields, &r)) return false;
  const int32_t severity = raw_enum(r.severity);
  if (severity < 0 || severity > static_cast<int32_t>(Severity::kCritical)) {
    return fail(ctx, Reason::kInvalidField,
                "log record " + std::to_string(records.size()) + ": unknown severity " +
                    std::to_string(severity));
  }
  LogRecord& out = records.emplace_back();
  out.time_us = r.time_delta_us;
  out.severity = static_cast<Severity>(severity);
  out.message = to_string(r.message);
  out.fields.reserve(r.fields_count);
  for (pb_size_t i = 0; i < r.fields_count; ++i) {
    out.fields.push_back(LogField{to_string(r.fields[i].key), to_string(r.fields[i].value)});
  }
  return true;
}

bool decode_logs_body(pb_istream_t* stream, const pb_field_t*, void** arg) {
  auto& ctx = *static_cast<DecodeContext*>(*arg);
  if (!take_body(ctx, LogBatch{})) return false;
  auto& batch = std::get<LogBatch>(ctx.out->body);
  outpost_LogBatch b = outpost_LogBatch_init_zero;
  b.records.funcs.decode = &decode_log_record;
  b.records.arg = &ctx;
  if (!pb_decode(stream, outpost_LogBatch_fields, &b)) return false;
  batch.time_synced = b.time_synced;
  int64_t t = b.base_time_us;
  for (std::size_t i = 0; i < batch.records.size(); ++i) {
    if (__builtin_add_overflow(t, batch.records[i].time_us, &t)) {
      return fail(ctx, Reason::kTimestampOutOfBounds,
                  "log record " + std::to_string(i) + ": time overflows 64 bits");
    }
    batch.records[i].time_us = t;
  }
  return true;
}

// Finds a top-level schema_version (field 1, varint) in bytes that failed to
// decode, so that a future format is reported as such rather than as garbage.
std::optional<uint64_t> peek_schema_version(std::span<const uint8_t> bytes) {
  pb_istream_t stream = pb_istream_from_buffer(bytes.data(), bytes.size());
  uint32_t tag;
  pb_wire_type_t wire_type;
  bool eof;
  while (pb_decode_tag(&stream, &wire_type, &tag, &eof)) {
    if (tag == outpost_Envelope_schema_version_tag && wire_type == PB_WT_VARINT) {
      uint64_t version;
      if (pb_decode_varint(&stream, &version)) return version;
      return std::nullopt;
    }
    if (!pb_skip_field(&stream, wire_type)) return std::nullopt;
  }
  return std::nullopt;
}

// nanopb reports errors as fixed strings; the overflow ones mean "too big".
Rejection nanopb_rejection(const char* message) {
  const std::string_view m = message ? message : "unknown error";
  if (m == "array overflow" || m == "bytes overflow" || m == "string overflow") {
    return reject(Reason::kOversized, "field beyond its bound (" + std::string(m) + ")");
  }
  return reject(Reason::kNotDecodable, "protobuf: " + std::string(m));
}

// --------------------------------------------- wire check (only after a failed decode)
//
// nanopb stops at the first thing it refuses, and two of its checks come in an order that
// would mislead: it compares a length with the field's bound before it looks whether that
// many bytes exist (a payload cut short inside an over-long field would be "oversized"), and
// it refuses a negative enum (ten varint bytes in a 32-bit field) as "integer too large"
// (it would be "not_decodable"). So when a decode fails, one walk over the raw bytes, guided
// by the small table below, settles the reason: bytes that are not a complete protobuf are
// not_decodable whatever else is wrong; otherwise an enum or 32-bit field whose varint does
// not fit is invalid_field. Only the error path pays for this walk.

enum class WireKind : uint8_t { kMessage, kEnum, kUint32 };

struct WireMessage;

struct WireField {
  uint32_t tag;
  WireKind kind;
  // For a message: how one item is called in details ("reading"), nullptr for a body
  // (not shown). For an enum or integer: how its value is called ("severity").
  const char* name;
  const WireMessage* message = nullptr;  // kMessage: what to look for inside
};

// The fields of a message the check needs to know; any other field only has to be
// well-formed protobuf.
struct WireMessage {
  std::span<const WireField> fields;
};

constexpr WireMessage kOpaqueWire{};  // LogField, SeqRange: nothing inside to interpret
constexpr WireField kReadingWireFields[] = {
    {outpost_Reading_sensor_tag, WireKind::kUint32, "sensor index"}};
constexpr WireMessage kReadingWire{kReadingWireFields};
constexpr WireField kReadingBatchWireFields[] = {
    {outpost_ReadingBatch_readings_tag, WireKind::kMessage, "reading", &kReadingWire}};
constexpr WireMessage kReadingBatchWire{kReadingBatchWireFields};
constexpr WireField kLogRecordWireFields[] = {
    {outpost_LogRecord_severity_tag, WireKind::kEnum, "severity"},
    {outpost_LogRecord_fields_tag, WireKind::kMessage, "field", &kOpaqueWire}};
constexpr WireMessage kLogRecordWire{kLogRecordWireFields};
constexpr WireField kLogBatchWireFields[] = {
    {outpost_LogBatch_records_tag, WireKind::kMessage, "log record", &kLogRecordWire}};
constexpr WireMessage kLogBatchWire{kLogBatchWireFields};
constexpr WireField kStatusWireFields[] = {
    {outpost_DeviceStatus_state_tag, WireKind::kEnum, "device state"},
    {outpost_DeviceStatus_store_resets_tag, WireKind::kUint32, "store_resets"}};
constexpr WireMessage kStatusWire{kStatusWireFields};
constexpr WireField kAckWireFields[] = {
    {outpost_CommitAck_committed_tag, WireKind::kMessage, "ack range", &kOpaqueWire}};
constexpr WireMessage kAckWire{kAckWireFields};
constexpr WireField kEventWireFields[] = {{outpost_Event_kind_tag, WireKind::kEnum, "event kind"}};
constexpr WireMessage kEventWire{kEventWireFields};
constexpr WireField kEnvelopeWireFields[] = {
    {outpost_Envelope_readings_tag, WireKind::kMessage, nullptr, &kReadingBatchWire},
    {outpost_Envelope_logs_tag, WireKind::kMessage, nullptr, &kLogBatchWire},
    {outpost_Envelope_status_tag, WireKind::kMessage, nullptr, &kStatusWire},
    {outpost_Envelope_ack_tag, WireKind::kMessage, nullptr, &kAckWire},
    {outpost_Envelope_event_tag, WireKind::kMessage, nullptr, &kEventWire}};
constexpr WireMessage kEnvelopeWire{kEnvelopeWireFields};

class WireCheck {
 public:
  explicit WireCheck(std::span<const uint8_t> bytes) : begin_(bytes.data()) {
    (void)walk(bytes.data(), bytes.data() + bytes.size(), kEnvelopeWire);  // sets malformed_
  }

  // Set if the bytes are not a complete protobuf (not_decodable).
  const std::optional<Rejection>& malformed() const { return malformed_; }
  // The first enum or 32-bit field, in wire order, whose varint does not fit (invalid_field).
  const std::optional<Rejection>& bad_value() const { return bad_value_; }

 private:
  enum class VarintResult { kOk, kCut, kTooLong };

  // As nanopb reads one: at most ten bytes, the last of them 0 or 1.
  static VarintResult read_varint(const uint8_t*& p, const uint8_t* end, uint64_t& out) {
    out = 0;
    for (int shift = 0; shift < 70; shift += 7) {
      if (p == end) return VarintResult::kCut;
      const uint8_t byte = *p++;
      if (shift == 63 && byte > 1) return VarintResult::kTooLong;
      out |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if (!(byte & 0x80)) return VarintResult::kOk;
    }
    return VarintResult::kTooLong;
  }

  std::string where() const {
    std::string out;
    for (const auto& [name, index] : path_) {
      out += (out.empty() ? "" : ", ") + std::string(name) + " " + std::to_string(index);
    }
    return out;
  }

  bool malformed(const uint8_t* at, std::string what) {
    const std::string w = where();
    malformed_ = reject(Reason::kNotDecodable, "protobuf: at byte " + std::to_string(at - begin_) +
                                                   ", " + what + (w.empty() ? "" : " (" + w + ")"));
    return false;
  }

  void bad_value(const WireField& f, uint64_t v) {
    if (bad_value_) return;
    const std::string w = where();
    const std::string prefix = w.empty() ? "" : w + ": ";
    bad_value_ = f.kind == WireKind::kEnum
                     ? reject(Reason::kInvalidField, prefix + "unknown " + f.name + " " +
                                                         std::to_string(static_cast<int64_t>(v)))
                     : reject(Reason::kInvalidField,
                              prefix + f.name + " " + std::to_string(v) + " does not fit 32 bits");
  }

  // False once the bytes are found malformed (then malformed_ says where).
  bool walk(const uint8_t* p, const uint8_t* end, const WireMessage& m) {
    std::array<std::size_t, 8> seen{};  // items of each known message field so far
    while (p < end) {
      const uint8_t* const field_start = p;
      uint64_t key;
      if (auto r = read_varint(p, end, key); r != VarintResult::kOk) {
        return malformed(field_start,
                         r == VarintResult::kCut ? "field tag cut short" : "field tag too long");
      }
      if (key > std::numeric_limits<uint32_t>::max() || (key >> 3) == 0) {
        return malformed(field_start, "field number " + std::to_string(key >> 3));
      }
      const auto tag = static_cast<uint32_t>(key >> 3);
      const auto wire = static_cast<pb_wire_type_t>(key & 7);
      const std::string wire_name = std::to_string(key & 7);
      const WireField* known = nullptr;
      std::size_t known_index = 0;
      for (std::size_t i = 0; i < m.fields.size(); ++i) {
        if (m.fields[i].tag == tag) {
          known = &m.fields[i];
          known_index = i;
        }
      }
      const std::string field = "field " + std::to_string(tag);
      if (known && known->kind != WireKind::kMessage && wire != PB_WT_VARINT) {
        return malformed(field_start,
                         field + " has wire type " + wire_name + ", expected a varint");
      }
      if (known && known->kind == WireKind::kMessage && wire != PB_WT_STRING) {
        return malformed(field_start, field + " has wire type " + wire_name +
                                          ", expected a length-delimited message");
      }
      switch (wire) {
        case PB_WT_VARINT: {
          uint64_t v;
          if (auto r = read_varint(p, end, v); r != VarintResult::kOk) {
            return malformed(field_start,
                             field + (r == VarintResult::kCut ? ": varint cut short"
                                                              : ": varint longer than 10 bytes"));
          }
          if (known && v > std::numeric_limits<uint32_t>::max()) bad_value(*known, v);
          break;
        }
        case PB_WT_64BIT:
        case PB_WT_32BIT: {
          const std::size_t n = wire == PB_WT_64BIT ? 8 : 4;
          if (static_cast<std::size_t>(end - p) < n) {
            return malformed(field_start, field + ": fixed-size value cut short");
          }
          p += n;
          break;
        }
        case PB_WT_STRING: {
          uint64_t length;
          if (auto r = read_varint(p, end, length); r != VarintResult::kOk) {
            return malformed(field_start, field + ": length cut short");
          }
          const auto left = static_cast<uint64_t>(end - p);
          if (length > left) {
            return malformed(field_start, field + " claims " + std::to_string(length) +
                                              " bytes but only " + std::to_string(left) +
                                              " remain in its message");
          }
          if (known) {
            const bool item = known->name != nullptr;
            if (item) path_.emplace_back(known->name, seen[known_index]);
            if (!walk(p, p + length, *known->message)) return false;
            if (item) path_.pop_back();
            ++seen[known_index];
          }
          p += length;
          break;
        }
        default:
          return malformed(field_start,
                           field + " has wire type " + wire_name + " (not one protobuf 3 uses)");
      }
    }
    return true;
  }

  const uint8_t* begin_;
  std::vector<std::pair<const char*, std::size_t>> path_;
  std::optional<Rejection> malformed_;
  std::optional<Rejection> bad_value_;
};

// Why nanopb refused `bytes`. Completeness is judged first: bytes that are not a whole
// protobuf are not_decodable, even where nanopb saw a bound broken before their end.
Rejection explain_failure(std::span<const uint8_t> bytes, const DecodeContext& ctx,
                          const char* nanopb_error) {
  const WireCheck check(bytes);
  if (check.malformed()) return *check.malformed();
  const std::string_view m = nanopb_error ? nanopb_error : "";
  if (m == "integer too large" && check.bad_value()) return *check.bad_value();
  if (ctx.error) return *ctx.error;
  return nanopb_rejection(nanopb_error);
}

// ----------------------------------------------------------------- validation

// What is wrong with a text field: found in one pass, put into words only when needed.
struct TextFault {
  enum Kind : uint8_t { kNone, kNul, kControl, kBadUtf8 };
  Kind kind = kNone;
  std::size_t offset = 0;   // byte offset of the character or sequence
  uint32_t code_point = 0;  // kControl: which one
  std::size_t length = 0;   // kBadUtf8: how many bytes to show
  const char* why = "";     // kBadUtf8: what is wrong with them
};

// `layout`: tab, LF and CR are allowed (log messages and values, string readings). Every
// other control character (C0, DEL and C1, Unicode category Cc) is refused, and NUL always.
TextFault find_text_fault(std::string_view s, bool layout) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if (c == 0) return {TextFault::kNul, i};
      if ((c < 0x20 || c == 0x7f) && !(layout && (c == '\t' || c == '\n' || c == '\r'))) {
        return {TextFault::kControl, i, c};
      }
      ++i;
      continue;
    }
    std::size_t len;
    uint32_t cp;
    if ((c & 0xe0) == 0xc0) {
      len = 2;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return {TextFault::kBadUtf8, i, 0, 1,
              (c & 0xc0) == 0x80 ? "is a continuation byte without a lead byte"
                                 : "cannot start a character"};
    }
    for (std::size_t k = 1; k < len; ++k) {
      if (i + k >= s.size() || (static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) {
        return {TextFault::kBadUtf8, i, 0, k, "is a sequence cut short"};
      }
      cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3f);
    }
    static constexpr uint32_t kMinForLength[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMinForLength[len]) return {TextFault::kBadUtf8, i, 0, len, "is an overlong form"};
    if (cp >= 0xd800 && cp <= 0xdfff) {
      return {TextFault::kBadUtf8, i, 0, len, "encodes a UTF-16 surrogate"};
    }
    if (cp > 0x10ffff) return {TextFault::kBadUtf8, i, 0, len, "is beyond U+10FFFF"};
    if (cp >= 0x80 && cp <= 0x9f) return {TextFault::kControl, i, cp};
    i += len;
  }
  return {};
}

std::string hex_byte(unsigned char c) {
  static constexpr char kHex[] = "0123456789abcdef";
  return std::string("0x") + kHex[c >> 4] + kHex[c & 15];
}

// "U+001B (ESC)": a control character as people look it up.
std::string control_name(uint32_t cp) {
  static constexpr const char* kC0[] = {"NUL", "SOH", "STX", "ETX", "EOT", "ENQ", "ACK", "BEL",
                                        "BS",  "TAB", "LF",  "VT",  "FF",  "CR",  "SO",  "SI",
                                        "DLE", "DC1", "DC2", "DC3", "DC4", "NAK", "SYN", "ETB",
                                        "CAN", "EM",  "SUB", "ESC", "FS",  "GS",  "RS",  "US"};
  char code[16];
  std::snprintf(code, sizeof code, "U+%04X", static_cast<unsigned>(cp));
  if (cp < 0x20) return std::string(code) + " (" + kC0[cp] + ")";
  if (cp == 0x7f) return std::string(code) + " (DEL)";
  return code;
}

std::string describe(const TextFault& f, std::string_view s) {
  const std::string at = " at byte " + std::to_string(f.offset);
  switch (f.kind) {
    case TextFault::kNone:
      return "";
    case TextFault::kNul:
      return "embedded NUL" + at;
    case TextFault::kControl:
      return "control character " + control_name(f.code_point) + at;
    case TextFault::kBadUtf8: {
      std::string bytes;
      for (std::size_t k = 0; k < f.length; ++k) {
        bytes += (k ? " " : "") + hex_byte(static_cast<unsigned char>(s[f.offset + k]));
      }
      return "invalid UTF-8" + at + ": " + bytes + " " + f.why;
    }
  }
  return "";
}

// Text that may contain tabs and newlines (string readings, log messages and values).
bool is_valid_text(std::string_view s) { return find_text_fault(s, true).kind == TextFault::kNone; }

// "" if `s` is valid text; otherwise what is wrong, e.g. "embedded NUL at byte 4".
std::string text_problem(std::string_view s, bool layout) {
  const TextFault f = find_text_fault(s, layout);
  return f.kind == TextFault::kNone ? "" : describe(f, s);
}

// One byte of a name or id that breaks its rule, as people can read it.
std::string describe_byte(unsigned char c) {
  if (c == ' ') return "a space";
  if (c < 0x20 || c == 0x7f) return "control character " + control_name(c);
  if (c >= 0x80) return "byte " + hex_byte(c) + " (not ASCII)";
  return std::string("'") + static_cast<char>(c) + "'";
}

// The sensor-name rule (also log field keys): 1..max bytes of printable ASCII without spaces.
std::string name_problem(std::string_view name, std::size_t max) {
  if (name.empty()) return "is empty";
  if (name.size() > max) {
    return "is " + std::to_string(name.size()) + " bytes, at most " + std::to_string(max);
  }
  for (std::size_t i = 0; i < name.size(); ++i) {
    const auto c = static_cast<unsigned char>(name[i]);
    if (c < 0x21 || c > 0x7e) {
      return "has " + describe_byte(c) + " at byte " + std::to_string(i) +
             "; allowed: printable ASCII without spaces (0x21-0x7e)";
    }
  }
  return "";
}

bool is_id_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

// The id rule (device and site ids): 1..64 bytes of [A-Za-z0-9._-].
std::string id_rule_problem(std::string_view id) {
  if (id.empty()) return "is empty";
  if (id.size() > kMaxIdLength) {
    return "is " + std::to_string(id.size()) + " bytes, at most " + std::to_string(kMaxIdLength);
  }
  for (std::size_t i = 0; i < id.size(); ++i) {
    if (!is_id_char(id[i])) {
      return "has " + describe_byte(static_cast<unsigned char>(id[i])) + " at byte " +
             std::to_string(i) + "; allowed: A-Z a-z 0-9 . _ -";
    }
  }
  return "";
}

std::string quoted(std::string_view s) {
  // Details end up in logs and DLQ listings: keep them short and printable.
  std::string out = "'";
  for (std::size_t i = 0; i < s.size() && i < 64; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  if (s.size() > 64) out += "...";
  return out + "'";
}

// "2000-01-01T00:00:00Z" for any Unix time in microseconds, far past and future included
// (civil-from-days after Howard Hinnant's date algorithms; gmtime cannot take every int64).
std::string iso_time(int64_t us) {
  const int64_t s = us / 1'000'000 - (us % 1'000'000 < 0 ? 1 : 0);
  const int64_t days = s / 86'400 - (s % 86'400 < 0 ? 1 : 0);
  const int64_t secs = s - days * 86'400;
  const int64_t z = days + 719'468;
  const int64_t era = (z >= 0 ? z : z - 146'096) / 146'097;
  const int64_t doe = z - era * 146'097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36'524 - doe / 146'096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int64_t day = doy - (153 * mp + 2) / 5 + 1;
  const int64_t month = mp < 10 ? mp + 3 : mp - 9;
  const int64_t year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  char out[64];
  std::snprintf(out, sizeof out, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lldZ",
                static_cast<long long>(year), static_cast<long long>(month),
                static_cast<long long>(day), static_cast<long long>(secs / 3600),
                static_cast<long long>(secs / 60 % 60), static_cast<long long>(secs % 60));
  return out;
}

int64_t saturating_sub(int64_t a, int64_t b) {
  int64_t r;
  return __builtin_sub_overflow(a, b, &r) ? std::numeric_limits<int64_t>::min() : r;
}

int64_t saturating_add(int64_t a, int64_t b) {
  int64_t r;
  return __builtin_add_overflow(a, b, &r) ? std::numeric_limits<int64_t>::max() : r;
}

// The times a batch's timestamps may take (see ValidationOptions and docs/wire-format.md):
// never before min_timestamp; a synchronised clock (or any, with check_unsynced_timestamps)
// within the window around the receive time; an unsynchronised one at most
// max_unsynced_future_skew ahead of it.
class TimeWindow {
 public:
  TimeWindow(const Expectation& expect, const ValidationOptions& options, bool synced)
      : windowed_(synced || options.check_unsynced_timestamps),
        now_(expect.receive_time_us),
        floor_(options.min_timestamp_us),
        min_(windowed_ ? std::max(floor_, saturating_sub(now_, options.max_past_age_us)) : floor_),
        max_(saturating_add(
            now_, windowed_ ? options.max_future_skew_us : options.max_unsynced_future_skew_us)) {}

  // The per-reading test: no string is built unless it fails.
  bool contains(int64_t t) const { return t >= min_ && t <= max_; }

  Rejection rejection(int64_t t, const std::string& what) const {
    const std::string at = "t = " + std::to_string(t) + " us, " + iso_time(t);
    if (t < floor_) {
      return reject(Reason::kTimestampOutOfBounds,
                    what + ": " + at + ", is before min_timestamp " + iso_time(floor_) +
                        " (seconds or milliseconds sent as microseconds, or a clock never set)");
    }
    const double seconds = (static_cast<double>(t) - static_cast<double>(now_)) / 1e6;
    char offset[64];
    std::snprintf(offset, sizeof offset, "%.1f s %s", std::fabs(seconds),
                  seconds > 0 ? "ahead of" : "behind");
    return reject(Reason::kTimestampOutOfBounds,
                  what + ": " + offset + " the receive time (" + at + ")" +
                      (windowed_ ? ""
                                 : ", beyond max_unsynced_future_skew for a clock that is "
                                   "not synchronised"));
  }

  Status<Rejection> check(int64_t t, const std::string& what) const {
    if (contains(t)) return {};
    return rejection(t, what);
  }

 private:
  bool windowed_;
  int64_t now_, floor_, min_, max_;
};

Status<Rejection> validate_readings(const ReadingBatch& b, const Expectation& expect,
                                    const ValidationOptions& options) {
  if (b.readings.empty()) return reject(Reason::kEmpty, "reading batch with no readings");
  if (b.units.size() > b.sensor_names.size()) {
    return reject(Reason::kInvalidField, std::to_string(b.units.size()) + " units for " +
                                             std::to_string(b.sensor_names.size()) + " sensors");
  }
  for (const auto& name : b.sensor_names) {
    if (!is_valid_sensor_name(name)) {
      return reject(Reason::kInvalidField, "invalid sensor name " + quoted(name) + ": " +
                                               name_problem(name, kMaxSensorNameLength));
    }
  }
  for (const auto& unit : b.units) {
    if (!is_valid_unit(unit)) {
      return reject(Reason::kInvalidField,
                    "invalid unit " + quoted(unit) + ": " + common::unit_problem(unit));
    }
  }
  const TimeWindow window(expect, options, b.time_synced);
  for (std::size_t i = 0; i < b.readings.size(); ++i) {
    const Reading& r = b.readings[i];
    if (r.sensor >= b.sensor_names.size()) {
      return reject(Reason::kInvalidField, "reading " + std::to_string(i) + ": sensor index " +
                                               std::to_string(r.sensor) + " outside a table of " +
                                               std::to_string(b.sensor_names.size()));
    }
    const std::string& name = b.sensor_names[r.sensor];
    if (const double* d = std::get_if<double>(&r.value)) {
      if (!options.allow_non_finite && !std::isfinite(*d)) {
        return reject(Reason::kValueOutOfBounds, "reading " + std::to_string(i) + " (" + name +
                                                     "): non-finite value " + std::to_string(*d));
      }
    } else if (const std::string* s = std::get_if<std::string>(&r.value)) {
      if (!is_valid_text(*s)) {
        return reject(Reason::kInvalidField, "reading " + std::to_string(i) + " (" + name +
                                                 "): string value: " + text_problem(*s, true));
      }
    }
    if (!window.contains(r.time_us)) {
      return window.rejection(r.time_us, "reading " + std::to_string(i) + " (" + name + ")");
    }
  }
  return {};
}

Status<Rejection> validate_logs(const LogBatch& b, const Expectation& expect,
                                const ValidationOptions& options) {
  if (b.records.empty()) return reject(Reason::kEmpty, "log batch with no records");
  const TimeWindow window(expect, options, b.time_synced);
  for (std::size_t i = 0; i < b.records.size(); ++i) {
    const LogRecord& r = b.records[i];
    const auto where = [i] { return "log record " + std::to_string(i); };
    if (!is_valid_text(r.message)) {
      return reject(Reason::kInvalidField, where() + ": message: " + text_problem(r.message, true));
    }
    for (const auto& f : r.fields) {
      if (!is_valid_sensor_name(f.key)) {
        return reject(Reason::kInvalidField, where() + ": invalid field key " + quoted(f.key) +
                                                 ": " + name_problem(f.key, kMaxLogKeyLength));
      }
      if (!is_valid_text(f.value)) {
        return reject(Reason::kInvalidField,
                      where() + ": value of " + quoted(f.key) + ": " + text_problem(f.value, true));
      }
    }
    if (!window.contains(r.time_us)) return window.rejection(r.time_us, where());
  }
  return {};
}

Status<Rejection> validate_status(const DeviceStatus& s, const Expectation& expect,
                                  const ValidationOptions& options) {
  if (s.state == DeviceState::kUnspecified) {
    return reject(Reason::kInvalidField, "status without a state");
  }
  if (const std::string problem = text_problem(s.agent_version, false); !problem.empty()) {
    return reject(Reason::kInvalidField,
                  "invalid agent version " + quoted(s.agent_version) + ": " + problem);
  }
  // A last will was composed at connect time; its timestamp may be old by design.
  if (s.state == DeviceState::kLost) return {};
  // A status is not a batch: its time is not stored as a data time, and a device without an
  // RTC sends its birth on connect, perhaps before its clock is set. Rejecting that would
  // lose the device's presence, so only a synchronised status time is bounded.
  if (!s.time_synced && !options.check_unsynced_timestamps) return {};
  return TimeWindow(expect, options, s.time_synced).check(s.time_us, "status");
}

Status<Rejection> validate_ack(const CommitAck& a) {
  if (a.committed.empty()) return reject(Reason::kEmpty, "ack with no ranges");
  for (std::size_t i = 0; i < a.committed.size(); ++i) {
    if (a.committed[i].first > a.committed[i].last) {
      return reject(Reason::kInvalidField, "ack range " + std::to_string(i) + ": first " +
                                               std::to_string(a.committed[i].first) +
                                               " after last " +
                                               std::to_string(a.committed[i].last));
    }
  }
  return {};
}

Status<Rejection> validate_event(const Event& e, const ValidationOptions& options) {
  if (e.kind == EventKind::kUnspecified) {
    return reject(Reason::kInvalidField, "event without a kind");
  }
  if (!e.site.empty() && !is_valid_id(e.site)) {
    return reject(Reason::kInvalidField,
                  "invalid event site " + quoted(e.site) + ": " + id_rule_problem(e.site));
  }
  if (!e.sensor.empty() && !is_valid_sensor_name(e.sensor)) {
    return reject(Reason::kInvalidField, "invalid event sensor " + quoted(e.sensor) + ": " +
                                             name_problem(e.sensor, kMaxSensorNameLength));
  }
  if (!is_valid_text(e.detail)) {
    return reject(Reason::kInvalidField, "event detail: " + text_problem(e.detail, true));
  }
  if (!options.allow_non_finite && (!std::isfinite(e.value) || !std::isfinite(e.threshold))) {
    return reject(Reason::kValueOutOfBounds, "event value or threshold is not finite");
  }
  return {};
}

}  // namespace

// ----------------------------------------------------------------- public API

Status<Rejection> encode_into(const Envelope& envelope, std::vector<uint8_t>& out) {
  out.clear();
  EncodeContext ctx;
  ctx.envelope = &envelope;
  outpost_Envelope e = outpost_Envelope_init_zero;
  e.schema_version = envelope.schema_version;
  if (!from_string(envelope.device_id, e.device_id)) {
    return reject(Reason::kOversized,
                  "device id longer than " + std::to_string(kMaxIdLength) + " bytes");
  }
  e.epoch = envelope.epoch;
  e.seq = envelope.seq;
  switch (envelope.kind()) {
    case PayloadKind::kReadings:
      e.readings.funcs.encode = &encode_readings_body;
      e.readings.arg = &ctx;
      break;
    case PayloadKind::kLogs:
      e.logs.funcs.encode = &encode_logs_body;
      e.logs.arg = &ctx;
      break;
    case PayloadKind::kStatus:
      e.has_status = true;
      if (auto s = fill_status(std::get<DeviceStatus>(envelope.body), e.status); !s.ok()) {
        return s;
      }
      break;
    case PayloadKind::kAck:
      e.has_ack = true;
      if (auto s = fill_ack(std::get<CommitAck>(envelope.body), e.ack); !s.ok()) return s;
      break;
    case PayloadKind::kEvent:
      e.has_event = true;
      if (auto s = fill_event(std::get<Event>(envelope.body), e.event); !s.ok()) return s;
      break;
  }
  pb_ostream_t stream = {&write_to_vector, &out, kMaxPayloadBytes, 0, nullptr};
  if (!pb_encode(&stream, outpost_Envelope_fields, &e)) {
    if (ctx.error) return *ctx.error;
    out.clear();
    return reject(Reason::kOversized, std::string("encoding failed: ") + PB_GET_ERROR(&stream));
  }
  return {};
}

Result<std::vector<uint8_t>, Rejection> encode(const Envelope& envelope) {
  std::vector<uint8_t> out;
  if (auto s = encode_into(envelope, out); !s.ok()) return s.error();
  return out;
}

Result<Envelope, Rejection> decode(std::span<const uint8_t> bytes) {
  if (bytes.empty()) return reject(Reason::kEmpty, "empty payload");
  if (bytes.size() > kMaxPayloadBytes) {
    return reject(Reason::kOversized, "payload of " + std::to_string(bytes.size()) +
                                          " bytes, at most " + std::to_string(kMaxPayloadBytes));
  }
  Envelope out;
  DecodeContext ctx;
  ctx.out = &out;
  outpost_Envelope e = outpost_Envelope_init_zero;
  e.readings.funcs.decode = &decode_readings_body;
  e.readings.arg = &ctx;
  e.logs.funcs.decode = &decode_logs_body;
  e.logs.arg = &ctx;
  pb_istream_t stream = pb_istream_from_buffer(bytes.data(), bytes.size());
  const bool decoded = pb_decode(&stream, outpost_Envelope_fields, &e);
  // Judge the version first: a future format may legitimately fail to decode.
  const std::optional<uint64_t> version =
      decoded ? std::optional<uint64_t>(e.schema_version) : peek_schema_version(bytes);
  if (version && *version != kSchemaVersion) {
    return reject(Reason::kUnsupportedVersion, "schema version " + std::to_string(*version) +
                                                   ", this build reads " +
                                                   std::to_string(kSchemaVersion));
  }
  if (!decoded) return explain_failure(bytes, ctx, PB_GET_ERROR(&stream));
  if (!version) return reject(Reason::kUnsupportedVersion, "no schema version");
  if (e.has_status) {
    if (!take_body(ctx, DeviceStatus{})) return *ctx.error;
    auto& s = std::get<DeviceStatus>(out.body);
    const int32_t state = raw_enum(e.status.state);
    if (state < 0 || state > static_cast<int32_t>(DeviceState::kLost)) {
      return reject(Reason::kInvalidField, "unknown device state " + std::to_string(state));
    }
    s.state = static_cast<DeviceState>(state);
    s.time_us = e.status.time_us;
    s.time_synced = e.status.time_synced;
    s.agent_version = to_string(e.status.agent_version);
    s.uptime_s = e.status.uptime_s;
    s.queue_depth = e.status.queue_depth;
    s.queue_bytes = e.status.queue_bytes;
    s.dropped_oldest = e.status.dropped_oldest;
    s.dropped_newest = e.status.dropped_newest;
    s.dropped_expired = e.status.dropped_expired;
    s.rejected_input = e.status.rejected_input;
    s.store_resets = e.status.store_resets;
  }
  if (e.has_ack) {
    if (!take_body(ctx, CommitAck{})) return *ctx.error;
    auto& a = std::get<CommitAck>(out.body);
    for (pb_size_t i = 0; i < e.ack.committed_count; ++i) {
      a.committed.push_back(
          SeqRange{e.ack.committed[i].epoch, e.ack.committed[i].first, e.ack.committed[i].last});
    }
  }
  if (e.has_event) {
    if (!take_body(ctx, Event{})) return *ctx.error;
    auto& ev = std::get<Event>(out.body);
    const int32_t kind = raw_enum(e.event.kind);
    if (kind < 0 || kind > static_cast<int32_t>(EventKind::kDataGapResolved)) {
      return reject(Reason::kInvalidField, "unknown event kind " + std::to_string(kind));
    }
    ev.kind = static_cast<EventKind>(kind);
    ev.time_us = e.event.time_us;
    ev.site = to_string(e.event.site);
    ev.sensor = to_string(e.event.sensor);
    ev.value = e.event.value;
    ev.threshold = e.event.threshold;
    ev.detail = to_string(e.event.detail);
  }
  if (ctx.bodies == 0) return reject(Reason::kEmpty, "envelope without a body");
  out.schema_version = e.schema_version;
  out.device_id = to_string(e.device_id);
  out.epoch = e.epoch;
  out.seq = e.seq;
  return out;
}

Status<Rejection> validate(const Envelope& envelope, const Expectation& expect,
                           const ValidationOptions& options) {
  if (envelope.kind() != expect.kind) {
    return reject(Reason::kWrongMessageType,
                  "expected a " + std::string(payload_kind_name(expect.kind)) + " message, got " +
                      std::string(payload_kind_name(envelope.kind())));
  }
  if (!is_valid_id(envelope.device_id)) {
    return reject(Reason::kInvalidField, "invalid device id " + quoted(envelope.device_id) + ": " +
                                             id_rule_problem(envelope.device_id));
  }
  if (!expect.device_id.empty() && envelope.device_id != expect.device_id) {
    return reject(Reason::kIdentityMismatch, "payload device id " + quoted(envelope.device_id) +
                                                 " but topic device " + quoted(expect.device_id));
  }
  switch (envelope.kind()) {
    case PayloadKind::kReadings:
      return validate_readings(std::get<ReadingBatch>(envelope.body), expect, options);
    case PayloadKind::kLogs:
      return validate_logs(std::get<LogBatch>(envelope.body), expect, options);
    case PayloadKind::kStatus:
      return validate_status(std::get<DeviceStatus>(envelope.body), expect, options);
    case PayloadKind::kAck:
      return validate_ack(std::get<CommitAck>(envelope.body));
    case PayloadKind::kEvent:
      return validate_event(std::get<Event>(envelope.body), options);
  }
  return {};
}

Result<Envelope, Rejection> decode_and_validate(std::span<const uint8_t> bytes,
                                                const Expectation& expect,
                                                const ValidationOptions& options) {
  auto decoded = decode(bytes);
  if (!decoded.ok()) return decoded;
  if (auto s = validate(decoded.value(), expect, options); !s.ok()) return s.error();
  return decoded;
}

bool is_valid_id(std::string_view id) {
  if (id.empty() || id.size() > kMaxIdLength) return false;
  for (char c : id) {
    if (!is_id_char(c)) return false;
  }
  return true;
}

bool is_valid_utf8_text(std::string_view text) { return is_valid_text(text); }

std::string utf8_text_problem(std::string_view text) { return text_problem(text, true); }

bool is_valid_unit(std::string_view unit) {
  return unit.size() <= kMaxUnitLength && find_text_fault(unit, false).kind == TextFault::kNone;
}

std::string unit_problem(std::string_view unit) {
  if (unit.size() > kMaxUnitLength) {
    return "is " + std::to_string(unit.size()) + " bytes, at most " +
           std::to_string(kMaxUnitLength);
  }
  return text_problem(unit, false);
}

bool is_valid_sensor_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxSensorNameLength) return false;
  for (char c : name) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

std::string sensor_name_problem(std::string_view name) {
  return name_problem(name, kMaxSensorNameLength);
}

}  // namespace outpost::common
