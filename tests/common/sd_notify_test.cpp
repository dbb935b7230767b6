// The sd_notify client against a real AF_UNIX datagram socket standing in for systemd: each
// message as the protocol spells it, path and abstract sockets, the watchdog's interval from
// WATCHDOG_USEC/WATCHDOG_PID, no socket = no-op, and the loop that pings only while alive.
#include "outpost/common/sd_notify.h"

#include <gtest/gtest.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <random>

#include "support/notify_socket.h"

namespace outpost::common {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using test_support::NotifySocket;

class SdNotify : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("outpost_sd_notify_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    ::unsetenv("NOTIFY_SOCKET");
    ::unsetenv("WATCHDOG_USEC");
    ::unsetenv("WATCHDOG_PID");
    fs::remove_all(dir_);
  }
  // The next datagram from index `from` on (any), within 5 s.
  std::string next(NotifySocket& socket, std::size_t from) {
    const auto at = socket.wait_for([](const std::string&) { return true; }, from, 5s);
    return at ? socket.messages()[*at] : "(nothing arrived)";
  }
  fs::path dir_;
};

int64_t monotonic_us() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000 + ts.tv_nsec / 1000;
}

TEST_F(SdNotify, EachMessageArrivesAsTheProtocolSpellsIt) {
  NotifySocket systemd((dir_ / "notify").string());
  SdNotifier notifier(systemd.address());
  ASSERT_TRUE(notifier.enabled());
  EXPECT_TRUE(notifier.ready());
  EXPECT_EQ(next(systemd, 0), "READY=1");
  EXPECT_TRUE(notifier.ready("connected to tcp://b:1883, 0 queued"));
  EXPECT_EQ(next(systemd, 1), "READY=1\nSTATUS=connected to tcp://b:1883, 0 queued");
  EXPECT_TRUE(notifier.status("two\nlines"));
  EXPECT_EQ(next(systemd, 2), "STATUS=two lines") << "one line is all STATUS= holds";
  const int64_t before = monotonic_us();
  EXPECT_TRUE(notifier.reloading("reloading x.toml"));
  const int64_t after = monotonic_us();
  const std::string reloading = next(systemd, 3);
  EXPECT_TRUE(test_support::has_line(reloading, "RELOADING=1")) << reloading;
  EXPECT_EQ(test_support::value_of(reloading, "STATUS"), "reloading x.toml");
  const auto stamp = test_support::value_of(reloading, "MONOTONIC_USEC");
  ASSERT_TRUE(stamp) << reloading;
  EXPECT_GE(std::stoll(*stamp), before);
  EXPECT_LE(std::stoll(*stamp), after);
  EXPECT_TRUE(notifier.stopping());
  EXPECT_EQ(next(systemd, 4), "STOPPING=1");
  EXPECT_TRUE(notifier.extend_timeout(45s));
  EXPECT_EQ(next(systemd, 5), "EXTEND_TIMEOUT_USEC=45000000");
  EXPECT_TRUE(notifier.watchdog());
  EXPECT_EQ(next(systemd, 6), "WATCHDOG=1");
}

TEST_F(SdNotify, AbstractSocketNamedWithAnAt) {
  std::random_device rd;
  const std::string name =
      "outpost-sd-notify-test-" + std::to_string(::getpid()) + "-" + std::to_string(rd());
  NotifySocket systemd(name, /*abstract=*/true);
  ASSERT_EQ(systemd.address(), "@" + name);
  SdNotifier notifier(systemd.address());
  EXPECT_TRUE(notifier.ready("up"));
  EXPECT_EQ(next(systemd, 0), "READY=1\nSTATUS=up");
}

