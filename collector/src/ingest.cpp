// Topic parsing, decoding and validation of one received message.
#include "outpost/collector/ingest.h"

#include <span>

#include "outpost/common/topics.h"

namespace outpost::collector {

Classified classify(RawMessage m, const common::ValidationOptions& options) {
  auto dead = [&](common::Reason reason, std::string detail) {
    return DlqItem{std::move(m.topic), std::move(m.payload), m.received_us, reason,
                   std::move(detail)};
  };
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
