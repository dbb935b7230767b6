// The running collector: the MQTT thread, and the adapters the storage thread's StorageLoop
// runs over (Paho publisher, journal, webhooks, the queue).
#include "collector.h"

#include <algorithm>
#include <optional>

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

// The bounded queue the MQTT thread fills, taken up to kTakeMessages at a time (one lock per
// take, not per message); drained once closed (after the MQTT thread ended) and empty.
class QueueSource final : public WorkSource {
 public:
  explicit QueueSource(BoundedQueue<StorageWork>& queue) : queue_(queue) {}
  std::optional<StorageWork> pop_until(std::chrono::steady_clock::time_point deadline) override {
    if (next_ == taken_.size()) {
      taken_.clear();
      next_ = 0;
      if (queue_.pop_some_until(deadline, taken_, kTakeMessages) == 0) return std::nullopt;
    }
    return std::move(taken_[next_++]);
  }
  bool drained() override { return closed_ && next_ == taken_.size() && queue_.size() == 0; }
  void close() {
    closed_ = true;
    queue_.close();
  }

 private:
  // Messages taken from the queue at once: beyond storage.queue_messages, at most this many
  // more are held (by the storage thread).
  static constexpr std::size_t kTakeMessages = 256;
  BoundedQueue<StorageWork>& queue_;
  std::vector<StorageWork> taken_;  // storage thread only
  std::size_t next_ = 0;
  std::atomic<bool> closed_{false};
};

// The sink as health sees it: when a commit last succeeded and last failed (any thread reads).
class WatchedSink final : public Sink {
 public:
  explicit WatchedSink(Sink& sink) : sink_(sink) {}
  common::Result<CommitResult, SinkError> commit(const Transaction& tx) override {
    auto result = sink_.commit(tx);
    (result.ok() ? last_ok_us_ : last_failed_us_).store(wall_now_us(), std::memory_order_relaxed);
    return result;
  }
  common::Result<std::optional<JournalPosition>, SinkError> journal_position() override {
    return sink_.journal_position();
  }
  common::Result<uint64_t, SinkError> expire(int64_t cutoff_us, int64_t dlq_cutoff_us,
                                             int64_t key_cutoff_us, uint64_t max_rows) override {
    return sink_.expire(cutoff_us, dlq_cutoff_us, key_cutoff_us, max_rows);
  }
  std::optional<int64_t> last_ok_us() const { return at(last_ok_us_); }
  std::optional<int64_t> last_failed_us() const { return at(last_failed_us_); }

 private:
  static std::optional<int64_t> at(const std::atomic<int64_t>& us) {
    const int64_t v = us.load(std::memory_order_relaxed);
    return v ? std::optional<int64_t>(v) : std::nullopt;
  }
  Sink& sink_;
  std::atomic<int64_t> last_ok_us_{0};
  std::atomic<int64_t> last_failed_us_{0};
};

// The storage loop's clock, stamping its heartbeat: the loop reads steady() every turn, and a
// retry backoff (up to 5 s) sleeps in steps that beat, so a loop that retries is alive.
class BeatingClock final : public StorageClock {
 public:
  int64_t wall_us() override { return clock_.wall_us(); }
  std::chrono::steady_clock::time_point steady() override {
    const auto now = clock_.steady();
    heartbeat.beat(now);
    return now;
  }
  void sleep_for(std::chrono::milliseconds d) override {
    for (auto left = d; left.count() > 0; left -= std::chrono::milliseconds(500)) {
      heartbeat.beat();
      clock_.sleep_for(std::min(left, std::chrono::milliseconds(500)));
    }
  }
  common::Heartbeat heartbeat;

 private:
  SystemStorageClock clock_;
};

}  // namespace

struct Collector::Adapters {
  Adapters(BoundedQueue<StorageWork>& queue, Journal& journal, Counters& counters, Sink& sink)
      : journal(journal, counters), source(queue), sink(sink) {}
  JournalReleaser journal;
  QueueSource source;
  WatchedSink sink;
  BeatingClock clock;
  std::optional<Webhooks> webhooks;
  std::optional<PahoPublisher> publisher;  // once start() made the client
  // The leader thread's own, over the same client (Paho's publish is thread-safe).
  std::optional<PahoPublisher> leader_publisher;
};

