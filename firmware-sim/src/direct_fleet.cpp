// Direct mode: device models driven on worker threads, published through Paho.
#include "direct_fleet.h"

#include <mqtt/async_client.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <limits>
#include <mutex>
#include <queue>
#include <thread>
#include <unordered_set>

#include "cut_relay.h"
#include "outpost/common/clock.h"
#include "outpost/common/logging.h"
#include "outpost/common/mqtt_connect.h"
#include "outpost/common/topics.h"
#include "outpost/sim/handoff.h"

namespace outpost::sim {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
constexpr int64_t kDrainTimeoutUs = 15'000'000;  // after the run: wait this long for acks
constexpr int64_t kStopTimeoutUs = 10'000'000;   // ...and this long for offline + disconnect
constexpr int kMaxConnectingPerWorker = 64;      // connects in progress at once
constexpr auto& wall_us = common::wall_now_us;   // the one wall clock (common/clock.h)

struct Link;

struct Device {
  std::unique_ptr<DeviceModel> model;
  DeviceLedger ledger;
  Link* link = nullptr;
  std::string topics[3];  // data, logs, status
  std::deque<Outgoing> backlog;
  std::vector<DeviceEvent> events;
  std::size_t next_event = 0;
  int64_t next_tick_us = 0;  // offset from the run start
  bool silent = false;       // cut or stopped: no more readings

  const std::string& topic(common::PayloadKind kind) const {
    switch (kind) {
      case common::PayloadKind::kLogs:
        return topics[1];
      case common::PayloadKind::kStatus:
        return topics[2];
      default:
        return topics[0];
    }
  }
  int64_t next_due() const {
    if (silent) return kNever;
    const int64_t ev = next_event < events.size() ? events[next_event].at_us : kNever;
    return std::min(next_tick_us, ev);
  }
};

enum class LinkState { kIdle, kConnecting, kUp, kDraining, kDisconnecting, kDead };
enum class LinkGoal { kNone, kReconnect, kCut, kOffline };

struct Op;

struct Link {
  std::unique_ptr<mqtt::async_client> client;
  std::string client_id;
  std::vector<Device*> devices;
  bool own = true;  // one device, with its own last will
  LinkState state = LinkState::kIdle;
  LinkGoal goal = LinkGoal::kNone;
  bool offline_sent = false;
  int relay_port = 0;
  int64_t retry_at_us = 0;
  int64_t backoff_us = common::kMqttReconnectMinUs;
  std::size_t rr = 0;
  std::unordered_set<Op*> inflight;
};

struct Op {
  enum class Type { kPublish, kConnect, kDisconnect, kLost } type = Type::kPublish;
  Link* link = nullptr;
  Device* device = nullptr;
  Outgoing out;
  bool abandoned = false;  // the connection was lost meanwhile; already re-queued
};

class Worker final : public mqtt::iaction_listener {
 public:
  // `start` and `start_wall_us`: the run's start, on the steady and on the wall clock.
  Worker(const Scenario& s, LiveCounters& counters, CutRelay* relay, Clock::time_point start,
         int64_t start_wall_us)
      : s_(s), counters_(counters), relay_(relay), start_(start), start_wall_us_(start_wall_us) {}

  ~Worker() override {
    // Clients first: after their destruction Paho calls nothing of ours.
    for (auto& l : links_) l->client.reset();
    for (auto& [op, ok] : done_) {
      if (op->type == Op::Type::kPublish && !op->abandoned) op->link->inflight.erase(op);
      delete op;
    }
    for (auto& l : links_) {
      for (Op* op : l->inflight) delete op;
    }
  }

  void add_link(std::unique_ptr<Link> link) { links_.push_back(std::move(link)); }

