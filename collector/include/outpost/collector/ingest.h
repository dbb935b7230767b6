// Turning one received MQTT message into what the storage thread does with it: a batch to
// store, a device status, or a dead-letter entry with its reason. Pure; any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "outpost/collector/sink.h"
#include "outpost/common/codec.h"
#include "outpost/common/sha256.h"

namespace outpost::collector {

// What is left of a message over the size bound (mqtt.max_message_bytes): it is never kept
// whole, only its first kOversizedKeepBytes (RawMessage::payload), its length and its hash.
struct CutPayload {
  uint64_t full_bytes = 0;          // the length of the whole payload
  uint64_t limit = 0;               // the bound it exceeded
  common::Sha256::Digest sha256{};  // of the whole payload
};

// The first bytes of an oversized payload that its DLQ entry keeps.
inline constexpr std::size_t kOversizedKeepBytes = 4096;

// One message as the broker delivered it (or as the journal replays it).
struct RawMessage {
  std::string topic;
  std::string payload;  // whole, or the first bytes when `cut` is set
  int64_t received_us = 0;
  std::optional<CutPayload> cut = std::nullopt;
};

// A message as the collector keeps it: `payload` copied whole when it has at most
// `max_bytes`, else only its first kOversizedKeepBytes with the whole one's length and
// SHA-256 (read in place, never copied). Memory: at most max(max_bytes, kOversizedKeepBytes)
// bytes of payload per message.
RawMessage take_message(std::string topic, std::string_view payload, int64_t received_us,
                        std::size_t max_bytes);

// What the MQTT thread does with a message before it journals it.
enum class Admission : uint8_t {
  kTake,    // journal and classify: a topic `topics` matches, or one that does not parse
  kIgnore,  // drop uncounted by the DLQ: a well-formed Outpost topic no filter of ours asks for
};

// The catch-all subscription (mqtt.catch_all) brings everything under the Outpost prefix:
// the collector's own acks and events, kinds not configured, and misaddressed messages. Only
// the last are dead letters (classify makes them unroutable_topic); a well-formed Outpost
// topic that none of `topics` (the configured filters, without $share/) matches is ignored.
Admission admit(std::string_view topic, const std::vector<std::string>& topics);

// One message, classified. Acks and events from other collectors are not ours to store:
// they come out as a DlqItem only if someone subscribed us to them by mistake.
using Classified = std::variant<BatchItem, StatusItem, DlqItem>;

// A message with `cut` set is an oversized DLQ entry (before its topic is even parsed).
Classified classify(RawMessage message, const common::ValidationOptions& options);

// The detail of a cut message's DLQ entry: "message of <n> bytes, over
// mqtt.max_message_bytes (<limit>): payload holds its first <k> bytes; sha256 <hex>".
std::string oversized_detail(const CutPayload& cut);

// Whether a DLQ entry holds only the first bytes of its message (oversized_detail's form):
// such an entry can never be replayed.
bool is_cut_entry(common::Reason reason, std::string_view detail);

}  // namespace outpost::collector