Collector::Collector(CollectorConfig config, std::unique_ptr<Sink> sink,
                     std::unique_ptr<Journal> journal, std::vector<DeviceRow> devices,
                     std::unique_ptr<FleetStore> fleet_store)
    : config_(std::move(config)),
      sink_(std::move(sink)),
      journal_(std::move(journal)),
      queue_(config_.queue_messages),
      intake_(IntakeBounds{config_.intake_max_bytes, config_.intake_max_bytes / 4}),
      adapters_(std::make_unique<Adapters>(queue_, *journal_, counters_, *sink_)),
      fleet_store_(std::move(fleet_store)) {
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
  EventForwarder* forwarder = adapters_->webhooks ? &*adapters_->webhooks : nullptr;
  std::optional<FleetTracker> storage_fleet;
  if (!fleet_store_) storage_fleet.emplace(std::move(fleet));
  storage_ =
      std::make_unique<StorageLoop>(config_, std::move(storage_fleet), adapters_->sink,
                                    adapters_->clock, counters_, &adapters_->journal, forwarder);
  if (fleet_store_) {
    // The webhook forwarder posts to the dispatcher, which is thread-safe.
    FleetLeaderOptions o;
    o.fleet =
        FleetOptions{config_.offline_after_us, config_.gap_grace_us, config_.dlq_rate_per_minute};
    o.rules = config_.rules;
    o.publish_events = config_.publish_events;
    o.client_id = config_.client_id;
    // Every collector's commits land within its commit interval (and the commit itself).
    o.settle = std::chrono::milliseconds(500 + 2 * config_.commit_interval_us / 1000);
    leader_ =
        std::make_unique<FleetLeader>(std::move(o), *fleet_store_, clock_, counters_, forwarder);
  }
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
  // Runs on Paho's receive thread, holding Paho's global mutex: a push, never a wait.
  client_->set_message_callback([this](mqtt::const_message_ptr m) {
    const std::size_t bytes = m->get_payload_ref().size() + m->get_topic_ref().size();
    intake_.put(std::move(m), bytes);
  });
  publisher_ = std::make_unique<mqtt::async_client>(config_.broker, config_.client_id + "-pub",
                                                    mqtt::create_options(MQTTVERSION_3_1_1));
  adapters_->publisher.emplace(*publisher_);
  make_reconnect_state();
  storage_->attach_publisher(*adapters_->publisher);
  // Alive from here (the storage thread starts now), so that READY=1 and /healthz right after
  // start() do not read "has not run yet".
  adapters_->clock.heartbeat.beat();
  mqtt_thread_ = std::thread([this] { mqtt_loop(); });
  storage_thread_ = std::thread([this] { storage_->run(adapters_->source); });
  if (leader_) {
    adapters_->leader_publisher.emplace(*publisher_);
    leader_->attach_publisher(*adapters_->leader_publisher);
    leader_thread_ = std::thread([this] { leader_->run(); });
  }
  return {};
}

void Collector::stop() {
  if (stopping_.exchange(true)) {
    if (storage_thread_.joinable()) storage_thread_.join();
    return;
  }
  // The leader first: its last events go out while the publisher and the webhooks still run.
  if (leader_) leader_->stop();
  if (leader_thread_.joinable()) leader_thread_.join();
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
  live.intake_bytes = intake_.bytes();
  live.intake_peak_bytes = intake_.peak_bytes();
  live.intake_paused = intake_paused_;
  live.publisher_connected = publisher_ && publisher_->is_connected();
  if (webhooks_) live.webhooks = webhooks_->stats();
  if (leader_) {
    live.fleet_leader = leader_->leading();
    live.leader_rounds = leader_->rounds();
    live.leader_restores = leader_->restores();
  }
  return collector::metrics_text(counters_, live);
}

common::HealthReport Collector::health() const {
  common::HealthReport r;
  r.program = "outpost-collector";
  r.version = OUTPOST_VERSION;
  r.uptime_s = std::chrono::duration<double>(Clock::now() - started_).count();
  r.live.push_back(common::heartbeat_check("storage_loop", adapters_->clock.heartbeat));
  r.ready.push_back(
      {"subscribed", connected_.load(), connected_ ? "" : "not connected to " + config_.broker});
  r.last_commit_unix_us = adapters_->sink.last_ok_us();
  r.last_failure_unix_us = adapters_->sink.last_failed_us();
  const bool failing = r.last_failure_unix_us &&
                       (!r.last_commit_unix_us || *r.last_failure_unix_us > *r.last_commit_unix_us);
  r.ready.push_back(
      {"storage", !failing, failing ? "the last commit failed: retrying (see the log)" : ""});
  r.queue_depth = queue_.size();
  r.connected = connected_;
  return r;
}

