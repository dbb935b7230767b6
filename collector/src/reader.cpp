// What every Reader shares: the full-read form of fleet_changes().
#include "outpost/collector/reader.h"

#include <string_view>
#include <unordered_map>

namespace outpost::collector {

common::Result<FleetChanges, SinkError> Reader::fleet_changes(uint64_t /*revision*/) {
  FleetChanges out;
  auto rows = devices();
  if (!rows.ok()) return rows.error();
  auto lines = seq_lines();
  if (!lines.ok()) return lines.error();
  auto topics = dlq_topics();
  if (!topics.ok()) return topics.error();
  out.devices = std::move(rows).value();
  std::unordered_map<std::string_view, DeviceRow*> by_name;
  by_name.reserve(out.devices.size());
  for (DeviceRow& d : out.devices) by_name.emplace(d.device, &d);
  for (SeqLineState& line : lines.value()) {
    if (auto it = by_name.find(line.device); it != by_name.end()) {
      it->second->seq_line = std::move(line);
    }
  }
  out.dlq_topics = std::move(topics).value();
  return out;
}

}  // namespace outpost::collector
