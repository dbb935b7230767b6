// Bounds on every payload field. The nanopb options file repeats the string and
// array sizes; codec.cpp static_asserts that the two agree.
#pragma once

#include <cstddef>
#include <cstdint>

namespace outpost::common {

inline constexpr uint32_t kSchemaVersion = 1;

// Larger than the largest valid Envelope, so size alone rejects floods early.
inline constexpr std::size_t kMaxPayloadBytes = 256 * 1024;

inline constexpr std::size_t kMaxIdLength = 64;  // device and site ids
inline constexpr std::size_t kMaxSensorNameLength = 64;
inline constexpr std::size_t kMaxSensorsPerBatch = 64;  // name table entries
inline constexpr std::size_t kMaxUnitLength = 16;
inline constexpr std::size_t kMaxReadingsPerBatch = 1000;
inline constexpr std::size_t kMaxStringValueLength = 128;
inline constexpr std::size_t kMaxLogRecordsPerBatch = 100;
inline constexpr std::size_t kMaxLogMessageLength = 1024;
inline constexpr std::size_t kMaxLogFieldsPerRecord = 8;
inline constexpr std::size_t kMaxLogKeyLength = 32;
inline constexpr std::size_t kMaxLogValueLength = 128;
inline constexpr std::size_t kMaxAgentVersionLength = 32;
inline constexpr std::size_t kMaxAckRanges = 64;
inline constexpr std::size_t kMaxEventDetailLength = 256;

// A decimal reading is m / 10^s with |m| <= 2^53 (exact in a double) and s <= 15.
inline constexpr int64_t kMaxDecimalMantissa = int64_t{1} << 53;
inline constexpr int kMaxDecimalScale = 15;

}  // namespace outpost::common
