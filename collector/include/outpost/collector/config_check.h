// outpost-collector --check-config beyond loading: the environment the configuration names, and
// the effective configuration printed as TOML.
#pragma once

#include <string>
#include <vector>

#include "outpost/collector/config.h"

namespace outpost::collector {

// Records on `reader`, as config errors at the key to change: unreadable TLS files, a database
// (SQLite) whose directory is missing or takes no new files or that cannot be opened for
// writing, a journal directory that cannot be written (or created, when missing). Looks only:
// creates nothing. The dsn's syntax is the caller's to check (libpq, pg_dsn.h).
void check_collector_environment(common::ConfigReader& reader, const CollectorConfig& config);

// The effective configuration as TOML, every key with its value (defaults included), rules and
// webhooks as their tables; the MQTT password, webhook secrets and the dsn's password redacted.
// read_collector_config() reads it back to the same configuration.
std::string effective_collector_config(const CollectorConfig& config);

// The dotted keys whose values differ between the running configuration and a reloaded one
// (log.level among them), secrets included (the MQTT and PostgreSQL passwords, the dsn, webhook
// secrets, the console token): what a SIGHUP reports.
std::vector<std::string> changed_collector_settings(const CollectorConfig& running,
                                                    const CollectorConfig& reloaded);

}  // namespace outpost::collector
