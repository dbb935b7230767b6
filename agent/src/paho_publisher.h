// Publisher (outpost/agent/publisher.h) over Paho's async client: the agent's only Paho code.
//
// Paho runs its own network thread; this adapter is called from the agent's io thread and
// polls Paho's tokens and its consumer queue there, so nothing of ours runs on Paho's thread
// and every mqtt::exception stops here, turned into a Status.
#pragma once

#include <mqtt/async_client.h>

#include <map>
#include <memory>
#include <string>

#include "outpost/agent/config.h"
#include "outpost/agent/publisher.h"
#include "outpost/common/mqtt_connect.h"
#include "outpost/common/mqtt_settings.h"
#include "outpost/common/result.h"

namespace outpost::agent {

class PahoPublisher final : public Publisher {
 public:
  // A client for `broker` as `client_id`; connect() uses `settings` (clean session forced)
  // and `max_inflight`. Fails if Paho refuses the broker URI or the client id.
  static common::Result<std::unique_ptr<PahoPublisher>> create(const std::string& broker,
                                                               const std::string& client_id,
                                                               common::MqttSettings settings,
                                                               int max_inflight);
  // The same from the agent's [mqtt] settings.
  static common::Result<std::unique_ptr<PahoPublisher>> create(const AgentConfig& config);

  common::Status<> connect(const Outgoing& will) override;
  common::Status<> subscribe(const std::string& topic) override;
  bool subscription_refused() override;
  common::Result<PublishId> publish(const Outgoing& message) override;
  Connection poll(std::vector<Completion>& completed, std::vector<Received>& received) override;
  common::Status<> disconnect(const Outgoing& farewell, std::chrono::milliseconds wait) override;
  std::string connect_error() const override { return connect_error_; }

 private:
  PahoPublisher(std::unique_ptr<mqtt::async_client> client, common::MqttSettings settings,
                int max_inflight);

  std::unique_ptr<mqtt::async_client> client_;
  common::MqttSettings settings_;
  int max_inflight_;
  mqtt::token_ptr connect_token_;    // while an attempt is under way
  std::string connect_error_;        // why the last attempt failed
  mqtt::token_ptr subscribe_token_;  // the last subscribe's, until its SUBACK is looked at
  std::map<PublishId, mqtt::delivery_token_ptr> pending_;
  PublishId next_id_ = 1;
};

}  // namespace outpost::agent
