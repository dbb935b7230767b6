// The web console's JSON API: fleet, devices, series, events, logs, DLQ, replay, the stream.
#include "outpost/collector/console.h"

#include <openssl/rand.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <exception>
#include <unordered_map>

#include "outpost/common/json.h"
#include "outpost/common/topics.h"

namespace outpost::collector {
namespace {

using common::HttpRequest;
using common::HttpResponse;

constexpr const char* kJson = "application/json";
constexpr int64_t kHourUs = 3'600'000'000;

HttpResponse json_ok(std::string body) {
  return HttpResponse{200, kJson, std::move(body), {{"Cache-Control", "no-store"}}};
}

HttpResponse json_error(int status, std::string_view message) {
  std::string body = "{\"error\":";
  common::append_json_string(body, message);
  body += "}\n";
  return HttpResponse{status, kJson, std::move(body), {{"Cache-Control", "no-store"}}};
}

HttpResponse storage_error(const SinkError& e) {
  return json_error(503, "the database could not be read: " + e.message);
}

// A request parameter that is out of range or not a number: the 400 names it and says why.
struct BadParam {
  std::string message;
};

// Parameter `name` as an integer in [min, max]; `fallback` when absent or empty.
common::Result<int64_t, BadParam> int_param(const HttpRequest& req, std::string_view name,
                                            int64_t fallback, int64_t min, int64_t max) {
  const auto text = req.param(name);
  if (!text || text->empty()) return fallback;
  int64_t value = 0;
  const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (ec != std::errc() || end != text->data() + text->size()) {
    return BadParam{std::string(name) + " must be an integer, not \"" +
                    std::string(text->substr(0, 40)) + "\""};
  }
  if (value < min || value > max) {
    return BadParam{std::string(name) + " must be between " + std::to_string(min) + " and " +
                    std::to_string(max)};
  }
  return value;
}

void key(std::string& out, std::string_view name) {
  if (out.back() != '{') out += ',';
  common::append_json_string(out, name);
  out += ':';
}

void field(std::string& out, std::string_view name, std::string_view text) {
  key(out, name);
  common::append_json_string(out, text);
}

void field(std::string& out, std::string_view name, int64_t n) {
  key(out, name);
  out += std::to_string(n);
}

void field_u(std::string& out, std::string_view name, uint64_t n) {
  key(out, name);
  out += std::to_string(n);
}

// A finite double in shortest round-trip form; NaN and infinities as null.
void field_double(std::string& out, std::string_view name, double v) {
  key(out, name);
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  char buf[32];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, ec == std::errc() ? end : buf);
}

// The unsigned integer after "name": in the JSON text a sink stored for a status (stored_json.h:
// written by us, flat, no nesting); nullopt when absent.
std::optional<int64_t> status_number(std::string_view json, std::string_view name) {
  const std::string needle = "\"" + std::string(name) + "\":";
  const std::size_t at = json.find(needle);
  if (at == std::string_view::npos) return std::nullopt;
  const char* begin = json.data() + at + needle.size();
  int64_t value = 0;
  const auto [end, ec] = std::from_chars(begin, json.data() + json.size(), value);
  if (ec != std::errc() || end == begin) return std::nullopt;
  return value;
}

std::string status_text(std::string_view json, std::string_view name) {
  const std::string needle = "\"" + std::string(name) + "\":\"";
  const std::size_t at = json.find(needle);
  if (at == std::string_view::npos) return {};
  const std::size_t from = at + needle.size();
  const std::size_t end = json.find('"', from);
  if (end == std::string_view::npos) return {};
  return std::string(json.substr(from, end - from));
}

int state_rank(std::string_view state) {
  for (int i = 0; i < static_cast<int>(std::size(kConsoleStates)); ++i) {
    if (kConsoleStates[i] == state) return i;
  }
  return static_cast<int>(std::size(kConsoleStates)) - 1;
}

// The state the page shows, worst first: what the broker and the tracker say of its presence
// (lost, silent), then what is wrong with its data (gaps, dlq), then offline, online, unknown.
std::string_view derive_state(const ConsoleDevice& d) {
  switch (d.row.presence) {
    case Presence::kLost:
      return "lost";
    case Presence::kSilent:
      return "silent";
    default:
      break;
  }
  if (d.open_gaps > 0) return "gaps";
  if (d.dlq > 0) return "dlq";
  switch (d.row.presence) {
    case Presence::kOffline:
      return "offline";
    case Presence::kOnline:
      return "online";
    default:
      return "unknown";
  }
}

bool contains_nocase(std::string_view text, std::string_view part) {
  if (part.empty()) return true;
  const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
  return std::search(text.begin(), text.end(), part.begin(), part.end(),
                     [&](char a, char b) { return lower(a) == lower(b); }) != text.end();
}

std::string severity_name(common::Severity s) {
  switch (s) {
    case common::Severity::kTrace:
      return "trace";
    case common::Severity::kDebug:
      return "debug";
    case common::Severity::kInfo:
      return "info";
    case common::Severity::kNotice:
      return "notice";
    case common::Severity::kWarning:
      return "warning";
    case common::Severity::kError:
      return "error";
    case common::Severity::kCritical:
      return "critical";
    default:
      return "unspecified";
  }
}

std::string hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

std::string dlq_json(const DlqRow& r, bool with_payload) {
  std::string out = "{";
  field(out, "id", r.id);
  field(out, "received_us", r.received_us);
  field(out, "topic", r.topic);
  field(out, "reason", common::reason_name(r.reason));
  field(out, "reason_code", static_cast<int64_t>(r.reason));
  field(out, "detail", r.detail);
  field_u(out, "size", r.payload.size());
  if (with_payload) field(out, "payload_hex", hex(r.payload));
  out += '}';
  return out;
}

std::string random_hex(std::size_t bytes) {
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1) {
    return {};
  }
  return hex(raw);
}

