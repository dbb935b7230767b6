// JSON rendering of decoded payloads, for people and tools (outpost-wire, logs, webhooks).
#pragma once

#include <string>
#include <string_view>

#include "outpost/common/message.h"

namespace outpost::common {

// Renders an envelope as one line of compact JSON, lossless: times in Unix
// microseconds, doubles in shortest round-trip form, integers exact. Keys:
//   {"v":1,"device":"gw-7","epoch":3,"seq":42,"kind":"readings","synced":true,
//    "readings":[{"sensor":"temp","t":1700000000000000,"value":21.37,"unit":"Cel"},...]}
// NaN and +/-Inf, which JSON lacks, are written as the strings "NaN", "Infinity",
// "-Infinity". Text is escaped per RFC 8259. Never fails.
std::string to_json(const Envelope& envelope);

// Appends `text` as a JSON string literal (with quotes) to `out`.
void append_json_string(std::string& out, std::string_view text);

// Appends a reading's value as to_json writes it: shortest round-trip doubles ("NaN",
// "Infinity" and "-Infinity" as strings), exact integers, true/false, escaped strings.
void append_json_value(std::string& out, const Value& value);

}  // namespace outpost::common
