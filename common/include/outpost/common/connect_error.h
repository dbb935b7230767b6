// Why a connection to the broker failed, in the words an operator acts on: the broker's CONNACK
// refusal (bad credentials, not authorised), a host that does not resolve, no connection
// (refused, unreachable, or, with TLS, a handshake that failed: the CA file is named).
//
// Pure: the MQTT adapter (mqtt_connect.h) gathers what Paho and the resolver said into a
// ConnectFailure; this turns it into one line. No Paho here.
#pragma once

#include <string>

#include "outpost/common/mqtt_settings.h"

namespace outpost::common {

struct ConnectFailure {
  int return_code = -1;       // Paho's: 1-5 a CONNACK refusal (MQTT 3.1.1), negative its own
  std::string message;        // Paho's text, "" when it gave none
  std::string resolve_error;  // the broker's host did not resolve: why; "" if it did
};

// One line, e.g. "not authorised (CONNACK 5): the broker refused these credentials (check
// mqtt.username, mqtt.password and the broker's ACL)". Never contains the password.
std::string describe_connect_failure(const ConnectFailure& failure, const MqttSettings& settings);

// The host part of a broker URI ("ssl://[::1]:8883" -> "::1"); "" if there is none.
std::string broker_host(const std::string& broker);

}  // namespace outpost::common
