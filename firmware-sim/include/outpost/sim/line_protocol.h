// Readings and log records as outpost-agent input lines (docs/agent-input.md), for agent mode.
// Pure; any thread; never throws (apart from std::bad_alloc).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "outpost/common/message.h"

namespace outpost::sim {

// "<name>[,unit=<unit>] value=<v> <time_us>" with timestamps in microseconds (the agent
// config must say timestamp_precision = "us"). Doubles in shortest round-trip form,
// integers as "42i", booleans as "true"/"false", strings quoted with \" and \\ escaped.
// Names and units are escaped for line protocol (',', '=', ' ').
void append_reading_line(std::string& out, std::string_view name, std::string_view unit,
                         const common::Value& value, int64_t time_us);

// "<severity>: <message>[ | key=value ...]"; the agent stamps the receive time.
void append_log_line(std::string& out, const common::LogRecord& record);

}  // namespace outpost::sim