// A hash of everything console_device_json() writes of `d`.
uint64_t fingerprint(const ConsoleDevice& d) {
  uint64_t h = std::hash<std::string_view>{}(d.row.last_status);
  const auto mix = [&h](uint64_t v) { h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2); };
  mix(std::hash<std::string_view>{}(d.row.site));
  mix(static_cast<uint64_t>(d.rank));
  mix(static_cast<uint64_t>(d.row.presence));
  mix(static_cast<uint64_t>(d.row.last_data_us));
  mix(static_cast<uint64_t>(d.row.last_seen_us));
  mix(static_cast<uint64_t>(d.row.first_seen_us));
  mix(d.row.epoch);
  mix(d.restarts);
  mix(d.row.readings);
  mix(d.row.logs);
  mix(d.row.batches);
  mix(d.row.duplicates);
  mix(d.row.gaps);
  mix(d.open_gaps);
  mix(d.dlq);
  return h;
}

}  // namespace

bool same_secret(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  }
  return diff == 0;
}

std::string console_device_json(const ConsoleDevice& d) {
  std::string out = "{";
  field(out, "device", d.row.device);
  field(out, "site", d.row.site);
  field(out, "state", d.state);
  field(out, "presence", presence_name(d.row.presence));
  key(out, "connected_since_us");
  out += d.connected_since_us ? std::to_string(d.connected_since_us) : "null";
  field(out, "last_data_us", d.row.last_data_us);
  field(out, "last_seen_us", d.row.last_seen_us);
  field(out, "first_seen_us", d.row.first_seen_us);
  field(out, "epoch", std::to_string(d.row.epoch));  // an id: text, JavaScript keeps 53 bits
  field_u(out, "restarts", d.restarts);
  key(out, "queue_depth");
  out += d.has_status ? std::to_string(d.queue_depth) : "null";
  key(out, "dropped");
  out += d.has_status ? std::to_string(d.dropped) : "null";
  field(out, "agent_version", d.agent_version);
  field_u(out, "readings", d.row.readings);
  field_u(out, "logs", d.row.logs);
  field_u(out, "batches", d.row.batches);
  field_u(out, "duplicates", d.row.duplicates);
  field_u(out, "gaps", d.row.gaps);
  field_u(out, "open_gaps", d.open_gaps);
  field_u(out, "dlq", d.dlq);
  out += '}';
  return out;
}

std::string console_event_json(const EventRow& e) {
  const common::Event& ev = e.event;
  std::string out = "{";
  field(out, "id", e.id);
  field(out, "kind", common::event_kind_name(ev.kind));
  field(out, "time_us", ev.time_us);
  field(out, "device", e.device);
  field(out, "site", ev.site);
  if (!ev.sensor.empty()) {
    field(out, "sensor", ev.sensor);
    field_double(out, "value", ev.value);
    field_double(out, "threshold", ev.threshold);
  }
  if (!ev.detail.empty()) field(out, "detail", ev.detail);
  out += '}';
  return out;
}

