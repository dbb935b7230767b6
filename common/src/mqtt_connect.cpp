// Paho connect options from MqttSettings.
#include "outpost/common/mqtt_connect.h"

#include <netdb.h>

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

ConnectFailure connect_failure(const mqtt::exception& e, const std::string& broker) {
  ConnectFailure f;
  f.return_code = e.get_return_code();
  f.message = e.get_message();
  if (f.return_code == -1 && f.message.empty()) {
    const std::string host = broker_host(broker);
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (const int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &found); rc != 0) {
      f.resolve_error = host + ": " + ::gai_strerror(rc);
    } else {
      ::freeaddrinfo(found);
    }
  }
  return f;
}

}  // namespace outpost::common
