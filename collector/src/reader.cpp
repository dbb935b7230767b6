// What every Reader shares: the full-read form of fleet_changes(), and how a read's sequence
// lines join its devices.
#include "outpost/collector/reader.h"

#include <string_view>
#include <unordered_map>

namespace outpost::collector {

void attach_seq_lines(std::vector<DeviceRow>& devices, std::vector<SeqLineState>&& lines) {
  std::unordered_map<std::string_view, DeviceRow*> by_name;
  by_name.reserve(devices.size());
  for (DeviceRow& d : devices) by_name.emplace(d.device, &d);
  for (SeqLineState& line : lines) {
    if (auto it = by_name.find(line.device); it != by_name.end()) {
      it->second->seq_line = std::move(line);
    }
  }
}

common::Result<FleetChanges, SinkError> Reader::fleet_changes(uint64_t /*revision*/) {
  FleetChanges out;
  auto rows = devices();
  if (!rows.ok()) return rows.error();
  auto lines = seq_lines();
  if (!lines.ok()) return lines.error();
  auto topics = dlq_topics();
  if (!topics.ok()) return topics.error();
  out.devices = std::move(rows).value();
  attach_seq_lines(out.devices, std::move(lines).value());
  out.dlq_topics = std::move(topics).value();
  return out;
}

}  // namespace outpost::collector
