// How a device stands: what the FleetTracker decides (fleet.h) and the devices table stores.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "outpost/common/message.h"

namespace outpost::collector {

enum class Presence : uint8_t { kUnknown, kOnline, kOffline, kLost, kSilent };
std::string_view presence_name(Presence p);  // "unknown", "online", "offline", "lost", "silent"

// The Presence a presence_name() names; nullopt for any other text.
std::optional<Presence> presence_from_name(std::string_view name);

// What a device status message makes of a device: online (birth), offline (clean shutdown) or
// lost (last will); nullopt (no change) for a state that is not one of those. The
// FleetTracker's rule for statuses; the sink stores a status's presence by the same rule.
std::optional<Presence> presence_of(common::DeviceState state);

}  // namespace outpost::collector
