// Encoding and decoding of Outpost payloads (nanopb), and their semantic validation.
//
// Thread safety: every function is reentrant; there is no shared state.
// None of them throws (apart from std::bad_alloc) and none crashes on any input:
// the decoder is fuzzed (tests/fuzz/decode_fuzzer.cpp).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "outpost/common/limits.h"
#include "outpost/common/message.h"
#include "outpost/common/reason.h"
#include "outpost/common/result.h"

namespace outpost::common {

// Serialises an envelope. Fails (reason kOversized, kInvalidField or
// kValueOutOfBounds) if it breaks a bound in limits.h that the decoder would
// reject: an encoder never produces what the decoder refuses on size grounds.
// Doubles that are exact short decimals are packed compactly (see outpost.proto).
Result<std::vector<uint8_t>, Rejection> encode(const Envelope& envelope);

// Like encode, but appends to `out` (cleared first), reusing its capacity.
Status<Rejection> encode_into(const Envelope& envelope, std::vector<uint8_t>& out);

// Structural decode: bytes -> Envelope. Rejects what is not a well-formed,
// bounded schema-v1 Envelope with exactly one body (not_decodable, oversized,
// unsupported_version, empty). No semantic checks; see validate().
Result<Envelope, Rejection> decode(std::span<const uint8_t> bytes);

// The default floor under every timestamp (2000-01-01T00:00:00Z, Unix microseconds): what
// the collector's validation and the agent's line input both refuse below, unless configured.
inline constexpr int64_t kDefaultMinTimestampUs = 946'684'800LL * 1'000'000;

// Semantic checks, configurable per deployment.
struct ValidationOptions {
  // Timestamps may be at most this far ahead of the receive time.
  int64_t max_future_skew_us = 5 * 60 * 1'000'000LL;
  // ...and at most this far behind it (store-and-forward can hold data for weeks).
  int64_t max_past_age_us = 30LL * 24 * 3600 * 1'000'000LL;
  // Devices without a synchronised clock (time_synced false) send whatever time
  // they have; by default their batches are not held to the window above, only
  // flagged, and their status times are not checked at all.
  bool check_unsynced_timestamps = false;
  // No reading or log record of any batch, synchronised or not, may be earlier than
  // this (Unix microseconds; default 2000-01-01T00:00:00Z): such a time is a unit
  // error (seconds or milliseconds sent as microseconds) or a clock never set (1970).
  int64_t min_timestamp_us = kDefaultMinTimestampUs;
  // An unsynchronised batch may still be at most this far ahead of the receive time:
  // further is a unit error (nanoseconds sent as microseconds land ~50,000 years ahead).
  int64_t max_unsynced_future_skew_us = 365LL * 24 * 3600 * 1'000'000LL;
  // Accept NaN and +/-Inf readings.
  bool allow_non_finite = false;
};

// What the receiver knows independently of the payload.
struct Expectation {
  PayloadKind kind;             // from the topic suffix
  std::string_view device_id;   // from the topic; empty: do not check identity
  int64_t receive_time_us = 0;  // the collector's clock when it arrived
};

// Checks a decoded envelope: body kind and device id match the expectation, ids
// use the allowed charset, sensor indexes point into the name table, numbers are
// finite (unless allowed), timestamps are plausible (see ValidationOptions), text is
// UTF-8 without NUL or control characters. A rejection's detail says what and where,
// e.g. "reading 3 (door): string value: control character U+001B (ESC) at byte 2".
Status<Rejection> validate(const Envelope& envelope, const Expectation& expect,
                           const ValidationOptions& options);

// decode() then validate(): the collector's one call per received message.
Result<Envelope, Rejection> decode_and_validate(std::span<const uint8_t> bytes,
                                                const Expectation& expect,
                                                const ValidationOptions& options);

// True if `id` is a valid device or site id: 1..64 bytes of [A-Za-z0-9._-].
bool is_valid_id(std::string_view id);

// True if `text` is valid UTF-8 without NUL or control characters (C0, DEL, C1)
// other than tab, CR and LF: what string values, log messages and log values must be.
bool is_valid_utf8_text(std::string_view text);

// Why `text` is not valid per is_valid_utf8_text, e.g. "embedded NUL at byte 4",
// "control character U+001B (ESC) at byte 5" or "invalid UTF-8 at byte 2: 0xff cannot
// start a character"; "" if it is valid.
std::string utf8_text_problem(std::string_view text);

// True if `unit` is a valid unit: at most 16 bytes of UTF-8 without any control character.
bool is_valid_unit(std::string_view unit);

// Why `unit` is not valid per is_valid_unit; "" if it is.
std::string unit_problem(std::string_view unit);

// True if `name` is a valid sensor name: 1..64 printable ASCII bytes (0x21-0x7e).
bool is_valid_sensor_name(std::string_view name);

// Why `name` is not valid per is_valid_sensor_name, e.g. "has a space at byte 3;
// allowed: printable ASCII without spaces (0x21-0x7e)"; "" if it is valid.
std::string sensor_name_problem(std::string_view name);

}  // namespace outpost::common
