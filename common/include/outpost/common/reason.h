// The fixed list of reasons a payload is rejected, shared by the codec, the
// collector's dead-letter queue and the metrics. Documented in docs/wire-format.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace outpost::common {

// The numeric values are stored in DLQ rows: never renumber, only append.
enum class Reason : uint8_t {
  kNotDecodable = 1,          // not a valid, complete Envelope protobuf (judged before bounds)
  kUnsupportedVersion = 2,    // schema_version is not one this build reads
  kWrongMessageType = 3,      // a valid Envelope whose body is not what the topic carries
  kIdentityMismatch = 4,      // device id in the payload differs from the topic's
  kOversized = 5,             // payload, string or count beyond the documented bounds
  kValueOutOfBounds = 6,      // NaN/Inf where not allowed, decimal mantissa too large
  kTimestampOutOfBounds = 7,  // outside the skew window, or a time no clock can show
  kEmpty = 8,                 // no payload bytes, no body, or a batch with no items
  kInvalidField = 9,          // bad id or text, bad sensor index, unknown enum, not one value
  kUnroutableTopic = 10,      // topic does not follow the outpost/v1 scheme
  kWebhookGaveUp = 11,        // an event's webhook delivery exhausted its retries (collector)
  kStorageRejected = 12,      // a valid message the store refused for good (collector)
};

inline constexpr Reason kAllReasons[] = {
    Reason::kNotDecodable,
    Reason::kUnsupportedVersion,
    Reason::kWrongMessageType,
    Reason::kIdentityMismatch,
    Reason::kOversized,
    Reason::kValueOutOfBounds,
    Reason::kTimestampOutOfBounds,
    Reason::kEmpty,
    Reason::kInvalidField,
    Reason::kUnroutableTopic,
    Reason::kWebhookGaveUp,
    Reason::kStorageRejected,
};

// Stable snake_case name, e.g. "not_decodable": used in DLQ listings and metric labels.
std::string_view reason_name(Reason reason);

// The inverse of reason_name; nullopt for an unknown name.
std::optional<Reason> reason_from_name(std::string_view name);

// Why a payload was refused: a code for machines and a detail for people.
struct Rejection {
  Reason reason;
  std::string detail;
};

}  // namespace outpost::common
