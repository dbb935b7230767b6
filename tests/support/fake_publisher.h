// A Publisher (outpost/agent/publisher.h) in memory, with failure switches, that can also play
// the collector: it answers delivered messages with commit acks.
//
// Like Paho, a connect() resolves at a later poll(), a publish completes at a later poll(),
// a publish while not connected is refused, and a new connection forgets the deliveries of
// the old one.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "outpost/agent/publisher.h"
#include "outpost/common/codec.h"

namespace outpost::test_support {

class FakePublisher final : public agent::Publisher {
 public:
  struct Message {
    agent::PublishId id = 0;
    std::string topic;
    std::vector<uint8_t> payload;
    int qos = 0;
    bool retained = false;
    uint64_t epoch = 0;  // decoded from the payload when it is an envelope
    uint64_t seq = 0;
  };

  // Failure switches.
  bool refuse_connect = false;          // connect() cannot start
  bool fail_connect = false;            // connect() starts; the attempt then fails
  bool hold_connect = false;            // an attempt stays under way
  bool refuse_publish = false;          // publish() fails
  bool refuse_subscribe = false;        // subscribe() fails
  bool refuse_suback = false;           // subscribe() is sent; the broker refuses it
  bool lose_pubacks = false;            // deliveries of new publishes never complete
  bool fail_deliveries = false;         // deliveries of new publishes complete as failed
  bool fail_disconnect = false;         // disconnect() fails
  bool complete_on_disconnect = false;  // held deliveries complete while disconnect() waits

  // Playing the collector: a delivered data or logs message is answered with a commit ack on
  // `ack_topic` for its (epoch, seq), after `ack_delay_polls` further polls, `ack_copies` times.
  bool commit_acks = false;
  std::string ack_topic;
  int ack_delay_polls = 0;
  int ack_copies = 1;

  // What happened.
  std::vector<Message> published;          // every accepted publish, in order
  std::vector<Message> wills;              // the will of every connect() that started
  std::vector<std::string> subscriptions;  // the ones granted
  int subacks_refused = 0;
  std::optional<Message> farewell;
  int connect_calls = 0;
  int polls = 0;

  // The connection drops: in-flight deliveries are never reported.
  void drop_connection() {
    state_ = agent::Connection::kDown;
    pending_.clear();
  }
  // A message arrives on a subscribed topic at the next poll().
  void receive(std::string topic, std::vector<uint8_t> payload) {
    received_.push_back({std::move(topic), std::string(payload.begin(), payload.end())});
  }
  // Deliveries held by lose_pubacks complete now (at the next poll).
  void release_pubacks() {
    for (auto& [id, p] : pending_) p.held = false;
  }
  // Data and logs messages only (no status), in publish order.
  std::vector<Message> data_published() const {
    std::vector<Message> out;
    for (const auto& m : published) {
      if (!m.topic.ends_with("/status")) out.push_back(m);
    }
    return out;
  }
  std::vector<uint64_t> seqs_published() const {
    std::vector<uint64_t> out;
    for (const auto& m : data_published()) out.push_back(m.seq);
    return out;
  }
  std::size_t pending() const { return pending_.size(); }

  // Publisher
  common::Status<> connect(const agent::Outgoing& will) override {
    ++connect_calls;
    if (refuse_connect) return common::Error{"connect refused"};
    wills.push_back(copy(will, 0));
    pending_.clear();
    suback_refused_ = false;
    state_ = agent::Connection::kConnecting;
    return {};
  }
  common::Status<> subscribe(const std::string& topic) override {
    if (refuse_subscribe || state_ != agent::Connection::kUp) {
      return common::Error{"subscribe refused"};
    }
    if (refuse_suback) {
      suback_refused_ = true;
      ++subacks_refused;
      return {};
    }
    subscriptions.push_back(topic);
    return {};
  }
  bool subscription_refused() override { return std::exchange(suback_refused_, false); }
  common::Result<agent::PublishId> publish(const agent::Outgoing& message) override {
    if (refuse_publish || state_ != agent::Connection::kUp) return common::Error{"not connected"};
    const agent::PublishId id = next_id_++;
    published.push_back(copy(message, id));
    pending_[id] = {lose_pubacks, !fail_deliveries};
    return id;
  }
  agent::Connection poll(std::vector<agent::Completion>& completed,
                         std::vector<agent::Received>& received) override {
    ++polls;
    if (state_ == agent::Connection::kConnecting && !hold_connect) {
      state_ = fail_connect ? agent::Connection::kDown : agent::Connection::kUp;
    }
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->second.held) {
        ++it;
        continue;
      }
      completed.push_back({it->first, it->second.delivered});
      if (it->second.delivered) schedule_ack(it->first);
      it = pending_.erase(it);
    }
    for (auto it = acks_due_.begin(); it != acks_due_.end();) {
      if (it->first > polls) break;
      for (int i = 0; i < ack_copies; ++i) received_.push_back(it->second);
      it = acks_due_.erase(it);
    }
    for (auto& r : received_) received.push_back(std::move(r));
    received_.clear();
    return state_;
  }
  common::Status<> disconnect(const agent::Outgoing& farewell_message,
                              std::chrono::milliseconds) override {
    if (fail_disconnect) return common::Error{"disconnect failed"};
    farewell = copy(farewell_message, 0);
    if (complete_on_disconnect) release_pubacks();
    state_ = agent::Connection::kDown;
    return {};
  }

  // The encoded commit ack for `device` confirming (epoch, first..last).
  static std::vector<uint8_t> ack_payload(const std::string& device, uint64_t epoch, uint64_t first,
                                          uint64_t last) {
    common::CommitAck ack;
    ack.committed.push_back({epoch, first, last});
    return common::encode(common::Envelope{common::kSchemaVersion, device, 0, 0, std::move(ack)})
        .value();
  }

 private:
  struct Pending {
    bool held = false;
    bool delivered = true;
  };

  static Message copy(const agent::Outgoing& m, agent::PublishId id) {
    Message out{id, std::string(m.topic), {m.payload.begin(), m.payload.end()}, m.qos, m.retained};
    auto envelope = common::decode(m.payload);
    if (envelope.ok()) {
      out.epoch = envelope.value().epoch;
      out.seq = envelope.value().seq;
    }
    return out;
  }

  void schedule_ack(agent::PublishId id) {
    if (!commit_acks) return;
    for (const auto& m : published) {
      if (m.id != id || m.topic.ends_with("/status")) continue;
      auto envelope = common::decode(m.payload);
      if (!envelope.ok()) return;
      auto payload = ack_payload(envelope.value().device_id, m.epoch, m.seq, m.seq);
      acks_due_.emplace(polls + ack_delay_polls,
                        agent::Received{ack_topic, std::string(payload.begin(), payload.end())});
    }
  }

  agent::Connection state_ = agent::Connection::kDown;
  agent::PublishId next_id_ = 1;
  std::map<agent::PublishId, Pending> pending_;
  std::multimap<int, agent::Received> acks_due_;  // by the poll that delivers them
  std::vector<agent::Received> received_;
  bool suback_refused_ = false;  // the last subscribe was refused; not yet reported
};

}  // namespace outpost::test_support
