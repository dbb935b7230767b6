// TOML configuration reading with file/line/key errors, durations and sizes.
#include "outpost/common/config.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "outpost/common/codec.h"

namespace outpost::common {
namespace {

// Parses the whole of `text` as an unsigned integer; "12abc" and "" fail.
std::optional<uint64_t> parse_whole_number(std::string_view text) {
  uint64_t v = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, v);
  if (ec != std::errc() || ptr != end || text.empty()) return std::nullopt;
  return v;
}

// Splits "200ms" into ("200", "ms").
std::pair<std::string_view, std::string_view> split_number_unit(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
  return {text.substr(0, i), text.substr(i)};
}

std::string type_name(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

std::string lowercase(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

}  // namespace

std::string ConfigError::to_string() const {
  std::string out = file;
  if (line > 0) {
    out += ':' + std::to_string(line);
    if (column > 0) out += ':' + std::to_string(column);
  }
  out += ": ";
  if (!key.empty()) out += key + ": ";
  return out + message;
}

std::optional<int64_t> parse_duration_us(std::string_view text) {
  const auto [digits, unit] = split_number_unit(text);
  const auto n = parse_whole_number(digits);
  if (!n) return std::nullopt;
  static constexpr std::pair<std::string_view, int64_t> kUnits[] = {
      {"us", 1},         {"ms", 1'000},        {"s", 1'000'000},
      {"m", 60'000'000}, {"h", 3'600'000'000}, {"d", 86'400'000'000},
  };
  for (const auto& [name, scale] : kUnits) {
    if (unit != name) continue;
    if (*n > static_cast<uint64_t>(std::numeric_limits<int64_t>::max() / scale)) {
      return std::nullopt;
    }
    return static_cast<int64_t>(*n) * scale;
  }
  return std::nullopt;
}

std::optional<uint64_t> parse_size_bytes(std::string_view text) {
  const auto [digits, unit] = split_number_unit(text);
  const auto n = parse_whole_number(digits);
  if (!n) return std::nullopt;
  static constexpr std::pair<std::string_view, uint64_t> kUnits[] = {
      {"B", 1},
      {"kB", 1'000},
      {"KB", 1'000},
      {"MB", 1'000'000},
      {"GB", 1'000'000'000},
      {"TB", 1'000'000'000'000},
      {"KiB", uint64_t{1} << 10},
      {"MiB", uint64_t{1} << 20},
      {"GiB", uint64_t{1} << 30},
      {"TiB", uint64_t{1} << 40},
  };
  for (const auto& [name, scale] : kUnits) {
    if (unit != name) continue;
    if (*n > std::numeric_limits<uint64_t>::max() / scale) return std::nullopt;
    return *n * scale;
  }
  return std::nullopt;
}

ConfigReader::ConfigReader(std::string file, toml::table table)
    : file_(std::move(file)), table_(std::move(table)) {}

Result<ConfigReader, ConfigError> ConfigReader::parse_string(std::string_view text,
                                                             std::string file_name) {
  try {
    toml::table table = toml::parse(text, file_name);
    return ConfigReader(std::move(file_name), std::move(table));
  } catch (const toml::parse_error& e) {
    return ConfigError{file_name, static_cast<int>(e.source().begin.line),
                       static_cast<int>(e.source().begin.column), "",
                       "TOML syntax error: " + std::string(e.description())};
  }
}

Result<ConfigReader, ConfigError> ConfigReader::load_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return ConfigError{path, 0, 0, "", "cannot open the file: " + std::string(strerror(errno))};
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return ConfigError{path, 0, 0, "", "cannot read the file"};
  return parse_string(text.str(), path);
}

const toml::node* ConfigReader::find(std::string_view path) {
  known_.insert(std::string(path));
  return table_.at_path(path).node();
}

bool ConfigReader::has(std::string_view path) { return find(path) != nullptr; }

std::vector<std::string> ConfigReader::table_keys(std::string_view path) {
  std::vector<std::string> keys;
  // Not marked as known: finish() still walks the entries and reports keys nobody read.
  const toml::node* node = table_.at_path(path).node();
  if (!node) return keys;
  const toml::table* table = node->as_table();
  if (!table) {
    error_at(path, node, "expected a table of named entries");
    return keys;
  }
  std::vector<std::pair<toml::source_position, std::string>> ordered;
  for (const auto& [key, value] : *table) {
    ordered.emplace_back(value.source().begin, std::string(key.str()));
  }
  std::sort(ordered.begin(), ordered.end(), [](const auto& a, const auto& b) {
    return a.first.line != b.first.line ? a.first.line < b.first.line
                                        : a.first.column < b.first.column;
  });
  for (auto& entry : ordered) keys.push_back(std::move(entry.second));
  return keys;
}

void ConfigReader::error_at(std::string_view path, const toml::node* node, std::string message) {
  ConfigError e{file_, 0, 0, std::string(path), std::move(message)};
  if (node) {
    e.line = static_cast<int>(node->source().begin.line);
    e.column = static_cast<int>(node->source().begin.column);
  }
  errors_.push_back(std::move(e));
}

void ConfigReader::add_error(std::string_view path, std::string message) {
  error_at(path, table_.at_path(path).node(), std::move(message));
}

std::string ConfigReader::shown(std::string_view path, std::string_view value) {
  const std::string lower = lowercase(path);
  for (std::string_view secret : {"password", "secret", "key_pass", "token", "dsn"}) {
    if (lower.find(secret) != std::string::npos) return "(value hidden)";
  }
  std::string out = "\"";
  out += value.substr(0, 80);
  if (value.size() > 80) out += "...";
  return out + "\"";
}

void ConfigReader::read(std::string_view path, bool& out) {
  const toml::node* node = find(path);
  if (!node) return;
  if (auto v = node->value_exact<bool>()) {
    out = *v;
  } else {
    error_at(path, node, "expected true or false, got " + type_name(*node));
  }
}

void ConfigReader::read(std::string_view path, std::string& out) {
  const toml::node* node = find(path);
  if (!node) return;
  if (auto v = node->value_exact<std::string>()) {
    out = *v;
  } else {
    error_at(path, node, "expected a string, got " + type_name(*node));
  }
}

void ConfigReader::read(std::string_view path, std::vector<std::string>& out) {
  const toml::node* node = find(path);
  if (!node) return;
  const toml::array* array = node->as_array();
  if (!array) {
    error_at(path, node, "expected an array of strings, got " + type_name(*node));
    return;
  }
  std::vector<std::string> values;
  for (const toml::node& element : *array) {
    auto v = element.value_exact<std::string>();
    if (!v) {
      error_at(path, &element, "expected an array of strings, found " + type_name(element));
      return;
    }
    values.push_back(*v);
  }
  out = std::move(values);
}

void ConfigReader::read(std::string_view path, int64_t& out, int64_t min, int64_t max) {
  const toml::node* node = find(path);
  if (!node) return;
  auto v = node->value_exact<int64_t>();
  if (!v) {
    error_at(path, node, "expected an integer, got " + type_name(*node));
  } else if (*v < min || *v > max) {
    error_at(path, node,
             std::to_string(*v) + " is out of range [" + std::to_string(min) + ", " +
                 std::to_string(max) + "]");
  } else {
    out = *v;
  }
}

void ConfigReader::read(std::string_view path, uint32_t& out, uint32_t min, uint32_t max) {
  int64_t v = out;
  read(path, v, min, max);
  out = static_cast<uint32_t>(v);
}

void ConfigReader::read(std::string_view path, uint64_t& out, uint64_t min, uint64_t max) {
  // TOML integers are signed 64-bit, so larger maxima cannot be written anyway.
  const uint64_t limit = std::numeric_limits<int64_t>::max();
  int64_t v = static_cast<int64_t>(std::min(out, limit));
  read(path, v, static_cast<int64_t>(std::min(min, limit)),
       static_cast<int64_t>(std::min(max, limit)));
  if (v >= 0) out = static_cast<uint64_t>(v);
}

void ConfigReader::read(std::string_view path, double& out, double min, double max) {
  const toml::node* node = find(path);
  if (!node) return;
  std::optional<double> v = node->value_exact<double>();
  if (!v) {
    if (auto i = node->value_exact<int64_t>()) v = static_cast<double>(*i);
  }
  if (!v) {
    error_at(path, node, "expected a number, got " + type_name(*node));
  } else if (!std::isfinite(*v) || *v < min || *v > max) {
    std::ostringstream msg;
    msg << *v << " is out of range [" << min << ", " << max << "]";
    error_at(path, node, msg.str());
  } else {
    out = *v;
  }
}

void ConfigReader::read_time_us(std::string_view path, int64_t& out_us) {
  const toml::node* node = find(path);
  if (!node) return;
  toml::date date{};
  toml::time time{};
  int64_t offset_s = 0;
  if (auto d = node->value_exact<toml::date>()) {
    date = *d;
  } else if (auto dt = node->value_exact<toml::date_time>()) {
    if (!dt->offset) {
      error_at(path, node, "a date-time needs its UTC offset, e.g. 2000-01-01T00:00:00Z");
      return;
    }
    date = dt->date;
    time = dt->time;
    offset_s = int64_t{dt->offset->minutes} * 60;
  } else {
    error_at(path, node,
             "expected a TOML date or date-time such as 2000-01-01 or 2000-01-01T00:00:00Z "
             "(without quotes), got " +
                 type_name(*node));
    return;
  }
  // Days from 1970-01-01 to the civil date (Howard Hinnant's days_from_civil).
  const int64_t y = int64_t{date.year} - (date.month <= 2 ? 1 : 0);
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t mp = (int64_t{date.month} + 9) % 12;
  const int64_t doy = (153 * mp + 2) / 5 + int64_t{date.day} - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  const int64_t days = era * 146'097 + doe - 719'468;
  const int64_t seconds =
      days * 86'400 + time.hour * 3600 + time.minute * 60 + time.second - offset_s;
  out_us = seconds * 1'000'000 + time.nanosecond / 1000;
}

void ConfigReader::read_duration_us(std::string_view path, int64_t& out_us, int64_t min_us,
                                    int64_t max_us) {
  const toml::node* node = find(path);
  if (!node) return;
  auto text = node->value_exact<std::string>();
  if (!text) {
    error_at(path, node,
             "expected a duration string such as \"200ms\", \"5s\" or \"7d\", got " +
                 type_name(*node) + " (a bare number is ambiguous)");
    return;
  }
  auto v = parse_duration_us(*text);
  if (!v) {
    error_at(path, node,
             "expected a duration such as \"200ms\", \"5s\", \"10m\", \"2h\" or \"7d\" "
             "(units us, ms, s, m, h, d), got " +
                 shown(path, *text));
  } else if (*v < min_us || *v > max_us) {
    error_at(path, node,
             shown(path, *text) + " is out of range [" + std::to_string(min_us) + " us, " +
                 std::to_string(max_us) + " us]");
  } else {
    out_us = *v;
  }
}

void ConfigReader::read_size_bytes(std::string_view path, uint64_t& out, uint64_t min,
                                   uint64_t max) {
  const toml::node* node = find(path);
  if (!node) return;
  std::optional<uint64_t> v;
  std::string as_text;
  if (auto i = node->value_exact<int64_t>()) {
    as_text = std::to_string(*i);
    if (*i >= 0) v = static_cast<uint64_t>(*i);
  } else if (auto s = node->value_exact<std::string>()) {
    as_text = *s;
    v = parse_size_bytes(*s);
  } else {
    error_at(path, node,
             "expected a size such as \"64MiB\" or a number of bytes, got " + type_name(*node));
    return;
  }
  if (!v) {
    error_at(path, node,
             "expected a size such as \"512KiB\", \"64MiB\", \"1GiB\" or \"10MB\", got " +
                 shown(path, as_text));
  } else if (*v < min || *v > max) {
    error_at(path, node,
             std::to_string(*v) + " bytes is out of range [" + std::to_string(min) + ", " +
                 std::to_string(max) + "]");
  } else {
    out = *v;
  }
}

std::optional<std::size_t> ConfigReader::read_choice(std::string_view path,
                                                     const std::vector<std::string_view>& names) {
  const toml::node* node = find(path);
  if (!node) return std::nullopt;
  std::string allowed;
  for (auto name : names) {
    allowed += allowed.empty() ? "" : ", ";
    allowed += name;
  }
  auto v = node->value_exact<std::string>();
  if (!v) {
    error_at(path, node, "expected one of " + allowed + ", got " + type_name(*node));
    return std::nullopt;
  }
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (names[i] == *v) return i;
  }
  error_at(path, node, "expected one of " + allowed + ", got " + shown(path, *v));
  return std::nullopt;
}

Status<ConfigError> ConfigReader::finish() {
  // Walk the file; a key nobody asked for is a typo or a setting this version lacks.
  auto walk = [this](auto& self, const toml::table& table, const std::string& prefix) -> void {
    for (const auto& [key, node] : table) {
      const std::string path = prefix + std::string(key.str());
      if (known_.count(path)) continue;
      if (const toml::table* sub = node.as_table()) {
        self(self, *sub, path + ".");
      } else {
        error_at(path, &node, "unknown key");
      }
    }
  };
  walk(walk, table_, "");
  if (errors_.empty()) return {};
  auto first = std::min_element(errors_.begin(), errors_.end(), [](const auto& a, const auto& b) {
    return std::pair(a.line, a.column) < std::pair(b.line, b.column);
  });
  return *first;
}

void read_mqtt_connection(ConfigReader& r, BrokerConfig& k) {
  r.read("mqtt.broker", k.broker);
  r.read("mqtt.client_id", k.client_id);
  r.read("mqtt.username", k.username);
  r.read("mqtt.password", k.password);
  r.read("mqtt.ca_file", k.ca_file);
  r.read("mqtt.cert_file", k.cert_file);
  r.read("mqtt.key_file", k.key_file);
  r.read("mqtt.verify_hostname", k.verify_hostname);
  r.read_duration_us("mqtt.keepalive", k.keepalive_us, 1'000'000, 3'600'000'000);
  r.read_duration_us("mqtt.reconnect_min", k.reconnect_min_us, 10'000, 3'600'000'000);
  r.read_duration_us("mqtt.reconnect_max", k.reconnect_max_us, 10'000, 3'600'000'000);
  if (k.reconnect_max_us < k.reconnect_min_us) {
    r.add_error("mqtt.reconnect_max", "is below mqtt.reconnect_min");
  }
  if (!k.broker.starts_with("tcp://") && !k.broker.starts_with("ssl://") &&
      !k.broker.starts_with("mqtt://") && !k.broker.starts_with("mqtts://")) {
    r.add_error("mqtt.broker", "must start with tcp://, ssl://, mqtt:// or mqtts://");
  } else if (const std::string_view rest =
                 std::string_view(k.broker).substr(k.broker.find("://") + 3);
             rest.substr(0, rest.find('/')).find('@') != std::string_view::npos) {
    // The broker URI is logged and printed; credentials belong in the keys that are not.
    r.add_error("mqtt.broker",
                "credentials in the URI (user:password@) are refused: set mqtt.username and "
                "mqtt.password instead");
  }
  if (k.cert_file.empty() != k.key_file.empty()) {
    r.add_error(k.cert_file.empty() ? "mqtt.key_file" : "mqtt.cert_file",
                "cert_file and key_file go together");
  }
}

void read_validation_options(ConfigReader& reader, std::string_view table, ValidationOptions& out) {
  const std::string prefix = std::string(table) + ".";
  reader.read_duration_us(prefix + "max_future_skew", out.max_future_skew_us);
  reader.read_duration_us(prefix + "max_past_age", out.max_past_age_us);
  reader.read(prefix + "check_unsynced_timestamps", out.check_unsynced_timestamps);
  reader.read_time_us(prefix + "min_timestamp", out.min_timestamp_us);
  reader.read_duration_us(prefix + "max_unsynced_future_skew", out.max_unsynced_future_skew_us);
  reader.read(prefix + "allow_non_finite", out.allow_non_finite);
}

}  // namespace outpost::common
