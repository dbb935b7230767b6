// Tests of the agent's delivery policy (Delivery) over the fake publisher, queue and clock.
#include "outpost/agent/delivery.h"

#include <gtest/gtest.h>

#include <chrono>

#include "support/fake_clock.h"
#include "support/fake_publisher.h"
#include "support/fake_queue.h"

namespace outpost::agent {
namespace {

using namespace std::chrono_literals;
using test_support::FakeClock;
using test_support::FakePublisher;
using test_support::FakeQueue;

constexpr uint64_t kEpoch = 7;
constexpr auto kTick = 20ms;
const std::string kAckTopic = "outpost/v1/s1/dev1/ack";
const std::string kDataTopic = "outpost/v1/s1/dev1/data";
const std::string kStatusTopic = "outpost/v1/s1/dev1/status";

QueueItem reading(double v) {
  QueueItem item;
  item.stream = Stream::kData;
  item.time_us = 1'700'000'000'000'000;
  item.sensor = "temp";
  item.value = v;
  return item;
}

// The payload a run would have sealed as message `seq`.
std::vector<uint8_t> sealed_payload(uint64_t seq) {
  const std::vector<QueueItem> items = {reading(1)};
  auto built = build_batch(Stream::kData, items, {}, true);
  return common::encode(
             common::Envelope{common::kSchemaVersion, "dev1", kEpoch, seq, std::move(built.body)})
      .value();
}

class DeliveryTest : public ::testing::Test {
 protected:
  DeliveryTest() {
    options_.site = "s1";
    options_.device_id = "dev1";
    options_.epoch = kEpoch;
    options_.broker = "tcp://fake";
    options_.max_inflight = 4;
    // Tests of end_to_end say so; the rest run against a broker's PUBACK alone.
    options_.data_delivery = DeliveryMode::kAtLeastOnce;
    options_.logs_delivery = DeliveryMode::kAtLeastOnce;
    options_.ack_timeout = 1s;
    options_.max_batch_delay = 0ms;  // every batch is due at once unless a test says otherwise
    options_.reconnect_min = 500ms;
    options_.reconnect_max = 4s;
    publisher_.ack_topic = kAckTopic;
  }

  void start() {
    auto d = Delivery::create(
        options_, publisher_, queue_, queue_, clock_,
        [this](common::DeviceState state) -> common::Result<std::vector<uint8_t>> {
          statuses_.push_back(state);
          if (fail_status_) return common::Error{"no status"};
          return std::vector<uint8_t>{static_cast<uint8_t>(state)};
        },
        [this] { return yield_; });
    ASSERT_TRUE(d.ok()) << d.error().message;
    delivery_ = std::move(d).value();
  }

  // `n` ticks, kTick of fake time apart.
  void ticks(int n) {
    for (int i = 0; i < n; ++i) {
      delivery_->tick();
      clock_.advance(kTick);
    }
  }
  // Ticks until `done` holds, at most `limit` ticks; false if it never did.
  template <typename F>
  bool tick_until(F done, int limit = 1000) {
    for (int i = 0; i < limit; ++i) {
      if (done()) return true;
      ticks(1);
    }
    return done();
  }
  // `n` readings received and persisted, as a flush would do it.
  void receive_readings(int n) {
    std::vector<QueueItem> items;
    for (int i = 0; i < n; ++i) items.push_back(reading(i));
    ASSERT_TRUE(queue_.append(items).ok());
    delivery_->queued(items);
  }
  // A message a previous run sealed and did not get delivered.
  void left_by_previous_run(uint64_t seq) {
    queue_.add_message(Stream::kData, seq, sealed_payload(seq));
  }
  void ack(uint64_t first, uint64_t last) {
    publisher_.receive(kAckTopic, FakePublisher::ack_payload("dev1", kEpoch, first, last));
  }
  const DeliveryCounters& counters() const { return delivery_->counters(); }

