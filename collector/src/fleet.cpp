// Device presence, epochs and sequence holes: the collector's built-in events.
#include "outpost/collector/fleet.h"

#include <algorithm>

#include "outpost/common/limits.h"

namespace outpost::collector {

namespace {
constexpr int64_t kMinuteUs = 60'000'000;
constexpr std::size_t kEpochsKept = 4;
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
  d.last_seen_us = last_seen_us;
}

void FleetTracker::on_batch(std::string_view site, std::string_view name, uint64_t epoch,
                            uint64_t seq, int64_t now_us, std::vector<EventItem>& out) {
  Device& d = device(site, name);
  d.last_seen_us = std::max(d.last_seen_us, now_us);
  if (d.presence == Presence::kSilent || d.presence == Presence::kUnknown) {
    // Data from a device we had given up on (or never heard a birth from) means it is
    // up. After an explicit offline or last will, only a birth brings it back: messages
    // still queued at the broker may trail the will.
    if (d.presence == Presence::kSilent) {
      out.push_back(event(common::EventKind::kDeviceOnline, name, site, now_us, "data received"));
      out.back().presence = Presence::kOnline;
    }
    d.presence = Presence::kOnline;
  }
  if (d.epoch != epoch && !d.epochs.contains(epoch)) {
    if (d.epoch != 0) {
      out.push_back(event(common::EventKind::kDeviceRestarted, name, site, now_us,
                          "epoch " + std::to_string(d.epoch) + " -> " + std::to_string(epoch)));
    }
    d.epoch = epoch;
  }
  track_seq(name, d, epoch, seq, now_us, out);
}

void FleetTracker::track_seq(std::string_view name, Device& d, uint64_t epoch, uint64_t seq,
                             int64_t now_us, std::vector<EventItem>& out) {
  auto [it, fresh] = d.epochs.try_emplace(epoch);
  EpochSeqs& e = it->second;
  if (fresh) {
    e.max_seq = seq;  // what came before we started listening is not ours to judge
    if (d.epochs.size() > kEpochsKept) {
      // Forget the epoch with the fewest recent events: the smallest max_seq is a good proxy
      // because agents never reuse a seq across restarts.
      auto oldest = std::min_element(d.epochs.begin(), d.epochs.end(), [](auto& a, auto& b) {
        return a.second.max_seq < b.second.max_seq;
      });
      if (oldest->first != epoch) d.epochs.erase(oldest);
    }
    return;
  }
  if (seq == e.max_seq + 1) {
    e.max_seq = seq;
    return;
  }
  if (seq > e.max_seq + 1) {
    e.holes[e.max_seq + 1] = Hole{seq - 1, now_us};
    e.max_seq = seq;
    if (e.holes.size() > options_.max_holes_per_epoch) {
      auto first = e.holes.begin();
      report_gap(std::string(name), d, epoch, first->first, first->second, now_us, out);
      e.holes.erase(first);
    }
    return;
  }
  // seq <= max_seq: a late arrival may fill (part of) a hole; otherwise a duplicate.
  auto h = e.holes.upper_bound(seq);
  if (h == e.holes.begin()) return;
  --h;
  const uint64_t first = h->first;
  const Hole hole = h->second;
  if (seq > hole.last) return;
  e.holes.erase(h);
  if (first < seq) e.holes[first] = Hole{seq - 1, hole.since_us};
  if (seq < hole.last) e.holes[seq + 1] = Hole{hole.last, hole.since_us};
}

void FleetTracker::report_gap(const std::string& name, const Device& d, uint64_t epoch,
                              uint64_t first, const Hole& hole, int64_t now_us,
                              std::vector<EventItem>& out) {
  const uint64_t missing = hole.last - first + 1;
  EventItem item =
      event(common::EventKind::kDataGap, name, d.site, now_us,
            "epoch " + std::to_string(epoch) + ": seq " + std::to_string(first) +
                (missing > 1 ? ".." + std::to_string(hole.last) : std::string()) + " missing (" +
                std::to_string(missing) + (missing > 1 ? " messages)" : " message)"));
  item.event.value = static_cast<double>(missing);
  out.push_back(std::move(item));
  ++gaps_reported_;
}

void FleetTracker::on_status(std::string_view site, std::string_view name,
                             const common::DeviceStatus& status, int64_t now_us,
                             std::vector<EventItem>& out) {
  Device& d = device(site, name);
  d.last_seen_us = std::max(d.last_seen_us, now_us);
  const std::optional<Presence> next = presence_of(status.state);
  if (!next) return;
  if (*next == Presence::kOnline) {
    if (d.presence != Presence::kOnline) {
      out.push_back(event(common::EventKind::kDeviceOnline, name, site, now_us, "birth"));
    }
  } else if (d.presence != Presence::kOffline && d.presence != Presence::kLost) {
    out.push_back(
        event(common::EventKind::kDeviceOffline, name, site, now_us,
              *next == Presence::kLost ? "connection lost (last will)" : "clean shutdown"));
  }
  d.presence = *next;
}

void FleetTracker::on_dlq(int64_t now_us) { dlq_times_.push_back(now_us); }

void FleetTracker::tick(int64_t now_us, std::vector<EventItem>& out) {
  for (auto& [name, d] : devices_) {
    if (options_.offline_after_us > 0 && d.presence == Presence::kOnline &&
        now_us - d.last_seen_us >= options_.offline_after_us) {
      d.presence = Presence::kSilent;
      out.push_back(
          event(common::EventKind::kDeviceOffline, name, d.site, now_us,
                "no message for " + std::to_string((now_us - d.last_seen_us) / 1'000'000) + " s"));
      out.back().presence = Presence::kSilent;
    }
    for (auto& [epoch, e] : d.epochs) {
      for (auto h = e.holes.begin(); h != e.holes.end();) {
        if (now_us - h->second.since_us >= options_.gap_grace_us) {
          report_gap(name, d, epoch, h->first, h->second, now_us, out);
          h = e.holes.erase(h);
        } else {
          ++h;
        }
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
