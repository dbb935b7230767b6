// The storage backend [storage] kind chooses: SQLite (the embedded default) or PostgreSQL.
// Private to the outpost-collector executable: main.cpp and the tools open storage through it.
#pragma once

#include <memory>

#include "outpost/collector/config.h"
#include "outpost/collector/postgres.h"
#include "outpost/collector/reader.h"
#include "outpost/collector/sink.h"
#include "outpost/collector/sqlite_sink.h"

namespace outpost::collector {

bool uses_postgres(const CollectorConfig& config);
PostgresOptions postgres_options(const CollectorConfig& config);

// The collector's writer: creates the SQLite file or the PostgreSQL schema when missing.
common::Result<std::unique_ptr<Sink>, SinkError> open_sink(const CollectorConfig& config);
// A reader of what the collector stored (an existing database: never created here).
common::Result<std::unique_ptr<Reader>, SinkError> open_reader(const CollectorConfig& config);

// The shared-mode leader's store (PostgresFleetStore); null unless shared_mode(config).
std::unique_ptr<FleetStore> open_fleet_store(const CollectorConfig& config);

// Where storage is, for logs: the SQLite path, or the redacted dsn.
std::string storage_name(const CollectorConfig& config);

// Runs `action` on the configured backend's writer, opened for a DLQ operator action (`dlq
// replay`, `dlq purge`: both writers offer remove_dlq_on_next_commit and purge_dlq); never
// creates a database. Returns what `action` returns, or `on_error(message)`.
template <typename Action, typename OnError>
auto with_writer(const CollectorConfig& config, Action action, OnError on_error) {
  if (uses_postgres(config)) {
    auto sink = PostgresSink::open(postgres_options(config));
    if (!sink.ok()) return on_error(sink.error().message);
    return action(*sink.value());
  }
  auto sink = SqliteSink::open(SqliteOptions{config.path, false, config.dlq_max_entries, false});
  if (!sink.ok()) return on_error(sink.error().message);
  return action(*sink.value());
}

}  // namespace outpost::collector
