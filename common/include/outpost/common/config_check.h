// What `--check-config` adds to loading a configuration: the files and directories it names
// are there and usable, and the effective configuration (defaults included) printed as TOML.
//
// The checks record their findings on the ConfigReader (ConfigReader::add_error), so they read
// like every other config error: file:line: key: message. They look, never touch: no file or
// directory is created. Main thread only; nothing here throws.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "outpost/common/config.h"
#include "outpost/common/mqtt_settings.h"

namespace outpost::common {

struct ValidationOptions;

// Records an error at `key` unless `path` is a regular file this process may read. An empty
// path (the setting is off) is not checked.
void check_readable_file(ConfigReader& reader, std::string_view key, const std::string& path);

// Records an error at `key` unless `dir` is a directory this process may create files in.
void check_writable_dir(ConfigReader& reader, std::string_view key, const std::string& dir);

// The directory a file at `path` is created in ("." for a bare name).
std::string parent_dir(const std::string& path);

// The [mqtt] TLS files (ca_file, cert_file, key_file) are readable.
void check_mqtt_files(ConfigReader& reader, const BrokerConfig& keys);

// "7d", "2h", "10m", "5s", "200ms", "250us": the largest unit that divides `us`, in the form
// parse_duration_us() reads back.
std::string format_duration(int64_t us);

// A size in the form parse_size_bytes() reads back: "64MiB" when a binary unit divides it,
// else a plain number of bytes.
std::string format_size(uint64_t bytes);

// The effective configuration as TOML: every key under its section, in the order written.
// What it writes reads back with the program's own loader (secrets excepted, see secret()).
class TomlWriter {
 public:
  void section(std::string_view name);  // "[name]"; `name` is dotted, each part a toml_key()
  void string(std::string_view key, std::string_view value);
  // A password, token or key: "(redacted)" when set, "" when not; never the value.
  void secret(std::string_view key, std::string_view value);
  void boolean(std::string_view key, bool value);
  void integer(std::string_view key, int64_t value);
  void number(std::string_view key, double value);
  void strings(std::string_view key, const std::vector<std::string>& values);
  void duration(std::string_view key, int64_t us);   // as format_duration()
  void size(std::string_view key, uint64_t bytes);   // as format_size()
  void time(std::string_view key, int64_t unix_us);  // an offset date-time in UTC
  void comment(std::string_view text);               // "# text"
  std::string take() { return std::move(out_); }

 private:
  void key(std::string_view key);
  std::string out_;
};

// `name` as a TOML key: bare when it may be ([A-Za-z0-9_-]+), else quoted.
std::string toml_key(std::string_view name);

inline constexpr std::string_view kRedacted = "(redacted)";

// The dotted keys whose values differ between two effective configurations (TomlWriter's
// output, as a reload compares the running one with the file's), sorted by section and key;
// a whole array, or a section only one side has, counts as one key.
// Secrets are redacted in both, so a changed secret is not seen here: compare those apart.
// Text that is not TOML gives {"(the effective configuration)"}.
std::vector<std::string> changed_settings(std::string_view before, std::string_view after);

// The [mqtt] connection keys of read_mqtt_connection(), password redacted (no section line).
void write_mqtt_connection(TomlWriter& out, const BrokerConfig& keys);
// The keys read_validation_options() reads (no section line).
void write_validation_options(TomlWriter& out, const ValidationOptions& options);

}  // namespace outpost::common
