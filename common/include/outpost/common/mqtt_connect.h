// Paho connect options from MqttSettings: the one place that turns Outpost's MQTT settings
// into mqtt::connect_options, for the agent, the collector and the simulator.
//
// Library outpost_common_mqtt: compiled against Paho C++'s headers but linking no Paho
// library, so each program brings its own (the agent a static Paho C++, the collector and
// the simulator Debian's shared one; the headers are the same version, 1.2.0).
#pragma once

#include <mqtt/connect_options.h>
#include <mqtt/exception.h>

#include <string>

#include "outpost/common/connect_error.h"
#include "outpost/common/mqtt_settings.h"

namespace outpost::common {

// The MQTT version (pinned), clean session, keepalive, connect timeout, credentials and,
// when uses_tls(), the TLS options with server verification. The caller adds what is its
// own (a last will, max_inflight). Paho may throw mqtt::exception only for settings it
// cannot represent; none of ours is such.
mqtt::connect_options connect_options(const MqttSettings& settings);

// What a failed attempt tells, gathered for describe_connect_failure(): Paho's code and text,
// and, when Paho says nothing more (a host it could not resolve), why the broker's host does
// not resolve (a getaddrinfo() on the caller's thread).
ConnectFailure connect_failure(const mqtt::exception& e, const std::string& broker);

}  // namespace outpost::common
