// Names of reasons and payload kinds: the strings DLQ rows, metrics and docs use.
#include "outpost/common/reason.h"

#include "outpost/common/message.h"

namespace outpost::common {

std::string_view reason_name(Reason reason) {
  switch (reason) {
    case Reason::kNotDecodable:
      return "not_decodable";
    case Reason::kUnsupportedVersion:
      return "unsupported_version";
    case Reason::kWrongMessageType:
      return "wrong_message_type";
    case Reason::kIdentityMismatch:
      return "identity_mismatch";
    case Reason::kOversized:
      return "oversized";
    case Reason::kValueOutOfBounds:
      return "value_out_of_bounds";
    case Reason::kTimestampOutOfBounds:
      return "timestamp_out_of_bounds";
    case Reason::kEmpty:
      return "empty";
    case Reason::kInvalidField:
      return "invalid_field";
    case Reason::kUnroutableTopic:
      return "unroutable_topic";
    case Reason::kWebhookGaveUp:
      return "webhook_gave_up";
    case Reason::kStorageRejected:
      return "storage_rejected";
  }
  return "unknown";
}

std::optional<Reason> reason_from_name(std::string_view name) {
  for (Reason r : kAllReasons) {
    if (reason_name(r) == name) return r;
  }
  return std::nullopt;
}

std::string_view payload_kind_name(PayloadKind kind) {
  switch (kind) {
    case PayloadKind::kReadings:
      return "readings";
    case PayloadKind::kLogs:
      return "logs";
    case PayloadKind::kStatus:
      return "status";
    case PayloadKind::kAck:
      return "ack";
    case PayloadKind::kEvent:
      return "event";
  }
  return "unknown";
}

std::string_view event_kind_name(EventKind kind) {
  switch (kind) {
    case EventKind::kUnspecified:
      return "unspecified";
    case EventKind::kDeviceOnline:
      return "device_online";
    case EventKind::kDeviceOffline:
      return "device_offline";
    case EventKind::kDataGap:
      return "data_gap";
    case EventKind::kDeviceRestarted:
      return "device_restarted";
    case EventKind::kDlqRate:
      return "dlq_rate";
    case EventKind::kThresholdAbove:
      return "threshold_above";
    case EventKind::kThresholdBelow:
      return "threshold_below";
    case EventKind::kThresholdCleared:
      return "threshold_cleared";
    case EventKind::kDataGapResolved:
      return "data_gap_resolved";
  }
  return "unknown";
}

std::optional<EventKind> event_kind_from_name(std::string_view name) {
  for (EventKind k : kAllEventKinds) {
    if (event_kind_name(k) == name) return k;
  }
  return std::nullopt;
}

}  // namespace outpost::common
