// InfluxDB line protocol and simple log lines -> readings and log records.
#include "outpost/agent/line_protocol.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>

#include "outpost/common/codec.h"
#include "outpost/common/limits.h"

namespace outpost::agent {
namespace {

using common::Result;

LineRejection reject(LineError error, std::string detail) {
  return LineRejection{error, std::move(detail)};
}

// Short, printable rendering of input for error details.
std::string shown(std::string_view s) {
  std::string out = "'";
  for (std::size_t i = 0; i < s.size() && i < 40; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    out += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
  }
  if (s.size() > 40) out += "...";
  return out + "'";
}

// Index of the first `sep` in `s` from `from` that is not escaped with a backslash
// (and, if `quotes`, not inside a double-quoted string); npos if none.
std::size_t find_unescaped(std::string_view s, char sep, std::size_t from, bool quotes) {
  bool in_quotes = false;
  for (std::size_t i = from; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '\\') {
      ++i;  // skip the escaped character
    } else if (quotes && c == '"') {
      in_quotes = !in_quotes;
    } else if (c == sep && !in_quotes) {
      return i;
    }
  }
  return std::string_view::npos;
}

std::vector<std::string_view> split_unescaped(std::string_view s, char sep, bool quotes) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    const std::size_t at = find_unescaped(s, sep, start, quotes);
    parts.push_back(s.substr(start, at == std::string_view::npos ? at : at - start));
    if (at == std::string_view::npos) break;
    start = at + 1;
  }
  return parts;
}

// Measurement, tag and field names: "\," "\=" "\ " and "\\" stand for the character.
std::string unescape_name(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() &&
        (s[i + 1] == ',' || s[i + 1] == '=' || s[i + 1] == ' ' || s[i + 1] == '\\')) {
      ++i;
    }
    out += s[i];
  }
  return out;
}

template <typename T>
bool parse_whole(std::string_view s, T& out) {
  const char* end = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(s.data(), end, out);
  return !s.empty() && ec == std::errc() && ptr == end;
}

Result<common::Value, LineRejection> parse_field_value(std::string_view raw,
                                                       std::string_view field) {
  const auto bad = [&](std::string why) {
    return reject(LineError::kInvalidValue, "field " + shown(field) + ": " + why);
  };
  if (raw.empty()) return bad("empty value");
  if (raw.front() == '"') {
    if (raw.size() < 2 || raw.back() != '"') return bad("unterminated string");
    std::string text;
    for (std::size_t i = 1; i + 1 < raw.size(); ++i) {
      if (raw[i] == '\\' && i + 2 < raw.size() && (raw[i + 1] == '"' || raw[i + 1] == '\\')) {
        ++i;
      } else if (raw[i] == '"') {
        return bad("unescaped quote inside a string");
      }
      text += raw[i];
    }
    if (text.size() > common::kMaxStringValueLength) {
      return bad("string of " + std::to_string(text.size()) + " bytes, at most " +
                 std::to_string(common::kMaxStringValueLength));
    }
    if (!common::is_valid_utf8_text(text)) return bad("string is not valid UTF-8 text");
    return common::Value(std::move(text));
  }
  static constexpr std::string_view kTrue[] = {"t", "T", "true", "True", "TRUE"};
  static constexpr std::string_view kFalse[] = {"f", "F", "false", "False", "FALSE"};
  if (std::find(std::begin(kTrue), std::end(kTrue), raw) != std::end(kTrue)) {
    return common::Value(true);
  }
  if (std::find(std::begin(kFalse), std::end(kFalse), raw) != std::end(kFalse)) {
    return common::Value(false);
  }
  if (raw.back() == 'i') {
    int64_t v;
    if (!parse_whole(raw.substr(0, raw.size() - 1), v)) {
      return bad("not a 64-bit integer: " + shown(raw));
    }
    return common::Value(v);
  }
  if (raw.back() == 'u') {
    uint64_t v;
    if (!parse_whole(raw.substr(0, raw.size() - 1), v) ||
        v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return bad("not an unsigned integer below 2^63: " + shown(raw));
    }
    return common::Value(static_cast<int64_t>(v));
  }
  // from_chars would accept "inf", "nan" and hex floats; line protocol has none of them.
  if (raw.find_first_not_of("0123456789+-.eE") != std::string_view::npos) {
    return bad("not a number: " + shown(raw));
  }
  std::string_view digits = raw;
  if (digits.front() == '+') digits.remove_prefix(1);  // from_chars refuses a leading '+'
  if (digits.size() != raw.size() && !digits.empty() && digits.front() == '-') {
    return bad("not a number: " + shown(raw));
  }
  double v;
  if (!parse_whole(digits, v) || !std::isfinite(v)) {
    return bad("not a finite number: " + shown(raw));
  }
  return common::Value(v);
}

