// How every Outpost program connects to the broker: one plain struct of settings and its
// defaults, shared by the agent, the collector and the simulator. No Paho here; the Paho
// options are built from it by mqtt_connect.h (library outpost_common_mqtt).
#pragma once

#include <cstdint>
#include <string>

namespace outpost::common {

// MQTT 3.1.1 (the protocol level byte, Paho's MQTTVERSION_3_1_1), never "3.1.1, then 3.1":
// Paho's fallback to 3.1 after a failed attempt has known faults (in paho.mqtt.c), and
// every broker we support speaks 3.1.1.
inline constexpr int kMqttVersion = 4;

// Reconnect backoff of every program: the delay doubles from kMqttReconnectMinUs up to
// kMqttReconnectMaxUs, with jitter. One value for all three (they used to differ: 0.5 s, 1 s,
// 0.5 s): 500 ms retries soon after a broker restart (the fleet's jitter spreads the first
// wave over a few hundred ms; the collector retries no later than its agents), and 30 s caps
// what a long outage adds to the recovery. The configs' mqtt.reconnect_min/_max override it.
inline constexpr int64_t kMqttReconnectMinUs = 500'000;
inline constexpr int64_t kMqttReconnectMaxUs = 30'000'000;

struct MqttSettings {
  int version = kMqttVersion;
  bool clean_session = true;                // false: the broker keeps the session while away
  int64_t keepalive_us = 30'000'000;        // PINGREQ interval; the broker drops us at 1.5x
  int64_t connect_timeout_us = 10'000'000;  // a CONNECT not answered by then has failed
  std::string username;                     // empty: none
  std::string password;                     // never logged
  std::string ca_file;                      // TLS: CA certificates to verify the broker
  std::string cert_file;                    // TLS: client certificate
  std::string key_file;                     // TLS: client key
  bool verify_hostname = true;              // TLS: the certificate must name the host
};

// The [mqtt] connection keys the agent's and the collector's configs share (each config struct
// derives from it, so both read and check them alike: common::read_mqtt_connection).
struct BrokerConfig {
  std::string broker = "tcp://127.0.0.1:1883";  // tcp://host:port or ssl://host:port
  std::string client_id;                        // the program's config sets its default
  std::string username;
  std::string password;   // never logged
  std::string ca_file;    // TLS: CA certificates to verify the broker
  std::string cert_file;  // TLS: client certificate
  std::string key_file;   // TLS: client key
  bool verify_hostname = true;
  int64_t keepalive_us = 30'000'000;
  int64_t reconnect_min_us = kMqttReconnectMinUs;
  int64_t reconnect_max_us = kMqttReconnectMaxUs;

  // The connect settings these keys make.
  MqttSettings settings(bool clean_session) const {
    MqttSettings s;
    s.clean_session = clean_session;
    s.keepalive_us = keepalive_us;
    s.username = username;
    s.password = password;
    s.ca_file = ca_file;
    s.cert_file = cert_file;
    s.key_file = key_file;
    s.verify_hostname = verify_hostname;
    return s;
  }
};

// TLS is on when a CA file or a client certificate is given.
inline bool uses_tls(const MqttSettings& s) { return !s.ca_file.empty() || !s.cert_file.empty(); }

}  // namespace outpost::common