TEST(WatchdogInterval, HalfOfWatchdogUsecWhenThePidIsOursOrAbsent) {
  EXPECT_EQ(watchdog_ping_interval("30000000", nullptr, 42), std::chrono::microseconds(15'000'000));
  EXPECT_EQ(watchdog_ping_interval("30000000", "42", 42), std::chrono::microseconds(15'000'000));
  EXPECT_EQ(watchdog_ping_interval("1", nullptr, 42), std::chrono::microseconds(1));
  // Another process's watchdog (a parent that exec'd us keeps the pid; a child does not).
  EXPECT_EQ(watchdog_ping_interval("30000000", "43", 42), std::nullopt);
  // Not a positive whole number: no watchdog rather than a guess.
  for (const char* bad : {"", "0", "-5", "12abc", "abc", " 30", "1.5"}) {
    EXPECT_EQ(watchdog_ping_interval(bad, nullptr, 42), std::nullopt) << bad;
  }
  EXPECT_EQ(watchdog_ping_interval("30000000", "42x", 42), std::nullopt);
  EXPECT_EQ(watchdog_ping_interval("30000000", "", 42), std::nullopt);
  EXPECT_EQ(watchdog_ping_interval(nullptr, "42", 42), std::nullopt);
}

TEST_F(SdNotify, FromTheEnvironment) {
  NotifySocket systemd((dir_ / "notify").string());
  ::setenv("NOTIFY_SOCKET", systemd.address().c_str(), 1);
  ::setenv("WATCHDOG_USEC", "2000000", 1);
  ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
  {
    auto notifier = SdNotifier::from_environment();
    EXPECT_TRUE(notifier.enabled());
    EXPECT_EQ(notifier.watchdog_interval(), std::chrono::microseconds(1'000'000));
    EXPECT_TRUE(notifier.watchdog());
    EXPECT_EQ(next(systemd, 0), "WATCHDOG=1");
  }
  ::setenv("WATCHDOG_PID", std::to_string(::getpid() + 1).c_str(), 1);
  EXPECT_EQ(SdNotifier::from_environment().watchdog_interval(), std::nullopt);
  ::unsetenv("WATCHDOG_PID");
  EXPECT_EQ(SdNotifier::from_environment().watchdog_interval(),
            std::chrono::microseconds(1'000'000));
}

TEST_F(SdNotify, WithoutASocketEveryCallIsANoOp) {
  ::unsetenv("NOTIFY_SOCKET");
  ::setenv("WATCHDOG_USEC", "2000000", 1);
  auto notifier = SdNotifier::from_environment();
  EXPECT_FALSE(notifier.enabled());
  EXPECT_EQ(notifier.watchdog_interval(), std::nullopt) << "no socket to ping";
  EXPECT_FALSE(notifier.ready("x"));
  EXPECT_FALSE(notifier.reloading());
  EXPECT_FALSE(notifier.stopping());
  EXPECT_FALSE(notifier.status("x"));
  EXPECT_FALSE(notifier.extend_timeout(1s));
  EXPECT_FALSE(notifier.watchdog());
  NotifyLoop loop(notifier);
  EXPECT_FALSE(loop.active());
  // Neither a path nor an abstract name: treated as none.
  EXPECT_FALSE(SdNotifier("relative/notify").enabled());
  EXPECT_FALSE(SdNotifier(std::string(200, '/')).enabled()) << "too long for sun_path";
}

TEST_F(SdNotify, ASocketNobodyReadsFailsQuietlyUntilSomeoneDoes) {
  SdNotifier notifier((dir_ / "nobody").string());
  EXPECT_TRUE(notifier.enabled());
  EXPECT_FALSE(notifier.ready());  // ENOENT: logged once, never thrown
  EXPECT_FALSE(notifier.watchdog());
  NotifySocket systemd((dir_ / "nobody").string());  // systemd back: the next one arrives
  EXPECT_TRUE(notifier.watchdog());
  EXPECT_EQ(next(systemd, 0), "WATCHDOG=1");
}

HealthReport alive(bool loop_ok) {
  HealthReport r;
  r.live.push_back({"main_loop", loop_ok, loop_ok ? "" : "no turn for 6.0 s (stuck?)"});
  r.ready.push_back({"store", true, ""});
  return r;
}

// What the loop sends in one turn: everything up to the marker the test sends after it.
std::vector<std::string> turn_output(NotifySocket& systemd, SdNotifier& notifier,
                                     std::size_t& from) {
  const std::string marker = "X_MARK=" + std::to_string(from);
  EXPECT_TRUE(notifier.notify(marker));
  const auto at = systemd.wait_for_line(marker, from, 5s);
  EXPECT_TRUE(at);
  if (!at) return {};
  const auto all = systemd.messages();
  std::vector<std::string> sent(all.begin() + static_cast<std::ptrdiff_t>(from),
                                all.begin() + static_cast<std::ptrdiff_t>(*at));
  from = *at + 1;
  return sent;
}

