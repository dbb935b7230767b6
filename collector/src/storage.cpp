// Opening the storage backend [storage] kind names.
#include "storage.h"

#include <algorithm>

#include "outpost/collector/sqlite_reader.h"

namespace outpost::collector {

bool uses_postgres(const CollectorConfig& config) { return config.kind == "postgres"; }

PostgresOptions postgres_options(const CollectorConfig& config) {
  PostgresOptions o;
  o.dsn = config.dsn;
  o.password = config.postgres_password;
  o.dlq_max_entries = config.dlq_max_entries;
  if (shared_mode(config)) {
    o.fleet_feed = true;
    o.member = config.client_id;
    for (const ThresholdRule& rule : config.rules) {
      if (std::find(o.feed_sensors.begin(), o.feed_sensors.end(), rule.sensor) ==
          o.feed_sensors.end()) {
        o.feed_sensors.push_back(rule.sensor);
      }
    }
  }
  return o;
}

common::Result<std::unique_ptr<Sink>, SinkError> open_sink(const CollectorConfig& config) {
  if (uses_postgres(config)) {
    auto sink = PostgresSink::open(postgres_options(config));
    if (!sink.ok()) return sink.error();
    return std::unique_ptr<Sink>(std::move(sink).value());
  }
  auto sink =
      SqliteSink::open(SqliteOptions{config.path, config.full_sync, config.dlq_max_entries, true});
  if (!sink.ok()) return sink.error();
  return std::unique_ptr<Sink>(std::move(sink).value());
}

common::Result<std::unique_ptr<Reader>, SinkError> open_reader(const CollectorConfig& config) {
  if (uses_postgres(config)) {
    auto reader = PostgresReader::open(postgres_options(config));
    if (!reader.ok()) return reader.error();
    return std::unique_ptr<Reader>(std::move(reader).value());
  }
  auto reader = SqliteReader::open(config.path);
  if (!reader.ok()) return reader.error();
  return std::unique_ptr<Reader>(std::move(reader).value());
}

std::unique_ptr<FleetStore> open_fleet_store(const CollectorConfig& config) {
  if (!shared_mode(config)) return nullptr;
  PostgresOptions o = postgres_options(config);
  o.application_name = "outpost-collector leader " + config.client_id;
  return std::make_unique<PostgresFleetStore>(std::move(o));
}

std::string storage_name(const CollectorConfig& config) {
  return uses_postgres(config) ? "PostgreSQL " + redacted_dsn(config.dsn) : config.path;
}

}  // namespace outpost::collector