common::Result<std::vector<int64_t>, std::string> parse_replay_ids(std::string_view body) {
  // {"ids":[1,2,3]} with any blanks; nothing else.
  std::size_t i = 0;
  const auto blanks = [&] {
    while (i < body.size() &&
           (body[i] == ' ' || body[i] == '\t' || body[i] == '\n' || body[i] == '\r')) {
      ++i;
    }
  };
  const auto expect = [&](std::string_view text) {
    blanks();
    if (body.substr(i, text.size()) != text) return false;
    i += text.size();
    return true;
  };
  const std::string shape = "expected a JSON body {\"ids\": [<entry id>, ...]}";
  if (!expect("{") || !expect("\"ids\"") || !expect(":") || !expect("[")) return shape;
  std::vector<int64_t> ids;
  blanks();
  if (!expect("]")) {
    for (;;) {
      blanks();
      int64_t id = 0;
      const auto [end, ec] = std::from_chars(body.data() + i, body.data() + body.size(), id);
      if (ec != std::errc() || id <= 0) return std::string("ids must be positive integers");
      i = static_cast<std::size_t>(end - body.data());
      ids.push_back(id);
      if (ids.size() > 1000) return std::string("at most 1000 ids per replay");
      if (expect("]")) break;
      if (!expect(",")) return shape;
    }
  }
  if (!expect("}")) return shape;
  blanks();
  if (i != body.size()) return shape;
  if (ids.empty()) return std::string("ids is empty: name at least one entry");
  return ids;
}

ConsoleApi::ConsoleApi(Reader& reader, ConsoleOptions options, ReplayFunction replay,
                       std::function<int64_t()> now_us)
    : reader_(reader),
      options_(std::move(options)),
      replay_(std::move(replay)),
      now_us_(std::move(now_us)) {}

namespace {

// What the page derives from a device's row: its status fields, restarts and open gaps (from
// its sequence line), and its state (which also depends on d.dlq).
void derive(ConsoleDevice& d) {
  d.restarts = 0;
  d.open_gaps = 0;
  if (d.row.seq_line) {
    const SeqLineState& l = *d.row.seq_line;
    const std::size_t epochs = l.epochs.size() + l.retired.size();
    d.restarts = epochs > 1 ? epochs - 1 : 0;
    for (const SeqHole& h : l.holes) d.open_gaps += h.reported_us != 0;
  }
  const std::string_view status = d.row.last_status;
  d.has_status = !status.empty();
  d.connected_since_us = 0;
  d.queue_depth = 0;
  d.dropped = 0;
  d.agent_version.clear();
  if (d.has_status) {
    d.connected_since_us = status_number(status, "t").value_or(0);
    d.queue_depth = static_cast<uint64_t>(status_number(status, "queue_depth").value_or(0));
    d.dropped = static_cast<uint64_t>(status_number(status, "dropped_oldest").value_or(0) +
                                      status_number(status, "dropped_newest").value_or(0) +
                                      status_number(status, "dropped_expired").value_or(0));
    d.agent_version = status_text(status, "agent_version");
  }
  d.state = std::string(derive_state(d));
  d.rank = state_rank(d.state);
}

}  // namespace

common::Status<SinkError> ConsoleApi::refresh(bool force) {
  const int64_t now = now_us_();
  const int64_t age = now - refreshed_us_;
  if (!force && refreshed_us_ && age >= 0 && age < options_.cache_us) return {};
  refresh_wanted_ = false;
  auto changes = reader_.fleet_changes(fleet_.empty() ? 0 : revision_);
  if (!changes.ok()) return changes.error();
  FleetChanges& c = changes.value();
  revision_ = c.revision;

  if (c.dlq_topics) {
    dlq_of_.clear();
    for (const auto& [topic, n] : *c.dlq_topics) {
      if (auto t = common::parse_device_topic(topic); t.ok()) dlq_of_[t.value().device] += n;
    }
  }
  const auto dlq_count = [this](const std::string& device) -> uint64_t {
    const auto it = dlq_of_.find(device);
    return it == dlq_of_.end() ? 0 : it->second;
  };

  if (c.complete) {
    std::vector<ConsoleDevice> fleet;
    fleet.reserve(c.devices.size());
    for (DeviceRow& row : c.devices) {
      ConsoleDevice d;
      d.row = std::move(row);
      d.dlq = dlq_count(d.row.device);
      derive(d);
      fleet.push_back(std::move(d));
    }
    fleet_ = std::move(fleet);
    index_.clear();
    index_.reserve(fleet_.size());
    for (std::size_t i = 0; i < fleet_.size(); ++i) index_[fleet_[i].row.device] = i;
    all_changed_ = true;
    changed_.clear();
  } else {
    // Apply the changed devices in place; a new one goes at the end (every page sorts).
    const ConsoleDevice* const before = fleet_.data();
    std::size_t added = 0;
    for (DeviceRow& row : c.devices) {
      if (const auto it = index_.find(row.device); it != index_.end()) {
        // The key views the row's name, which the assignment replaces: key it again after.
        const std::size_t at = it->second;
        index_.erase(it);
        ConsoleDevice& d = fleet_[at];
        d.row = std::move(row);
        index_.emplace(d.row.device, at);
        d.dlq = dlq_count(d.row.device);
        derive(d);
        if (!all_changed_) changed_.push_back(at);
        continue;
      }
      ConsoleDevice d;
      d.row = std::move(row);
      d.dlq = dlq_count(d.row.device);
      derive(d);
      fleet_.push_back(std::move(d));
      ++added;
      if (!all_changed_) changed_.push_back(fleet_.size() - 1);
    }
    if (fleet_.data() != before) {
      // The vector moved: index_'s keys point into the old rows' names.
      index_.clear();
      index_.reserve(fleet_.size());
      for (std::size_t i = 0; i < fleet_.size(); ++i) index_[fleet_[i].row.device] = i;
    } else {
      for (std::size_t i = fleet_.size() - added; i < fleet_.size(); ++i) {
        index_[fleet_[i].row.device] = i;
      }
    }
    if (c.dlq_topics) {
      // The DLQ changed: every device's count may have, whether its row did or not.
      for (std::size_t i = 0; i < fleet_.size(); ++i) {
        ConsoleDevice& d = fleet_[i];
        const uint64_t n = dlq_count(d.row.device);
        if (n == d.dlq) continue;
        d.dlq = n;
        derive(d);
        if (!all_changed_) changed_.push_back(i);
      }
    }
  }
  refreshed_us_ = now;
  return {};
}

