// What the agent's send loop needs of an MQTT client: five calls, polled from our own thread.
//
// The agent's adapter (agent/src/paho_publisher.h) implements it over Paho's async client;
// tests use FakePublisher (tests/support/fake_publisher.h). Every call is made on one thread
// (the agent's io thread) and returns at once, except disconnect(). Nothing is called back:
// what happened on the client's own thread is collected by poll(). Nothing throws.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "outpost/common/result.h"

namespace outpost::agent {

// Names one publish() call until its completion is reported; never reused by a client.
using PublishId = uint64_t;

// A message to send. The views need only outlive the call that takes them.
struct Outgoing {
  std::string_view topic;
  std::span<const uint8_t> payload;
  int qos = 1;  // 0 or 1
  bool retained = false;
};

enum class Connection : uint8_t {
  kDown,        // not connected and no attempt under way: connect() may be called
  kConnecting,  // connect() was called and has not finished
  kUp,          // connected; a dropped connection goes back to kDown
};

// The end of one publish: delivered (PUBACK for QoS 1, written to the socket for QoS 0) or
// failed (the client gave up on it, e.g. the connection was lost before the PUBACK).
struct Completion {
  PublishId id = 0;
  bool delivered = false;
};

// A message that arrived on a subscribed topic.
struct Received {
  std::string topic;
  std::string payload;
};

class Publisher {
 public:
  virtual ~Publisher() = default;

  // Starts connecting with a clean session and `will` as the last will (what the broker
  // publishes if the connection dies). Fails if the attempt cannot even start; otherwise
  // poll() reports kConnecting and then kUp or, if it failed, kDown. A new connection
  // forgets the deliveries of the old one (they are never reported).
  virtual common::Status<> connect(const Outgoing& will) = 0;

  // Subscribes to `topic` at QoS 1 on the current connection (a clean session forgets
  // subscriptions: subscribe again after every connect). Fails if the request cannot be sent;
  // whether the broker granted it shows later (subscription_refused).
  virtual common::Status<> subscribe(const std::string& topic) = 0;

  // True, once, when the broker refused the last subscribe() of this connection (its SUBACK
  // carried a failure code, or the request failed on the way): the subscription does not
  // stand, and the caller subscribes again. False while the answer is outstanding, once it
  // was granted, and after a new connect().
  virtual bool subscription_refused() = 0;

  // Hands a message to the client; its id comes back in a Completion from a later poll().
  // Fails (the message is not sent) if the client refuses it, e.g. while disconnected.
  virtual common::Result<PublishId> publish(const Outgoing& message) = 0;

  // The connection's state now; appends the publishes that ended and the messages that
  // arrived since the last call to `completed` and `received`.
  virtual Connection poll(std::vector<Completion>& completed, std::vector<Received>& received) = 0;

  // Publishes `farewell` and waits for it up to `wait`, then disconnects, waiting up to
  // `wait` again: the only call that blocks, made once at shutdown.
  virtual common::Status<> disconnect(const Outgoing& farewell, std::chrono::milliseconds wait) = 0;

  // Why the last connection attempt that poll() reported kDown failed, in words (bad
  // credentials, TLS verification, DNS, refused); "" when unknown.
  virtual std::string connect_error() const { return ""; }
};

}  // namespace outpost::agent
