// Paho connect options from MqttSettings.
#include "outpost/common/mqtt_connect.h"

#include <chrono>

namespace outpost::common {

static_assert(kMqttVersion == MQTTVERSION_3_1_1);

mqtt::connect_options connect_options(const MqttSettings& settings) {
  mqtt::connect_options_builder options;
  options.mqtt_version(settings.version)
      .clean_session(settings.clean_session)
      .keep_alive_interval(std::chrono::microseconds(settings.keepalive_us))
      .connect_timeout(std::chrono::microseconds(settings.connect_timeout_us));
  if (!settings.username.empty()) options.user_name(settings.username);
  if (!settings.password.empty()) options.password(settings.password);
  if (uses_tls(settings)) {
    mqtt::ssl_options_builder ssl;
    if (!settings.ca_file.empty()) ssl.trust_store(settings.ca_file);
    if (!settings.cert_file.empty()) {
      ssl.key_store(settings.cert_file).private_key(settings.key_file);
    }
    ssl.enable_server_cert_auth(true).verify(settings.verify_hostname);
    options.ssl(ssl.finalize());
  }
  return options.finalize();
}

}  // namespace outpost::common
