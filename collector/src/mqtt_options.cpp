// Paho connect options from the collector's [mqtt] settings.
#include "mqtt_options.h"

#include "outpost/common/mqtt_connect.h"

namespace outpost::collector {

mqtt::connect_options connect_options(const CollectorConfig& config, bool clean_session) {
  // Built by the one definition every program shares (MQTT 3.1.1 pinned, TLS, credentials).
  common::MqttSettings settings;
  settings.clean_session = clean_session;
  settings.keepalive_us = config.keepalive_us;
  settings.username = config.username;
  settings.password = config.password;
  settings.ca_file = config.ca_file;
  settings.cert_file = config.cert_file;
  settings.key_file = config.key_file;
  settings.verify_hostname = config.verify_hostname;
  return common::connect_options(settings);
}

}  // namespace outpost::collector
