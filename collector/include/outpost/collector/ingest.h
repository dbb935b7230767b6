// Turning one received MQTT message into what the storage thread does with it: a batch to
// store, a device status, or a dead-letter entry with its reason. Pure; any thread.
#pragma once

#include <cstdint>
#include <string>
#include <variant>

#include "outpost/collector/sink.h"
#include "outpost/common/codec.h"

namespace outpost::collector {

// One message as the broker delivered it (or as the journal replays it).
struct RawMessage {
  std::string topic;
  std::string payload;
  int64_t received_us = 0;
};

// One message, classified. Acks and events from other collectors are not ours to store:
// they come out as a DlqItem only if someone subscribed us to them by mistake.
using Classified = std::variant<BatchItem, StatusItem, DlqItem>;

Classified classify(RawMessage message, const common::ValidationOptions& options);

}  // namespace outpost::collector