  void run(const std::atomic<bool>& stop) {
    for (auto& l : links_) {
      Link* link = l.get();
      link->client->set_connection_lost_handler([this, link](const std::string&) noexcept {
        Op* op = new (std::nothrow) Op{Op::Type::kLost, link, nullptr, {}, false};
        if (!op) ++counters_.lost_completions;
        push(op, false);
      });
      link->backoff_us = min_backoff_us();
      to_connect_.push_back(link);
      for (Device* d : link->devices) heap_.push({d->next_due(), d});
    }
    enum class Phase { kRun, kDrain, kStop } phase = Phase::kRun;
    int64_t deadline = kNever;
    int64_t next_check = 0;
    while (true) {
      const int64_t now = offset_now();
      handle_completions(now);
      start_connects(now, phase != Phase::kStop);
      if (phase == Phase::kRun) {
        if (stop || now >= s_.duration_us) {
          // A worker that lags (Paho's lock is shared with its network threads) still makes
          // every read scheduled before the end: the readings count must not depend on timing.
          while (!stop && !heap_.empty() && heap_.top().first < s_.duration_us) {
            Device* d = heap_.top().second;
            heap_.pop();
            process(d, s_.duration_us - 1);
          }
          for (auto& l : links_) {
            for (Device* d : l->devices) {
              if (!d->silent) append(d, [&](auto& out) { d->model->flush(wall_us(), out); });
            }
            pump(l.get());
          }
          phase = Phase::kDrain;
          // Nobody ever got through: no point waiting for acknowledgements.
          deadline = counters_.connects == 0 ? now : now + kDrainTimeoutUs;
        } else {
          while (!heap_.empty() && heap_.top().first <= now) {
            Device* d = heap_.top().second;
            heap_.pop();
            process(d, now);
          }
        }
      }
      if (phase == Phase::kDrain && now >= next_check) {
        next_check = now + 50'000;
        if (all_drained() || now >= deadline) {
          for (auto& l : links_) begin_goal(l.get(), LinkGoal::kOffline, now);
          phase = Phase::kStop;
          deadline = now + kStopTimeoutUs;
        }
      }
      if (phase == Phase::kStop && now >= next_check) {
        next_check = now + 20'000;
        const bool all_dead = std::all_of(links_.begin(), links_.end(), [](const auto& l) {
          return l->state == LinkState::kDead || l->state == LinkState::kIdle;
        });
        if (all_dead || now >= deadline) break;
      }
      int64_t wake = now + 50'000;
      if (phase == Phase::kRun && !heap_.empty()) wake = std::min(wake, heap_.top().first);
      if (phase == Phase::kRun) wake = std::min(wake, s_.duration_us);
      std::unique_lock lock(mu_);
      cv_.wait_until(lock, start_ + std::chrono::microseconds(wake),
                     [&] { return !done_.empty(); });
    }
  }

  // Devices with their fleet index, for the manifest's order.
  void collect(std::vector<std::pair<uint32_t, DeviceLedger>>& out) const {
    for (const auto& l : links_) {
      for (const Device* d : l->devices) out.push_back({d->model->identity().index, d->ledger});
    }
  }

 private:
  // Paho's threads: queue the outcome for this worker, nothing else.
  void on_success(const mqtt::token& tok) override {
    push(static_cast<Op*>(tok.get_user_context()), true);
  }
  void on_failure(const mqtt::token& tok) override {
    push(static_cast<Op*>(tok.get_user_context()), false);
  }
  // A completion that cannot be queued is lost: counted (lost_completions), logged by the
  // worker (report_lost_completions). A lost publish stays in its link's inflight set until the
  // run's deadline; a lost connect or disconnect leaves its link busy.
  void push(Op* op, bool ok) noexcept {
    if (!op) return;
    const bool queued = enqueue_or_count(
        [&] {
          std::lock_guard lock(mu_);
          done_.emplace_back(op, ok);
        },
        counters_.lost_completions);
    if (queued) {
      cv_.notify_one();
    } else if (op->type == Op::Type::kLost) {
      delete op;  // nobody else holds it
    }
  }

  // Worker thread: a rate-limited warning when Paho's threads lost completions.
  void report_lost_completions() {
    const uint64_t lost = counters_.lost_completions.load(std::memory_order_relaxed);
    if (lost == lost_reported_ || !lost_log_.allow(Clock::now())) return;
    spdlog::warn(
        "{} completions could not be handed over from Paho's threads (out of memory); "
        "their messages are not counted as sent",
        lost - lost_reported_);
    lost_reported_ = lost;
  }

  int64_t offset_now() const {
    return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start_).count();
  }

  template <typename F>
  void append(Device* d, F&& produce) {
    scratch_.clear();
    produce(scratch_);
    counters_.backlog += scratch_.size();
    for (auto& o : scratch_) d->backlog.push_back(std::move(o));
  }

