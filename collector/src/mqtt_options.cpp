// Paho connect options from the collector's [mqtt] settings.
#include "mqtt_options.h"

#include "outpost/common/mqtt_connect.h"

namespace outpost::collector {

mqtt::connect_options connect_options(const CollectorConfig& config, bool clean_session) {
  // Built by the one definition every program shares (MQTT 3.1.1 pinned, TLS, credentials).
  return common::connect_options(config.settings(clean_session));
}

}  // namespace outpost::collector
