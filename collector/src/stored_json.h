// The JSON text both sinks store for a log record's fields and a device's last status, so that
// SQLite and PostgreSQL hold the same text and their readers parse one form back.
#pragma once

#include <string>
#include <vector>

#include "outpost/common/json.h"
#include "outpost/common/message.h"

namespace outpost::collector {

// {"key":"value",...} in the order the device sent them.
inline std::string fields_json(const std::vector<common::LogField>& fields) {
  std::string out = "{";
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i) out += ',';
    common::append_json_string(out, fields[i].key);
    out += ':';
    common::append_json_string(out, fields[i].value);
  }
  out += '}';
  return out;
}

// The status as the wire's JSON form of an envelope holding it.
inline std::string status_json(const common::DeviceStatus& s) {
  common::Envelope e;
  e.body = s;
  return common::to_json(e);
}

}  // namespace outpost::collector