  void process(Device* d, int64_t now) {
    while (!d->silent) {
      const int64_t ev = d->next_event < d->events.size() ? d->events[d->next_event].at_us : kNever;
      const int64_t t = std::min(d->next_tick_us, ev);
      if (t > now || t == kNever) break;
      if (d->next_tick_us <= ev) {
        const int64_t at = d->next_tick_us;
        append(d, [&](auto& out) {
          // Stamped with the tick's nominal time, as a device reads on its period,
          // even when this worker runs the tick late.
          d->model->tick(start_wall_us_ + at, static_cast<double>(at) / 1e6, out);
        });
        int64_t period = s_.period_us;
        if (in_burst(s_.device.faults, at)) {
          period = std::max<int64_t>(1000, period / s_.device.faults.burst_factor);
        }
        d->next_tick_us = at + period < s_.duration_us ? at + period : kNever;
      } else {
        handle_event(d, d->events[d->next_event++], now);
      }
    }
    if (d->next_due() != kNever) heap_.push({d->next_due(), d});
    pump(d->link);
  }

  void handle_event(Device* d, const DeviceEvent& e, int64_t now) {
    switch (e.kind) {
      case DeviceEventKind::kReboot:
        append(d, [&](auto& out) { d->model->flush(wall_us(), out); });
        d->model->boot(wall_us());
        d->ledger.add_reboot();
        if (d->link->own) {
          begin_goal(d->link, LinkGoal::kReconnect, now);  // birth with the new epoch on connect
        } else {
          append(d, [&](auto& out) {
            out.push_back(d->model->status(common::DeviceState::kOnline, wall_us()));
          });
        }
        break;
      case DeviceEventKind::kStorm:
        if (d->link->own) begin_goal(d->link, LinkGoal::kReconnect, now);
        break;
      case DeviceEventKind::kCut:
      case DeviceEventKind::kOffline:
        append(d, [&](auto& out) { d->model->flush(wall_us(), out); });
        d->silent = true;
        begin_goal(d->link, e.kind == DeviceEventKind::kCut ? LinkGoal::kCut : LinkGoal::kOffline,
                   now);
        break;
    }
  }

  // Asks a link to drain and then reconnect, be cut, or stop with offline statuses.
  void begin_goal(Link* link, LinkGoal goal, int64_t now) {
    if (link->state == LinkState::kDead) return;
    if (goal == LinkGoal::kReconnect && link->goal != LinkGoal::kNone) return;  // weaker
    if (link->goal == LinkGoal::kCut) return;                                   // a cut stays a cut
    link->goal = goal;
    if (link->state == LinkState::kUp) link->state = LinkState::kDraining;
    if (link->state == LinkState::kDraining) {
      pump(link);
      check_drained(link);
    } else if (link->state == LinkState::kIdle && goal != LinkGoal::kReconnect) {
      if (s_.duration_us <= now || goal == LinkGoal::kOffline || goal == LinkGoal::kCut) {
        // Never got (back) up: nothing to say goodbye on.
        if (goal == LinkGoal::kCut) {
          for (Device* d : link->devices) d->ledger.add_cut();
        }
        link->state = LinkState::kDead;
      }
    }
    // kConnecting: the goal is applied once the connect completes.
  }

  bool drained(const Link* link) const {
    if (!link->inflight.empty()) return false;
    if (link->goal == LinkGoal::kReconnect) return true;
    for (const Device* d : link->devices) {
      if (!d->backlog.empty()) return false;
    }
    return true;
  }

  void check_drained(Link* link) {
    if (link->state != LinkState::kDraining || !drained(link)) return;
    switch (link->goal) {
      case LinkGoal::kNone:
        link->state = LinkState::kUp;
        return;
      case LinkGoal::kReconnect:
        disconnect(link);
        return;
      case LinkGoal::kCut:
        if (relay_ && link->relay_port) relay_->cut(link->relay_port);
        for (Device* d : link->devices) d->ledger.add_cut();
        set_down(link, LinkState::kDead);
        return;
      case LinkGoal::kOffline:
        if (!link->offline_sent) {
          link->offline_sent = true;
          for (Device* d : link->devices) {
            publish(link, d, d->model->status(common::DeviceState::kOffline, wall_us()));
          }
          if (!link->inflight.empty()) return;  // disconnect once the statuses are acked
        }
        disconnect(link);
        return;
    }
  }

  void disconnect(Link* link) {
    link->state = LinkState::kDisconnecting;
    auto op = std::make_unique<Op>(Op{Op::Type::kDisconnect, link, nullptr, {}, false});
    try {
      link->client->disconnect(1000, op.get(), *this);
      op.release();  // Paho hands it back in on_success/on_failure
    } catch (const mqtt::exception& e) {
      spdlog::debug("{}: disconnect: {}", link->client_id, e.what());
      after_disconnect(link, offset_now());
    }
  }

