// Device presence, epochs and sequence holes: the collector's built-in events.
#include "outpost/collector/fleet.h"

#include <algorithm>

#include "outpost/common/limits.h"

namespace outpost::collector {

namespace {
constexpr int64_t kMinuteUs = 60'000'000;
constexpr std::size_t kEpochsKept = 8;  // per line, and retired ones per device
}  // namespace

std::string_view presence_name(Presence p) {
  switch (p) {
    case Presence::kUnknown:
      return "unknown";
    case Presence::kOnline:
      return "online";
    case Presence::kOffline:
      return "offline";
    case Presence::kLost:
      return "lost";
    case Presence::kSilent:
      return "silent";
  }
  return "unknown";
}

std::optional<Presence> presence_from_name(std::string_view name) {
  for (Presence p : {Presence::kUnknown, Presence::kOnline, Presence::kOffline, Presence::kLost,
                     Presence::kSilent}) {
    if (presence_name(p) == name) return p;
  }
  return std::nullopt;
}

std::optional<Presence> presence_of(common::DeviceState state) {
  switch (state) {
    case common::DeviceState::kOnline:
      return Presence::kOnline;
    case common::DeviceState::kOffline:
      return Presence::kOffline;
    case common::DeviceState::kLost:
      return Presence::kLost;
    case common::DeviceState::kUnspecified:
      break;
  }
  return std::nullopt;
}

EventItem FleetTracker::event(common::EventKind kind, std::string_view device,
                              std::string_view site, int64_t now_us, std::string detail) {
  EventItem item;
  item.device = std::string(device);
  item.event.kind = kind;
  item.event.time_us = now_us;
  item.event.site = std::string(site);
  item.event.detail = std::move(detail);
  return item;
}

FleetTracker::Device& FleetTracker::device(std::string_view site, std::string_view name) {
  auto it = devices_.find(std::string(name));
  if (it == devices_.end()) it = devices_.emplace(std::string(name), Device{}).first;
  if (it->second.site != site) it->second.site = std::string(site);
  return it->second;
}

void FleetTracker::remember(std::string_view site, std::string_view name, uint64_t epoch,
                            Presence presence, int64_t last_seen_us) {
  Device& d = device(site, name);
  d.epoch = epoch;
  d.presence = presence;
  d.announced = presence == Presence::kOnline;
  d.last_seen_us = last_seen_us;
  // Stored before its sequence line was: what it sent before now is not ours to judge.
  if (d.line.max_seq == 0) d.from_seq_one = false;
}

void FleetTracker::restore(const SeqLineState& s) {
  Device& d = device(s.site, s.device);
  d.line.max_seq = s.max_seq;
  d.line.epochs = s.epochs;
  d.retired = s.retired;
  d.line.holes.clear();
  for (const SeqHole& h : s.holes) {
    d.line.holes[h.first] = Hole{h.last, h.epoch, h.since_us, h.reported_us};
  }
  d.from_seq_one = true;  // a line after a later counter reset starts at 1
}

namespace {

bool contains(const std::vector<uint64_t>& v, uint64_t x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

void push_bounded(std::vector<uint64_t>& v, uint64_t x, std::size_t max) {
  v.push_back(x);
  if (v.size() > max) v.erase(v.begin(), v.end() - static_cast<std::ptrdiff_t>(max));
}

}  // namespace

void FleetTracker::mark(const std::string& name, Device& d) {
  d.dirty = true;
  dirty_devices_.insert(name);
}

void FleetTracker::on_batch(std::string_view site, std::string_view name_view, uint64_t epoch,
                            uint64_t seq, int64_t now_us, std::vector<EventItem>& out) {
  const std::string name(name_view);
  Device& d = device(site, name);
  d.last_seen_us = std::max(d.last_seen_us, now_us);
  if (d.presence == Presence::kSilent || d.presence == Presence::kUnknown) {
    // Data from a device we had given up on (or never heard a birth from) means it is
    // up. After an explicit offline or last will, only a birth brings it back: messages
    // still queued at the broker may trail the will. A device never heard of is not announced
    // by its data: its birth may be on its way (Device::announced).
    if (d.presence == Presence::kSilent) {
      out.push_back(event(common::EventKind::kDeviceOnline, name, site, now_us, "data received"));
      out.back().presence = Presence::kOnline;
      d.announced = true;
    }
    d.presence = Presence::kOnline;
  }
  if (contains(d.retired, epoch)) return;  // a line before a counter reset: judged no more
  Line& line = d.line;
  if (!contains(line.epochs, epoch)) {
    const auto hole = line.holes.upper_bound(seq);
    const bool in_hole = hole != line.holes.begin() && std::prev(hole)->first <= seq &&
                         seq <= std::prev(hole)->second.last;
    if (line.max_seq != 0 && seq <= line.max_seq && !in_hole) {
      // Neither above the line nor in one of its holes: the sender's counter started again.
      reset_line(name, d, now_us, out);
    }
    // A seq below the line's top is a late message of an earlier boot, not a new one.
    const bool earlier_boot = line.max_seq != 0 && seq < line.max_seq;
    if (!earlier_boot && d.epoch != epoch) {
      if (d.epoch != 0) {
        out.push_back(event(common::EventKind::kDeviceRestarted, name, site, now_us,
                            "epoch " + std::to_string(d.epoch) + " -> " + std::to_string(epoch)));
      }
      d.epoch = epoch;
    }
    push_bounded(line.epochs, epoch, kEpochsKept);
    mark(name, d);
  }
  track_seq(name, d, epoch, seq, now_us, out);
}

void FleetTracker::reset_line(const std::string& name, Device& d, int64_t now_us,
                              std::vector<EventItem>& out) {
  // What the old line still misses will never come: its counter is gone.
  for (auto& [first, hole] : d.line.holes) {
    if (hole.reported_us == 0) report_gap(name, d, first, hole, now_us, out);
  }
  for (uint64_t e : d.line.epochs) push_bounded(d.retired, e, kEpochsKept);
  d.line = Line{};
  d.dirty_holes.clear();
  d.replace_holes = true;
  d.from_seq_one = true;
  mark(name, d);
}

void FleetTracker::open_hole(const std::string& name, Device& d, uint64_t first, uint64_t last,
                             uint64_t epoch, int64_t now_us, std::vector<EventItem>& out) {
  d.line.holes[first] = Hole{last, epoch, now_us, 0};
  d.dirty_holes.insert(first);
  // Bounded: the oldest hole goes (reported first if it was still open).
  while (d.line.holes.size() > options_.max_holes_per_epoch) {
    auto oldest = d.line.holes.begin();
    if (oldest->second.reported_us == 0)
      report_gap(name, d, oldest->first, oldest->second, now_us, out);
    d.dirty_holes.insert(oldest->first);
    d.line.holes.erase(oldest);
  }
}

void FleetTracker::track_seq(const std::string& name, Device& d, uint64_t epoch, uint64_t seq,
                             int64_t now_us, std::vector<EventItem>& out) {
  Line& line = d.line;
  mark(name, d);
  if (line.max_seq == 0) {
    if (d.from_seq_one && seq > 1) open_hole(name, d, 1, seq - 1, epoch, now_us, out);
    line.max_seq = seq;
    return;
  }
  if (seq > line.max_seq) {
    if (seq > line.max_seq + 1) open_hole(name, d, line.max_seq + 1, seq - 1, epoch, now_us, out);
    line.max_seq = seq;
    return;
  }
  // seq <= max_seq: a late arrival may fill (part of) a hole; otherwise a duplicate.
  auto h = line.holes.upper_bound(seq);
  if (h == line.holes.begin()) return;
  --h;
  const uint64_t first = h->first;
  const Hole hole = h->second;
  if (seq > hole.last) return;
  line.holes.erase(h);
  d.dirty_holes.insert(first);
  if (first < seq) line.holes[first] = Hole{seq - 1, hole.epoch, hole.since_us, hole.reported_us};
  if (seq < hole.last) {
    line.holes[seq + 1] = Hole{hole.last, hole.epoch, hole.since_us, hole.reported_us};
    d.dirty_holes.insert(seq + 1);
  }
  if (hole.reported_us == 0) return;
  // Reported missing, and here after all: resolved (merged with its neighbours).
  uint64_t lo = seq, hi = seq;
  auto next = d.resolved.find(seq + 1);
  if (next != d.resolved.end()) {
    hi = next->second;
    d.resolved.erase(next);
  }
  auto prev = d.resolved.lower_bound(seq);
  if (prev != d.resolved.begin() && std::prev(prev)->second + 1 == seq) {
    --prev;
    prev->second = hi;
    return;
  }
  d.resolved[lo] = hi;
}

void FleetTracker::report_gap(const std::string& name, Device& d, uint64_t first, Hole& hole,
                              int64_t now_us, std::vector<EventItem>& out) {
  const uint64_t missing = hole.last - first + 1;
  EventItem item =
      event(common::EventKind::kDataGap, name, d.site, now_us,
            "epoch " + std::to_string(hole.epoch) + ": seq " + std::to_string(first) +
                (missing > 1 ? ".." + std::to_string(hole.last) : std::string()) + " missing (" +
                std::to_string(missing) + (missing > 1 ? " messages)" : " message)"));
  item.event.value = static_cast<double>(missing);
  out.push_back(std::move(item));
  hole.reported_us = std::max<int64_t>(now_us, 1);  // 0 means open
  d.dirty_holes.insert(first);
  mark(name, d);
  ++gaps_reported_;
}

void FleetTracker::take_commit(int64_t now_us, std::vector<EventItem>& events,
                               std::vector<SeqLineUpdate>& lines) {
  for (const std::string& name : dirty_devices_) {
    auto it = devices_.find(name);
    if (it == devices_.end()) continue;
    Device& d = it->second;
    for (const auto& [first, last] : d.resolved) {
      const uint64_t n = last - first + 1;
      EventItem item = event(common::EventKind::kDataGapResolved, name, d.site, now_us,
                             "seq " + std::to_string(first) +
                                 (n > 1 ? ".." + std::to_string(last) : std::string()) +
                                 " arrived after it was reported missing (" + std::to_string(n) +
                                 (n > 1 ? " messages)" : " message)"));
      item.event.value = static_cast<double>(n);
      events.push_back(std::move(item));
    }
    d.resolved.clear();
    if (!d.dirty) continue;
    SeqLineUpdate u;
    u.line.device = name;
    u.line.site = d.site;
    u.line.max_seq = d.line.max_seq;
    u.line.epochs = d.line.epochs;
    u.line.retired = d.retired;
    u.replace_holes = d.replace_holes;
    auto add = [&](uint64_t first, const Hole& h) {
      u.line.holes.push_back(SeqHole{first, h.last, h.epoch, h.since_us, h.reported_us});
    };
    if (d.replace_holes) {
      for (const auto& [first, h] : d.line.holes) add(first, h);
    } else {
      for (uint64_t first : d.dirty_holes) {
        auto h = d.line.holes.find(first);
        if (h == d.line.holes.end()) {
          u.removed.push_back(first);
        } else {
          add(first, h->second);
        }
      }
    }
    lines.push_back(std::move(u));
    d.dirty_holes.clear();
    d.dirty = false;
    d.replace_holes = false;
  }
  dirty_devices_.clear();
}

std::vector<SeqHole> FleetTracker::holes(std::string_view name) const {
  std::vector<SeqHole> out;
  auto it = devices_.find(std::string(name));
  if (it == devices_.end()) return out;
  for (const auto& [first, h] : it->second.line.holes) {
    out.push_back(SeqHole{first, h.last, h.epoch, h.since_us, h.reported_us});
  }
  return out;
}

void FleetTracker::on_status(std::string_view site, std::string_view name,
                             const common::DeviceStatus& status, int64_t now_us,
                             std::vector<EventItem>& out) {
  Device& d = device(site, name);
  d.last_seen_us = std::max(d.last_seen_us, now_us);
  const std::optional<Presence> next = presence_of(status.state);
  if (!next) return;
  if (*next == Presence::kOnline) {
    if (d.presence != Presence::kOnline || !d.announced) {
      out.push_back(event(common::EventKind::kDeviceOnline, name, site, now_us, "birth"));
    }
    d.announced = true;
  } else if (d.presence != Presence::kOffline && d.presence != Presence::kLost) {
    out.push_back(
        event(common::EventKind::kDeviceOffline, name, site, now_us,
              *next == Presence::kLost ? "connection lost (last will)" : "clean shutdown"));
  }
  if (*next != Presence::kOnline) d.announced = false;
  d.presence = *next;
}

void FleetTracker::on_dlq(int64_t now_us) { dlq_times_.push_back(now_us); }

void FleetTracker::tick(int64_t now_us, std::vector<EventItem>& out) {
  for (auto& [name, d] : devices_) {
    if (options_.offline_after_us > 0 && d.presence == Presence::kOnline &&
        now_us - d.last_seen_us >= options_.offline_after_us) {
      d.presence = Presence::kSilent;
      d.announced = false;
      out.push_back(
          event(common::EventKind::kDeviceOffline, name, d.site, now_us,
                "no message for " + std::to_string((now_us - d.last_seen_us) / 1'000'000) + " s"));
      out.back().presence = Presence::kSilent;
    }
    for (auto& [first, hole] : d.line.holes) {
      if (hole.reported_us == 0 && now_us - hole.since_us >= options_.gap_grace_us) {
        report_gap(name, d, first, hole, now_us, out);
      }
    }
  }
  std::erase_if(dlq_times_, [&](int64_t t) { return now_us - t >= kMinuteUs; });
  if (options_.dlq_rate_per_minute == 0) return;
  const auto rate = static_cast<uint32_t>(dlq_times_.size());
  if (!dlq_rate_raised_ && rate > options_.dlq_rate_per_minute) {
    dlq_rate_raised_ = true;
    EventItem item = event(common::EventKind::kDlqRate, "", "", now_us,
                           std::to_string(rate) + " dead-lettered messages in the last minute");
    item.event.value = rate;
    item.event.threshold = options_.dlq_rate_per_minute;
    out.push_back(std::move(item));
  } else if (dlq_rate_raised_ && rate <= options_.dlq_rate_per_minute / 2) {
    dlq_rate_raised_ = false;  // re-armed once the rate has clearly come down
  }
}

Presence FleetTracker::presence(std::string_view name) const {
  auto it = devices_.find(std::string(name));
  return it == devices_.end() ? Presence::kUnknown : it->second.presence;
}

std::vector<AckMessage> build_acks(const std::vector<BatchItem>& batches) {
  struct Key {
    uint64_t epoch, seq;
    auto operator<=>(const Key&) const = default;
  };
  std::map<std::pair<std::string, std::string>, std::vector<Key>> per_device;
  for (const auto& b : batches) {
    per_device[{b.envelope.device_id, b.site}].push_back({b.envelope.epoch, b.envelope.seq});
  }
  std::vector<AckMessage> out;
  for (auto& [who, keys] : per_device) {
    std::sort(keys.begin(), keys.end());
    AckMessage msg{who.second, who.first, {}};
    for (const Key& k : keys) {
      auto& ranges = msg.ack.committed;
      if (!ranges.empty() && ranges.back().epoch == k.epoch && k.seq <= ranges.back().last + 1) {
        ranges.back().last = std::max(ranges.back().last, k.seq);
        continue;
      }
      if (ranges.size() == common::kMaxAckRanges) {
        out.push_back(std::move(msg));
        msg = AckMessage{who.second, who.first, {}};
      }
      msg.ack.committed.push_back({k.epoch, k.seq, k.seq});
    }
    out.push_back(std::move(msg));
  }
  return out;
}

}  // namespace outpost::collector