common::Result<const std::vector<ConsoleDevice>*, SinkError> ConsoleApi::fleet() {
  const int64_t age = now_us_() - refreshed_us_;
  if (refreshed_us_ && age >= 0 && age < options_.stale_us) {
    if (age >= options_.cache_us) refresh_wanted_ = true;  // served now, read again after
    return &fleet_;
  }
  if (auto s = refresh(true); !s.ok()) return s.error();
  return &fleet_;
}

const ConsoleDevice* ConsoleApi::find(std::string_view device) {
  const auto it = index_.find(device);
  return it == index_.end() ? nullptr : &fleet_[it->second];
}

HttpResponse ConsoleApi::answer(const HttpRequest& req) {
  try {
    constexpr std::string_view kRoot = "/api/v1/";
    if (!std::string_view(req.path).starts_with(kRoot)) return json_error(404, "not found");
    const std::string_view path = std::string_view(req.path).substr(kRoot.size());
    const bool get = req.method == "GET" || req.method == "HEAD";
    if (path == "dlq/replay") {
      if (req.method != "POST") {
        auto r = json_error(405, "dlq/replay takes POST");
        r.headers.emplace_back("Allow", "POST");
        return r;
      }
      return replay(req);
    }
    if (!get) {
      auto r = json_error(405, "this endpoint takes GET");
      r.headers.emplace_back("Allow", "GET, HEAD");
      return r;
    }
    if (path == "session") return session(req);
    if (path == "fleet") return fleet_page(req);
    if (path == "events") return events(req);
    if (path == "dlq") return dlq_list(req);
    if (path == "dlq/stats") return dlq_stats(req);
    if (path.starts_with("dlq/")) return dlq_entry(path.substr(4));
    if (path.starts_with("devices/") && path.size() > 8) return device(req, path.substr(8));
    return json_error(404, "no such endpoint: " + req.path + " (docs/api.md lists them)");
  } catch (const std::exception& e) {
    return json_error(500, std::string("internal error: ") + e.what());
  }
}

HttpResponse ConsoleApi::session(const HttpRequest& req) {
  std::string out = "{";
  key(out, "read_only");
  out += options_.token.empty() ? "true" : "false";
  key(out, "token_required");
  out += "true";
  field(out, "version", options_.version);
  field(out, "time_us", now_us_());
  out += "}\n";
  HttpResponse r = json_ok(std::move(out));
  // The CSRF cookie (double submit): a POST must send it back in X-CSRF-Token. Readable by the
  // page's script on purpose, so not HttpOnly; SameSite=Strict keeps other sites from sending it.
  if (!req.cookie("outpost_csrf")) {
    const std::string csrf = random_hex(16);
    if (!csrf.empty()) {
      r.headers.emplace_back("Set-Cookie", "outpost_csrf=" + csrf + "; Path=/; SameSite=Strict");
    }
  }
  return r;
}