namespace {

std::chrono::microseconds us(int64_t v) { return std::chrono::microseconds(v); }

// While a connection stays down: a reminder in the log at most this often.
constexpr auto kStillDownReminder = std::chrono::seconds(60);

// Messages taken from Paho in one go (one journal write): at most this many, or this many
// payload bytes, whichever comes first.
constexpr std::size_t kBurstMessages = 512;
constexpr std::size_t kBurstBytes = 1u << 20;
// Classified messages handed to the storage thread's queue in one go.
constexpr std::size_t kQueueChunk = 64;
// While the storage queue is full, the intake's bound is checked this often: Paho receives
// about 75,000 messages/s on this machine's cores, so about 400 (300 KB) arrive in between.
constexpr auto kPauseCheck = std::chrono::milliseconds(5);
// Unsubscribed (never subscribed) before a pause's disconnect: its UNSUBACK says the broker has
// read every PUBACK sent before it.
const std::string kPauseProbe = "outpost/v1/pause-probe/never-subscribed";
constexpr auto kPauseProbeWait = std::chrono::milliseconds(20);
// A subscribe not acknowledged within this is a failed connection attempt.
constexpr auto kSubscribeTimeout = std::chrono::seconds(15);

}  // namespace

void Collector::make_reconnect_state() {
  const auto seed = static_cast<uint64_t>(wall_now_us());
  subscriber_state_.emplace(us(config_.reconnect_min_us), us(config_.reconnect_max_us),
                            kStillDownReminder, seed);
  publisher_state_.emplace(us(config_.reconnect_min_us), us(config_.reconnect_max_us),
                           kStillDownReminder, seed * 31 + 7);
}

void Collector::start_publisher_connect() {
  try {
    publisher_connect_ = publisher_->connect(connect_options(config_, /*clean_session=*/true));
  } catch (const mqtt::exception& e) {
    publisher_connect_.reset();
    note_publisher_failure(e.what());
  }
}

void Collector::note_publisher_failure(const std::string& why) {
  const auto now = Clock::now();
  switch (publisher_state_->failed(now)) {
    case Reconnect::Say::kFailing:
      spdlog::warn(
          "publisher: cannot connect to {}: {}; acks and events are skipped until it "
          "is back (retrying with backoff up to {} ms)",
          config_.broker, why, config_.reconnect_max_us / 1000);
      break;
    case Reconnect::Say::kStillFailing:
      spdlog::warn("publisher: still not connected to {} after {} attempts in {} s: {}",
                   config_.broker, publisher_state_->failures(),
                   publisher_state_->down_for(now).count() / 1'000'000, why);
      break;
    default:
      break;
  }
}

void Collector::ensure_publisher() {
  Reconnect& state = *publisher_state_;
  const auto now = Clock::now();
  if (publisher_->is_connected()) {
    publisher_connect_.reset();
    if (state.succeeded(now) == Reconnect::Say::kBack) {
      spdlog::info("publisher: connected to {} again as {}-pub", config_.broker, config_.client_id);
    }
    return;
  }
  if (publisher_connect_) {
    if (!publisher_connect_->is_complete()) return;  // under way
    // Complete but not connected: it failed (or it connected and was lost since).
    std::string why = "connection refused or lost";
    try {
      publisher_connect_->wait_for(std::chrono::milliseconds(0));
    } catch (const mqtt::exception& e) {
      why = e.what();
    }
    publisher_connect_.reset();
    note_publisher_failure(why);
  } else if (state.up()) {
    if (state.lost(now) == Reconnect::Say::kLost) {
      spdlog::warn("publisher: connection to {} lost; reconnecting", config_.broker);
    }
  }
  if (state.due(now)) start_publisher_connect();
}