  void after_disconnect(Link* link, int64_t now) {
    if (link->goal == LinkGoal::kReconnect) {
      set_down(link, LinkState::kIdle);
      link->goal = LinkGoal::kNone;
      link->retry_at_us = now;
      to_connect_.push_back(link);
    } else {
      set_down(link, LinkState::kDead);
    }
  }

  void set_down(Link* link, LinkState state) {
    if (link->state == LinkState::kUp || link->state == LinkState::kDraining ||
        link->state == LinkState::kDisconnecting) {
      counters_.connected -= static_cast<int64_t>(link->devices.size());
    }
    link->state = state;
  }

  void start_connects(int64_t now, bool allowed) {
    if (!allowed) return;
    std::size_t scanned = to_connect_.size();
    while (connecting_ < kMaxConnectingPerWorker && scanned-- > 0 && !to_connect_.empty()) {
      Link* link = to_connect_.front();
      to_connect_.pop_front();
      if (link->state != LinkState::kIdle) continue;
      if (link->retry_at_us > now) {
        to_connect_.push_back(link);
        continue;
      }
      connect(link);
    }
  }

  void connect(Link* link) {
    common::MqttSettings settings;  // clean session, 30 s keepalive, MQTT 3.1.1 as every program
    settings.connect_timeout_us = s_.connect_timeout_us;
    mqtt::connect_options options = common::connect_options(settings);
    options.set_max_inflight(static_cast<int>(s_.max_inflight));
    options.set_automatic_reconnect(false);
    link->state = LinkState::kConnecting;
    ++connecting_;
    auto op = std::make_unique<Op>(Op{Op::Type::kConnect, link, nullptr, {}, false});
    try {
      if (link->own) {
        // The will carries the current epoch, so it is rebuilt on every connect.
        Device* d = link->devices.front();
        const Outgoing will = d->model->status(common::DeviceState::kLost, wall_us());
        options.set_will_message(
            mqtt::make_message(d->topics[2], will.bytes->data(), will.bytes->size(), 1, true));
      }
      link->client->connect(options, op.get(), *this);
      op.release();  // Paho hands it back in on_success/on_failure
    } catch (const mqtt::exception& e) {
      --connecting_;
      connect_failed(link, offset_now());
      spdlog::debug("{}: connect: {}", link->client_id, e.what());
    }
  }

  void connect_failed(Link* link, int64_t now) {
    if (counters_.connect_failures++ == 0) {
      spdlog::warn("cannot connect to {} (retrying with backoff)", s_.broker);
    }
    link->state = LinkState::kIdle;
    link->retry_at_us = now + link->backoff_us;
    link->backoff_us = std::min<int64_t>(link->backoff_us * 2, s_.reconnect_max_us);
    if (link->goal == LinkGoal::kCut || link->goal == LinkGoal::kOffline) {
      begin_goal(link, link->goal, now);
      if (link->state == LinkState::kDead) return;
    }
    to_connect_.push_back(link);
  }