Result<int64_t, LineRejection> parse_timestamp(std::string_view raw, TimePrecision precision) {
  int64_t t;
  if (!parse_whole(raw, t)) {
    return reject(LineError::kInvalidTimestamp, "timestamp " + shown(raw) + " is not an integer");
  }
  int64_t us = 0;
  bool overflow = false;
  switch (precision) {
    case TimePrecision::kNanoseconds:
      us = t / 1000 - (t % 1000 < 0 ? 1 : 0);  // floor, also before 1970
      break;
    case TimePrecision::kMicroseconds:
      us = t;
      break;
    case TimePrecision::kMilliseconds:
      overflow = __builtin_mul_overflow(t, 1000, &us);
      break;
    case TimePrecision::kSeconds:
      overflow = __builtin_mul_overflow(t, 1'000'000, &us);
      break;
  }
  if (overflow) {
    return reject(LineError::kInvalidTimestamp, "timestamp " + shown(raw) + " is out of range");
  }
  return us;
}

Result<ParsedLine, LineRejection> parse_line_protocol(std::string_view line,
                                                      int64_t receive_time_us,
                                                      const LineOptions& options) {
  // Sections: series key (measurement and tags), field set, optional timestamp.
  const std::size_t key_end = find_unescaped(line, ' ', 0, false);
  if (key_end == std::string_view::npos) {
    return reject(LineError::kSyntax, "no field set (expected 'measurement field=value')");
  }
  const std::string_view series = line.substr(0, key_end);
  std::string_view rest = line.substr(key_end + 1);
  const std::size_t fields_end = find_unescaped(rest, ' ', 0, true);
  const std::string_view fields_raw = rest.substr(0, fields_end);
  std::string_view time_raw;
  if (fields_end != std::string_view::npos) {
    time_raw = rest.substr(fields_end + 1);
    while (!time_raw.empty() && (time_raw.back() == ' ' || time_raw.back() == '\t')) {
      time_raw.remove_suffix(1);
    }
  }

  const auto series_parts = split_unescaped(series, ',', false);
  const std::string measurement = unescape_name(series_parts[0]);
  if (measurement.empty()) return reject(LineError::kInvalidName, "empty measurement");
  std::vector<std::pair<std::string, std::string>> tags;
  std::string unit;
  for (std::size_t i = 1; i < series_parts.size(); ++i) {
    const std::size_t eq = find_unescaped(series_parts[i], '=', 0, false);
    if (eq == std::string_view::npos || eq == 0 || eq + 1 == series_parts[i].size()) {
      return reject(LineError::kSyntax, "tag " + shown(series_parts[i]) + " is not key=value");
    }
    std::string key = unescape_name(series_parts[i].substr(0, eq));
    std::string value = unescape_name(series_parts[i].substr(eq + 1));
    if (key == "unit") {
      if (!common::is_valid_unit(value)) {
        return reject(LineError::kInvalidName, "unit " + shown(value) + " must be at most " +
                                                   std::to_string(common::kMaxUnitLength) +
                                                   " bytes of UTF-8 without control characters");
      }
      unit = std::move(value);
    } else {
      tags.emplace_back(std::move(key), std::move(value));
    }
  }
  std::sort(tags.begin(), tags.end());  // the same series always gets the same name
  std::string series_name = measurement;
  for (const auto& [k, v] : tags) series_name += "," + k + "=" + v;

  if (fields_raw.empty()) return reject(LineError::kSyntax, "empty field set");
  const auto fields = split_unescaped(fields_raw, ',', true);
  if (fields.size() > common::kMaxSensorsPerBatch) {
    return reject(LineError::kTooManyFields, std::to_string(fields.size()) + " fields, at most " +
                                                 std::to_string(common::kMaxSensorsPerBatch));
  }
  ParsedLine out;
  out.readings.reserve(fields.size());
  for (std::string_view field : fields) {
    const std::size_t eq = find_unescaped(field, '=', 0, true);
    if (eq == std::string_view::npos || eq == 0) {
      return reject(LineError::kSyntax, "field " + shown(field) + " is not key=value");
    }
    const std::string key = unescape_name(field.substr(0, eq));
    auto value = parse_field_value(field.substr(eq + 1), key);
    if (!value.ok()) return value.error();
    // A field called "value" names the series itself: temp,room=lab value=21.5 -> "temp,room=lab".
    std::string sensor = key == "value" ? series_name : series_name + "." + key;
    if (!common::is_valid_sensor_name(sensor)) {
      return reject(LineError::kInvalidName, "sensor name " + shown(sensor) + " must be 1-" +
                                                 std::to_string(common::kMaxSensorNameLength) +
                                                 " printable bytes without spaces");
    }
    out.readings.push_back({std::move(sensor), unit, std::move(value).value(), 0});
  }
  // The timestamp last, so that a line missing its field set reads as a syntax error.
  int64_t time_us = receive_time_us;
  if (!time_raw.empty()) {
    auto t = parse_timestamp(time_raw, options.precision);
    if (!t.ok()) return t.error();
    time_us = t.value();
  }
  for (auto& r : out.readings) r.time_us = time_us;
  return out;
}

