// The running collector: the MQTT thread, and the adapters the storage thread's StorageLoop
// runs over (Paho publisher, journal, webhooks, the queue).
#include "collector.h"

#include <algorithm>
#include <optional>
#include <random>

#include "mqtt_options.h"
#include "outpost/common/clock.h"

namespace outpost::collector {

using common::wall_now_us;

namespace {

// Acks and events on the publisher connection; Paho's exceptions stop here.
class PahoPublisher final : public Publisher {
 public:
  explicit PahoPublisher(mqtt::async_client& client) : client_(client) {}
  bool connected() override { return client_.is_connected(); }
  common::Status<> publish(const std::string& topic, const std::vector<uint8_t>& bytes) override {
    try {
      client_.publish(topic, bytes.data(), bytes.size(), 1, false);
      return {};
    } catch (const mqtt::exception& e) {
      return common::Error{e.what()};
    }
  }

 private:
  mqtt::async_client& client_;
};

class JournalReleaser final : public JournalRelease {
 public:
  JournalReleaser(Journal& journal, Counters& counters) : journal_(journal), counters_(counters) {}
  void release(JournalPosition committed) override {
    if (auto s = journal_.release(committed); !s.ok()) {
      ++counters_.journal_release_failures;
      if (log_.allow(std::chrono::steady_clock::now())) {
        spdlog::warn("{} ({} more not logged)", s.error().message, log_.take_suppressed());
      }
    }
  }

 private:
  Journal& journal_;
  Counters& counters_;
  common::RateLimiter log_{3, std::chrono::seconds(60)};
};

class Webhooks final : public EventForwarder {
 public:
  Webhooks(WebhookDispatcher& dispatcher, int64_t grace_us)
      : dispatcher_(dispatcher), grace_(grace_us / 1000) {}
  void post(std::string_view device, const common::Event& event) override {
    dispatcher_.post(device, event);
  }
  void stop() override { dispatcher_.stop(grace_); }

 private:
  WebhookDispatcher& dispatcher_;
  std::chrono::milliseconds grace_;
};

// The bounded queue the MQTT thread fills; drained once closed (after the MQTT thread ended)
// and empty.
class QueueSource final : public WorkSource {
 public:
  explicit QueueSource(BoundedQueue<StorageWork>& queue) : queue_(queue) {}
  std::optional<StorageWork> pop_until(std::chrono::steady_clock::time_point deadline) override {
    return queue_.pop_until(deadline);
  }
  bool drained() override { return closed_ && queue_.size() == 0; }
  void close() {
    closed_ = true;
    queue_.close();
  }

