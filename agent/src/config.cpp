// Reading outpost-agent's configuration.
#include "outpost/agent/config.h"

#include <unistd.h>

#include <charconv>

#include "outpost/common/codec.h"

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
