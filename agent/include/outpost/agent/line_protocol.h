// Parsing the agent's datagram input: InfluxDB line protocol readings and simple log lines.
//
// Line protocol as InfluxDB 1.8/2.x accepts it (escapes per element, every field type,
// comments, blank lines, runs of spaces between sections, the last of duplicate fields wins);
// what InfluxDB refuses is refused with a reason. Where the wire is narrower (sensor names of
// 64 printable ASCII bytes, 128-byte strings, signed 64-bit integers) a valid line is refused,
// never cut. Names are percent-encoded, so an escaped or non-ASCII character never makes two
// series share a sensor name.
//
// Input comes from any local program, so every byte is untrusted: the parser never
// throws, never crashes (it is fuzzed: tests/fuzz/line_fuzzer.cpp) and rejects a bad
// line with a reason without affecting the other lines of the datagram.
// Pure functions; any thread. The mapping is documented in docs/agent-input.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "outpost/common/codec.h"
#include "outpost/common/message.h"
#include "outpost/common/result.h"

namespace outpost::agent {

// Why an input line was refused; counted per reason in the agent's metrics.
// Stable names via line_error_name().
enum class LineError : uint8_t {
  kSyntax = 1,        // not line protocol nor a log line (no field set, a tag or field without
                      // '=', an empty key, a duplicate tag key, an unescaped '=' in a tag value)
  kInvalidName,       // empty measurement, sensor name over 64 bytes once percent-encoded,
                      // unit over 16 bytes or with control characters
  kInvalidValue,      // unparsable number or boolean, integer overflow, NaN/Inf, unbalanced
                      // quotes, a string over 128 bytes or not UTF-8 text, unsigned >= 2^63
  kInvalidTimestamp,  // not an integer, text after it, outside InfluxDB's +-(2^63-2) ns
  kTooLong,           // line longer than kMaxLineBytes
  kTooManyFields,     // more fields than a batch can name, or a log with too many key/values
};

inline constexpr LineError kAllLineErrors[] = {
    LineError::kSyntax,           LineError::kInvalidName, LineError::kInvalidValue,
    LineError::kInvalidTimestamp, LineError::kTooLong,     LineError::kTooManyFields,
};

// "syntax", "invalid_name", "invalid_value", "invalid_timestamp", "too_long", "too_many_fields".
std::string_view line_error_name(LineError error);

struct LineRejection {
  LineError error;
  std::string detail;  // printable, short; safe to log
};

// Line-protocol timestamps carry no unit; the sender's precision is configured.
enum class TimePrecision : uint8_t { kNanoseconds, kMicroseconds, kMilliseconds, kSeconds };

struct LineOptions {
  TimePrecision precision = TimePrecision::kNanoseconds;  // InfluxDB's default
  // A line's own timestamp earlier than this (Unix microseconds) is refused as
  // invalid_timestamp: the collector's validation would send the whole batch, with the good
  // readings queued beside it, to its DLQ (its [validation] min_timestamp, the same default).
  int64_t min_timestamp_us = common::kDefaultMinTimestampUs;
};

inline constexpr std::size_t kMaxLineBytes = 4096;

// One reading ready for the queue: the sensor name is final (docs/agent-input.md, "Sensor
// names": measurement, sorted tags and field key, each percent-encoded where needed).
struct InputReading {
  std::string sensor;
  std::string unit;  // from the `unit` tag; may be empty
  common::Value value;
  int64_t time_us = 0;

  bool operator==(const InputReading&) const = default;
};

// What one accepted line yields: readings (line protocol) or one log record.
struct ParsedLine {
  std::vector<InputReading> readings;
  std::optional<common::LogRecord> log;

  bool operator==(const ParsedLine&) const = default;
};

// Parses one line (without its newline). `receive_time_us` stamps lines that carry
// no timestamp. Blank lines and comments ('#') yield an empty ParsedLine.
common::Result<ParsedLine, LineRejection> parse_line(std::string_view line, int64_t receive_time_us,
                                                     const LineOptions& options = {});

// A datagram may hold several lines ('\n', optionally "\r\n"). Each is parsed on
// its own: a bad line is reported and the rest carry on.
struct DatagramResult {
  std::vector<ParsedLine> accepted;  // non-empty lines only
  struct Rejected {
    std::size_t line_number;  // 1-based within the datagram
    LineRejection rejection;
  };
  std::vector<Rejected> rejected;
};

DatagramResult parse_datagram(std::string_view datagram, int64_t receive_time_us,
                              const LineOptions& options = {});

}  // namespace outpost::agent