HttpResponse ConsoleApi::fleet_page(const HttpRequest& req) {
  std::vector<std::string> states;
  if (auto text = req.param("state"); text && !text->empty()) {
    std::string_view rest = *text;
    while (!rest.empty()) {
      const std::size_t comma = rest.find(',');
      const std::string_view one = rest.substr(0, comma);
      if (std::find(std::begin(kConsoleStates), std::end(kConsoleStates), one) ==
          std::end(kConsoleStates)) {
        return json_error(400, "state: unknown state \"" + std::string(one.substr(0, 40)) +
                                   "\" (lost, silent, gaps, dlq, offline, online, unknown)");
      }
      states.emplace_back(one);
      rest = comma == std::string_view::npos ? "" : rest.substr(comma + 1);
    }
  }
  const std::string sort(req.param("sort").value_or("worst"));
  static constexpr std::string_view kSorts[] = {"worst",     "device",   "site", "last_data",
                                                "connected", "readings", "gaps"};
  if (std::find(std::begin(kSorts), std::end(kSorts), sort) == std::end(kSorts)) {
    return json_error(400,
                      "sort: one of worst, device, site, last_data, connected, readings, "
                      "gaps");
  }
  const std::string order(req.param("order").value_or(""));
  if (!order.empty() && order != "asc" && order != "desc") {
    return json_error(400, "order: asc or desc");
  }
  // Names and states read best ascending; times and counts best newest / largest first.
  const bool numeric =
      sort == "last_data" || sort == "connected" || sort == "readings" || sort == "gaps";
  const bool desc = order.empty() ? numeric : order == "desc";
  auto offset = int_param(req, "offset", 0, 0, INT64_MAX / 2);
  if (!offset.ok()) return json_error(400, offset.error().message);
  auto limit = int_param(req, "limit", 100, 1, 1000);
  if (!limit.ok()) return json_error(400, limit.error().message);
  const std::string site(req.param("site").value_or(""));
  const std::string q(req.param("q").value_or(""));

  auto all = fleet();
  if (!all.ok()) return storage_error(all.error());
  uint64_t counts[std::size(kConsoleStates)] = {};
  std::vector<const ConsoleDevice*> match;
  match.reserve(all.value()->size());
  for (const ConsoleDevice& d : *all.value()) {
    ++counts[d.rank];
    if (!states.empty() && std::find(states.begin(), states.end(), d.state) == states.end()) {
      continue;
    }
    if (!site.empty() && d.row.site != site) continue;
    if (!contains_nocase(d.row.device, q)) continue;
    match.push_back(&d);
  }
  enum class Key { kRank, kDevice, kSite, kLastData, kConnected, kReadings, kGaps };
  const Key by = sort == "device"      ? Key::kDevice
                 : sort == "site"      ? Key::kSite
                 : sort == "last_data" ? Key::kLastData
                 : sort == "connected" ? Key::kConnected
                 : sort == "readings"  ? Key::kReadings
                 : sort == "gaps"      ? Key::kGaps
                                       : Key::kRank;
  const auto value = [by](const ConsoleDevice& d) -> int64_t {
    switch (by) {
      case Key::kLastData:
        return d.row.last_data_us;
      case Key::kConnected:
        return d.connected_since_us;
      case Key::kReadings:
        return static_cast<int64_t>(d.row.readings);
      case Key::kGaps:
        return static_cast<int64_t>(d.row.gaps);
      default:
        return d.rank;
    }
  };
  const auto before = [&](const ConsoleDevice* a, const ConsoleDevice* b) {
    // The chosen key in the chosen direction, then the device name ascending (a stable page).
    if (by == Key::kDevice) {
      return desc ? a->row.device > b->row.device : a->row.device < b->row.device;
    }
    if (by == Key::kSite) {
      if (a->row.site != b->row.site) {
        return desc ? a->row.site > b->row.site : a->row.site < b->row.site;
      }
    } else {
      const int64_t va = value(*a), vb = value(*b);
      if (va != vb) return desc ? va > vb : va < vb;
    }
    return a->row.device < b->row.device;
  };
  const auto first = static_cast<std::size_t>(std::min<int64_t>(offset.value(), match.size()));
  const auto last = std::min(match.size(), first + static_cast<std::size_t>(limit.value()));
  std::partial_sort(match.begin(), match.begin() + last, match.end(), before);

  std::string out = "{";
  field_u(out, "total", match.size());
  field(out, "offset", offset.value());
  field(out, "limit", limit.value());
  field_u(out, "fleet", all.value()->size());
  key(out, "counts");
  out += '{';
  for (std::size_t i = 0; i < std::size(kConsoleStates); ++i) {
    field_u(out, kConsoleStates[i], counts[i]);
  }
  out += '}';
  key(out, "devices");
  out += '[';
  for (std::size_t i = first; i < last; ++i) {
    if (i > first) out += ',';
    out += console_device_json(*match[i]);
  }
  out += "]}\n";
  return json_ok(std::move(out));
}

