// InfluxDB line protocol and simple log lines -> readings and log records.
#include "outpost/agent/line_protocol.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <limits>

#include "outpost/common/codec.h"
#include "outpost/common/limits.h"
#include "outpost/common/time_text.h"

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

template <typename T>
bool parse_whole(std::string_view s, T& out) {
  const char* end = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(s.data(), end, out);
  return !s.empty() && ec == std::errc() && ptr == end;
}

constexpr bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// ------------------------------------------------------------------ sensor names
//
// The measurement, the tags and the field key become one sensor name, which the wire limits to
// 1-64 bytes of 0x21-0x7e and in which ',' '=' and '.' are structure. Each element is
// percent-encoded on its own after line protocol's unescaping: the bytes the wire cannot carry
// (space, control characters, UTF-8), the characters line protocol makes the element escape
// (',' in a measurement; ',' and '=' in tag keys, tag values and field keys), and a '%' that
// would read as an encoding (followed by two hex digits). Anything else, and so every plain
// line, is kept as it is. Decoding each element with the lenient (WHATWG) percent-decoding
// gives it back byte for byte, so series that differ get names that differ. The one ambiguity
// left is today's: the '.' before the field key, when a tag value or field key holds a '.'
// itself (docs/agent-input.md, "Sensor names").

// Line protocol's escapes: a measurement escapes ',' and ' '; tag keys, tag values and field
// keys also '='. A backslash before any other character is itself.
enum class Element : uint8_t { kMeasurement, kKey };

constexpr bool escapable(Element e, char c) {
  return c == ',' || c == ' ' || (c == '=' && e == Element::kKey);
}

// An encoded name of at most kMaxSensorNameLength bytes, without allocating: bytes past the
// limit are counted, not kept, so the caller can say how long the name would have been.
class NameBuffer {
 public:
  void push(char c) {
    if (size_ < kCapacity) buf_[size_] = c;
    ++size_;
  }
  void push_encoded(unsigned char b) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    push('%');
    push(kHex[b >> 4]);
    push(kHex[b & 15]);
  }
  void append(std::string_view s) {
    for (char c : s) push(c);
  }
  void truncate(std::size_t size) { size_ = std::min(size, size_); }
  std::size_t size() const { return size_; }
  bool overflow() const { return size_ > kCapacity; }
  // The kept bytes (all of them unless overflow()).
  std::string_view view() const { return {buf_, std::min(size_, kCapacity)}; }
  std::string_view view(std::size_t from, std::size_t to) const {
    return view().substr(from, to - from);
  }

 private:
  static constexpr std::size_t kCapacity = common::kMaxSensorNameLength;
  char buf_[kCapacity];
  std::size_t size_ = 0;
};

void put_name_byte(NameBuffer& out, char c, Element e, bool percent_before_hex) {
  const auto b = static_cast<unsigned char>(c);
  if (b < 0x21 || b > 0x7e || c == ',' || (c == '=' && e == Element::kKey) ||
      (c == '%' && percent_before_hex)) {
    out.push_encoded(b);
  } else {
    out.push(c);
  }
}

// Reads one element from line[i] up to the first unescaped ',' or ' ' (and '=' unless it is a
// measurement), appending its encoded form to `out`. Returns the index of that delimiter, or
// line.size().
std::size_t scan_name(std::string_view line, std::size_t i, Element e, NameBuffer& out) {
  while (i < line.size()) {
    const char c = line[i];
    if (c == '\\' && i + 1 < line.size() && escapable(e, line[i + 1])) {
      put_name_byte(out, line[i + 1], e, false);
      i += 2;
      continue;
    }
    if (c == ',' || c == ' ' || (c == '=' && e == Element::kKey)) break;
    // A hex digit is never part of an escape, so the raw text's next two bytes tell.
    put_name_byte(out, c, e,
                  c == '%' && i + 2 < line.size() && is_hex(line[i + 1]) && is_hex(line[i + 2]));
    ++i;
  }
  return i;
}

// The element's text after line protocol's unescaping (for the unit tag's value).
std::string unescape(std::string_view raw, Element e) {
  std::string out;
  out.reserve(raw.size());
  for (std::size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '\\' && i + 1 < raw.size() && escapable(e, raw[i + 1])) ++i;
    out += raw[i];
  }
  return out;
}

