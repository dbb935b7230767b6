// Building message bodies from queued items.
#include "outpost/agent/batcher.h"

#include <algorithm>
#include <unordered_map>

#include "outpost/common/limits.h"

namespace outpost::agent {
namespace {

// Encoded-size estimate of one reading: generous, so a batch never outgrows max_bytes.
std::size_t reading_cost(const QueueItem& item) {
  std::size_t n = 16;
  if (const auto* s = std::get_if<std::string>(&item.value)) n += s->size();
  return n;
}

std::size_t record_cost(const QueueItem& item) {
  std::size_t n = 16 + item.log.message.size();
  for (const auto& f : item.log.fields) n += 4 + f.key.size() + f.value.size();
  return n;
}

}  // namespace

BuiltBatch build_batch(Stream stream, std::span<const QueueItem> items, const BatchLimits& limits,
                       bool time_synced) {
  BuiltBatch out;
  std::size_t bytes = 0;
  if (stream == Stream::kLogs) {
    common::LogBatch batch;
    batch.time_synced = time_synced;
    const std::size_t max = std::min(limits.max_records, common::kMaxLogRecordsPerBatch);
    for (const QueueItem& item : items) {
      const std::size_t cost = record_cost(item);
      if (out.used > 0 && (out.used == max || bytes + cost > limits.max_bytes)) break;
      batch.records.push_back(item.log);
      bytes += cost;
      ++out.used;
    }
    out.body = std::move(batch);
    return out;
  }
  common::ReadingBatch batch;
  batch.time_synced = time_synced;
  // Keys view the names in the table, which never reallocates: it is reserved in full.
  batch.sensor_names.reserve(common::kMaxSensorsPerBatch);
  std::unordered_map<std::string_view, uint32_t> index;  // sensor name -> table slot
  const std::size_t max = std::min(limits.max_readings, common::kMaxReadingsPerBatch);
  for (const QueueItem& item : items) {
    auto it = index.find(item.sensor);
    const bool new_name = it == index.end();
    std::size_t cost = reading_cost(item);
    if (new_name) cost += item.sensor.size() + item.unit.size() + 4;
    if (out.used > 0 && (out.used == max || bytes + cost > limits.max_bytes ||
                         (new_name && index.size() == common::kMaxSensorsPerBatch))) {
      break;
    }
    uint32_t slot;
    if (new_name) {
      slot = static_cast<uint32_t>(batch.sensor_names.size());
      batch.sensor_names.push_back(item.sensor);
      batch.units.push_back(item.unit);
      index.emplace(batch.sensor_names.back(), slot);
    } else {
      slot = it->second;
    }
    batch.readings.push_back({slot, item.time_us, item.value});
    bytes += cost;
    ++out.used;
  }
  // Trailing empty units cost bytes for nothing; the wire allows a shorter unit table.
  while (!batch.units.empty() && batch.units.back().empty()) batch.units.pop_back();
  out.body = std::move(batch);
  return out;
}

}  // namespace outpost::agent
