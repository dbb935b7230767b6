// Reading TOML configuration files onto plain structs, with errors that name file, line and key.
//
// Every Outpost program keeps its configuration in a struct whose fields carry their
// defaults; a ConfigReader overwrites the fields the file sets:
//
//   auto reader = ConfigReader::load_file(path);
//   if (!reader.ok()) return fail(reader.error());
//   ConfigReader& r = reader.value();
//   r.read_duration_us("store.flush_interval", cfg.flush_interval_us);
//   r.read("store.path", cfg.store_path);
//   if (auto s = r.finish(); !s.ok()) return fail(s.error());   // also catches unknown keys
//
// Not thread-safe; used once at start-up (and on reload) by the main thread.
// No function here throws.
#pragma once

#include <toml++/toml.h>

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "outpost/common/mqtt_settings.h"
#include "outpost/common/result.h"

namespace outpost::common {

struct ValidationOptions;

struct ConfigError {
  std::string file;
  int line = 0;  // 1-based; 0 when the error is about the whole file
  int column = 0;
  std::string key;  // dotted path, e.g. "store.flush_interval"; empty for file errors
  std::string message;

  // "agent.toml:12:5: store.flush_interval: expected a duration such as \"200ms\", got \"fast\""
  std::string to_string() const;
};

// "250us", "200ms", "5s", "10m", "2h", "7d" -> microseconds. A number without a
// unit is refused (seconds or milliseconds?). Whole numbers only; nullopt on any
// syntax error or overflow.
std::optional<int64_t> parse_duration_us(std::string_view text);

// "512B", "100kB", "10MB", "1GB", "512KiB", "64MiB", "1GiB", "1TiB" -> bytes
// (kB/MB/GB/TB are powers of 1000, KiB/MiB/GiB/TiB of 1024). nullopt on any
// syntax error or overflow.
std::optional<uint64_t> parse_size_bytes(std::string_view text);

class ConfigReader {
 public:
  // Loads and parses a TOML file. Fails (with the line and column of a syntax
  // error) if the file cannot be read or is not TOML.
  static Result<ConfigReader, ConfigError> load_file(const std::string& path);
  // Parses TOML text; `file_name` is only used in error messages.
  static Result<ConfigReader, ConfigError> parse_string(std::string_view text,
                                                        std::string file_name);

  // Each read() leaves `out` untouched when the key is absent, and records an
  // error (keeping `out` as it was) when the value has the wrong type or range.
  // Paths are dotted: "store.flush_interval" is key flush_interval in [store].
  void read(std::string_view path, bool& out);
  void read(std::string_view path, std::string& out);
  void read(std::string_view path, std::vector<std::string>& out);
  void read(std::string_view path, int64_t& out, int64_t min = std::numeric_limits<int64_t>::min(),
            int64_t max = std::numeric_limits<int64_t>::max());
  void read(std::string_view path, uint32_t& out, uint32_t min = 0,
            uint32_t max = std::numeric_limits<uint32_t>::max());
  void read(std::string_view path, uint64_t& out, uint64_t min = 0,
            uint64_t max = std::numeric_limits<int64_t>::max());
  void read(std::string_view path, double& out, double min = std::numeric_limits<double>::lowest(),
            double max = std::numeric_limits<double>::max());

  // A duration string (see parse_duration_us), stored in microseconds.
  void read_duration_us(std::string_view path, int64_t& out_us, int64_t min_us = 0,
                        int64_t max_us = std::numeric_limits<int64_t>::max());
  // A point in time, stored in Unix microseconds: a TOML date (2000-01-01, midnight UTC)
  // or offset date-time (2000-01-01T00:00:00Z, 2000-01-01T01:00:00+01:00). A local
  // date-time (no offset) is refused: which zone would it be in?
  void read_time_us(std::string_view path, int64_t& out_us);
  // A size: a TOML integer (bytes) or a string with a unit (see parse_size_bytes).
  void read_size_bytes(std::string_view path, uint64_t& out, uint64_t min = 0,
                       uint64_t max = std::numeric_limits<uint64_t>::max());

  // One of a fixed set of names; the error lists the allowed ones.
  template <typename E>
  void read_enum(std::string_view path, E& out,
                 std::initializer_list<std::pair<std::string_view, E>> choices) {
    std::vector<std::string_view> names;
    for (const auto& choice : choices) names.push_back(choice.first);
    if (auto i = read_choice(path, names)) out = (choices.begin() + *i)->second;
  }

  // True if the file sets this key (whatever its type). Marks it as known.
  bool has(std::string_view path);

  // The keys of the table at `path`, in file order: for sections of named entries such
  // as [rules.hot_room] or [webhooks.ops]. Empty if absent; an error if not a table.
  std::vector<std::string> table_keys(std::string_view path);

  // Records a problem the caller found (e.g. two settings that contradict each other),
  // located at `path` in the file.
  void add_error(std::string_view path, std::string message);

  // Reports every key in the file that no read() asked for ("unknown key", which
  // catches typos), then returns the first error in file order, if any.
  Status<ConfigError> finish();

  // All errors so far, in the order they were found.
  const std::vector<ConfigError>& errors() const { return errors_; }
  const std::string& file() const { return file_; }

 private:
  ConfigReader(std::string file, toml::table table);
  const toml::node* find(std::string_view path);
  void error_at(std::string_view path, const toml::node* node, std::string message);
  // The index of the name the file sets, if it is one of `names`.
  std::optional<std::size_t> read_choice(std::string_view path,
                                         const std::vector<std::string_view>& names);
  // The value as it may appear in an error: quoted, or hidden for secrets.
  static std::string shown(std::string_view path, std::string_view value);

  std::string file_;
  toml::table table_;
  std::set<std::string, std::less<>> known_;
  std::vector<ConfigError> errors_;
};

// Reads the codec's validation options from [<table>]: max_future_skew, max_past_age and
// max_unsynced_future_skew (durations), min_timestamp (a date or date-time),
// check_unsynced_timestamps, allow_non_finite (bools).
void read_validation_options(ConfigReader& reader, std::string_view table, ValidationOptions& out);

// Reads and checks the [mqtt] connection keys every program shares (mqtt_settings.h): broker
// (tcp://, ssl://, mqtt:// or mqtts://), client_id, username, password, ca_file, cert_file with
// key_file, verify_hostname, keepalive (1 s to 1 h), reconnect_min and reconnect_max (10 ms to
// 1 h, max not below min). One reader, so the agent and the collector accept them alike;
// errors name the key that must change.
void read_mqtt_connection(ConfigReader& reader, BrokerConfig& keys);

}  // namespace outpost::common