HttpResponse ConsoleApi::device(const HttpRequest& req, std::string_view rest) {
  const std::size_t slash = rest.find('/');
  const std::string id(rest.substr(0, slash));
  const std::string_view what = slash == std::string_view::npos ? "" : rest.substr(slash + 1);
  if (auto f = fleet(); !f.ok()) return storage_error(f.error());
  const ConsoleDevice* d = find(id);
  if (!d) {
    // A device stored since the cache was read: look again once before saying no.
    if (auto s = refresh(true); !s.ok()) return storage_error(s.error());
    d = find(id);
  }
  if (!d) return json_error(404, "no device \"" + id.substr(0, 100) + "\"");

  if (what.empty()) {
    auto sensors = reader_.sensors(id);
    if (!sensors.ok()) return storage_error(sensors.error());
    std::string out = console_device_json(*d);
    out.pop_back();  // '}'
    key(out, "sensors");
    out += '[';
    for (std::size_t i = 0; i < sensors.value().size(); ++i) {
      const SensorRow& s = sensors.value()[i];
      if (i) out += ',';
      out += '{';
      field(out, "sensor", s.sensor);
      field(out, "unit", s.unit);
      field_u(out, "readings", s.readings);
      out += '}';
    }
    out += "]}\n";
    return json_ok(std::move(out));
  }
  if (what == "series") {
    const auto sensor = req.param("sensor");
    if (!sensor || sensor->empty()) return json_error(400, "sensor: required");
    const int64_t now = now_us_();
    auto to = int_param(req, "to", now, 0, INT64_MAX / 2);
    if (!to.ok()) return json_error(400, to.error().message);
    auto from = int_param(req, "from", to.value() - kHourUs, 0, INT64_MAX / 2);
    if (!from.ok()) return json_error(400, from.error().message);
    if (from.value() > to.value()) return json_error(400, "from must not be after to");
    auto points = int_param(req, "points", 300, 1, 300);
    if (!points.ok()) return json_error(400, points.error().message);
    auto sensors = reader_.sensors(id);
    if (!sensors.ok()) return storage_error(sensors.error());
    const auto s = std::find_if(sensors.value().begin(), sensors.value().end(),
                                [&](const SensorRow& r) { return r.sensor == *sensor; });
    if (s == sensors.value().end()) {
      return json_error(404, "device \"" + id + "\" has no sensor \"" +
                                 std::string(sensor->substr(0, 100)) + "\"");
    }
    SeriesQuery q{id, std::string(*sensor), from.value(), to.value(),
                  static_cast<uint32_t>(points.value())};
    auto buckets = reader_.series(q);
    if (!buckets.ok()) return storage_error(buckets.error());
    const int64_t span = to.value() - from.value() + 1;
    const int64_t width = (span + points.value() - 1) / points.value();
    std::string out = "{";
    field(out, "device", id);
    field(out, "sensor", s->sensor);
    field(out, "unit", s->unit);
    field(out, "from_us", from.value());
    field(out, "to_us", to.value());
    field(out, "bucket_us", width);
    key(out, "points");
    out += '[';
    for (std::size_t i = 0; i < buckets.value().size(); ++i) {
      const SeriesBucket& b = buckets.value()[i];
      if (i) out += ',';
      out += '{';
      field(out, "t_us", b.start_us);
      field_double(out, "min", b.min);
      field_double(out, "max", b.max);
      field_double(out, "mean", b.mean);
      field_u(out, "count", b.count);
      out += '}';
    }
    out += "]}\n";
    return json_ok(std::move(out));
  }
  if (what == "events") {
    auto limit = int_param(req, "limit", 50, 1, 1000);
    if (!limit.ok()) return json_error(400, limit.error().message);
    auto rows = reader_.find_events(
        EventQuery{id, 0, static_cast<uint64_t>(limit.value()), /*oldest=*/false});
    if (!rows.ok()) return storage_error(rows.error());
    std::string out = "{\"events\":[";
    // Newest first, as the page lists them.
    for (auto it = rows.value().rbegin(); it != rows.value().rend(); ++it) {
      if (it != rows.value().rbegin()) out += ',';
      out += console_event_json(*it);
    }
    out += "]}\n";
    return json_ok(std::move(out));
  }
  if (what == "logs") {
    auto limit = int_param(req, "limit", 100, 1, 1000);
    if (!limit.ok()) return json_error(400, limit.error().message);
    LogQuery q;
    q.device = id;
    q.limit = static_cast<uint64_t>(limit.value());
    q.latest = true;
    std::vector<LogRow> rows;
    auto s = reader_.query_logs(q, [&rows](const LogRow& r) { rows.push_back(r); });
    if (!s.ok()) return storage_error(s.error());
    std::string out = "{\"logs\":[";
    for (auto it = rows.rbegin(); it != rows.rend(); ++it) {
      if (it != rows.rbegin()) out += ',';
      out += '{';
      field(out, "time_us", it->time_us);
      field(out, "severity", severity_name(it->severity));
      field(out, "message", it->message);
      key(out, "fields");
      out += '{';
      for (const common::LogField& f : it->fields) field(out, f.key, f.value);
      out += '}';
      field(out, "epoch", std::to_string(it->epoch));
      field_u(out, "seq", it->seq);
      out += '}';
    }
    out += "]}\n";
    return json_ok(std::move(out));
  }
  return json_error(404, "no such endpoint: " + req.path + " (docs/api.md lists them)");
}

