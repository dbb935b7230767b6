// Paho connect options from the collector's [mqtt] settings.
#include "mqtt_options.h"

namespace outpost::collector {

mqtt::connect_options connect_options(const CollectorConfig& config, bool clean_session) {
  mqtt::connect_options_builder options;
  // 3.1.1 only: the default tries 3.1 after a failed 3.1.1 attempt, and Paho's version
  // fallback has known faults (paho.mqtt.c issue #1007); every broker we support speaks 3.1.1.
  options.mqtt_version(MQTTVERSION_3_1_1)
      .clean_session(clean_session)
      .keep_alive_interval(std::chrono::microseconds(config.keepalive_us))
      .connect_timeout(std::chrono::seconds(10));
  if (!config.username.empty()) options.user_name(config.username);
  if (!config.password.empty()) options.password(config.password);
  if (!config.ca_file.empty() || !config.cert_file.empty()) {
    mqtt::ssl_options_builder ssl;
    if (!config.ca_file.empty()) ssl.trust_store(config.ca_file);
    if (!config.cert_file.empty()) ssl.key_store(config.cert_file).private_key(config.key_file);
    ssl.enable_server_cert_auth(true).verify(config.verify_hostname);
    options.ssl(ssl.finalize());
  }
  return options.finalize();
}

}  // namespace outpost::collector