 private:
  BoundedQueue<StorageWork>& queue_;
  std::atomic<bool> closed_{false};
};

}  // namespace

struct Collector::Adapters {
  Adapters(BoundedQueue<StorageWork>& queue, Journal& journal, Counters& counters)
      : journal(journal, counters), source(queue) {}
  JournalReleaser journal;
  QueueSource source;
  std::optional<Webhooks> webhooks;
  std::optional<PahoPublisher> publisher;  // once start() made the client
};

Collector::Collector(CollectorConfig config, std::unique_ptr<Sink> sink,
                     std::unique_ptr<Journal> journal, std::vector<DeviceRow> devices)
    : config_(std::move(config)),
      sink_(std::move(sink)),
      journal_(std::move(journal)),
      queue_(config_.queue_messages),
      adapters_(std::make_unique<Adapters>(queue_, *journal_, counters_)) {
  FleetTracker fleet(
      FleetOptions{config_.offline_after_us, config_.gap_grace_us, config_.dlq_rate_per_minute});
  for (const DeviceRow& d : devices) {
    fleet.remember(d.site, d.device, d.epoch, d.presence, d.last_seen_us);
    if (d.seq_line) fleet.restore(*d.seq_line);
  }
  if (!config_.webhooks.empty()) {
    // Runs on the dispatcher's thread (or, for "queue full", on the storage thread inside
    // post()): only queues the entry for the storage thread's next transaction.
    auto on_give_up = [this](WebhookGaveUp g) {
      if (storage_) storage_->webhook_gave_up(std::move(g));
    };
    webhooks_ = std::make_unique<WebhookDispatcher>(config_.webhooks, std::move(on_give_up),
                                                    config_.webhook_max_pending);
    adapters_->webhooks.emplace(*webhooks_, config_.webhook_stop_grace_us);
  }
  storage_ = std::make_unique<StorageLoop>(config_, std::move(fleet), *sink_, clock_, counters_,
                                           &adapters_->journal,
                                           adapters_->webhooks ? &*adapters_->webhooks : nullptr);
}

Collector::~Collector() { stop(); }

common::Status<> Collector::start() {
  // What Paho acknowledged before a crash and we had journaled but not committed.
  auto position = storage_->journal_position();
  if (!position.ok()) return common::Error{position.error().message};
  auto replayed = journal_->replay(position.value(), [&](RawMessage&& m, JournalPosition after) {
    ++counters_.received;
    ++counters_.replayed;
    storage_->add(StorageWork{classify(std::move(m), config_.validation), after});
  });
  if (!replayed.ok()) return replayed.error();
  storage_->flush();
  if (replayed.value() > 0) {
    spdlog::info("journal: replayed {} messages received before the last stop", replayed.value());
  }

  client_ = std::make_unique<mqtt::async_client>(config_.broker, config_.client_id,
                                                 mqtt::create_options(MQTTVERSION_3_1_1));
  client_->start_consuming();
  publisher_ = std::make_unique<mqtt::async_client>(config_.broker, config_.client_id + "-pub",
                                                    mqtt::create_options(MQTTVERSION_3_1_1));
  adapters_->publisher.emplace(*publisher_);
  storage_->attach_publisher(*adapters_->publisher);
  mqtt_thread_ = std::thread([this] { mqtt_loop(); });
  storage_thread_ = std::thread([this] { storage_->run(adapters_->source); });
  return {};
}

void Collector::stop() {
  if (stopping_.exchange(true)) {
    if (storage_thread_.joinable()) storage_thread_.join();
    return;
  }
  storage_->begin_shutdown();
  if (mqtt_thread_.joinable()) mqtt_thread_.join();
  adapters_->source.close();
  if (storage_thread_.joinable()) storage_thread_.join();
  for (auto* client : {publisher_.get(), client_.get()}) {
    if (!client) continue;
    try {
      if (client->is_connected()) client->disconnect()->wait_for(std::chrono::seconds(5));
    } catch (const mqtt::exception& e) {
      spdlog::warn("disconnect {}: {}", client->get_client_id(), e.what());
    }
  }
}

std::string Collector::metrics_text() const {
  LiveGauges live;
  live.queue_depth = queue_.size();
  live.connected = connected_;
  live.publisher_connected = publisher_ && publisher_->is_connected();
  if (webhooks_) live.webhooks = webhooks_->stats();
  return collector::metrics_text(counters_, live);
}

void Collector::ensure_publisher() {
  if (publisher_->is_connected()) return;
  if (publisher_connect_ && !publisher_connect_->is_complete()) return;  // under way
  const auto now = Clock::now();
  if (now < publisher_next_try_) return;
  // While the subscriber is up: a try a second at most (within the reconnect bounds).
  publisher_next_try_ = now + std::chrono::microseconds(std::clamp<int64_t>(
                                  1'000'000, config_.reconnect_min_us, config_.reconnect_max_us));
  try {
    publisher_connect_ = publisher_->connect(connect_options(config_, /*clean_session=*/true));
  } catch (const mqtt::exception& e) {
    spdlog::warn("cannot connect the publisher to {}: {}", config_.broker, e.what());
  }
}

bool Collector::ensure_connected() {
  if (client_->is_connected()) {
    connected_ = true;
    ensure_publisher();
    return true;
  }
  if (connected_.exchange(false)) spdlog::warn("connection to {} lost", config_.broker);
  // The publisher first, so the acks of the first messages go out: at most a short wait, as
  // consuming must not depend on it (ensure_publisher retries in the background).
  publisher_next_try_ = {};
  ensure_publisher();
  try {
    if (publisher_connect_) publisher_connect_->wait_for(std::chrono::seconds(5));
  } catch (const mqtt::exception& e) {
    spdlog::warn("cannot connect the publisher to {}: {}", config_.broker, e.what());
  }
  try {
    auto token = client_->connect(connect_options(config_, config_.clean_session));
    if (!token->wait_for(std::chrono::seconds(15))) throw mqtt::exception(-1, "timed out");
    const auto filters = subscription_filters(config_);
    auto topics = mqtt::string_collection::create(filters);
    std::vector<int> qos(filters.size(), 1);
    if (!client_->subscribe(topics, qos)->wait_for(std::chrono::seconds(15))) {
      throw mqtt::exception(-1, "subscribe timed out");
    }
    connected_ = true;
    reconnect_delay_us_ = 0;
    ++counters_.reconnects;
    spdlog::info("connected to {} as {}, subscribed to {}", config_.broker, config_.client_id,
                 fmt::join(filters, ", "));
    return true;
  } catch (const mqtt::exception& e) {
    // Half done (connected, not subscribed): start again from a clean disconnect.
    try {
      if (client_->is_connected()) client_->disconnect()->wait_for(std::chrono::seconds(2));
    } catch (const mqtt::exception&) {
      // Nothing more to do: the next attempt connects from scratch either way.
    }
    reconnect_delay_us_ =
        std::clamp(reconnect_delay_us_ * 2, config_.reconnect_min_us, config_.reconnect_max_us);
    std::mt19937_64 rng(static_cast<uint64_t>(wall_now_us()));
    const int64_t wait =
        reconnect_delay_us_ / 2 + static_cast<int64_t>(rng() % (reconnect_delay_us_ / 2 + 1));
    spdlog::warn("cannot connect to {}: {}; retrying in {} ms", config_.broker, e.what(),
                 wait / 1000);
    const auto until = Clock::now() + std::chrono::microseconds(wait);
    while (!stopping_ && Clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // backoff, not a sync
    }
    return false;
  }
}

void Collector::mqtt_loop() {
  std::vector<RawMessage> burst;
  std::vector<JournalPosition> after;
  while (!stopping_) {
    if (!ensure_connected()) continue;
    mqtt::const_message_ptr msg;
    if (!client_->try_consume_message_for(&msg, std::chrono::milliseconds(100))) continue;
    burst.clear();
    const int64_t now = wall_now_us();
    // A null message is Paho's way of saying the connection was lost.
    while (msg) {
      burst.push_back(RawMessage{msg->get_topic(), msg->get_payload(), now});
      if (burst.size() >= 512 || !client_->try_consume_message(&msg)) break;
    }
    if (burst.empty()) continue;
    counters_.received += burst.size();
    bool journaled = true;
    if (auto s = journal_->append(burst, after); !s.ok()) {
      // Still stored, but the journal position cannot move past them.
      ++counters_.journal_errors;
      journaled = false;
      if (journal_log_.allow(Clock::now())) {
        spdlog::error("{} ({} more not logged)", s.error().message, journal_log_.take_suppressed());
      }
    }
    for (std::size_t i = 0; i < burst.size(); ++i) {
      std::optional<JournalPosition> pos;
      if (journaled) pos = after[i];
      if (!queue_.push(StorageWork{classify(std::move(burst[i]), config_.validation), pos})) return;
    }
  }
}

}  // namespace outpost::collector