HttpResponse ConsoleApi::events(const HttpRequest& req) {
  auto after = int_param(req, "after", 0, 0, INT64_MAX);
  if (!after.ok()) return json_error(400, after.error().message);
  auto limit = int_param(req, "limit", 100, 1, 1000);
  if (!limit.ok()) return json_error(400, limit.error().message);
  EventQuery q;
  q.device = std::string(req.param("device").value_or(""));
  q.after_id = after.value();
  q.limit = static_cast<uint64_t>(limit.value());
  q.oldest = req.param("after").has_value();
  auto rows = reader_.find_events(q);
  if (!rows.ok()) return storage_error(rows.error());
  std::string out = "{\"events\":[";
  for (std::size_t i = 0; i < rows.value().size(); ++i) {
    if (i) out += ',';
    out += console_event_json(rows.value()[i]);
  }
  out += "]}\n";
  return json_ok(std::move(out));
}

HttpResponse ConsoleApi::dlq_list(const HttpRequest& req) {
  DlqFilter f;
  if (auto reason = req.param("reason"); reason && !reason->empty()) {
    f.reason = common::reason_from_name(*reason);
    if (!f.reason) {
      return json_error(400, "reason: unknown reason \"" + std::string(reason->substr(0, 40)) +
                                 "\" (docs/wire-format.md lists them)");
    }
  }
  f.topic_contains = std::string(req.param("topic").value_or(""));
  auto offset = int_param(req, "offset", 0, 0, INT64_MAX / 2);
  if (!offset.ok()) return json_error(400, offset.error().message);
  auto limit = int_param(req, "limit", 100, 1, 1000);
  if (!limit.ok()) return json_error(400, limit.error().message);
  auto total = reader_.dlq_count(f);
  if (!total.ok()) return storage_error(total.error());
  f.offset = static_cast<uint64_t>(offset.value());
  f.limit = static_cast<uint64_t>(limit.value());
  f.newest_first = true;
  auto rows = reader_.dlq(f);
  if (!rows.ok()) return storage_error(rows.error());
  std::string out = "{";
  field_u(out, "total", total.value());
  field(out, "offset", offset.value());
  field(out, "limit", limit.value());
  key(out, "entries");
  out += '[';
  for (std::size_t i = 0; i < rows.value().size(); ++i) {
    if (i) out += ',';
    out += dlq_json(rows.value()[i], false);
  }
  out += "]}\n";
  return json_ok(std::move(out));
}

HttpResponse ConsoleApi::dlq_stats(const HttpRequest& req) {
  auto bucket = int_param(req, "bucket", 3600, 60, 86400);
  if (!bucket.ok()) return json_error(400, bucket.error().message);
  auto since = int_param(req, "since", now_us_() - 24 * kHourUs, 0, INT64_MAX / 2);
  if (!since.ok()) return json_error(400, since.error().message);
  auto reasons = reader_.dlq_reasons();
  if (!reasons.ok()) return storage_error(reasons.error());
  const int64_t width = bucket.value() * 1'000'000;
  auto rows = reader_.dlq_histogram(since.value(), width);
  if (!rows.ok()) return storage_error(rows.error());
  std::string out = "{";
  field(out, "bucket_us", width);
  field(out, "since_us", since.value());
  key(out, "reasons");
  out += '{';
  for (const auto& [reason, n] : reasons.value()) field_u(out, common::reason_name(reason), n);
  out += '}';
  key(out, "buckets");
  out += '[';
  for (std::size_t i = 0; i < rows.value().size();) {
    const int64_t start = rows.value()[i].start_us;
    if (out.back() != '[') out += ',';
    out += '{';
    field(out, "t_us", start);
    key(out, "counts");
    out += '{';
    for (; i < rows.value().size() && rows.value()[i].start_us == start; ++i) {
      field_u(out, common::reason_name(rows.value()[i].reason), rows.value()[i].count);
    }
    out += "}}";
  }
  out += "]}\n";
  return json_ok(std::move(out));
}

