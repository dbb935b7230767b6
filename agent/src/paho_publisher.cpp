// Publisher over Paho's async client, polled from the caller's thread.
#include "paho_publisher.h"

#include "outpost/common/mqtt_connect.h"

namespace outpost::agent {
namespace {

mqtt::message_ptr message_of(const Outgoing& m) {
  return mqtt::make_message(std::string(m.topic), m.payload.data(), m.payload.size(), m.qos,
                            m.retained);
}

}  // namespace

common::Result<std::unique_ptr<PahoPublisher>> PahoPublisher::create(const std::string& broker,
                                                                     const std::string& client_id,
                                                                     common::MqttSettings settings,
                                                                     int max_inflight) {
  // OpenSSL (1.1 and later) initialises itself when TLS is first used. Paho's own init
  // loads every error string and algorithm up front, even with TLS off: about 2 MB of
  // RSS (docs/BENCHMARKS.md). Must precede the first client.
  MQTTAsync_init_options paho_init = MQTTAsync_init_options_initializer;
  paho_init.do_openssl_init = 0;
  MQTTAsync_global_init(&paho_init);
  try {
    auto client = std::make_unique<mqtt::async_client>(broker, client_id,
                                                       mqtt::create_options(settings.version));
    // Incoming acks are queued by Paho and read on our thread (poll), not in a callback.
    client->start_consuming();
    return std::unique_ptr<PahoPublisher>(
        new PahoPublisher(std::move(client), std::move(settings), max_inflight));
  } catch (const mqtt::exception& e) {
    return common::Error{"MQTT client for " + broker + ": " + e.what()};
  }
}

common::Result<std::unique_ptr<PahoPublisher>> PahoPublisher::create(const AgentConfig& config) {
  return create(config.broker, config.client_id, config.settings(/*clean_session=*/true),
                static_cast<int>(config.max_inflight));
}

PahoPublisher::PahoPublisher(std::unique_ptr<mqtt::async_client> client,
                             common::MqttSettings settings, int max_inflight)
    : client_(std::move(client)), settings_(std::move(settings)), max_inflight_(max_inflight) {
  settings_.clean_session = true;
}

common::Status<> PahoPublisher::connect(const Outgoing& will) {
  try {
    auto options = common::connect_options(settings_);
    options.set_max_inflight(max_inflight_);
    options.set_will_message(message_of(will));
    pending_.clear();  // the old connection's deliveries are never reported
    subscribe_token_.reset();
    connect_token_ = client_->connect(options);
    return {};
  } catch (const mqtt::exception& e) {
    return common::Error{e.what()};
  }
}

common::Status<> PahoPublisher::subscribe(const std::string& topic) {
  try {
    subscribe_token_ = client_->subscribe(topic, 1);
    return {};
  } catch (const mqtt::exception& e) {
    return common::Error{e.what()};
  }
}

bool PahoPublisher::subscription_refused() {
  if (!subscribe_token_) return false;
  bool refused = false;
  try {
    if (!subscribe_token_->wait_for(std::chrono::milliseconds(0))) return false;
    // MQTT 3.1.1 answers with the granted QoS per topic, 0x80 for a refusal; Paho may also
    // report that as a failed token (the catch below).
    const mqtt::subscribe_response response = subscribe_token_->get_subscribe_response();
    for (const auto code : response.get_reason_codes()) {
      refused |= static_cast<int>(code) >= 0x80;
    }
  } catch (const mqtt::exception&) {
    refused = true;
  }
  subscribe_token_.reset();
  return refused;
}

common::Result<PublishId> PahoPublisher::publish(const Outgoing& message) {
  try {
    auto token = client_->publish(std::string(message.topic), message.payload.data(),
                                  message.payload.size(), message.qos, message.retained);
    const PublishId id = next_id_++;
    pending_.emplace(id, std::move(token));
    return id;
  } catch (const mqtt::exception& e) {
    return common::Error{e.what()};
  }
}

Connection PahoPublisher::poll(std::vector<Completion>& completed,
                               std::vector<Received>& received) {
  for (auto it = pending_.begin(); it != pending_.end();) {
    bool delivered = true;
    try {
      if (!it->second->wait_for(std::chrono::milliseconds(0))) {
        ++it;
        continue;
      }
    } catch (const mqtt::exception&) {
      delivered = false;
    }
    completed.push_back({it->first, delivered});
    it = pending_.erase(it);
  }
  mqtt::const_message_ptr msg;
  while (client_->try_consume_message(&msg)) {
    if (!msg) continue;  // Paho's marker for a lost connection
    received.push_back({msg->get_topic(), msg->get_payload_str()});
  }
  if (connect_token_) {
    try {
      if (!connect_token_->wait_for(std::chrono::milliseconds(0))) return Connection::kConnecting;
      connect_token_.reset();
      connect_error_.clear();
      return Connection::kUp;  // the attempt succeeded; a drop shows at the next poll
    } catch (const mqtt::exception& e) {
      connect_token_.reset();
      connect_error_ = common::describe_connect_failure(
          common::connect_failure(e, client_->get_server_uri()), settings_);
      return Connection::kDown;
    }
  }
  return client_->is_connected() ? Connection::kUp : Connection::kDown;
}

common::Status<> PahoPublisher::disconnect(const Outgoing& farewell,
                                           std::chrono::milliseconds wait) {
  try {
    client_->publish(message_of(farewell))->wait_for(wait);
    client_->disconnect()->wait_for(wait);
    return {};
  } catch (const mqtt::exception& e) {
    return common::Error{e.what()};
  }
}

}  // namespace outpost::agent
