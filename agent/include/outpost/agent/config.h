// outpost-agent's configuration: a plain struct with defaults, read from TOML.
// The annotated example with every key is docs/agent.toml.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "outpost/agent/batcher.h"
#include "outpost/agent/line_protocol.h"
#include "outpost/agent/queue.h"
#include "outpost/common/config.h"
#include "outpost/common/logging.h"
#include "outpost/common/mqtt_settings.h"
#include "outpost/common/net.h"

namespace outpost::agent {

using common::HostPort;
using common::parse_host_port;

enum class DeliveryMode : uint8_t {
  kFireAndForget,  // QoS 0; a message leaves the queue once handed to the network
  kAtLeastOnce,    // QoS 1; a message leaves the queue on the broker's PUBACK
  kEndToEnd,       // QoS 1; a message leaves the queue when the collector's commit ack names it
};

// The [mqtt] connection keys (broker, client_id, credentials, TLS, keepalive, reconnect bounds)
// come from common::BrokerConfig; client_id empty means outpost-<site>-<device>.
struct AgentConfig : common::BrokerConfig {
  // [device]
  std::string site = "default";  // site id, the <site> topic level
  std::string device_id;         // device id; empty: this machine's hostname

  // [inputs]
  std::string udp_listen = "127.0.0.1:8094";            // host:port for line datagrams; "" = off
  std::string unix_socket = "/run/outpost/agent.sock";  // datagram socket path; "" = off
  uint32_t unix_socket_mode = 0660;  // the socket file's permissions (who may send)
  std::string unix_socket_group;     // the socket file's group; "" = the agent's own group
  LineOptions line;                  // timestamp precision of line protocol

  // [store]
  StoreOptions store{.path = "/var/lib/outpost/agent.db"};
  int64_t flush_interval_us = 200'000;  // input is persisted this often: the kill -9 window

  // [batch]
  BatchLimits batch;
  int64_t max_batch_delay_us = 1'000'000;  // send a partial batch after this long

  // [mqtt], beside the connection keys of common::BrokerConfig
  uint32_t max_inflight = 16;  // messages published and not yet acknowledged
  // end_to_end by default: against an Outpost collector it survives a broker restart without
  // persistence, a collector crash and a collector not yet subscribed; at_least_once is for
  // consumers that send no commit acks (docs/guarantees.md, "What each delivery mode survives").
  DeliveryMode data_delivery = DeliveryMode::kEndToEnd;
  DeliveryMode logs_delivery = DeliveryMode::kEndToEnd;
  int64_t status_interval_us = 60'000'000;  // retained status refresh
  int64_t ack_timeout_us = 30'000'000;      // end_to_end: re-send a message not acked by then
  uint32_t max_awaiting_ack = 256;          // end_to_end: messages sent and not yet acked

  // [tail]
  std::vector<std::string> tail_files;   // log files to follow
  bool tail_from_beginning = false;      // start_at = "beginning" (default "end")
  int64_t tail_interval_us = 1'000'000;  // how often the files are polled
  common::Severity tail_severity = common::Severity::kInfo;  // of lines without a prefix

  // [system]
  int64_t system_interval_us = 10'000'000;             // built-in system readings; 0 = off
  std::vector<std::string> system_disk_paths = {"/"};  // mount points for disk_free

  // [metrics]
  std::string metrics_listen = "127.0.0.1:9108";  // Prometheus endpoint host:port; "" = off

  // [log]
  common::LogConfig log;
};

// Reads every section into `config` (keeping defaults for absent keys), checks
// the values that depend on each other, and reports unknown keys. Fills the
// defaults derived from the machine (device id from the hostname).
common::Status<common::ConfigError> read_agent_config(common::ConfigReader& reader,
                                                      AgentConfig& config);

// Applies the machine-derived defaults to a config that was not read from a file.
void finish_agent_defaults(AgentConfig& config);

// What --check-config checks beyond loading, recorded on `reader` as config errors: the TLS
// files are readable, the store's directory and the Unix socket's exist and take new files.
// Looks only: creates nothing.
void check_agent_environment(common::ConfigReader& reader, const AgentConfig& config);

// The effective configuration as TOML, every key with its value (defaults included), the
// password redacted; read_agent_config() reads it back to the same configuration.
std::string effective_agent_config(const AgentConfig& config);

// The dotted keys whose values differ between the running configuration and a reloaded one
// (log.level among them), the password included: what a SIGHUP reports.
std::vector<std::string> changed_agent_settings(const AgentConfig& running,
                                                const AgentConfig& reloaded);

}  // namespace outpost::agent
