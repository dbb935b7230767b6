// Manifest accounting and its JSON rendering.
#include "outpost/sim/manifest.h"

#include <charconv>
#include <iterator>
#include <sstream>

#include "outpost/common/json.h"

namespace outpost::sim {

std::string_view device_mode_name(DeviceMode mode) {
  return mode == DeviceMode::kAgent ? "agent" : "direct";
}

bool DeviceLedger::add_seq(uint64_t epoch, uint64_t seq) {
  auto slot = ranges_.rbegin();
  while (slot != ranges_.rend() && slot->first != epoch) ++slot;
  if (slot == ranges_.rend()) {
    ranges_.push_back({epoch, {{seq, seq}}});
    return true;
  }
  auto& m = slot->second;
  auto next = m.upper_bound(seq);  // first range starting after seq
  if (next != m.begin()) {
    auto prev = std::prev(next);
    if (prev->second >= seq) return false;
    if (prev->second + 1 == seq) {
      prev->second = seq;
      if (next != m.end() && next->first == seq + 1) {
        prev->second = next->second;
        m.erase(next);
      }
      return true;
    }
  }
  if (next != m.end() && next->first == seq + 1) {
    const uint64_t last = next->second;
    m.erase(next);
    m.emplace(seq, last);
    return true;
  }
  m.emplace(seq, seq);
  return true;
}

void DeviceLedger::record(const Outgoing& message) {
  switch (message.role) {
    case SendRole::kValid:
    case SendRole::kDuplicate:
      if (add_seq(message.epoch, message.seq)) {
        readings_sent_ += message.readings;
        logs_sent_ += message.logs;
        ++batches_sent_;
      } else {
        ++duplicates_sent_;
      }
      break;
    case SendRole::kMalformed:
      ++malformed_[static_cast<std::size_t>(message.malformed)];
      break;
    case SendRole::kStatus:
      ++status_sent_;
      break;
  }
}

std::vector<EpochRange> DeviceLedger::epochs() const {
  std::vector<EpochRange> out;
  for (const auto& [epoch, m] : ranges_) {
    for (const auto& [first, last] : m) out.push_back({epoch, first, last});
  }
  return out;
}

uint64_t DeviceLedger::malformed_total() const {
  uint64_t n = 0;
  for (auto v : malformed_) n += v;
  return n;
}

namespace {

void append_malformed(std::string& out,
                      const std::array<uint64_t, kAllMalformedKinds.size()>& counts) {
  out += '{';
  for (std::size_t i = 0; i < kAllMalformedKinds.size(); ++i) {
    if (i) out += ',';
    common::append_json_string(out, malformed_kind_name(kAllMalformedKinds[i]));
    out += ':' + std::to_string(counts[i]);
  }
  out += '}';
}

}  // namespace

std::string to_json(const Manifest& manifest) {
  std::string out = "{\"version\":1,\"seed\":" + std::to_string(manifest.seed) +
                    ",\"started_us\":" + std::to_string(manifest.started_us) +
                    ",\"finished_us\":" + std::to_string(manifest.finished_us) + ",\n\"devices\":[";
  uint64_t readings = 0, logs = 0, duplicates = 0;
  std::array<uint64_t, kAllMalformedKinds.size()> malformed{};
  bool first = true;
  for (const auto& d : manifest.devices) {
    out += first ? "\n" : ",\n";
    first = false;
    out += "{\"site\":";
    common::append_json_string(out, d.site());
    out += ",\"device\":";
    common::append_json_string(out, d.device());
    out += ",\"mode\":";
    common::append_json_string(out, device_mode_name(d.mode()));
    out += ",\"epochs\":[";
    bool first_epoch = true;
    for (const auto& e : d.epochs()) {
      out += first_epoch ? "" : ",";
      first_epoch = false;
      out += "{\"epoch\":" + std::to_string(e.epoch) +
             ",\"first_seq\":" + std::to_string(e.first_seq) +
             ",\"last_seq\":" + std::to_string(e.last_seq) + "}";
    }
    std::array<uint64_t, kAllMalformedKinds.size()> counts{};
    for (std::size_t i = 0; i < counts.size(); ++i) {
      counts[i] = d.malformed(kAllMalformedKinds[i]);
      malformed[i] += counts[i];
    }
    out += "],\"readings_sent\":" + std::to_string(d.readings_sent()) +
           ",\"logs_sent\":" + std::to_string(d.logs_sent()) + ",\"malformed\":";
    append_malformed(out, counts);
    out += ",\"duplicates_sent\":" + std::to_string(d.duplicates_sent()) +
           ",\"status_sent\":" + std::to_string(d.status_sent()) +
           ",\"cuts\":" + std::to_string(d.cuts()) + ",\"reboots\":" + std::to_string(d.reboots()) +
           "}";
    readings += d.readings_sent();
    logs += d.logs_sent();
    duplicates += d.duplicates_sent();
  }
  out += "],\n\"totals\":{\"devices\":" + std::to_string(manifest.devices.size()) +
         ",\"readings_sent\":" + std::to_string(readings) +
         ",\"logs_sent\":" + std::to_string(logs) + ",\"malformed\":";
  append_malformed(out, malformed);
  out += ",\"duplicates_sent\":" + std::to_string(duplicates) + "}}\n";
  return out;
}

std::string ledger_to_record(uint32_t index, const DeviceLedger& l) {
  std::string out = std::to_string(index) + " " + l.site() + " " + l.device() + " " +
                    std::string(device_mode_name(l.mode()));
  for (uint64_t v : {l.readings_sent(), l.logs_sent(), l.duplicates_sent(), l.status_sent(),
                     l.cuts(), l.reboots(), l.batches_sent()}) {
    out += " " + std::to_string(v);
  }
  for (auto kind : kAllMalformedKinds) out += " " + std::to_string(l.malformed(kind));
  for (const auto& e : l.epochs()) {
    out += " " + std::to_string(e.epoch) + " " + std::to_string(e.first_seq) + " " +
           std::to_string(e.last_seq);
  }
  return out;
}

common::Result<std::pair<uint32_t, DeviceLedger>> ledger_from_record(std::string_view line) {
  std::vector<std::string_view> f;
  while (!line.empty()) {
    const auto space = line.find(' ');
    f.push_back(line.substr(0, space));
    line = space == std::string_view::npos ? std::string_view() : line.substr(space + 1);
  }
  constexpr std::size_t kFixed = 4 + 7 + kAllMalformedKinds.size();
  if (f.size() < kFixed || (f.size() - kFixed) % 3 != 0) {
    return common::Error{"ledger record with " + std::to_string(f.size()) + " fields"};
  }
  std::vector<uint64_t> n;
  for (std::size_t i = 4; i < f.size(); ++i) {
    uint64_t v = 0;
    auto [end, ec] = std::from_chars(f[i].data(), f[i].data() + f[i].size(), v);
    if (ec != std::errc() || end != f[i].data() + f[i].size()) {
      return common::Error{"bad number \"" + std::string(f[i]) + "\" in a ledger record"};
    }
    n.push_back(v);
  }
  uint32_t index = 0;
  auto [end, ec] = std::from_chars(f[0].data(), f[0].data() + f[0].size(), index);
  if (ec != std::errc() || end != f[0].data() + f[0].size()) {
    return common::Error{"bad index in a ledger record"};
  }
  DeviceLedger l{std::string(f[1]), std::string(f[2]),
                 f[3] == "agent" ? DeviceMode::kAgent : DeviceMode::kDirect};
  l.readings_sent_ = n[0];
  l.logs_sent_ = n[1];
  l.duplicates_sent_ = n[2];
  l.status_sent_ = n[3];
  l.cuts_ = n[4];
  l.reboots_ = n[5];
  l.batches_sent_ = n[6];
  for (std::size_t k = 0; k < kAllMalformedKinds.size(); ++k) l.malformed_[k] = n[7 + k];
  for (std::size_t i = 7 + kAllMalformedKinds.size(); i < n.size(); i += 3) {
    auto slot = l.ranges_.rbegin();
    if (slot == l.ranges_.rend() || slot->first != n[i]) {
      l.ranges_.push_back({n[i], {}});
      slot = l.ranges_.rbegin();
    }
    slot->second.emplace(n[i + 1], n[i + 2]);
  }
  return std::pair<uint32_t, DeviceLedger>(index, std::move(l));
}

}  // namespace outpost::sim