  void handle_completions(int64_t now) {
    report_lost_completions();
    {
      std::lock_guard lock(mu_);
      batch_.swap(done_);
    }
    for (auto [op, ok] : batch_) {
      std::unique_ptr<Op> owned(op);
      Link* link = op->link;
      switch (op->type) {
        case Op::Type::kPublish:
          if (op->abandoned) {
            if (ok) op->device->ledger.record(op->out);
            break;
          }
          link->inflight.erase(op);
          if (ok) {
            op->device->ledger.record(op->out);
            ++counters_.messages;
            if (op->out.role == SendRole::kValid) counters_.readings += op->out.readings;
            if (op->out.role == SendRole::kMalformed) ++counters_.malformed;
            if (op->out.role == SendRole::kDuplicate) ++counters_.duplicates;
          } else {
            ++counters_.publish_failures;
            ++counters_.backlog;
            op->device->backlog.push_front(std::move(op->out));
          }
          if (link->state == LinkState::kDraining) {
            pump(link);
            check_drained(link);
          } else {
            pump(link);
          }
          break;
        case Op::Type::kConnect:
          --connecting_;
          if (link->state != LinkState::kConnecting) break;
          if (!ok) {
            connect_failed(link, now);
            break;
          }
          link->state = LinkState::kUp;
          link->backoff_us = min_backoff_us();
          ++counters_.connects;
          counters_.connected += static_cast<int64_t>(link->devices.size());
          for (Device* d : link->devices) {
            d->backlog.push_front(d->model->status(common::DeviceState::kOnline, wall_us()));
            ++counters_.backlog;
          }
          if (link->goal != LinkGoal::kNone) {
            const LinkGoal goal = link->goal;
            link->goal = LinkGoal::kNone;
            begin_goal(link, goal, now);
          }
          pump(link);
          break;
        case Op::Type::kDisconnect:
          after_disconnect(link, now);
          break;
        case Op::Type::kLost:
          if (link->state == LinkState::kDead || link->state == LinkState::kDisconnecting ||
              link->state == LinkState::kIdle || link->state == LinkState::kConnecting) {
            break;
          }
          ++counters_.connection_losses;
          // Outstanding publishes may never be answered now: send them again after the
          // reconnect (the ledger counts an (epoch, seq) once, whichever copy is acked).
          for (Op* pending : link->inflight) {
            pending->abandoned = true;
            pending->device->backlog.push_front(pending->out);
            ++counters_.backlog;
          }
          link->inflight.clear();
          set_down(link, LinkState::kIdle);
          if (link->goal == LinkGoal::kReconnect) link->goal = LinkGoal::kNone;
          link->retry_at_us = now + link->backoff_us;
          to_connect_.push_back(link);
          break;
      }
    }
    batch_.clear();
  }

  // The first reconnect delay: 0.5 s, or reconnect_max if that is shorter.
  int64_t min_backoff_us() const {
    return std::min<int64_t>(common::kMqttReconnectMinUs, s_.reconnect_max_us);
  }

  bool can_send(const Link* link) const {
    if (link->state == LinkState::kUp) return true;
    return link->state == LinkState::kDraining && link->goal != LinkGoal::kReconnect &&
           !link->offline_sent;
  }

  void pump(Link* link) {
    while (can_send(link) && link->inflight.size() < s_.max_inflight) {
      Device* d = nullptr;
      for (std::size_t tries = 0; tries < link->devices.size(); ++tries) {
        Device* candidate = link->devices[link->rr++ % link->devices.size()];
        if (!candidate->backlog.empty()) {
          d = candidate;
          break;
        }
      }
      if (!d) return;
      Outgoing o = std::move(d->backlog.front());
      d->backlog.pop_front();
      --counters_.backlog;
      if (!publish(link, d, std::move(o))) return;
    }
  }

  bool publish(Link* link, Device* d, Outgoing o) {
    auto op = std::make_unique<Op>(Op{Op::Type::kPublish, link, d, std::move(o), false});
    const Outgoing& out = op->out;
    const int qos = out.topic_kind == common::PayloadKind::kStatus ? 1 : s_.qos;
    try {
      auto msg = mqtt::make_message(d->topic(out.topic_kind), out.bytes->data(), out.bytes->size(),
                                    qos, out.retained);
      link->client->publish(msg, op.get(), *this);
      link->inflight.insert(op.release());
      return true;
    } catch (const mqtt::exception& e) {
      ++counters_.publish_failures;
      ++counters_.backlog;
      d->backlog.push_front(std::move(op->out));
      return false;
    }
  }

  bool all_drained() const {
    for (const auto& l : links_) {
      if (l->state == LinkState::kDead) continue;
      if (!l->inflight.empty()) return false;
      for (const Device* d : l->devices) {
        if (!d->backlog.empty()) return false;
      }
    }
    return true;
  }

  const Scenario& s_;
  LiveCounters& counters_;
  CutRelay* relay_;
  Clock::time_point start_;
  int64_t start_wall_us_;  // the wall clock at start_
  std::vector<std::unique_ptr<Link>> links_;
  std::deque<Link*> to_connect_;
  int connecting_ = 0;
  using Due = std::pair<int64_t, Device*>;
  std::priority_queue<Due, std::vector<Due>, std::greater<Due>> heap_;
  std::vector<Outgoing> scratch_;
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t lost_reported_ = 0;  // lost_completions already logged (worker thread)
  common::RateLimiter lost_log_{1, std::chrono::seconds(10)};
  std::vector<std::pair<Op*, bool>> done_;
  std::vector<std::pair<Op*, bool>> batch_;
};

}  // namespace

