// The file and directory checks of --check-config, and the effective configuration as TOML.
#include "outpost/common/config_check.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "outpost/common/codec.h"
#include "outpost/common/time_text.h"

namespace outpost::common {
namespace {

std::string quoted(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

}  // namespace

void check_readable_file(ConfigReader& r, std::string_view key, const std::string& path) {
  if (path.empty()) return;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    r.add_error(key, "cannot read " + path + ": " + std::strerror(errno));
  } else if (!S_ISREG(st.st_mode)) {
    r.add_error(key, path + " is not a regular file");
  } else if (::access(path.c_str(), R_OK) != 0) {
    r.add_error(key, "cannot read " + path + ": " + std::strerror(errno));
  }
}

void check_writable_dir(ConfigReader& r, std::string_view key, const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    r.add_error(key, "directory " + dir + ": " + std::strerror(errno));
  } else if (!S_ISDIR(st.st_mode)) {
    r.add_error(key, dir + " is not a directory");
  } else if (::access(dir.c_str(), W_OK | X_OK) != 0) {
    r.add_error(key, "cannot create files in " + dir + ": " + std::strerror(errno));
  }
}

std::string parent_dir(const std::string& path) {
  const std::size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

void check_mqtt_files(ConfigReader& r, const BrokerConfig& k) {
  check_readable_file(r, "mqtt.ca_file", k.ca_file);
  check_readable_file(r, "mqtt.cert_file", k.cert_file);
  check_readable_file(r, "mqtt.key_file", k.key_file);
}

std::string format_duration(int64_t us) {
  if (us == 0) return "0s";
  struct Unit {
    int64_t us;
    const char* name;
  };
  for (const Unit u : {Unit{86'400'000'000, "d"}, Unit{3'600'000'000, "h"}, Unit{60'000'000, "m"},
                       Unit{1'000'000, "s"}, Unit{1'000, "ms"}}) {
    if (us % u.us == 0) return std::to_string(us / u.us) + u.name;
  }
  return std::to_string(us) + "us";
}

std::string format_size(uint64_t bytes) {
  if (bytes == 0) return "0";
  for (const auto& [shift, name] :
       {std::pair{40, "TiB"}, std::pair{30, "GiB"}, std::pair{20, "MiB"}, std::pair{10, "KiB"}}) {
    if (bytes % (uint64_t{1} << shift) == 0) return std::to_string(bytes >> shift) + name;
  }
  return std::to_string(bytes);
}

std::string toml_key(std::string_view name) {
  bool bare = !name.empty();
  for (char c : name) {
    bare = bare && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-');
  }
  return bare ? std::string(name) : quoted(name);
}

void TomlWriter::section(std::string_view name) {
  if (!out_.empty()) out_ += '\n';
  out_ += "[";
  out_ += name;
  out_ += "]\n";
}

void TomlWriter::key(std::string_view key) {
  out_ += toml_key(key);
  out_ += " = ";
}

void TomlWriter::string(std::string_view k, std::string_view value) {
  key(k);
  out_ += quoted(value) + "\n";
}

void TomlWriter::secret(std::string_view k, std::string_view value) {
  string(k, value.empty() ? "" : kRedacted);
}

void TomlWriter::boolean(std::string_view k, bool value) {
  key(k);
  out_ += value ? "true\n" : "false\n";
}

void TomlWriter::integer(std::string_view k, int64_t value) {
  key(k);
  out_ += std::to_string(value) + "\n";
}

void TomlWriter::number(std::string_view k, double value) {
  key(k);
  if (std::isnan(value)) {
    out_ += "nan\n";
  } else if (std::isinf(value)) {
    out_ += value > 0 ? "inf\n" : "-inf\n";
  } else {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", value);
    std::string text = buf;
    if (text.find_first_of(".e") == std::string::npos) text += ".0";
    out_ += text + "\n";
  }
}

void TomlWriter::strings(std::string_view k, const std::vector<std::string>& values) {
  key(k);
  out_ += "[";
  for (std::size_t i = 0; i < values.size(); ++i) out_ += (i ? ", " : "") + quoted(values[i]);
  out_ += "]\n";
}

void TomlWriter::duration(std::string_view k, int64_t us) { string(k, format_duration(us)); }

void TomlWriter::size(std::string_view k, uint64_t bytes) {
  const std::string text = format_size(bytes);
  if (text.find_first_not_of("0123456789") == std::string::npos) {
    integer(k, static_cast<int64_t>(bytes));
  } else {
    string(k, text);
  }
}

void TomlWriter::time(std::string_view k, int64_t unix_us) {
  key(k);
  out_ += format_time_us(unix_us) + "\n";
}

void TomlWriter::comment(std::string_view text) {
  out_ += "# ";
  out_ += text;
  out_ += '\n';
}

void write_mqtt_connection(TomlWriter& w, const BrokerConfig& k) {
  w.string("broker", k.broker);
  w.string("client_id", k.client_id);
  w.string("username", k.username);
  w.secret("password", k.password);
  w.string("ca_file", k.ca_file);
  w.string("cert_file", k.cert_file);
  w.string("key_file", k.key_file);
  w.boolean("verify_hostname", k.verify_hostname);
  w.duration("keepalive", k.keepalive_us);
  w.duration("reconnect_min", k.reconnect_min_us);
  w.duration("reconnect_max", k.reconnect_max_us);
}

void write_validation_options(TomlWriter& w, const ValidationOptions& v) {
  w.duration("max_future_skew", v.max_future_skew_us);
  w.duration("max_past_age", v.max_past_age_us);
  w.boolean("check_unsynced_timestamps", v.check_unsynced_timestamps);
  w.time("min_timestamp", v.min_timestamp_us);
  w.duration("max_unsynced_future_skew", v.max_unsynced_future_skew_us);
  w.boolean("allow_non_finite", v.allow_non_finite);
}

namespace {

void collect_changes(const toml::table& before, const toml::table& after, const std::string& prefix,
                     std::vector<std::string>& out) {
  for (const auto& [key, node] : after) {
    const std::string name = prefix + toml_key(key.str());
    const toml::node* old = before.get(key.str());
    if (old && old->is_table() && node.is_table()) {
      collect_changes(*old->as_table(), *node.as_table(), name + ".", out);
    } else if (!old ||
               toml::node_view<const toml::node>(old) != toml::node_view<const toml::node>(&node)) {
      out.push_back(name);
    }
  }
  for (const auto& [key, node] : before) {
    if (!after.contains(key.str())) out.push_back(prefix + toml_key(key.str()));
  }
}

}  // namespace

std::vector<std::string> changed_settings(std::string_view before, std::string_view after) {
  std::vector<std::string> out;
  try {
    const toml::table a = toml::parse(before);
    const toml::table b = toml::parse(after);
    collect_changes(a, b, "", out);
  } catch (const toml::parse_error&) {
    out = {"(the effective configuration)"};  // a writer bug; say something changed
  }
  return out;
}

}  // namespace outpost::common
