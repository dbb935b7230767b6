// The operator tools: query, logs, devices, events, dlq list|show|replay|purge, tail, summary.
// Each opens the database (or the broker, for tail) itself and prints to stdout. What they
// read goes through a Reader; only `dlq replay` and `dlq purge` open the writer as well.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "outpost/collector/config.h"
#include "outpost/collector/console.h"
#include "outpost/collector/reader.h"

namespace outpost::collector {

struct QueryArgs {
  ReadingQuery query;
  std::string format = "table";  // table, csv, json
};
int run_query(const CollectorConfig& config, const QueryArgs& args);
struct LogsArgs {
  LogQuery query;
  std::string format = "table";  // table, csv, json
};
// Stored log records, filtered; table (fields after " | " as key=value), csv or json.
int run_logs(const CollectorConfig& config, const LogsArgs& args);
// "trace" (1) .. "critical" (7), also by number and as "warn" / "err"; nullopt otherwise.
std::optional<common::Severity> parse_severity(std::string_view text);

int run_devices(const CollectorConfig& config, const std::string& format);
int run_events(const CollectorConfig& config, uint64_t limit);
int run_summary(const CollectorConfig& config);

enum class DlqAction { kList, kShow, kReplay, kPurge };
struct DlqArgs {
  DlqAction action = DlqAction::kList;
  int64_t id = 0;  // show
  DlqFilter filter;
  bool yes = false;  // purge without a filter needs --all
};
int run_dlq(const CollectorConfig& config, const DlqArgs& args);

// Validates the DLQ entries `ids` again with today's configuration and stores, in one
// transaction through the writer, what now passes (the entries removed with it); what the
// console's replay does. One outcome per id, in order.
common::Result<std::vector<ReplayOutcome>, SinkError> replay_dlq_entries(
    const CollectorConfig& config, Reader& reader, const std::vector<int64_t>& ids);

// Follows the broker live: every message on the collector's topics, decoded, one line each
// (JSON with --format json). Stops after `count` messages if non-zero, or on SIGINT.
int run_tail(const CollectorConfig& config, const std::string& format, uint64_t count);

}  // namespace outpost::collector
