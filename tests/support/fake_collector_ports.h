// Fakes for what the collector's StorageLoop runs over besides the Sink (fake_sink.h): a
// clock that moves only when told (or when the loop sleeps), a scripted work source on that
// clock, a publisher that can be down or failing, a webhook forwarder and a journal release
// that record what they were handed.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "outpost/collector/storage_loop.h"
#include "outpost/common/codec.h"

namespace outpost::test_support {

// Wall and steady time advance together; sleep_for advances them and records the sleep.
// Thread-safe.
class FakeStorageClock final : public collector::StorageClock {
 public:
  static constexpr int64_t kStartWallUs = 1'700'000'000'000'000;  // 2023-11-14

  int64_t wall_us() override { return kStartWallUs + elapsed_us_.load(); }
  std::chrono::steady_clock::time_point steady() override {
    return std::chrono::steady_clock::time_point(std::chrono::hours(1)) +
           std::chrono::microseconds(elapsed_us_.load());
  }
  void sleep_for(std::chrono::milliseconds d) override {
    {
      std::lock_guard lock(mu_);
      sleeps_.push_back(d);
    }
    advance(d);
  }

  void advance(std::chrono::microseconds d) { elapsed_us_ += d.count(); }
  void advance_to(std::chrono::steady_clock::time_point t) {
    const auto now = steady();
    if (t > now) advance(std::chrono::duration_cast<std::chrono::microseconds>(t - now));
  }
  std::vector<std::chrono::milliseconds> sleeps() {
    std::lock_guard lock(mu_);
    return sleeps_;
  }

 private:
  std::atomic<int64_t> elapsed_us_{0};
  std::mutex mu_;
  std::vector<std::chrono::milliseconds> sleeps_;
};

// A timeline of steps on a FakeStorageClock: each step waits `after` (on the fake clock), then
// runs its action (if any) and delivers its message (if any). pop_until never waits past its
// deadline: a step that would is left, with the rest of its wait, for the next call. Drained
// once every step ran. One thread only.
class FakeWorkSource final : public collector::WorkSource {
 public:
  explicit FakeWorkSource(FakeStorageClock& clock) : clock_(clock) {}

  FakeWorkSource& message(collector::StorageWork work,
                          std::chrono::microseconds after = std::chrono::microseconds(0)) {
    steps_.push_back(Step{after, std::move(work), {}});
    return *this;
  }
  FakeWorkSource& wait(std::chrono::microseconds d) {
    steps_.push_back(Step{d, std::nullopt, {}});
    return *this;
  }
  FakeWorkSource& then(std::function<void()> action) {
    steps_.push_back(Step{std::chrono::microseconds(0), std::nullopt, std::move(action)});
    return *this;
  }

  std::optional<collector::StorageWork> pop_until(
      std::chrono::steady_clock::time_point deadline) override {
    ++pops_;
    while (!steps_.empty()) {
      Step& step = steps_.front();
      const auto now = clock_.steady();
      if (now + step.after > deadline) {
        if (deadline > now) {
          step.after -= std::chrono::duration_cast<std::chrono::microseconds>(deadline - now);
          clock_.advance_to(deadline);
        }
        return std::nullopt;  // timed out
      }
      clock_.advance(step.after);
      Step taken = std::move(step);
      steps_.pop_front();
      if (taken.action) taken.action();
      if (taken.work) return std::move(taken.work);
    }
    return std::nullopt;
  }
  bool drained() override { return steps_.empty(); }
  int pops() const { return pops_; }

 private:
  struct Step {
    std::chrono::microseconds after;
    std::optional<collector::StorageWork> work;
    std::function<void()> action;
  };
  FakeStorageClock& clock_;
  std::deque<Step> steps_;
  int pops_ = 0;
};

// Records what it publishes, decoded. `up = false`: not connected; `fail = true`: connected but
// every publish fails (as when Paho throws).
class FakeCollectorPublisher final : public collector::Publisher {
 public:
  struct Sent {
    std::string topic;
    common::Envelope envelope;
  };
  bool up = true;
  bool fail = false;
  std::vector<Sent> sent;
  int refused = 0;

  bool connected() override { return up; }
  common::Status<> publish(const std::string& topic, const std::vector<uint8_t>& bytes) override {
    if (fail) {
      ++refused;
      return common::Error{"MQTT error [-3]: Disconnected"};
    }
    auto decoded = common::decode(bytes);
    if (!decoded.ok()) return common::Error{"the fake cannot decode what it was given"};
    sent.push_back(Sent{topic, std::move(decoded.value())});
    return {};
  }
  std::vector<const Sent*> on_suffix(std::string_view suffix) const {
    std::vector<const Sent*> out;
    for (const auto& s : sent) {
      if (s.topic.ends_with(suffix)) out.push_back(&s);
    }
    return out;
  }
};

// Records the events posted to webhooks; stop() runs `on_stop` (e.g. hands back give-ups).
class FakeEventForwarder final : public collector::EventForwarder {
 public:
  std::vector<collector::EventItem> posted;
  int stops = 0;
  std::function<void()> on_stop;

  void post(std::string_view device, const common::Event& event) override {
    posted.push_back(collector::EventItem{std::string(device), event});
  }
  void stop() override {
    ++stops;
    if (on_stop) on_stop();
  }
};

// Records the positions released; `on_release` runs first (e.g. to look at the sink then).
class FakeJournalRelease final : public collector::JournalRelease {
 public:
  std::vector<collector::JournalPosition> released;
  std::function<void(collector::JournalPosition)> on_release;

  void release(collector::JournalPosition committed) override {
    if (on_release) on_release(committed);
    released.push_back(committed);
  }
};

}  // namespace outpost::test_support
