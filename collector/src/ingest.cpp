// Topic parsing, decoding and validation of one received message.
#include "outpost/collector/ingest.h"

#include <algorithm>
#include <span>

#include "outpost/common/topics.h"

namespace outpost::collector {

std::string oversized_detail(const CutPayload& cut) {
  return "message of " + std::to_string(cut.full_bytes) + " bytes, over mqtt.max_message_bytes (" +
         std::to_string(cut.limit) + "): payload holds its first " +
         std::to_string(std::min<uint64_t>(cut.full_bytes, kOversizedKeepBytes)) +
         " bytes; sha256 " + common::to_hex(cut.sha256);
}

bool is_cut_entry(common::Reason reason, std::string_view detail) {
  return reason == common::Reason::kOversized && detail.starts_with("message of ") &&
         detail.find(" over mqtt.max_message_bytes (") != std::string_view::npos;
}

RawMessage take_message(std::string topic, std::string_view payload, int64_t received_us,
                        std::size_t max_bytes) {
  if (payload.size() <= max_bytes) {
    return RawMessage{std::move(topic), std::string(payload), received_us};
  }
  CutPayload cut{payload.size(), max_bytes, common::sha256(payload)};
  return RawMessage{std::move(topic), std::string(payload.substr(0, kOversizedKeepBytes)),
                    received_us, cut};
}

Admission admit(std::string_view topic, const std::vector<std::string>& topics) {
  for (const std::string& filter : topics) {
    if (common::topic_matches(filter, topic)) return Admission::kTake;
  }
  return common::is_outpost_topic(topic) ? Admission::kIgnore : Admission::kTake;
}

Classified classify(RawMessage m, const common::ValidationOptions& options) {
  auto dead = [&](common::Reason reason, std::string detail) {
    return DlqItem{std::move(m.topic), std::move(m.payload), m.received_us, reason,
                   std::move(detail)};
  };
  if (m.cut) {
    // Checked before the topic: the bound is the collector's, whatever the message claims.
    return dead(common::Reason::kOversized, oversized_detail(*m.cut));
  }
  auto topic = common::parse_device_topic(m.topic);
  if (!topic.ok()) return dead(topic.error().reason, topic.error().detail);
  const common::DeviceTopic& where = topic.value();
  if (where.kind != common::PayloadKind::kReadings && where.kind != common::PayloadKind::kLogs &&
      where.kind != common::PayloadKind::kStatus) {
    return dead(common::Reason::kUnroutableTopic,
                "the collector stores data, logs and status, not " +
                    std::string(common::topic_suffix(where.kind)));
  }
  const auto* bytes = reinterpret_cast<const uint8_t*>(m.payload.data());
  auto decoded = common::decode_and_validate(
      std::span<const uint8_t>(bytes, m.payload.size()),
      common::Expectation{where.kind, where.device, m.received_us}, options);
  if (!decoded.ok()) return dead(decoded.error().reason, decoded.error().detail);
  common::Envelope& env = decoded.value();
  if (where.kind == common::PayloadKind::kStatus) {
    return StatusItem{where.site, env.device_id, std::get<common::DeviceStatus>(env.body),
                      m.received_us};
  }
  return BatchItem{where.site, std::move(env), m.received_us};
}

}  // namespace outpost::collector