  DeliveryOptions options_;
  FakeClock clock_;
  FakeQueue queue_{kEpoch};
  FakePublisher publisher_;
  std::vector<common::DeviceState> statuses_;
  bool fail_status_ = false;
  bool yield_ = false;
  std::unique_ptr<Delivery> delivery_;
};

TEST_F(DeliveryTest, InvalidDeviceIdCannotFormTopics) {
  options_.device_id = "bad/id";
  FakeQueue q;
  auto d = Delivery::create(options_, publisher_, q, q, clock_, {});
  EXPECT_FALSE(d.ok());
}

TEST_F(DeliveryTest, ConnectsWithTheLostStatusAsWillAndPublishesOnlineAtOnce) {
  start();
  ticks(2);
  ASSERT_TRUE(delivery_->connected());
  ASSERT_EQ(publisher_.wills.size(), 1u);
  EXPECT_EQ(publisher_.wills[0].topic, kStatusTopic);
  EXPECT_EQ(publisher_.wills[0].payload,
            std::vector<uint8_t>{static_cast<uint8_t>(common::DeviceState::kLost)});
  EXPECT_TRUE(publisher_.wills[0].retained);
  ASSERT_EQ(publisher_.published.size(), 1u);
  EXPECT_EQ(publisher_.published[0].topic, kStatusTopic);
  EXPECT_EQ(publisher_.published[0].payload,
            std::vector<uint8_t>{static_cast<uint8_t>(common::DeviceState::kOnline)});
  EXPECT_TRUE(publisher_.published[0].retained);
  EXPECT_EQ(counters().reconnects, 1u);
}

TEST_F(DeliveryTest, StatusIsRefreshedEveryStatusInterval) {
  options_.status_interval = 1s;
  start();
  ticks(2);
  const auto online = [&] {
    return std::count(statuses_.begin(), statuses_.end(), common::DeviceState::kOnline);
  };
  EXPECT_EQ(online(), 1);
  ticks(45);  // 0.9 s
  EXPECT_EQ(online(), 1);
  ticks(10);
  EXPECT_EQ(online(), 2);
}

TEST_F(DeliveryTest, PublishesAtMostMaxInflightOldestFirst) {
  for (uint64_t seq = 1; seq <= 6; ++seq) left_by_previous_run(seq);
  publisher_.lose_pubacks = true;
  start();
  ticks(5);
  EXPECT_EQ(publisher_.seqs_published(), (std::vector<uint64_t>{1, 2, 3, 4}));
  EXPECT_EQ(counters().published, 4u);
  EXPECT_TRUE(delivery_->busy());
  publisher_.lose_pubacks = false;
  publisher_.release_pubacks();
  ASSERT_TRUE(tick_until([&] { return queue_.messages().empty(); }));
  EXPECT_EQ(publisher_.seqs_published(), (std::vector<uint64_t>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(counters().acked, 6u);
}

TEST_F(DeliveryTest, PubackRemovesAnAtLeastOnceMessage) {
  start();
  ticks(2);
  receive_readings(3);
  ASSERT_TRUE(tick_until([&] { return counters().published == 1; }));
  const auto sent = publisher_.data_published();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].topic, kDataTopic);
  EXPECT_EQ(sent[0].qos, 1);
  EXPECT_FALSE(sent[0].retained);
  EXPECT_EQ(sent[0].epoch, kEpoch);
  EXPECT_EQ(sent[0].seq, 1u);
  EXPECT_TRUE(queue_.items().empty());
  ticks(1);
  EXPECT_TRUE(queue_.messages().empty());
  EXPECT_EQ(counters().acked, 1u);
  EXPECT_TRUE(publisher_.subscriptions.empty());  // no end_to_end: no ack topic
}

TEST_F(DeliveryTest, FireAndForgetPublishesAtQos0AndForgetsOnceWritten) {
  options_.data_delivery = DeliveryMode::kFireAndForget;
  start();
  ticks(2);
  receive_readings(1);
  ASSERT_TRUE(tick_until([&] { return queue_.messages().empty() && counters().acked == 1; }));
  ASSERT_EQ(publisher_.data_published().size(), 1u);
  EXPECT_EQ(publisher_.data_published()[0].qos, 0);
}

TEST_F(DeliveryTest, PartialBatchWaitsForMaxBatchDelayAndAFullOneGoesAtOnce) {
  options_.batch.max_readings = 10;
  options_.max_batch_delay = 1s;
  start();
  ticks(2);
  // The start-up wait (items of a previous run go at once) is over: nothing was queued.
  receive_readings(3);
  ticks(40);  // 0.8 s
  EXPECT_EQ(counters().published, 0u);
  ticks(15);
  EXPECT_EQ(counters().published, 1u);
  receive_readings(10);
  ticks(1);
  EXPECT_EQ(counters().published, 2u);
}

TEST_F(DeliveryTest, YieldingToInputSealsNothingThatTick) {
  start();
  ticks(2);
  receive_readings(1);
  yield_ = true;
  ticks(20);
  EXPECT_EQ(counters().published, 0u);
  yield_ = false;
  ticks(1);
  EXPECT_EQ(counters().published, 1u);
}

TEST_F(DeliveryTest, EndToEndWaitsForTheCommitAck) {
  options_.data_delivery = DeliveryMode::kEndToEnd;
  start();
  ticks(2);
  EXPECT_EQ(publisher_.subscriptions, std::vector<std::string>{kAckTopic});
  receive_readings(1);
  ticks(5);
  ASSERT_EQ(counters().published, 1u);
  EXPECT_EQ(publisher_.pending(), 0u);  // PUBACK polled
  EXPECT_EQ(queue_.outbox_seqs(), std::vector<uint64_t>{1});
  EXPECT_EQ(counters().acked, 0u);
  ack(1, 1);
  ticks(1);
  EXPECT_TRUE(queue_.messages().empty());
  EXPECT_EQ(counters().commit_acks, 1u);
  EXPECT_FALSE(delivery_->busy());
  ticks(100);  // past ack_timeout: nothing is sent again
  EXPECT_EQ(counters().published, 1u);
}

TEST_F(DeliveryTest, EndToEndResendsAfterAckTimeoutWithTheSameSeq) {
  options_.data_delivery = DeliveryMode::kEndToEnd;
  start();
  ticks(2);
  receive_readings(1);
  ticks(2);
  ASSERT_EQ(publisher_.seqs_published(), std::vector<uint64_t>{1});
  ticks(45);  // 0.9 s: not yet
  EXPECT_EQ(counters().resent, 0u);
  ticks(10);
  EXPECT_EQ(publisher_.seqs_published(), (std::vector<uint64_t>{1, 1}));
  EXPECT_EQ(counters().resent, 1u);
  EXPECT_EQ(publisher_.data_published()[1].payload, publisher_.data_published()[0].payload);
  ack(1, 1);
  ticks(1);
  EXPECT_TRUE(queue_.messages().empty());
}

TEST_F(DeliveryTest, AckArrivingBeforeThePubackIsPolledForgetsTheMessage) {
  options_.data_delivery = DeliveryMode::kEndToEnd;
  publisher_.lose_pubacks = true;
  start();
  ticks(2);
  receive_readings(1);
  ticks(1);
  ASSERT_EQ(publisher_.pending(), 2u);  // the online status and the message
  ack(1, 1);
  ticks(1);
  EXPECT_TRUE(queue_.messages().empty());
  EXPECT_EQ(counters().commit_acks, 1u);
  publisher_.release_pubacks();  // the late PUBACK matches nothing now
  ticks(100);
  EXPECT_EQ(counters().published, 1u);
  EXPECT_EQ(counters().resent, 0u);
  EXPECT_FALSE(delivery_->busy());
}

TEST_F(DeliveryTest, DuplicatedCommitAckCountsOnce) {
  options_.data_delivery = DeliveryMode::kEndToEnd;
  publisher_.commit_acks = true;
  publisher_.ack_copies = 2;
  start();
  ticks(2);
  receive_readings(1);
  ASSERT_TRUE(tick_until([&] { return counters().commit_acks == 1; }));
  ticks(5);
  EXPECT_TRUE(queue_.messages().empty());
  EXPECT_EQ(counters().commit_acks, 1u);
  EXPECT_EQ(counters().store_errors[StoreOp::kCommitAck], 0u);
  EXPECT_EQ(counters().bad_acks, 0u);
}

TEST_F(DeliveryTest, DelayedCommitAckWithinTheTimeoutSendsNothingAgain) {
  options_.data_delivery = DeliveryMode::kEndToEnd;
  publisher_.commit_acks = true;
  publisher_.ack_delay_polls = 30;  // 0.6 s, ack_timeout is 1 s
  start();
  ticks(2);
  receive_readings(1);
  ASSERT_TRUE(tick_until([&] { return counters().commit_acks == 1; }));
  EXPECT_TRUE(queue_.messages().empty());
  EXPECT_EQ(counters().resent, 0u);
  EXPECT_EQ(counters().commit_acks, 1u);
}

TEST_F(DeliveryTest, CommitAckLaterThanTheTimeoutAcksTheResentCopyToo) {
  options_.data_delivery = DeliveryMode::kEndToEnd;
  publisher_.commit_acks = true;
  publisher_.ack_delay_polls = 60;  // 1.2 s, ack_timeout is 1 s
  start();
  ticks(2);
  receive_readings(1);
  ASSERT_TRUE(tick_until([&] { return counters().commit_acks == 1; }));
  EXPECT_TRUE(queue_.messages().empty());
  EXPECT_EQ(counters().resent, 1u);
  ticks(100);  // the resent copy's ack comes too: no error, nothing more
  EXPECT_EQ(counters().commit_acks, 1u);
  EXPECT_EQ(counters().published, 2u);
  EXPECT_FALSE(delivery_->busy());
}

TEST_F(DeliveryTest, AckForAMessageNoLongerQueuedIsHarmless) {
  options_.data_delivery = DeliveryMode::kEndToEnd;
  start();
  ticks(2);
  ack(40, 50);
  ticks(1);
  EXPECT_EQ(counters().commit_acks, 0u);
  EXPECT_EQ(counters().bad_acks, 0u);
}

TEST_F(DeliveryTest, AckRangeRemovesEveryMessageInIt) {
  options_.data_delivery = DeliveryMode::kEndToEnd;
  for (uint64_t seq = 1; seq <= 4; ++seq) left_by_previous_run(seq);
  start();
  ticks(3);
  ASSERT_EQ(counters().published, 4u);
  ack(1, 3);
  ticks(1);
  EXPECT_EQ(queue_.outbox_seqs(), std::vector<uint64_t>{4});
  EXPECT_EQ(counters().commit_acks, 3u);
}

TEST_F(DeliveryTest, BadAckIsCountedAndIgnored) {
  options_.data_delivery = DeliveryMode::kEndToEnd;
  start();
  ticks(2);
  publisher_.receive(kAckTopic, {0xff, 0x00, 0x13});
  publisher_.receive(kAckTopic, FakePublisher::ack_payload("someone-else", kEpoch, 1, 1));
  ticks(1);
  EXPECT_EQ(counters().bad_acks, 2u);
}

TEST_F(DeliveryTest, MaxAwaitingAckStopsNewSends) {
  options_.data_delivery = DeliveryMode::kEndToEnd;
  options_.batch.max_readings = 1;  // one message per reading
  options_.max_awaiting_ack = 2;
  options_.max_inflight = 1;
  options_.ack_timeout = 60s;
  start();
  ticks(2);
  receive_readings(5);
  ticks(10);
  EXPECT_EQ(publisher_.seqs_published(), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(queue_.items().size(), 3u);
  ack(1, 1);
  ticks(2);
  EXPECT_EQ(publisher_.seqs_published(), (std::vector<uint64_t>{1, 2, 3}));
  ack(2, 3);
  ticks(5);
  EXPECT_EQ(publisher_.seqs_published(), (std::vector<uint64_t>{1, 2, 3, 4, 5}));
}

TEST_F(DeliveryTest, ReconnectMidBatchRepublishesInFlightInOrderWithTheSameSeq) {
  options_.data_delivery = DeliveryMode::kEndToEnd;
  for (uint64_t seq = 1; seq <= 3; ++seq) left_by_previous_run(seq);
  publisher_.lose_pubacks = true;
  start();
  ticks(3);
  ASSERT_EQ(publisher_.seqs_published(), (std::vector<uint64_t>{1, 2, 3}));
  publisher_.drop_connection();
  publisher_.lose_pubacks = false;
  ticks(1);
  EXPECT_FALSE(delivery_->connected());
  ASSERT_TRUE(tick_until([&] { return publisher_.seqs_published().size() == 6; }));
  EXPECT_EQ(publisher_.seqs_published(), (std::vector<uint64_t>{1, 2, 3, 1, 2, 3}));
  EXPECT_EQ(counters().reconnects, 2u);
  EXPECT_EQ(publisher_.wills.size(), 2u);
  // A clean session forgets subscriptions: the ack topic again.
  EXPECT_EQ(publisher_.subscriptions, (std::vector<std::string>{kAckTopic, kAckTopic}));
  ack(1, 3);
  ticks(1);
  EXPECT_TRUE(queue_.messages().empty());
}

TEST_F(DeliveryTest, ConnectFailuresBackOffExponentiallyThenReset) {
  publisher_.fail_connect = true;
  start();
  std::vector<Clock::time_point> attempts;
  int seen = 0;
  for (int i = 0; i < 400 && attempts.size() < 4; ++i) {  // 8 s
    ticks(1);
    if (publisher_.connect_calls > seen) {
      seen = publisher_.connect_calls;
      attempts.push_back(clock_.now());
    }
  }
  ASSERT_EQ(attempts.size(), 4u);
  EXPECT_GE(counters().connect_failures, 3u);
  // 0.5 s, 1 s, 2 s with +/-30 % jitter (one tick of slack).
  const double expected[] = {0.5, 1.0, 2.0};
  for (int i = 0; i < 3; ++i) {
    const double gap = std::chrono::duration<double>(attempts[i + 1] - attempts[i]).count();
    EXPECT_GE(gap, expected[i] * 0.7) << i;
    EXPECT_LE(gap, expected[i] * 1.3 + 0.05) << i;
  }
  publisher_.fail_connect = false;
  ASSERT_TRUE(tick_until([&] { return delivery_->connected(); }));
  // After a success the backoff starts again from reconnect_min.
  publisher_.drop_connection();
  ticks(1);
  const int before = publisher_.connect_calls;
  ticks(34);  // 0.68 s > 0.5 s * 1.3
  EXPECT_EQ(publisher_.connect_calls, before + 1);
}

TEST_F(DeliveryTest, ConnectThatCannotStartIsRetriedWithBackoff) {
  publisher_.refuse_connect = true;
  start();
  ticks(10);
  EXPECT_EQ(publisher_.connect_calls, 1);
  EXPECT_EQ(counters().connect_failures, 1u);
  publisher_.refuse_connect = false;
  ASSERT_TRUE(tick_until([&] { return delivery_->connected(); }));
  EXPECT_EQ(publisher_.connect_calls, 2);
}

TEST_F(DeliveryTest, ConnectionAttemptUnderWayIsWaitedFor) {
  publisher_.hold_connect = true;
  start();
  ticks(100);
  EXPECT_EQ(publisher_.connect_calls, 1);
  EXPECT_FALSE(delivery_->connected());
  publisher_.hold_connect = false;
  ticks(1);
  EXPECT_TRUE(delivery_->connected());
}

TEST_F(DeliveryTest, FailedDeliveryStaysQueuedAndIsPublishedAgain) {
  start();
  ticks(2);
  publisher_.fail_deliveries = true;
  receive_readings(1);
  ticks(1);
  publisher_.fail_deliveries = false;
  ticks(1);
  EXPECT_EQ(counters().delivery_failures, 1u);
  ASSERT_TRUE(tick_until([&] { return queue_.messages().empty(); }));
  EXPECT_EQ(publisher_.seqs_published(), (std::vector<uint64_t>{1, 1}));
}

TEST_F(DeliveryTest, RefusedPublishStaysQueuedIsCountedAndGoesLater) {
  start();
  ticks(2);
  publisher_.refuse_publish = true;
  receive_readings(1);
  ticks(3);
  EXPECT_GE(counters().publish_failures, 1u);
  EXPECT_EQ(queue_.outbox_seqs(), std::vector<uint64_t>{1});
  publisher_.refuse_publish = false;
  ASSERT_TRUE(tick_until([&] { return queue_.messages().empty(); }));
  EXPECT_EQ(publisher_.seqs_published(), std::vector<uint64_t>{1});
}

TEST_F(DeliveryTest, OutboxIsNotReadBackOnEveryTick) {
  start();
  ticks(2);
  receive_readings(1);
  ASSERT_TRUE(tick_until([&] { return counters().acked == 1; }));
  const int reads = queue_.outbox_reads;
  ticks(50);
  EXPECT_EQ(queue_.outbox_reads, reads);
  EXPECT_FALSE(delivery_->busy());
}

TEST_F(DeliveryTest, SubscribeFailureIsCountedAndAcksComeAfterReconnect) {
  options_.data_delivery = DeliveryMode::kEndToEnd;
  publisher_.refuse_subscribe = true;
  start();
  ticks(2);
  EXPECT_EQ(counters().subscribe_failures, 1u);
  publisher_.refuse_subscribe = false;
  publisher_.drop_connection();
  ASSERT_TRUE(tick_until([&] { return publisher_.subscriptions.size() == 1; }));
}

// A broker may refuse the subscription in its SUBACK for a while (NATS does while JetStream
// elects a leader): without a subscription no commit ack ever comes, so it is asked for again on
// the same connection, with backoff, until it stands; then the acks complete the messages.
TEST_F(DeliveryTest, RefusedAckSubscriptionIsAskedForAgainUntilGranted) {
  options_.data_delivery = DeliveryMode::kEndToEnd;
  publisher_.refuse_suback = true;
  start();
  ASSERT_TRUE(tick_until([&] { return publisher_.subacks_refused >= 3; }, 2000));
  EXPECT_EQ(publisher_.connect_calls, 1);        // the same connection
  EXPECT_GE(counters().subscribe_failures, 2u);  // the third is counted at the next tick
  publisher_.refuse_suback = false;
  ASSERT_TRUE(tick_until([&] { return publisher_.subscriptions.size() == 1; }, 2000));
  receive_readings(1);
  ticks(5);
  ack(1, 1);
  ticks(1);
  EXPECT_TRUE(queue_.messages().empty());
  EXPECT_EQ(counters().commit_acks, 1u);
  const int refused = publisher_.subacks_refused;
  ticks(1000);  // granted: nothing is asked for again
  EXPECT_EQ(publisher_.subacks_refused, refused);
  EXPECT_EQ(publisher_.subscriptions.size(), 1u);
  EXPECT_EQ(publisher_.connect_calls, 1);
}

// A subscription that cannot even be sent is asked for again on the same connection too.
TEST_F(DeliveryTest, AckSubscriptionThatCannotBeSentIsAskedForAgain) {
  options_.data_delivery = DeliveryMode::kEndToEnd;
  publisher_.refuse_subscribe = true;
  start();
  ASSERT_TRUE(tick_until([&] { return counters().subscribe_failures >= 2; }, 2000));
  publisher_.refuse_subscribe = false;
  ASSERT_TRUE(tick_until([&] { return publisher_.subscriptions.size() == 1; }, 2000));
  EXPECT_EQ(publisher_.connect_calls, 1);
}

TEST_F(DeliveryTest, StatusThatCannotBeBuiltOrSentIsCounted) {
  options_.status_interval = 1s;
  fail_status_ = true;
  start();
  ticks(2);
  EXPECT_TRUE(delivery_->connected());        // connected without a will payload
  EXPECT_EQ(counters().status_failures, 2u);  // the will and the online status
  fail_status_ = false;
  publisher_.refuse_publish = true;
  ticks(55);
  EXPECT_EQ(counters().status_failures, 3u);
  publisher_.refuse_publish = false;
  publisher_.fail_deliveries = true;
  ticks(55);
  EXPECT_EQ(counters().status_failures, 4u);  // delivered no PUBACK
}

TEST_F(DeliveryTest, FailedAcknowledgeIsCountedAndTheMessageStaysQueued) {
  queue_.fail_acknowledge = true;
  start();
  ticks(2);
  receive_readings(1);
  ticks(3);
  EXPECT_EQ(counters().store_errors[StoreOp::kAcknowledge], 1u);
  EXPECT_EQ(counters().acked, 1u);
  EXPECT_EQ(queue_.outbox_seqs(), std::vector<uint64_t>{1});  // sent again after a restart
}

TEST_F(DeliveryTest, FailedCommitAckIsCountedAndTheMessageGoesAgain) {
  options_.data_delivery = DeliveryMode::kEndToEnd;
  start();
  ticks(2);
  receive_readings(1);
  ticks(2);
  queue_.fail_acknowledge_range = true;
  ack(1, 1);
  ticks(1);
  EXPECT_EQ(counters().store_errors[StoreOp::kCommitAck], 1u);
  EXPECT_EQ(queue_.outbox_seqs(), std::vector<uint64_t>{1});
  queue_.fail_acknowledge_range = false;
  ticks(50);
  EXPECT_EQ(counters().resent, 1u);
  ack(1, 1);
  ticks(1);
  EXPECT_TRUE(queue_.messages().empty());
}

TEST_F(DeliveryTest, FailedSealIsCountedAndTriedAgain) {
  start();
  ticks(2);
  queue_.fail_seal = true;
  receive_readings(2);
  ticks(10);
  EXPECT_GE(counters().store_errors[StoreOp::kSeal], 1u);
  EXPECT_EQ(counters().published, 0u);
  EXPECT_EQ(queue_.items().size(), 2u);
  queue_.fail_seal = false;
  ticks(1);
  EXPECT_EQ(counters().published, 1u);
}

TEST_F(DeliveryTest, FailedOutboxReadIsCountedAndTriedAgain) {
  left_by_previous_run(1);
  queue_.fail_outbox = true;
  start();
  ticks(5);
  EXPECT_GE(counters().store_errors[StoreOp::kReadOutbox], 1u);
  EXPECT_EQ(counters().published, 0u);
  queue_.fail_outbox = false;
  ASSERT_TRUE(tick_until([&] { return queue_.messages().empty(); }));
}

TEST_F(DeliveryTest, FailedItemReadIsCounted) {
  options_.max_batch_delay = 1s;  // not due: count() is asked first, then peek()
  start();
  ticks(2);
  queue_.fail_peek = true;
  queue_.fail_count = true;
  receive_readings(1);
  ticks(10);
  EXPECT_EQ(counters().store_errors[StoreOp::kReadItems], 2u);
  EXPECT_EQ(counters().published, 0u);
  // The batch waits for the next input (as before the failure was counted).
  queue_.fail_peek = false;
  queue_.fail_count = false;
  receive_readings(1);
  ASSERT_TRUE(tick_until([&] { return counters().published == 1; }));
}

TEST_F(DeliveryTest, StopDeliversWhatIsReadyThenSaysOfflineAndDisconnects) {
  options_.max_batch_delay = 10s;
  start();
  ticks(2);
  receive_readings(3);  // not due yet: stopping seals at once
  delivery_->begin_stop();
  int steps = 1;
  while (!delivery_->drain_step()) {
    clock_.advance(kTick);
    ASSERT_LT(++steps, 100);
  }
  EXPECT_TRUE(queue_.messages().empty());
  EXPECT_TRUE(queue_.items().empty());
  ASSERT_TRUE(publisher_.farewell);
  EXPECT_EQ(publisher_.farewell->topic, kStatusTopic);
  EXPECT_TRUE(publisher_.farewell->retained);
  EXPECT_EQ(publisher_.farewell->payload,
            std::vector<uint8_t>{static_cast<uint8_t>(common::DeviceState::kOffline)});
}

TEST_F(DeliveryTest, StopWithUnackedWorkGivesUpAtTheDeadlineAndLeavesItQueued) {
  options_.data_delivery = DeliveryMode::kEndToEnd;
  options_.stop_drain = 5s;
  start();
  ticks(2);
  receive_readings(1);
  ticks(2);  // delivered, never acked
  delivery_->begin_stop();
  const auto began = clock_.now();
  while (!delivery_->drain_step()) {
    clock_.advance(kTick);
    ASSERT_LT(clock_.now() - began, 6s);
  }
  EXPECT_GE(clock_.now() - began, 5s);
  EXPECT_EQ(queue_.outbox_seqs(), std::vector<uint64_t>{1});
  EXPECT_TRUE(publisher_.farewell);
}

TEST_F(DeliveryTest, StopWhileDisconnectedEndsAtOnceWithoutOffline) {
  publisher_.fail_connect = true;
  start();
  ticks(3);
  receive_readings(1);
  delivery_->begin_stop();
  EXPECT_TRUE(delivery_->drain_step());
  EXPECT_FALSE(publisher_.farewell);
  EXPECT_EQ(queue_.items().size(), 1u);
}

TEST_F(DeliveryTest, StopWhoseConnectionDropsEndsWithoutOffline) {
  publisher_.lose_pubacks = true;
  start();
  ticks(2);
  receive_readings(1);
  ticks(1);
  delivery_->begin_stop();
  EXPECT_FALSE(delivery_->drain_step());
  publisher_.drop_connection();
  clock_.advance(kTick);
  EXPECT_FALSE(delivery_->drain_step());  // finds the connection lost
  clock_.advance(kTick);
  EXPECT_TRUE(delivery_->drain_step());
  EXPECT_FALSE(publisher_.farewell);
  EXPECT_EQ(queue_.outbox_seqs(), std::vector<uint64_t>{1});
}

TEST_F(DeliveryTest, PubacksThatCompleteDuringTheFarewellLeaveTheQueue) {
  options_.stop_drain = 100ms;
  publisher_.lose_pubacks = true;
  publisher_.complete_on_disconnect = true;
  start();
  ticks(2);
  receive_readings(1);
  ticks(1);
  delivery_->begin_stop();
  while (!delivery_->drain_step()) clock_.advance(kTick);
  ASSERT_TRUE(publisher_.farewell);
  EXPECT_TRUE(queue_.messages().empty());
  EXPECT_EQ(counters().acked, 1u);
}

TEST_F(DeliveryTest, FailedDisconnectStillEndsTheStop) {
  publisher_.fail_disconnect = true;
  start();
  ticks(2);
  delivery_->begin_stop();
  EXPECT_TRUE(delivery_->drain_step());
}

}  // namespace
}  // namespace outpost::agent
