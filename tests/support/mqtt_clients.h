// Test support: the test's own MQTT clients (Paho), a subscriber that collects what arrives
// and a publisher, with bounded waits everywhere: a stuck token fails a test, never hangs it.
#pragma once

#include <mqtt/async_client.h>

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "outpost/common/message.h"

namespace outpost::test_support {

// A unique client id from `prefix`: two test clients never take over each other's session.
std::string test_client_id(const std::string& prefix);

// The payload of a message as bytes, as the codec takes them.
std::span<const uint8_t> payload_bytes(const mqtt::message& message);

// Connected with a clean session and subscribed at QoS 1 once constructed. Messages are
// queued by Paho and taken on the test's thread.
class MqttSubscriber {
 public:
  // Throws std::runtime_error if the broker does not accept the connection or the
  // subscription within 10 s.
  explicit MqttSubscriber(const std::string& uri, const std::string& filter = "outpost/v1/#",
                          const std::string& user = "", const std::string& password = "");
  ~MqttSubscriber();
  MqttSubscriber(const MqttSubscriber&) = delete;
  MqttSubscriber& operator=(const MqttSubscriber&) = delete;

  // What has arrived since the last call, in arrival order; does not wait.
  std::vector<mqtt::const_message_ptr> take();
  // The next message, waiting up to `timeout`; nullptr if none came.
  mqtt::const_message_ptr take_one(std::chrono::milliseconds timeout);

 private:
  mqtt::async_client client_;
};

// Connected with a clean session once constructed (throws std::runtime_error if not in 10 s).
class MqttPublisher {
 public:
  explicit MqttPublisher(const std::string& uri, const std::string& id = "test-publisher");
  ~MqttPublisher();
  MqttPublisher(const MqttPublisher&) = delete;
  MqttPublisher& operator=(const MqttPublisher&) = delete;

  // Publishes and waits for the broker's acknowledgement (QoS >= 1); false if it did not
  // come within 10 s.
  [[nodiscard]] bool publish(const std::string& topic, const std::string& payload, int qos = 1);
  // The envelope encoded as the wire format says; false if it does not encode or publish.
  [[nodiscard]] bool publish(const std::string& topic, const common::Envelope& envelope);

 private:
  mqtt::async_client client_;
};

}  // namespace outpost::test_support