// `what`: "series" (measurement and tags, which every sensor name of the line starts with) or
// "sensor name".
LineRejection name_too_long(std::string_view what, std::string_view kept, std::size_t size) {
  return reject(LineError::kInvalidName, std::string(what) + " " + shown(kept) + " is " +
                                             std::to_string(size) +
                                             " bytes once percent-encoded; a sensor name is at "
                                             "most " +
                                             std::to_string(common::kMaxSensorNameLength));
}

// ------------------------------------------------------------------ field values

// An out-of-range decimal (from_chars says so for both ends): true if it is too small rather
// than too large, i.e. its leading digit's power of ten is negative. InfluxDB reads those as 0.
bool underflows(std::string_view digits) {
  const std::size_t e = digits.find_first_of("eE");
  const std::string_view mantissa = digits.substr(0, e);
  int64_t exponent = 0;
  if (e != std::string_view::npos) {
    std::string_view exp = digits.substr(e + 1);
    if (!exp.empty() && exp.front() == '+') exp.remove_prefix(1);
    if (!parse_whole(exp, exponent)) exponent = exp.starts_with('-') ? -(int64_t{1} << 40) : 0;
  }
  const std::size_t point = std::min(mantissa.find('.'), mantissa.size());
  const std::size_t first = mantissa.find_first_of("123456789");
  if (first == std::string_view::npos) return true;
  const int64_t lead = first < point ? static_cast<int64_t>(point - first - 1)
                                     : -static_cast<int64_t>(first - point);
  return lead + exponent < 0;
}

