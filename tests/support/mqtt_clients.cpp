// Test support: the test's MQTT subscriber and publisher.
#include "support/mqtt_clients.h"

#include <unistd.h>

#include <atomic>
#include <stdexcept>

#include "outpost/common/codec.h"

namespace outpost::test_support {
namespace {

using namespace std::chrono_literals;

mqtt::connect_options clean_session(const std::string& user, const std::string& password) {
  mqtt::connect_options_builder builder;
  builder.clean_session(true);
  if (!user.empty()) builder.user_name(user).password(password);
  return builder.finalize();
}

}  // namespace

std::string test_client_id(const std::string& prefix) {
  static std::atomic<int> next{0};
  return prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(next++);
}

std::span<const uint8_t> payload_bytes(const mqtt::message& message) {
  const std::string& p = message.get_payload_str();
  return {reinterpret_cast<const uint8_t*>(p.data()), p.size()};
}

MqttSubscriber::MqttSubscriber(const std::string& uri, const std::string& filter,
                               const std::string& user, const std::string& password)
    : client_(uri, test_client_id("test-subscriber")) {
  client_.start_consuming();
  if (!client_.connect(clean_session(user, password))->wait_for(10s)) {
    throw std::runtime_error("test subscriber: connect to " + uri + " timed out");
  }
  if (!client_.subscribe(filter, 1)->wait_for(10s)) {
    throw std::runtime_error("test subscriber: subscribe to " + filter + " timed out");
  }
}

MqttSubscriber::~MqttSubscriber() {
  try {
    client_.disconnect()->wait_for(2s);
  } catch (const mqtt::exception&) {
    // Already disconnected (the broker is gone): nothing to close.
  }
}

std::vector<mqtt::const_message_ptr> MqttSubscriber::take() {
  std::vector<mqtt::const_message_ptr> out;
  mqtt::const_message_ptr msg;
  while (client_.try_consume_message(&msg)) {
    if (msg) out.push_back(std::move(msg));  // nullptr: a connection-lost notice
  }
  return out;
}

mqtt::const_message_ptr MqttSubscriber::take_one(std::chrono::milliseconds timeout) {
  mqtt::const_message_ptr msg;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (client_.try_consume_message_for(&msg, 50ms) && msg) return msg;
  }
  return nullptr;
}

MqttPublisher::MqttPublisher(const std::string& uri, const std::string& id)
    : client_(uri, test_client_id(id)) {
  if (!client_.connect(clean_session("", ""))->wait_for(10s)) {
    throw std::runtime_error("test publisher: connect to " + uri + " timed out");
  }
}

MqttPublisher::~MqttPublisher() {
  try {
    client_.disconnect()->wait_for(2s);
  } catch (const mqtt::exception&) {
    // Already disconnected (the broker is gone): nothing to close.
  }
}

bool MqttPublisher::publish(const std::string& topic, const std::string& payload, int qos) {
  return client_.publish(topic, payload.data(), payload.size(), qos, false)->wait_for(10s);
}

bool MqttPublisher::publish(const std::string& topic, const common::Envelope& envelope) {
  auto bytes = common::encode(envelope);
  if (!bytes.ok()) return false;
  return publish(topic, std::string(bytes.value().begin(), bytes.value().end()));
}

}  // namespace outpost::test_support
