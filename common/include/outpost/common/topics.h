// The MQTT topic scheme: outpost/v1/<site>/<device>/<suffix> and outpost/v1/events/...
// Documented in docs/topics.md. Pure functions; any thread; never throw.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "outpost/common/message.h"
#include "outpost/common/reason.h"
#include "outpost/common/result.h"

namespace outpost::common {

inline constexpr std::string_view kTopicRoot = "outpost/v1";
// The level after the root that holds events; no site may be called this.
inline constexpr std::string_view kEventsLevel = "events";

// "data", "logs", "status", "ack" for device payloads; "" for kEvent (no device topic).
std::string_view topic_suffix(PayloadKind kind);

// The inverse of topic_suffix; nullopt for anything else.
std::optional<PayloadKind> payload_kind_from_suffix(std::string_view suffix);

// outpost/v1/<site>/<device>/<suffix>. Fails with kInvalidField if an id is not
// is_valid_id() or the site is "events", and if kind is kEvent.
Result<std::string, Rejection> device_topic(std::string_view site, std::string_view device,
                                            PayloadKind kind);

struct DeviceTopic {
  std::string site;
  std::string device;
  PayloadKind kind;

  bool operator==(const DeviceTopic&) const = default;
};

// Parses a device topic. Anything else (wrong root or version, wrong number of
// levels, an invalid id, an unknown suffix, an event topic) is kUnroutableTopic
// with a detail naming the offending level.
Result<DeviceTopic, Rejection> parse_device_topic(std::string_view topic);

// outpost/v1/events/<kind>/<site>/<device>; a fleet-wide event (empty site and
// device, e.g. dlq_rate) is outpost/v1/events/<kind>. A device needs its site.
Result<std::string, Rejection> event_topic(EventKind kind, std::string_view site,
                                           std::string_view device);

struct EventTopic {
  EventKind kind;
  std::string site;    // empty for fleet-wide events
  std::string device;  // empty for fleet-wide events

  bool operator==(const EventTopic&) const = default;
};

Result<EventTopic, Rejection> parse_event_topic(std::string_view topic);

// A subscription filter for device topics: site and device default to the
// single-level wildcard "+". Example: device_filter(kReadings) is
// "outpost/v1/+/+/data". Fails like device_topic for an invalid id.
Result<std::string, Rejection> device_filter(PayloadKind kind, std::string_view site = "+",
                                             std::string_view device = "+");

// Why `filter` is not a valid MQTT topic filter (MQTT 3.1.1 section 4.7), as a phrase for an
// error message ("'#' must be the last level"); nullopt when it is valid. Checked: not empty,
// at most 65535 bytes, no NUL, '#' only as the whole last level, '+' only as a whole level.
std::optional<std::string> filter_problem(std::string_view filter);

// Whether topic name `topic` matches `filter` (a valid filter). As MQTT 3.1.1 section 4.7.2
// says, a topic that starts with '$' is not matched by a filter that starts with a wildcard.
// Case-sensitive, like every broker.
bool topic_matches(std::string_view filter, std::string_view topic);

// Whether every topic that `inner` matches is matched by `outer` too (both valid filters):
// "outpost/#" covers "outpost/v1/+/+/data", "outpost/v1/+/+/data" does not cover "outpost/#".
bool filter_covers(std::string_view outer, std::string_view inner);

// Whether `topic` is a well-formed Outpost topic: a device topic of any suffix or an event
// topic (what parse_device_topic or parse_event_topic accepts).
bool is_outpost_topic(std::string_view topic);

// "$share/<group>/<filter>": brokers (MQTT 5) split matching messages among the
// group's subscribers. The group must be is_valid_id().
Result<std::string, Rejection> shared_subscription(std::string_view group, std::string_view filter);

}  // namespace outpost::common