bool Collector::ensure_connected(bool resuming) {
  Reconnect& state = *subscriber_state_;
  if (client_->is_connected()) {
    if (!subscribe_) connected_ = true;
    ensure_publisher();
    return true;
  }
  auto now = Clock::now();
  // Paused on purpose (maybe_pause said so): connected again at once, without a word.
  if (resuming) {
    state.lost(now);
  } else if (connected_.exchange(false) && state.lost(now) == Reconnect::Say::kLost) {
    spdlog::warn("connection to {} lost; reconnecting", config_.broker);
  }
  if (!state.due(now)) {
    // Backoff, not a synchronisation: wake up in small steps so that a stop is seen at once.
    const auto step = std::chrono::milliseconds(20);
    std::this_thread::sleep_for(step);
    return false;
  }
  const auto filters = subscription_filters(config_);
  try {
    auto token = client_->connect(connect_options(config_, config_.clean_session));
    // The publisher is started beside the subscriber, just after it and never before: Paho C
    // serves all the clients of a process with one receive thread, which notices a new socket
    // only when its poll (1 s at a time while a connection is up and idle) returns. A
    // subscriber socket made while the publisher is up and idle waits that long; made
    // together, both are seen at once.
    if (!publisher_->is_connected() && (!publisher_connect_ || publisher_connect_->is_complete())) {
      publisher_connect_.reset();
      start_publisher_connect();
    }
    const auto connect_wait = std::chrono::milliseconds(
        common::MqttSettings{}.connect_timeout_us / 1000 + 5000);  // Paho's timeout, and some
    if (!token->wait_for(connect_wait)) {
      throw mqtt::exception(-1, "timed out");
    }
    // With its session at the broker, messages flow from the CONNACK on, and a backlog can
    // come in much faster than the SUBACK: then the subscribe is not waited for here, but
    // checked by the loop (check_subscription) while it takes the intake and watches its bound.
    const bool session = token->get_connect_response().is_session_present();
    if (resuming && session && subscribed_) {
      // Back from a pause, still subscribed: subscribing again would only make the broker send
      // every retained status once more.
      connected_ = true;
      state.succeeded(Clock::now());
      return true;
    }
    subscribed_ = false;
    auto topics = mqtt::string_collection::create(filters);
    std::vector<int> qos(filters.size(), 1);
    subscribe_ = client_->subscribe(topics, qos);
    subscribe_started_ = Clock::now();
    if (!session) {
      if (!subscribe_->wait_for(kSubscribeTimeout)) {
        throw mqtt::exception(-1, "subscribe timed out");
      }
      subscribe_.reset();
      on_subscribed();
    }
  } catch (const mqtt::exception& e) {
    subscribe_.reset();
    connect_failed(e);
    return false;
  }
  return true;
}

bool Collector::check_subscription() {
  if (!subscribe_) return true;
  try {
    if (!subscribe_->is_complete()) {
      if (Clock::now() - subscribe_started_ < kSubscribeTimeout) return true;
      throw mqtt::exception(-1, "subscribe timed out");
    }
    subscribe_->wait_for(std::chrono::milliseconds(0));  // throws if it failed
    subscribe_.reset();
    on_subscribed();
    return true;
  } catch (const mqtt::exception& e) {
    subscribe_.reset();
    connect_failed(e);
    return false;
  }
}

void Collector::on_subscribed() {
  subscribed_ = true;
  connected_ = true;
  ++counters_.reconnects;
  const auto said = subscriber_state_->succeeded(Clock::now());
  spdlog::info("{} {} as {}, subscribed to {}",
               said == Reconnect::Say::kBack ? "connected again to" : "connected to",
               config_.broker, config_.client_id, fmt::join(subscription_filters(config_), ", "));
}

void Collector::connect_failed(const mqtt::exception& e) {
  Reconnect& state = *subscriber_state_;
  connected_ = false;
  // Half done (connected, not subscribed): start again from a clean disconnect.
  try {
    if (client_->is_connected()) client_->disconnect()->wait_for(std::chrono::seconds(2));
  } catch (const mqtt::exception&) {
    // Nothing more to do: the next attempt connects from scratch either way.
  }
  ++counters_.connect_failures;
  const auto now = Clock::now();
  // Said once per change: of the connection's state (Reconnect), or of why it fails.
  const std::string why = common::describe_connect_failure(
      common::connect_failure(e, config_.broker), config_.settings(config_.clean_session));
  auto say = state.failed(now);
  if (say == Reconnect::Say::kNothing && why != last_connect_error_) say = Reconnect::Say::kFailing;
  last_connect_error_ = why;
  switch (say) {
    case Reconnect::Say::kFailing:
      spdlog::warn("cannot connect to {}: {}; retrying with backoff from {} ms up to {} ms",
                   config_.broker, why, config_.reconnect_min_us / 1000,
                   config_.reconnect_max_us / 1000);
      break;
    case Reconnect::Say::kStillFailing:
      spdlog::warn("still not connected to {} after {} attempts in {} s: {}", config_.broker,
                   state.failures(), state.down_for(now).count() / 1'000'000, why);
      break;
    default:
      break;
  }
}

