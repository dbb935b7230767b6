// Paho connect options from the collector's [mqtt] settings, for the service and `tail`.
#pragma once

#include <mqtt/connect_options.h>

#include "outpost/collector/config.h"

namespace outpost::collector {

// Keepalive, credentials and TLS as configured; `clean_session` is the caller's choice
// (the service keeps a persistent session, `tail` does not).
mqtt::connect_options connect_options(const CollectorConfig& config, bool clean_session);

}  // namespace outpost::collector