Result<common::Value, LineRejection> parse_number(std::string_view raw, std::string_view field) {
  const auto bad = [&](std::string why) {
    return reject(LineError::kInvalidValue, "field " + shown(field) + ": " + why);
  };
  if (raw.back() == 'i') {
    int64_t v;
    if (!parse_whole(raw.substr(0, raw.size() - 1), v)) {
      return bad("not a 64-bit integer: " + shown(raw));
    }
    return common::Value(v);
  }
  if (raw.back() == 'u') {
    uint64_t v;
    if (!parse_whole(raw.substr(0, raw.size() - 1), v)) {
      return bad("not a 64-bit unsigned integer: " + shown(raw));
    }
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return bad("unsigned integer " + shown(raw) +
                 " above 2^63-1, which the wire's 64-bit signed integer cannot carry");
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
  const char* end = digits.data() + digits.size();
  const auto [ptr, ec] = std::from_chars(digits.data(), end, v);
  if (digits.empty() || ptr != end) return bad("not a number: " + shown(raw));
  if (ec == std::errc::result_out_of_range && underflows(digits)) {
    return common::Value(digits.front() == '-' ? -0.0 : 0.0);
  }
  if (ec != std::errc() || !std::isfinite(v)) return bad("not a finite number: " + shown(raw));
  return common::Value(v);
}

Result<common::Value, LineRejection> parse_scalar(std::string_view raw, std::string_view field) {
  if (raw.empty()) {
    return reject(LineError::kInvalidValue, "field " + shown(field) + ": empty value");
  }
  static constexpr std::string_view kTrue[] = {"t", "T", "true", "True", "TRUE"};
  static constexpr std::string_view kFalse[] = {"f", "F", "false", "False", "FALSE"};
  if (std::find(std::begin(kTrue), std::end(kTrue), raw) != std::end(kTrue)) {
    return common::Value(true);
  }
  if (std::find(std::begin(kFalse), std::end(kFalse), raw) != std::end(kFalse)) {
    return common::Value(false);
  }
  return parse_number(raw, field);
}

// A string field value from line[i] (its opening quote): "\"" and "\\" stand for the character,
// a backslash before anything else is itself. Sets `i` past the closing quote.
Result<common::Value, LineRejection> parse_string(std::string_view line, std::size_t& i,
                                                  std::string_view field) {
  const auto bad = [&](std::string why) {
    return reject(LineError::kInvalidValue, "field " + shown(field) + ": " + why);
  };
  std::string text;
  for (++i; i < line.size(); ++i) {
    char c = line[i];
    if (c == '"') break;
    if (c == '\\' && i + 1 < line.size() && (line[i + 1] == '"' || line[i + 1] == '\\')) {
      c = line[++i];
    }
    text += c;
  }
  if (i == line.size()) return bad("unterminated string (unbalanced quotes)");
  ++i;
  if (i < line.size() && line[i] != ',' && line[i] != ' ') {
    return bad("unescaped quote inside a string, or text after its closing quote");
  }
  if (text.size() > common::kMaxStringValueLength) {
    return bad("string of " + std::to_string(text.size()) + " bytes, at most " +
               std::to_string(common::kMaxStringValueLength));
  }
  if (!common::is_valid_utf8_text(text)) {
    return bad("string is not UTF-8 text (or holds control characters)");
  }
  return common::Value(std::move(text));
}

// The field value at line[i], up to the ',' or ' ' after it (where it leaves `i`).
Result<common::Value, LineRejection> parse_field_value(std::string_view line, std::size_t& i,
                                                       std::string_view field) {
  if (i < line.size() && line[i] == '"') return parse_string(line, i, field);
  const std::size_t start = i;
  while (i < line.size() && line[i] != ',' && line[i] != ' ') ++i;
  return parse_scalar(line.substr(start, i - start), field);
}

Result<int64_t, LineRejection> parse_timestamp(std::string_view raw, TimePrecision precision) {
  int64_t t;
  if (!parse_whole(raw, t)) {
    return reject(LineError::kInvalidTimestamp, "timestamp " + shown(raw) + " is not an integer");
  }
  // InfluxDB's range: within +-(2^63 - 2) nanoseconds, i.e. 1677-09-21 to 2262-04-11.
  constexpr int64_t kMaxNanoseconds = std::numeric_limits<int64_t>::max() - 1;
  int64_t ns_per_unit = 1;
  switch (precision) {
    case TimePrecision::kNanoseconds:
      break;
    case TimePrecision::kMicroseconds:
      ns_per_unit = 1'000;
      break;
    case TimePrecision::kMilliseconds:
      ns_per_unit = 1'000'000;
      break;
    case TimePrecision::kSeconds:
      ns_per_unit = 1'000'000'000;
      break;
  }
  if (t > kMaxNanoseconds / ns_per_unit || t < -(kMaxNanoseconds / ns_per_unit)) {
    return reject(LineError::kInvalidTimestamp,
                  "timestamp " + shown(raw) + " is out of range (years 1677-2262)");
  }
  if (precision == TimePrecision::kNanoseconds) {
    return t / 1000 - (t % 1000 < 0 ? 1 : 0);  // floor, also before 1970
  }
  return t * (ns_per_unit / 1000);
}

bool is_blank(char c) { return c == ' ' || c == '\t'; }

// ------------------------------------------------------------------ the line

Result<ParsedLine, LineRejection> parse_line_protocol(std::string_view line,
                                                      int64_t receive_time_us,
                                                      const LineOptions& options) {
  while (!line.empty() && is_blank(line.back())) line.remove_suffix(1);
  const auto no_field_set = [] {
    return reject(LineError::kSyntax, "no field set (expected 'measurement field=value')");
  };

  // Measurement: up to the first unescaped ',' (tags follow) or ' ' (fields follow).
  NameBuffer series;
  std::size_t i = scan_name(line, 0, Element::kMeasurement, series);
  if (series.size() == 0) return reject(LineError::kInvalidName, "empty measurement");

  // Tags: encoded into one buffer in the order given, then put into the name sorted by key.
  struct Tag {
    uint8_t key_begin, key_end, value_end;  // offsets into `tag_text`
  };
  static constexpr std::size_t kMaxTags = 16;  // ",k=v" each: more cannot fit in 64 bytes
  std::array<Tag, kMaxTags> tags;
  std::size_t tag_count = 0;
  NameBuffer tag_text;
  bool too_many_tags = false;
  std::size_t series_bytes = series.size();  // the name's length, also past 64 bytes
  std::string unit;
  bool have_unit = false;
  while (i < line.size() && line[i] == ',') {
    const std::size_t key_start = ++i;
    const std::size_t key_begin = tag_text.size();
    i = scan_name(line, i, Element::kKey, tag_text);
    const std::size_t key_end = tag_text.size();
    if (i == line.size() || line[i] != '=' || key_end == key_begin) {
      return reject(LineError::kSyntax,
                    "tag " + shown(line.substr(key_start, i - key_start)) + " is not key=value");
    }
    const std::size_t value_start = ++i;
    i = scan_name(line, i, Element::kKey, tag_text);
    const std::string_view key_raw = line.substr(key_start, value_start - 1 - key_start);
    if (i == value_start) {
      return reject(LineError::kSyntax, "tag " + shown(key_raw) + " has no value");
    }
    if (i < line.size() && line[i] == '=') {
      return reject(LineError::kSyntax, "tag " + shown(key_raw) + ": unescaped '=' in its value");
    }
    if (key_raw == "unit") {
      if (have_unit) return reject(LineError::kSyntax, "duplicate tag key 'unit'");
      have_unit = true;
      unit = unescape(line.substr(value_start, i - value_start), Element::kKey);
      if (!common::is_valid_unit(unit)) {
        return reject(LineError::kInvalidName, "unit " + shown(unit) + " must be at most " +
                                                   std::to_string(common::kMaxUnitLength) +
                                                   " bytes of UTF-8 without control characters");
      }
      tag_text.truncate(key_begin);  // the unit is not part of the name
      continue;
    }
    series_bytes += 2 + tag_text.size() - key_begin;
    if (tag_count == kMaxTags || tag_text.overflow()) {
      too_many_tags = true;  // the name is over 64 bytes; keep reading for syntax errors
      continue;
    }
    tags[tag_count++] = {static_cast<uint8_t>(key_begin), static_cast<uint8_t>(key_end),
                         static_cast<uint8_t>(tag_text.size())};
  }
  if (i == line.size()) return no_field_set();
  const auto key_of = [&](const Tag& t) { return tag_text.view(t.key_begin, t.key_end); };
  // The same series always gets the same name, whatever the order of its tags.
  std::sort(tags.begin(), tags.begin() + tag_count,
            [&](const Tag& a, const Tag& b) { return key_of(a) < key_of(b); });
  for (std::size_t t = 0; t < tag_count; ++t) {
    if (t > 0 && key_of(tags[t]) == key_of(tags[t - 1])) {
      return reject(LineError::kSyntax, "duplicate tag key " + shown(key_of(tags[t])));
    }
    series.push(',');
    series.append(key_of(tags[t]));
    series.push('=');
    series.append(tag_text.view(tags[t].key_end, tags[t].value_end));
  }
  if (too_many_tags || series.overflow())
    return name_too_long("series", series.view(), series_bytes);

  // Fields, after one or more spaces.
  while (i < line.size() && is_blank(line[i])) ++i;
  if (i == line.size()) return no_field_set();
  ParsedLine out;
  std::size_t field_count = 0;
  while (true) {
    if (++field_count > common::kMaxSensorsPerBatch) {
      return reject(LineError::kTooManyFields,
                    "more than " + std::to_string(common::kMaxSensorsPerBatch) + " fields");
    }
    const std::size_t key_start = i;
    NameBuffer key;
    i = scan_name(line, i, Element::kKey, key);
    const std::string_view key_raw = line.substr(key_start, i - key_start);
    if (i == line.size() || line[i] != '=' || key.size() == 0) {
      return reject(LineError::kSyntax, "field " + shown(key_raw) + " is not key=value");
    }
    ++i;
    auto value = parse_field_value(line, i, key_raw);
    if (!value.ok()) return value.error();
    // A field called "value" names the series itself: temp,room=lab value=21.5 -> "temp,room=lab".
    std::string sensor(series.view());
    if (key.view() != "value") {
      if (series.size() + 1 + key.size() > common::kMaxSensorNameLength) {
        NameBuffer whole = series;
        whole.push('.');
        whole.append(key.view());
        return name_too_long("sensor name", whole.view(), series.size() + 1 + key.size());
      }
      sensor += '.';
      sensor += key.view();
    }
    // A field given twice: the last value wins, as in InfluxDB.
    auto same = std::find_if(out.readings.begin(), out.readings.end(),
                             [&](const InputReading& r) { return r.sensor == sensor; });
    if (same != out.readings.end()) {
      same->value = std::move(value).value();
    } else {
      out.readings.push_back({std::move(sensor), unit, std::move(value).value(), 0});
    }
    if (i == line.size() || line[i] == ' ') break;
    ++i;  // the ',' before the next field
  }

  // The timestamp, after one or more spaces; trailing blanks were trimmed above.
  int64_t time_us = receive_time_us;
  while (i < line.size() && is_blank(line[i])) ++i;
  if (i < line.size()) {
    auto t = parse_timestamp(line.substr(i), options.precision);
    if (!t.ok()) return t.error();
    if (t.value() < options.min_timestamp_us) {
      return reject(LineError::kInvalidTimestamp,
                    "timestamp " + shown(line.substr(i)) + " is before inputs.min_timestamp " +
                        common::format_time_us(options.min_timestamp_us) +
                        " (a unit error, or a clock never set)");
    }
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