TEST_F(SdNotify, LoopPingsWhileAliveStopsWhenALiveCheckFailsAndSendsChangedStatus) {
  NotifySocket systemd((dir_ / "notify").string());
  SdNotifier notifier(systemd.address(), std::chrono::microseconds(2'000'000));  // ping every 2 s
  NotifyLoop loop(notifier);
  ASSERT_TRUE(loop.active());
  EXPECT_EQ(loop.period(), 1s);
  const auto t0 = NotifyLoop::Clock::now();
  std::size_t from = 0;
  using V = std::vector<std::string>;

  loop.turn(alive(true), "connected", t0);
  EXPECT_EQ(turn_output(systemd, notifier, from), (V{"WATCHDOG=1", "STATUS=connected"}));
  // Not due (and the status did not change): nothing.
  loop.turn(alive(true), "connected", t0 + 500ms);
  EXPECT_EQ(turn_output(systemd, notifier, from), V{});
  // Due a turn before the interval ends, so a late timer still makes it.
  loop.turn(alive(true), "connecting", t0 + 1100ms);
  EXPECT_EQ(turn_output(systemd, notifier, from), (V{"WATCHDOG=1", "STATUS=connecting"}));
  // A stuck loop: no ping however long, the status still goes out.
  loop.turn(alive(false), "connecting; stuck", t0 + 3s);
  loop.turn(alive(false), "connecting; stuck", t0 + 10s);
  EXPECT_EQ(turn_output(systemd, notifier, from), V{"STATUS=connecting; stuck"});
  // Alive again: pinging again at once.
  loop.turn(alive(true), "connected", t0 + 11s);
  EXPECT_EQ(turn_output(systemd, notifier, from), (V{"WATCHDOG=1", "STATUS=connected"}));
}

TEST_F(SdNotify, LoopSendsTheStatusOfReadyOnlyOnce) {
  NotifySocket systemd((dir_ / "notify").string());
  SdNotifier notifier(systemd.address());
  NotifyLoop loop(notifier);
  const auto t0 = NotifyLoop::Clock::now();
  std::size_t from = 0;
  loop.ready("connecting");
  loop.turn(alive(true), "connecting", t0);
  EXPECT_EQ(turn_output(systemd, notifier, from),
            std::vector<std::string>{"READY=1\nSTATUS=connecting"});
  loop.turn(alive(true), "connected", t0 + 1s);
  EXPECT_EQ(turn_output(systemd, notifier, from), std::vector<std::string>{"STATUS=connected"});
}

TEST_F(SdNotify, LoopWithoutAWatchdogOnlySendsStatus) {
  NotifySocket systemd((dir_ / "notify").string());
  SdNotifier notifier(systemd.address());
  NotifyLoop loop(notifier);
  const auto t0 = NotifyLoop::Clock::now();
  std::size_t from = 0;
  loop.turn(alive(true), "connected", t0);
  loop.turn(alive(true), "connected", t0 + 60s);
  EXPECT_EQ(turn_output(systemd, notifier, from), std::vector<std::string>{"STATUS=connected"});
}

TEST_F(SdNotify, AShortWatchdogShortensTheTurn) {
  SdNotifier notifier((dir_ / "notify").string(), std::chrono::microseconds(250'000));
  EXPECT_EQ(NotifyLoop(notifier).period(), 250ms);
}

TEST(StatusSummary, ConnectionQueueAndFailingChecks) {
  HealthReport r;
  r.connected = true;
  r.queue_depth = 12;
  r.live.push_back({"main_loop", true, ""});
  r.ready.push_back({"store", true, ""});
  EXPECT_EQ(status_summary(r, "tcp://b:1883"), "connected to tcp://b:1883, 12 queued");
  r.connected = false;
  r.live[0] = {"main_loop", false, "no turn for 6.0 s (stuck?)"};
  r.ready[0] = {"store", false, "cannot read the store (see the log)"};
  EXPECT_EQ(status_summary(r, "tcp://b:1883"),
            "connecting to tcp://b:1883, 12 queued; stuck: main_loop: no turn for 6.0 s (stuck?); "
            "not ready: store: cannot read the store (see the log)");
}

}  // namespace
}  // namespace outpost::common
