// outpost-collector's configuration: a plain struct with defaults, read from TOML.
// The annotated example with every key is docs/collector.toml.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "outpost/collector/rules.h"
#include "outpost/collector/webhook.h"
#include "outpost/common/codec.h"
#include "outpost/common/config.h"
#include "outpost/common/logging.h"
#include "outpost/common/mqtt_settings.h"

namespace outpost::collector {

// The [mqtt] connection keys (broker, client_id, credentials, TLS, keepalive, reconnect bounds)
// come from common::BrokerConfig.
struct CollectorConfig : common::BrokerConfig {
  // client_id is fixed by default ("outpost-collector"): the broker keeps its session.
  CollectorConfig() { client_id = "outpost-collector"; }

  // [mqtt], beside the connection keys
  bool clean_session = false;  // false: the broker holds QoS 1 messages while we are down
  // Topic filters; "$share/<group>/" is put in front of each when shared_group is set.
  std::vector<std::string> topics = {"outpost/v1/+/+/data", "outpost/v1/+/+/logs",
                                     "outpost/v1/+/+/status"};
  std::string shared_group;  // MQTT shared subscription group; "" = none
  // Also subscribed (replacing the filters it covers): what arrives under it and does not
  // parse as an Outpost topic goes to the DLQ as unroutable_topic; well-formed Outpost topics
  // none of `topics` match (our own acks and events) are dropped and counted. "" = off.
  std::string catch_all = "outpost/#";
  // Largest payload kept whole. A larger message is never journaled or stored whole: its DLQ
  // entry (oversized) keeps the first 4 KiB, its length and its SHA-256. At least
  // kMaxPayloadBytes (any valid payload fits), at most 16 MiB.
  uint64_t max_message_bytes = 512 * 1024;
  // Bytes Paho has handed over and the MQTT thread has not taken yet (payloads plus 256 B a
  // message). At this bound a persistent session pauses: the subscriber disconnects and the
  // broker keeps the rest, until a quarter of it is left. A clean session cannot pause.
  uint64_t intake_max_bytes = 4u << 20;
  bool publish_acks = true;  // commit acks on .../ack (what end_to_end agents wait for)
  bool publish_events = true;

  // [storage]
  std::string kind = "sqlite";      // "sqlite" (the file at `path`) or "postgres" (`dsn`)
  std::string path = "outpost.db";  // the SQLite database
  // kind = "postgres": a libpq connection string ("host=db port=5432 dbname=outpost user=outpost"
  // or postgresql://...). Printed and logged only through redacted_dsn().
  std::string dsn;
  // A file whose first line is the PostgreSQL password (mode 0600); "" = none. Read at load.
  std::string password_file;
  // The password itself: from password_file, else the environment variable
  // OUTPOST_POSTGRES_PASSWORD (read at load); "" leaves it to the dsn or libpq (PGPASSWORD,
  // PGPASSFILE, ~/.pgpass). Never logged.
  std::string postgres_password;
  std::string journal_dir;  // raw-message journal; "" = <path>.journal (also for postgres)
  int64_t commit_interval_us = 100'000;  // a storage transaction closes after this long...
  uint32_t commit_max_messages = 2000;   // ...or this many messages, whichever is first
  bool full_sync = false;                // synchronous=FULL: survive power loss too
  int64_t retention_us = 30LL * 86400 * 1'000'000;  // readings and logs; 0 = keep forever
  uint32_t queue_messages = 4000;  // bounded queue between the MQTT and storage threads

  // [validation]
  common::ValidationOptions validation;

  // [dlq]
  uint64_t dlq_max_entries = 1'000'000;  // oldest entries are removed beyond this (counted)
  int64_t dlq_max_age_us = 30LL * 86400 * 1'000'000;  // 0 = keep forever

  // [events]
  int64_t offline_after_us = 300'000'000;     // a device silent this long is offline; 0 = never
  int64_t gap_grace_us = 10'000'000;          // a missing seq still missing after this is a gap
  uint32_t dlq_rate_per_minute = 100;         // dlq_rate event above this many entries per minute
  uint32_t webhook_max_pending = 10000;       // deliveries queued or retrying, across all hooks
  int64_t webhook_stop_grace_us = 5'000'000;  // at SIGTERM, time left to deliveries in flight

  // [rules.<name>]: threshold rules on sensors (events threshold_above/below/cleared)
  std::vector<ThresholdRule> rules;
  // [webhooks.<name>]: HTTP endpoints that receive events (collector/webhooks.md)
  std::vector<WebhookConfig> webhooks;

  // [metrics]
  std::string metrics_listen = "127.0.0.1:9109";  // Prometheus endpoint host:port; "" = off

  // [console]: the web console (docs/console.md); served when console_listen is set.
  std::string console_listen;  // host:port, e.g. "127.0.0.1:8088"; "" = off
  // What anything that changes state (DLQ replay) needs: console.token, else the first line of
  // console.token_file, else the environment variable OUTPOST_CONSOLE_TOKEN (read at load).
  // "" = the console is read-only. Never logged.
  std::string console_token;
  std::string console_token_file;

  // [log]
  common::LogConfig log;
};

// Reads every section into `config` (absent keys keep their defaults), checks values that
// depend on each other, and reports unknown keys, as file:line: key: message.
common::Status<common::ConfigError> read_collector_config(common::ConfigReader& reader,
                                                          CollectorConfig& config);

// Shared mode: several collectors share the broker's messages (mqtt.shared_group) and one
// PostgreSQL database; an elected leader runs the fleet logic (fleet_leader.h). A shared_group
// with SQLite is one collector in a group of its own: it decides for itself as always.
bool shared_mode(const CollectorConfig& config);

// `dsn` with any password in it replaced by "***" (key=value and URI forms): how a connection
// string is shown in logs, errors and --help output.
std::string redacted_dsn(std::string_view dsn);

// The journal directory actually used.
std::string journal_dir_of(const CollectorConfig& config);

// The filters to subscribe to, with the shared-subscription prefix applied: the catch-all
// (when set) and each of `topics` it does not cover, so that no message matches two of our
// subscriptions (a broker may deliver such a message once per subscription).
std::vector<std::string> subscription_filters(const CollectorConfig& config);

}  // namespace outpost::collector