HttpResponse ConsoleApi::dlq_entry(std::string_view text) {
  int64_t id = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (ec != std::errc() || end != text.data() + text.size() || id <= 0) {
    return json_error(400, "a DLQ entry is named by its id, a positive integer");
  }
  auto row = reader_.dlq_entry(id);
  if (!row.ok()) return storage_error(row.error());
  if (!row.value()) return json_error(404, "no DLQ entry " + std::to_string(id));
  return json_ok(dlq_json(*row.value(), true) + "\n");
}

HttpResponse ConsoleApi::replay(const HttpRequest& req) {
  if (options_.token.empty()) {
    return json_error(403, "the console is read-only: no [console] token is configured");
  }
  const auto auth = req.header("authorization");
  constexpr std::string_view kBearer = "Bearer ";
  if (!auth || !auth->starts_with(kBearer) ||
      !same_secret(auth->substr(kBearer.size()), options_.token)) {
    return json_error(403, "wrong or missing token (Authorization: Bearer <console token>)");
  }
  const auto cookie = req.cookie("outpost_csrf");
  const auto csrf = req.header("x-csrf-token");
  if (!cookie || cookie->empty() || !csrf || !same_secret(*csrf, *cookie)) {
    return json_error(403,
                      "missing or wrong CSRF token: GET /api/v1/session first, then send "
                      "its outpost_csrf cookie back in X-CSRF-Token");
  }
  // A browser names the page that sent a POST; another site's page is refused.
  if (const auto origin = req.header("origin")) {
    const auto host = req.header("host");
    const std::size_t scheme = origin->find("://");
    if (!host || scheme == std::string_view::npos || origin->substr(scheme + 3) != *host) {
      return json_error(403, "cross-origin request refused");
    }
  }
  const auto type = req.header("content-type");
  if (!type || !type->starts_with("application/json")) {
    return json_error(415, "send Content-Type: application/json");
  }
  auto ids = parse_replay_ids(req.body);
  if (!ids.ok()) return json_error(400, ids.error());
  if (!replay_) return json_error(503, "replay is not available here");
  auto outcomes = replay_(ids.value());
  if (!outcomes.ok()) return json_error(503, "replay failed: " + outcomes.error().message);
  std::map<std::string, uint64_t> tally;
  std::string out = "{\"replayed\":[";
  for (std::size_t i = 0; i < outcomes.value().size(); ++i) {
    const ReplayOutcome& o = outcomes.value()[i];
    ++tally[o.outcome];
    if (i) out += ',';
    out += '{';
    field(out, "id", o.id);
    field(out, "outcome", o.outcome);
    field(out, "detail", o.detail);
    out += '}';
  }
  out += "],\"summary\":{";
  for (const auto& [name, n] : tally) field_u(out, name, n);
  out += "}}\n";
  refreshed_us_ = 0;  // the fleet's DLQ counts changed
  return json_ok(std::move(out));
}

std::vector<std::pair<std::string, std::string>> ConsoleApi::poll() {
  std::vector<std::pair<std::string, std::string>> out;
  // A fleet read for a request less than a second ago serves the poll too.
  if (!refresh(false).ok()) return out;
  const bool first = !polled_;
  polled_ = true;
  // What a device's JSON is made of, hashed: only a device whose fingerprint changed is
  // written out and sent. After a complete read every device is looked at; otherwise only
  // those the reads since the last poll changed.
  const auto look = [&](const ConsoleDevice& d) {
    const uint64_t print = fingerprint(d);
    auto [it, added] = last_sent_.try_emplace(d.row.device, print);
    if (!added && it->second == print) return;
    it->second = print;
    if (!first) out.emplace_back("fleet", console_device_json(d));
  };
  if (first || all_changed_) {
    if (first) last_sent_.reserve(fleet_.size());
    for (const ConsoleDevice& d : fleet_) look(d);
  } else {
    std::sort(changed_.begin(), changed_.end());
    changed_.erase(std::unique(changed_.begin(), changed_.end()), changed_.end());
    for (std::size_t i : changed_) {
      if (i < fleet_.size()) look(fleet_[i]);
    }
  }
  all_changed_ = false;
  changed_.clear();
  if (first) {
    auto latest = reader_.find_events(EventQuery{"", 0, 1, false});
    if (latest.ok() && !latest.value().empty()) last_event_id_ = latest.value().back().id;
    return out;
  }
  auto rows = reader_.find_events(EventQuery{"", last_event_id_, 1000, /*oldest=*/true});
  if (rows.ok()) {
    for (const EventRow& e : rows.value()) {
      out.emplace_back("event", console_event_json(e));
      last_event_id_ = std::max(last_event_id_, e.id);
    }
  }
  return out;
}

}  // namespace outpost::collector