common::Result<Manifest> run_direct_fleet(const Scenario& s, LiveCounters& counters,
                                          const std::atomic<bool>& stop, Shard shard) {
  const uint32_t n = s.devices;
  const uint32_t shards = std::max<uint32_t>(1, shard.count);
  const uint32_t local = n / shards + (shard.index < n % shards ? 1 : 0);
  if (local == 0) return Manifest{s.seed, 0, 0, {}};
  const uint32_t link_count =
      s.connections == 0 ? local : std::clamp<uint32_t>(s.connections / shards, 1, local);
  const bool own = link_count == local;

  std::vector<std::unique_ptr<Device>> devices;
  devices.reserve(local);
  bool any_cut = false;
  for (uint32_t i = shard.index; i < n; i += shards) {
    auto d = std::make_unique<Device>();
    const std::string id = s.device_id(i);
    d->model = std::make_unique<DeviceModel>(DeviceIdentity{s.site, id, i}, s.device, s.seed,
                                             s.device_id((i + 1) % std::max<uint32_t>(n, 2)));
    d->ledger = DeviceLedger(s.site, id, DeviceMode::kDirect);
    const common::PayloadKind kinds[3] = {common::PayloadKind::kReadings,
                                          common::PayloadKind::kLogs, common::PayloadKind::kStatus};
    for (int k = 0; k < 3; ++k) {
      auto topic = common::device_topic(s.site, id, kinds[k]);
      if (!topic.ok()) return common::Error{"device " + id + ": " + topic.error().detail};
      d->topics[k] = topic.value();
    }
    if (own) d->events = plan_device_events(s.device.faults, s.duration_us, s.seed, i);
    for (const auto& e : d->events) any_cut |= e.kind == DeviceEventKind::kCut;
    // Spread first reads over one period so a fleet does not read in lock-step.
    d->next_tick_us = static_cast<int64_t>(static_cast<double>(s.period_us) * i / n);
    d->model->boot(wall_us());
    devices.push_back(std::move(d));
  }

  std::unique_ptr<CutRelay> relay;
  if (any_cut) {
    auto started = CutRelay::start(s.broker);
    if (!started.ok()) return started.error();
    relay = std::move(started).value();
  }

  const auto start = Clock::now();
  const int64_t start_wall_us = wall_us();
  const uint32_t threads = std::max<uint32_t>(1, std::min(s.threads, link_count));
  std::vector<std::unique_ptr<Worker>> workers;
  for (uint32_t w = 0; w < threads; ++w) {
    workers.push_back(std::make_unique<Worker>(s, counters, relay.get(), start, start_wall_us));
  }
  for (uint32_t k = 0; k < link_count; ++k) {
    auto link = std::make_unique<Link>();
    link->own = own;
    for (uint32_t i = k; i < local; i += link_count) {
      link->devices.push_back(devices[i].get());
      devices[i]->link = link.get();
    }
    std::string uri = s.broker;
    const bool cut_planned =
        own && std::any_of(devices[k]->events.begin(), devices[k]->events.end(),
                           [](const DeviceEvent& e) { return e.kind == DeviceEventKind::kCut; });
    if (cut_planned) {
      auto port = relay->open_port();
      if (!port.ok()) return port.error();
      link->relay_port = port.value();
      uri = "tcp://127.0.0.1:" + std::to_string(port.value());
    }
    link->client_id = own ? "outpost-sim-" + s.site + "-" + devices[k]->model->identity().device_id
                          : "outpost-sim-" + s.site + "-link-" + std::to_string(shard.index) + "-" +
                                std::to_string(k);
    try {
      link->client = std::make_unique<mqtt::async_client>(uri, link->client_id,
                                                          mqtt::create_options(MQTTVERSION_3_1_1));
    } catch (const mqtt::exception& e) {
      return common::Error{"MQTT client for " + uri + ": " + e.what()};
    }
    workers[k % threads]->add_link(std::move(link));
  }
  counters.devices = local;

  Manifest manifest;
  manifest.seed = s.seed;
  manifest.started_us = wall_us();
  std::vector<std::thread> running;
  for (auto& w : workers) running.emplace_back([&w, &stop] { w->run(stop); });
  for (auto& t : running) t.join();
  manifest.finished_us = wall_us();

  std::vector<std::pair<uint32_t, DeviceLedger>> ledgers;
  for (auto& w : workers) w->collect(ledgers);
  std::sort(ledgers.begin(), ledgers.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [i, ledger] : ledgers) manifest.devices.push_back(std::move(ledger));
  workers.clear();  // destroys the clients before the devices they point to
  return manifest;
}

}  // namespace outpost::sim