void Collector::maybe_pause() {
  if (intake_paused_ || !intake_.should_pause()) return;
  const double mib = static_cast<double>(intake_.bytes()) / (1u << 20);
  if (config_.clean_session) {
    // The broker keeps nothing for a clean session: a pause would lose messages.
    if (pause_log_.allow(Clock::now())) {
      spdlog::warn(
          "intake: {:.1f} MiB received and not yet stored, over mqtt.intake_max_bytes; with "
          "clean_session = true the subscription cannot pause without losing messages, so this "
          "grows until storage catches up ({} more not logged)",
          mib, pause_log_.take_suppressed());
    }
    return;
  }
  try {
    if (client_->is_connected()) {
      // The broker reads our PUBACKs in order. Once it answers an UNSUBSCRIBE sent after them
      // (of a filter never subscribed: a no-op), it has seen them all; a disconnect before that
      // would make it send again, at the resume, every message whose PUBACK it had not read.
      client_->unsubscribe(kPauseProbe)->wait_for(kPauseProbeWait);
      client_->disconnect()->wait_for(std::chrono::seconds(5));
    }
  } catch (const mqtt::exception& e) {
    // Lost or half gone: the resume connects from scratch either way.
    spdlog::debug("intake: disconnect to pause: {}", e.what());
  }
  subscribe_.reset();  // if it was under way, the resume subscribes again (subscribed_ is false)
  intake_paused_ = true;
  ++counters_.intake_pauses;
  if (pause_log_.allow(Clock::now())) {
    spdlog::info(
        "intake: {:.1f} MiB received and not yet stored (mqtt.intake_max_bytes): subscription "
        "paused until a quarter is left, the broker keeps the rest ({} more pauses not logged)",
        mib, pause_log_.take_suppressed());
  }
}

bool Collector::handle_burst(std::vector<mqtt::const_message_ptr>& taken) {
  std::vector<RawMessage>& burst = burst_;
  std::vector<JournalPosition>& after = after_;
  std::vector<StorageWork>& work = work_;
  burst.clear();
  const std::size_t max_bytes = config_.max_message_bytes;
  const bool catch_all = !config_.catch_all.empty();
  const int64_t now = wall_now_us();
  for (auto& msg : taken) {
    if (catch_all && admit(msg->get_topic(), config_.topics) == Admission::kIgnore) {
      ++counters_.ignored;  // our own acks and events: never journaled
    } else {
      // Read in place: an oversized payload is hashed where Paho holds it, never copied.
      const std::string& payload = msg->get_payload();
      burst.push_back(take_message(msg->get_topic(), payload, now, max_bytes));
      if (burst.back().cut) {
        ++counters_.oversized_cut;
        if (oversized_log_.allow(Clock::now())) {
          spdlog::warn(
              "oversized message on {}: {} bytes, over mqtt.max_message_bytes ({}); "
              "to the DLQ as its first {} bytes and SHA-256 ({} more not logged)",
              burst.back().topic, payload.size(), max_bytes, kOversizedKeepBytes,
              oversized_log_.take_suppressed());
        }
      }
    }
    msg.reset();  // let Paho's copy go before the next one is read
  }
  taken.clear();
  if (burst.empty()) return true;
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
  // Classified and queued kQueueChunk at a time: one lock and at most one wake-up per chunk,
  // and the storage thread starts on a burst before all of it is decoded. After each chunk, and
  // every kPauseCheck while the push waits for storage, the intake's bound is checked.
  for (std::size_t i = 0; i < burst.size(); ++i) {
    std::optional<JournalPosition> pos;
    if (journaled) pos = after[i];
    work.push_back(StorageWork{classify(std::move(burst[i]), config_.validation), pos});
    if (work.size() < kQueueChunk && i + 1 < burst.size()) continue;
    for (std::size_t done = 0; done < work.size();) {
      if (!queue_.push_until(work, done, Clock::now() + kPauseCheck)) return false;  // stopping
      if (!stopping_) maybe_pause();
    }
    work.clear();
  }
  return true;
}

void Collector::mqtt_loop() {
  std::vector<mqtt::const_message_ptr> taken;
  const auto wait = std::chrono::milliseconds(100);
  bool resuming = false;
  while (!stopping_) {
    if (intake_paused_ && intake_.may_resume()) {
      intake_paused_ = false;
      resuming = true;
    }
    if (intake_paused_) {
      ensure_publisher();
    } else if (!ensure_connected(std::exchange(resuming, false)) || !check_subscription()) {
      continue;
    }
    if (intake_.take_until(Clock::now() + wait, taken, kBurstMessages, kBurstBytes) == 0) {
      continue;
    }
    if (!handle_burst(taken)) return;
  }
  // Stopping: nothing more may come in, then what Paho acknowledged and the intake still holds
  // is journaled and queued (the storage thread commits it before it stops).
  try {
    if (client_->is_connected()) client_->disconnect()->wait_for(std::chrono::seconds(5));
  } catch (const mqtt::exception& e) {
    spdlog::warn("disconnect {}: {}", client_->get_client_id(), e.what());
  }
  while (intake_.take_until(Clock::now(), taken, kBurstMessages, kBurstBytes) > 0) {
    if (!handle_burst(taken)) return;
  }
}

}  // namespace outpost::collector
