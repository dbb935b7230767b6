// Building and parsing Outpost's MQTT topics.
#include "outpost/common/topics.h"

#include <array>
#include <vector>

#include "outpost/common/codec.h"

namespace outpost::common {
namespace {

constexpr std::array kDeviceKinds = {PayloadKind::kReadings, PayloadKind::kLogs,
                                     PayloadKind::kStatus, PayloadKind::kAck};

// Longest topic we ever produce: root + events + kind + two ids, with slashes.
constexpr std::size_t kMaxTopicLength = 200;

Rejection unroutable(std::string detail) {
  return Rejection{Reason::kUnroutableTopic, std::move(detail)};
}

std::vector<std::string_view> split_levels(std::string_view topic) {
  std::vector<std::string_view> levels;
  std::size_t start = 0;
  while (true) {
    const std::size_t slash = topic.find('/', start);
    levels.push_back(topic.substr(start, slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return levels;
}

// Why `id` is not a valid id, for the detail of a rejection.
std::string id_problem(std::string_view id) {
  if (id.empty()) return "is empty";
  if (id.size() > kMaxIdLength) {
    return "is " + std::to_string(id.size()) + " bytes, at most " + std::to_string(kMaxIdLength);
  }
  for (char c : id) {
    if (c == '+' || c == '#') return std::string("contains the wildcard '") + c + "'";
  }
  return "contains characters outside [A-Za-z0-9._-]";
}

std::optional<Rejection> check_ids(std::string_view site, std::string_view device) {
  if (!is_valid_id(site)) return Rejection{Reason::kInvalidField, "site id " + id_problem(site)};
  if (site == kEventsLevel) {
    return Rejection{Reason::kInvalidField, "site id 'events' is reserved for event topics"};
  }
  if (!is_valid_id(device)) {
    return Rejection{Reason::kInvalidField, "device id " + id_problem(device)};
  }
  return std::nullopt;
}

std::optional<Rejection> check_root(const std::vector<std::string_view>& levels,
                                    std::string_view topic) {
  if (topic.size() > kMaxTopicLength) {
    return unroutable("topic is " + std::to_string(topic.size()) + " bytes long");
  }
  if (levels.size() < 2 || levels[0] != "outpost") {
    return unroutable("topic does not start with 'outpost/v1/'");
  }
  if (levels[1] != "v1") return unroutable("unsupported topic version (level 2 is not 'v1')");
  return std::nullopt;
}

}  // namespace

std::string_view topic_suffix(PayloadKind kind) {
  switch (kind) {
    case PayloadKind::kReadings:
      return "data";
    case PayloadKind::kLogs:
      return "logs";
    case PayloadKind::kStatus:
      return "status";
    case PayloadKind::kAck:
      return "ack";
    case PayloadKind::kEvent:
      break;
  }
  return "";
}

std::optional<PayloadKind> payload_kind_from_suffix(std::string_view suffix) {
  for (PayloadKind k : kDeviceKinds) {
    if (topic_suffix(k) == suffix) return k;
  }
  return std::nullopt;
}

Result<std::string, Rejection> device_topic(std::string_view site, std::string_view device,
                                            PayloadKind kind) {
  if (kind == PayloadKind::kEvent) {
    return Rejection{Reason::kInvalidField, "events have no device topic; use event_topic"};
  }
  if (auto problem = check_ids(site, device)) return *problem;
  std::string topic(kTopicRoot);
  topic += '/';
  topic += site;
  topic += '/';
  topic += device;
  topic += '/';
  topic += topic_suffix(kind);
  return topic;
}

Result<DeviceTopic, Rejection> parse_device_topic(std::string_view topic) {
  const auto levels = split_levels(topic);
  if (auto problem = check_root(levels, topic)) return *problem;
  if (levels[2] == kEventsLevel) return unroutable("an event topic, not a device topic");
  if (levels.size() != 5) {
    return unroutable("expected outpost/v1/<site>/<device>/<suffix>, got " +
                      std::to_string(levels.size()) + " levels");
  }
  if (!is_valid_id(levels[2])) return unroutable("site level " + id_problem(levels[2]));
  if (!is_valid_id(levels[3])) return unroutable("device level " + id_problem(levels[3]));
  const auto kind = payload_kind_from_suffix(levels[4]);
  if (!kind) return unroutable("unknown suffix (expected data, logs, status or ack)");
  return DeviceTopic{std::string(levels[2]), std::string(levels[3]), *kind};
}

Result<std::string, Rejection> event_topic(EventKind kind, std::string_view site,
                                           std::string_view device) {
  if (kind == EventKind::kUnspecified) {
    return Rejection{Reason::kInvalidField, "event kind is unspecified"};
  }
  std::string topic(kTopicRoot);
  topic += '/';
  topic += kEventsLevel;
  topic += '/';
  topic += event_kind_name(kind);
  if (site.empty() && device.empty()) return topic;
  if (site.empty()) return Rejection{Reason::kInvalidField, "event for a device needs its site"};
  if (!is_valid_id(site)) return Rejection{Reason::kInvalidField, "site id " + id_problem(site)};
  topic += '/';
  topic += site;
  if (!device.empty()) {
    if (!is_valid_id(device)) {
      return Rejection{Reason::kInvalidField, "device id " + id_problem(device)};
    }
    topic += '/';
    topic += device;
  }
  return topic;
}

Result<EventTopic, Rejection> parse_event_topic(std::string_view topic) {
  const auto levels = split_levels(topic);
  if (auto problem = check_root(levels, topic)) return *problem;
  if (levels.size() < 4 || levels[2] != kEventsLevel) {
    return unroutable("expected outpost/v1/events/<kind>[/<site>[/<device>]]");
  }
  if (levels.size() > 6) return unroutable("too many levels for an event topic");
  const std::optional<EventKind> kind = event_kind_from_name(levels[3]);
  if (!kind) return unroutable("unknown event kind level");
  EventTopic out{*kind, "", ""};
  if (levels.size() >= 5) {
    if (!is_valid_id(levels[4])) return unroutable("site level " + id_problem(levels[4]));
    out.site = levels[4];
  }
  if (levels.size() == 6) {
    if (!is_valid_id(levels[5])) return unroutable("device level " + id_problem(levels[5]));
    out.device = levels[5];
  }
  return out;
}

Result<std::string, Rejection> device_filter(PayloadKind kind, std::string_view site,
                                             std::string_view device) {
  if (kind == PayloadKind::kEvent) {
    return Rejection{Reason::kInvalidField, "events have no device topic"};
  }
  // "+" is allowed here as a whole level; anything else must be a real id.
  const std::string_view check_site = site == "+" ? "x" : site;
  const std::string_view check_device = device == "+" ? "x" : device;
  if (auto problem = check_ids(check_site, check_device)) return *problem;
  std::string filter(kTopicRoot);
  filter += '/';
  filter += site;
  filter += '/';
  filter += device;
  filter += '/';
  filter += topic_suffix(kind);
  return filter;
}

std::optional<std::string> filter_problem(std::string_view filter) {
  if (filter.empty()) return "is empty";
  if (filter.size() > 65535) {
    return "is " + std::to_string(filter.size()) + " bytes, at most 65535";
  }
  if (filter.find('\0') != std::string_view::npos) return "contains a NUL character";
  const auto levels = split_levels(filter);
  for (std::size_t i = 0; i < levels.size(); ++i) {
    const std::string_view level = levels[i];
    if (level.find('#') != std::string_view::npos) {
      if (level != "#") return "'#' must be a whole level, e.g. \"outpost/#\"";
      if (i + 1 != levels.size()) return "'#' must be the last level";
    }
    if (level.find('+') != std::string_view::npos && level != "+") {
      return "'+' must be a whole level, e.g. \"outpost/v1/+/+/data\"";
    }
  }
  return std::nullopt;
}

bool topic_matches(std::string_view filter, std::string_view topic) {
  if (topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#'))) {
    return false;
  }
  const auto f = split_levels(filter);
  const auto t = split_levels(topic);
  std::size_t i = 0;
  for (; i < f.size(); ++i) {
    if (f[i] == "#") return true;  // also matches the parent level: "a/#" matches "a"
    if (i >= t.size()) return false;
    if (f[i] != "+" && f[i] != t[i]) return false;
  }
  return i == t.size();
}

bool filter_covers(std::string_view outer, std::string_view inner) {
  if (inner.starts_with('$') && (outer.starts_with('+') || outer.starts_with('#'))) return false;
  const auto o = split_levels(outer);
  const auto n = split_levels(inner);
  for (std::size_t i = 0; i < o.size(); ++i) {
    if (o[i] == "#") return true;
    if (i >= n.size()) return false;
    if (n[i] == "#") return false;  // inner reaches deeper or shallower than outer's levels
    if (o[i] == "+") continue;      // covers a literal level and "+" alike
    if (n[i] == "+" || o[i] != n[i]) return false;
  }
  return o.size() == n.size();
}

bool is_outpost_topic(std::string_view topic) {
  return parse_device_topic(topic).ok() || parse_event_topic(topic).ok();
}

Result<std::string, Rejection> shared_subscription(std::string_view group,
                                                   std::string_view filter) {
  if (!is_valid_id(group)) {
    return Rejection{Reason::kInvalidField, "share group " + id_problem(group)};
  }
  if (filter.empty() || filter.starts_with("$share/")) {
    return Rejection{Reason::kInvalidField, "filter is empty or already shared"};
  }
  return "$share/" + std::string(group) + "/" + std::string(filter);
}

}  // namespace outpost::common