std::optional<common::Severity> severity_named(std::string_view name) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  using S = common::Severity;
  static constexpr std::pair<std::string_view, S> kNames[] = {
      {"trace", S::kTrace},       {"debug", S::kDebug},  {"info", S::kInfo},
      {"notice", S::kNotice},     {"warn", S::kWarning}, {"warning", S::kWarning},
      {"err", S::kError},         {"error", S::kError},  {"crit", S::kCritical},
      {"critical", S::kCritical},
  };
  for (const auto& [n, s] : kNames) {
    if (n == lower) return s;
  }
  return std::nullopt;
}

// "<severity>: message [| key=value ...]".
Result<ParsedLine, LineRejection> parse_log_line(common::Severity severity, std::string_view text,
                                                 int64_t receive_time_us) {
  common::LogRecord record{receive_time_us, severity, "", {}};
  const std::size_t bar = text.rfind(" | ");
  std::string_view message = text;
  if (bar != std::string_view::npos) {
    std::string_view kvs = text.substr(bar + 3);
    std::vector<common::LogField> fields;
    bool all_pairs = !kvs.empty();
    std::size_t start = 0;
    while (all_pairs && start < kvs.size()) {
      std::size_t end = kvs.find(' ', start);
      if (end == std::string_view::npos) end = kvs.size();
      const std::string_view kv = kvs.substr(start, end - start);
      start = end + 1;
      if (kv.empty()) continue;
      const std::size_t eq = kv.find('=');
      if (eq == std::string_view::npos || eq == 0) {
        all_pairs = false;
        break;
      }
      fields.push_back({std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1))});
    }
    if (all_pairs) {  // otherwise the " | " belongs to the message
      message = text.substr(0, bar);
      if (fields.size() > common::kMaxLogFieldsPerRecord) {
        return reject(LineError::kTooManyFields,
                      std::to_string(fields.size()) + " key/values, at most " +
                          std::to_string(common::kMaxLogFieldsPerRecord));
      }
      for (const auto& f : fields) {
        if (f.key.size() > common::kMaxLogKeyLength || !common::is_valid_sensor_name(f.key) ||
            f.value.size() > common::kMaxLogValueLength || !common::is_valid_utf8_text(f.value)) {
          return reject(LineError::kInvalidValue,
                        "log key/value " + shown(f.key) + " too long or not text");
        }
      }
      record.fields = std::move(fields);
    }
  }
  while (!message.empty() && message.back() == ' ') message.remove_suffix(1);
  if (message.empty()) return reject(LineError::kSyntax, "log line without a message");
  if (message.size() > common::kMaxLogMessageLength || !common::is_valid_utf8_text(message)) {
    return reject(LineError::kInvalidValue, "log message longer than " +
                                                std::to_string(common::kMaxLogMessageLength) +
                                                " bytes or not UTF-8 text");
  }
  record.message = std::string(message);
  ParsedLine out;
  out.log = std::move(record);
  return out;
}

}  // namespace

std::string_view line_error_name(LineError error) {
  switch (error) {
    case LineError::kSyntax:
      return "syntax";
    case LineError::kInvalidName:
      return "invalid_name";
    case LineError::kInvalidValue:
      return "invalid_value";
    case LineError::kInvalidTimestamp:
      return "invalid_timestamp";
    case LineError::kTooLong:
      return "too_long";
    case LineError::kTooManyFields:
      return "too_many_fields";
  }
  return "unknown";
}

Result<ParsedLine, LineRejection> parse_line(std::string_view line, int64_t receive_time_us,
                                             const LineOptions& options) {
  if (line.size() > kMaxLineBytes) {
    return reject(LineError::kTooLong, "line of " + std::to_string(line.size()) +
                                           " bytes, at most " + std::to_string(kMaxLineBytes));
  }
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
  if (line.empty() || line.front() == '#') return ParsedLine{};
  if (line.find('\0') != std::string_view::npos) {
    return reject(LineError::kSyntax, "line contains a NUL byte");
  }
  // A log line starts with a severity and ": " ("warn: disk almost full").
  if (const std::size_t colon = line.find(": "); colon != std::string_view::npos && colon <= 8) {
    if (auto severity = severity_named(line.substr(0, colon))) {
      return parse_log_line(*severity, line.substr(colon + 2), receive_time_us);
    }
  }
  return parse_line_protocol(line, receive_time_us, options);
}

DatagramResult parse_datagram(std::string_view datagram, int64_t receive_time_us,
                              const LineOptions& options) {
  DatagramResult result;
  std::size_t start = 0;
  std::size_t number = 0;
  while (start < datagram.size()) {
    std::size_t end = datagram.find('\n', start);
    if (end == std::string_view::npos) end = datagram.size();
    ++number;
    auto parsed = parse_line(datagram.substr(start, end - start), receive_time_us, options);
    if (!parsed.ok()) {
      result.rejected.push_back({number, parsed.error()});
    } else if (!parsed.value().readings.empty() || parsed.value().log) {
      result.accepted.push_back(std::move(parsed).value());
    }
    start = end + 1;
  }
  return result;
}

}  // namespace outpost::agent
