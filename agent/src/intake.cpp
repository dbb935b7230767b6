// Received input as queue items, and persisting them.
#include "outpost/agent/intake.h"

#include <algorithm>

#include "outpost/common/codec.h"
#include "outpost/common/limits.h"

namespace outpost::agent {
namespace {

// A file line as log text: invalid UTF-8 and control characters become '?', and a line
// longer than a record holds is cut (`cut` says so).
std::string as_log_text(std::string_view line, bool& cut) {
  std::string out;
  for (std::size_t i = 0; i < line.size() && out.size() < common::kMaxLogMessageLength;) {
    const auto c = static_cast<unsigned char>(line[i]);
    std::size_t len = c < 0x80         ? 1
                      : (c >> 5) == 6  ? 2
                      : (c >> 4) == 14 ? 3
                      : (c >> 3) == 30 ? 4
                                       : 0;
    if (len == 0 || i + len > line.size() || out.size() + len > common::kMaxLogMessageLength ||
        !common::is_valid_utf8_text(line.substr(i, len)) || (len == 1 && c < 0x20 && c != '\t')) {
      out += '?';
      i += len == 0 ? 1 : std::min(len, line.size() - i);
      continue;
    }
    out.append(line.substr(i, len));
    i += len;
  }
  cut = out.size() >= common::kMaxLogMessageLength && line.size() > out.size();
  return out;
}

}  // namespace

std::size_t append_readings(std::vector<InputReading>& readings, std::vector<QueueItem>& out) {
  for (auto& r : readings) {
    QueueItem& item = out.emplace_back();
    item.time_us = r.time_us;
    item.sensor = std::move(r.sensor);
    item.unit = std::move(r.unit);
    item.value = std::move(r.value);
  }
  return readings.size();
}

QueueItem tail_line_item(std::string_view line, std::string_view path, int64_t now_us,
                         const LineOptions& options, common::Severity severity) {
  QueueItem item;
  item.stream = Stream::kLogs;
  item.time_us = now_us;
  auto parsed = parse_line(line, now_us, options);
  if (parsed.ok() && parsed.value().log) {
    item.log = std::move(*parsed.value().log);
  } else {
    bool cut = false;
    item.log = {now_us, severity, as_log_text(line, cut), {}};
    if (cut) item.log.fields.push_back({"truncated_from", std::to_string(line.size())});
  }
  const std::string source(path.substr(0, common::kMaxLogValueLength));
  if (item.log.fields.size() < common::kMaxLogFieldsPerRecord &&
      common::is_valid_utf8_text(source)) {
    item.log.fields.push_back({"file", source});
  }
  return item;
}

Intake::Intake(ItemSink& sink, const Clock& clock)
    : sink_(sink),
      clock_(clock),
      error_log_(10, std::chrono::seconds(10)),
      quota_log_(10, std::chrono::seconds(10)) {}

bool Intake::persist(std::span<const QueueItem> items, std::span<const TailMark> tails) {
  if (items.empty()) return true;
  auto result = sink_.append(items);
  if (!result.ok()) {
    // Disk full or I/O error: what was received cannot be kept. Count it and carry on; the
    // agent never exits on it.
    counters_.lost += items.size();
    failed(StoreOp::kAppend, fmt::format("cannot persist {} items (lost)", items.size()),
           result.error());
    return false;
  }
  counters_.persisted += result.value().accepted;
  for (const TailMark& tail : tails) {
    if (auto s = sink_.set_tail_offset(*tail.path, tail.offset); !s.ok()) {
      // Saved at the next flush; a restart before it reads some lines again.
      failed(StoreOp::kTailOffset, "cannot save the position in " + *tail.path, s.error());
    }
  }
  if (result.value().refused + result.value().evicted > 0 && quota_log_.allow(clock_.now())) {
    spdlog::warn("store quota reached: {} refused, {} oldest evicted", result.value().refused,
                 result.value().evicted);
  }
  return true;
}

void Intake::expire() {
  // Expired items are counted by the store (dropped_total{reason="expired"}).
  if (auto s = sink_.expire(clock_.wall_now_us()); !s.ok()) {
    failed(StoreOp::kExpire, "cannot drop expired items", s.error());
  }
}

void Intake::failed(StoreOp op, const std::string& what, const common::Error& error) {
  counters_.store_errors.add(op);
  if (error_log_.allow(clock_.now())) {
    const uint64_t suppressed = error_log_.take_suppressed();
    spdlog::error(
        "store: {}: {}{}", what, error.message,
        suppressed ? fmt::format(" ({} similar messages not logged)", suppressed) : std::string());
  }
}

}  // namespace outpost::agent
