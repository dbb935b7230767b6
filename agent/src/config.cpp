// Reading outpost-agent's configuration.
#include "outpost/agent/config.h"

#include <grp.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>

#include "outpost/common/codec.h"
#include "outpost/common/config_check.h"

namespace outpost::agent {

void finish_agent_defaults(AgentConfig& config) {
  if (config.device_id.empty()) {
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) == 0) config.device_id = host;
    // Hostnames may hold characters ids may not (and be longer): keep what fits.
    std::string id;
    for (char c : config.device_id) {
      if (common::is_valid_id(std::string(1, c)) && id.size() < common::kMaxIdLength) id += c;
    }
    config.device_id = id.empty() ? "device" : id;
  }
  if (config.client_id.empty()) {
    config.client_id = "outpost-" + config.site + "-" + config.device_id;
  }
}

common::Status<common::ConfigError> read_agent_config(common::ConfigReader& r, AgentConfig& c) {
  r.read("device.site", c.site);
  r.read("device.id", c.device_id);

  r.read("inputs.udp_listen", c.udp_listen);
  r.read("inputs.unix_socket", c.unix_socket);
  if (r.has("inputs.unix_socket_mode")) {
    std::string mode;
    const std::size_t before = r.errors().size();
    r.read("inputs.unix_socket_mode", mode);
    uint32_t value = 0;
    const auto [end, ec] = std::from_chars(mode.data(), mode.data() + mode.size(), value, 8);
    if (r.errors().size() != before) {
      // the type error is recorded
    } else if (mode.empty() || ec != std::errc() || end != mode.data() + mode.size() ||
               value > 0777) {
      r.add_error("inputs.unix_socket_mode",
                  "expected an octal mode such as \"0660\" (a string), got \"" + mode + "\"");
    } else {
      c.unix_socket_mode = value;
    }
  }
  r.read("inputs.unix_socket_group", c.unix_socket_group);
  r.read_enum("inputs.timestamp_precision", c.line.precision,
              {{"ns", TimePrecision::kNanoseconds},
               {"us", TimePrecision::kMicroseconds},
               {"ms", TimePrecision::kMilliseconds},
               {"s", TimePrecision::kSeconds}});
  r.read_time_us("inputs.min_timestamp", c.line.min_timestamp_us);

  r.read("store.path", c.store.path);
  r.read("store.full_sync", c.store.full_sync);
  r.read_size_bytes("store.max_bytes", c.store.max_bytes, 64 * 1024);
  r.read_duration_us("store.max_age", c.store.max_age_us);
  r.read_enum("store.policy", c.store.policy,
              {{"drop_oldest", DropPolicy::kDropOldest}, {"drop_newest", DropPolicy::kDropNewest}});
  r.read_duration_us("store.flush_interval", c.flush_interval_us, 1'000, 60'000'000);

  uint64_t max_readings = c.batch.max_readings;
  uint64_t max_records = c.batch.max_records;
  uint64_t max_bytes = c.batch.max_bytes;
  r.read("batch.max_readings", max_readings, 1, common::kMaxReadingsPerBatch);
  r.read("batch.max_records", max_records, 1, common::kMaxLogRecordsPerBatch);
  r.read_size_bytes("batch.max_bytes", max_bytes, 1024, 128 * 1024);
  c.batch = {max_readings, max_records, max_bytes};
  r.read_duration_us("batch.max_delay", c.max_batch_delay_us, 1'000, 3'600'000'000);

  common::read_mqtt_connection(r, c);
  r.read("mqtt.max_inflight", c.max_inflight, 1, 1000);
  const std::initializer_list<std::pair<std::string_view, DeliveryMode>> modes = {
      {"fire_and_forget", DeliveryMode::kFireAndForget},
      {"at_least_once", DeliveryMode::kAtLeastOnce},
      {"end_to_end", DeliveryMode::kEndToEnd}};
  r.read_enum("mqtt.data_delivery", c.data_delivery, modes);
  r.read_enum("mqtt.logs_delivery", c.logs_delivery, modes);
  r.read_duration_us("mqtt.status_interval", c.status_interval_us, 1'000'000, 86'400'000'000);
  r.read_duration_us("mqtt.ack_timeout", c.ack_timeout_us, 100'000, 86'400'000'000);
  r.read("mqtt.max_awaiting_ack", c.max_awaiting_ack, 1, 100'000);

  r.read("tail.files", c.tail_files);
  r.read_enum("tail.start_at", c.tail_from_beginning, {{"end", false}, {"beginning", true}});
  r.read_duration_us("tail.interval", c.tail_interval_us, 10'000, 3'600'000'000);
  r.read_enum("tail.severity", c.tail_severity,
              {{"trace", common::Severity::kTrace},
               {"debug", common::Severity::kDebug},
               {"info", common::Severity::kInfo},
               {"notice", common::Severity::kNotice},
               {"warn", common::Severity::kWarning},
               {"error", common::Severity::kError},
               {"critical", common::Severity::kCritical}});
  r.read_duration_us("system.interval", c.system_interval_us, 0, 86'400'000'000);
  r.read("system.disk_paths", c.system_disk_paths);
  r.read("metrics.listen", c.metrics_listen);
  common::read_log_config(r, c.log);

  // Checks that span keys, reported at the key that must change.
  if (!common::is_valid_id(c.site) || c.site == "events") {
    r.add_error("device.site", "must be 1-64 characters of [A-Za-z0-9._-] and not 'events'");
  }
  if (!c.device_id.empty() && !common::is_valid_id(c.device_id)) {
    r.add_error("device.id", "must be 1-64 characters of [A-Za-z0-9._-]");
  }
  if (!c.udp_listen.empty() && !parse_host_port(c.udp_listen)) {
    r.add_error("inputs.udp_listen", "expected an address and port such as \"127.0.0.1:8094\"");
  }
  if (!c.metrics_listen.empty() && !parse_host_port(c.metrics_listen)) {
    r.add_error("metrics.listen", "expected an address and port such as \"127.0.0.1:9108\"");
  }
  if (c.udp_listen.empty() && c.unix_socket.empty()) {
    r.add_error("inputs.udp_listen", "no input: set inputs.udp_listen or inputs.unix_socket");
  }
  auto status = r.finish();
  if (status.ok()) finish_agent_defaults(c);
  return status;
}

}  // namespace outpost::agent

namespace outpost::agent {
namespace {

template <typename E, std::size_t N>
std::string_view name_in(const std::pair<std::string_view, E> (&names)[N], E value) {
  for (const auto& [name, v] : names) {
    if (v == value) return name;
  }
  return "";
}

const std::pair<std::string_view, TimePrecision> kPrecisionNames[] = {
    {"ns", TimePrecision::kNanoseconds},
    {"us", TimePrecision::kMicroseconds},
    {"ms", TimePrecision::kMilliseconds},
    {"s", TimePrecision::kSeconds}};
const std::pair<std::string_view, DropPolicy> kPolicyNames[] = {
    {"drop_oldest", DropPolicy::kDropOldest}, {"drop_newest", DropPolicy::kDropNewest}};
const std::pair<std::string_view, DeliveryMode> kModeNames[] = {
    {"fire_and_forget", DeliveryMode::kFireAndForget},
    {"at_least_once", DeliveryMode::kAtLeastOnce},
    {"end_to_end", DeliveryMode::kEndToEnd}};
const std::pair<std::string_view, common::Severity> kSeverityNames[] = {
    {"trace", common::Severity::kTrace},      {"debug", common::Severity::kDebug},
    {"info", common::Severity::kInfo},        {"notice", common::Severity::kNotice},
    {"warn", common::Severity::kWarning},     {"error", common::Severity::kError},
    {"critical", common::Severity::kCritical}};

}  // namespace

void check_agent_environment(common::ConfigReader& r, const AgentConfig& c) {
  common::check_mqtt_files(r, c);
  common::check_writable_dir(r, "store.path", common::parent_dir(c.store.path));
  if (!c.unix_socket.empty()) {
    common::check_writable_dir(r, "inputs.unix_socket", common::parent_dir(c.unix_socket));
  }
  if (!c.unix_socket_group.empty() && !::getgrnam(c.unix_socket_group.c_str())) {
    r.add_error("inputs.unix_socket_group", "no such group: " + c.unix_socket_group);
  }
}

std::string effective_agent_config(const AgentConfig& c) {
  common::TomlWriter w;
  w.section("device");
  w.string("site", c.site);
  w.string("id", c.device_id);
  w.section("inputs");
  w.string("udp_listen", c.udp_listen);
  w.string("unix_socket", c.unix_socket);
  char mode[8];
  std::snprintf(mode, sizeof mode, "%04o", c.unix_socket_mode);
  w.string("unix_socket_mode", mode);
  w.string("unix_socket_group", c.unix_socket_group);
  w.string("timestamp_precision", name_in(kPrecisionNames, c.line.precision));
  w.time("min_timestamp", c.line.min_timestamp_us);
  w.section("store");
  w.string("path", c.store.path);
  w.boolean("full_sync", c.store.full_sync);
  w.size("max_bytes", c.store.max_bytes);
  w.duration("max_age", c.store.max_age_us);
  w.string("policy", name_in(kPolicyNames, c.store.policy));
  w.duration("flush_interval", c.flush_interval_us);
  w.section("batch");
  w.integer("max_readings", static_cast<int64_t>(c.batch.max_readings));
  w.integer("max_records", static_cast<int64_t>(c.batch.max_records));
  w.size("max_bytes", c.batch.max_bytes);
  w.duration("max_delay", c.max_batch_delay_us);
  w.section("mqtt");
  common::write_mqtt_connection(w, c);
  w.integer("max_inflight", c.max_inflight);
  w.string("data_delivery", name_in(kModeNames, c.data_delivery));
  w.string("logs_delivery", name_in(kModeNames, c.logs_delivery));
  w.duration("status_interval", c.status_interval_us);
  w.duration("ack_timeout", c.ack_timeout_us);
  w.integer("max_awaiting_ack", c.max_awaiting_ack);
  w.section("tail");
  w.strings("files", c.tail_files);
  w.string("start_at", c.tail_from_beginning ? "beginning" : "end");
  w.duration("interval", c.tail_interval_us);
  w.string("severity", name_in(kSeverityNames, c.tail_severity));
  w.section("system");
  w.duration("interval", c.system_interval_us);
  w.strings("disk_paths", c.system_disk_paths);
  w.section("metrics");
  w.string("listen", c.metrics_listen);
  w.section("log");
  w.string("level", c.log.level);
  return w.take();
}

std::vector<std::string> changed_agent_settings(const AgentConfig& running,
                                                const AgentConfig& reloaded) {
  auto changed =
      common::changed_settings(effective_agent_config(running), effective_agent_config(reloaded));
  // Redacted in the effective configuration: compared here.
  if (running.password != reloaded.password) changed.push_back("mqtt.password");
  return changed;
}

}  // namespace outpost::agent
