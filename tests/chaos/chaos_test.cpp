// The chaos suite (ctest -L chaos): a fleet sends through agents and directly while a seeded
// controller kills and restarts the broker, the collector and agents, fills an agent's quota
// and cuts the network; then the store is compared with what was sent. See docs/chaos.md.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <random>

#include "chaos/world.h"

namespace outpost::chaos {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

constexpr milliseconds kDefaultLoad = 25s;

milliseconds uniform(std::mt19937_64& rng, milliseconds lo, milliseconds hi) {
  return milliseconds(std::uniform_int_distribution<int64_t>(lo.count(), hi.count())(rng));
}

// `count` seeded moments in [from, to), one in each equal slot, each leaving `room` before
// the slot ends: faults of one kind never overlap.
std::vector<milliseconds> moments(std::mt19937_64& rng, int count, milliseconds from,
                                  milliseconds to, milliseconds room) {
  std::vector<milliseconds> out;
  const milliseconds slot = (to - from) / count;
  for (int i = 0; i < count; ++i) {
    const milliseconds start = from + slot * i;
    out.push_back(uniform(rng, start, std::max(start, start + slot - room)));
  }
  return out;
}

uint64_t scenario_seed(const std::string& name) {
  return chaos_seed() ^ std::hash<std::string>{}(name);
}

// `count` SIGKILLs of a random e2e, alo or ff agent at seeded moments in [from, to), each
// restarted 50 ms - 1 s later.
void add_agent_kills(World& world, std::vector<Event>& events, int count, milliseconds from,
                     milliseconds to) {
  auto& rng = world.rng();
  std::vector<std::size_t> targets;
  for (Group g : {Group::kEndToEnd, Group::kAtLeastOnce, Group::kFireAndForget}) {
    for (std::size_t i : world.agents_of(g)) targets.push_back(i);
  }
  for (milliseconds at : moments(rng, count, from, to, 1200ms)) {
    const std::size_t i =
        targets[std::uniform_int_distribution<std::size_t>(0, targets.size() - 1)(rng)];
    const milliseconds down = uniform(rng, 50ms, 1000ms);
    events.push_back({at, "kill -9 " + world.agent_name(i), [&world, i] { world.kill_agent(i); }});
    events.push_back(
        {at + down, "restart " + world.agent_name(i), [&world, i] { world.start_agent(i); }});
  }
}

// The quota agent's link cut at a seeded moment for 8-10 s: long enough to fill its quota.
void add_quota_cut(World& world, std::vector<Event>& events) {
  auto& rng = world.rng();
  const milliseconds cut_at = uniform(rng, 2s, 5s);
  const milliseconds cut_for = uniform(rng, 8s, 10s);
  events.push_back({cut_at, "cut the quota agent's link", [&world] { world.cut_quota_agent(); }});
  events.push_back(
      {cut_at + cut_for, "heal the quota agent's link", [&world] { world.heal_quota_agent(); }});
}

// `count` faults at seeded moments in [from, to) (each leaving `room` before its slot ends),
// each repaired a seeded [down_lo, down_hi] later. The events' `at` are set here.
void add_fault_and_repair(std::mt19937_64& rng, std::vector<Event>& events, int count,
                          milliseconds from, milliseconds to, milliseconds room,
                          milliseconds down_lo, milliseconds down_hi, const Event& fault,
                          const Event& repair) {
  for (milliseconds at : moments(rng, count, from, to, room)) {
    const milliseconds down = uniform(rng, down_lo, down_hi);
    events.push_back({at, fault.what, fault.act});
    events.push_back({at + down, repair.what, repair.act});
  }
}

void expect_passed(const Report& report) {
  for (const auto& f : report.failures) ADD_FAILURE() << f;
  if (!report.failures.empty()) ADD_FAILURE() << report.table;
}

// Agents killed with SIGKILL at seeded moments and restarted; meanwhile one more agent's
// link is cut long enough to overflow its 64 KiB store quota. Nothing the agents persisted
// may be lost, in any delivery mode but fire_and_forget; the quota agent's losses must be
// exactly what it counted as dropped.
TEST(Chaos, AgentKillsAndAFullDiskQuota) {
  WorldOptions options{"agent_kills", scenario_seed("agent_kills"), chaos_load(kDefaultLoad),
                       /*quota_agent=*/true, /*broker_persistence=*/false};
  World world(options);
  world.start();
  std::vector<Event> events;
  add_agent_kills(world, events, 7, 1500ms, options.load - 3s);
  add_quota_cut(world, events);
  expect_passed(world.run(std::move(events), Rules{}));
}

// The network between devices and broker is cut (connections reset, port refused), the
// broker is stopped and restarted gracefully with persistence on, and at the end all traffic
// is dropped silently for a while (no reset). Nothing may be lost by
// end_to_end, at_least_once or the direct QoS 1 fleet; every malformed message is in the DLQ.
TEST(Chaos, NetworkCutsAndBrokerRestartsWithPersistence) {
  // The cuts and restarts take the usual load time; a silent drop long enough for the agents'
  // keepalive (5 s) to matter follows them, in 10 s of its own.
  const milliseconds base = chaos_load(kDefaultLoad);
  WorldOptions options{"network_cuts", scenario_seed("network_cuts"), base + 10s,
                       /*quota_agent=*/false, /*broker_persistence=*/true};
  World world(options);
  world.start();
  auto& rng = world.rng();
  std::vector<bool> cuts = {true, true, true, false, false};  // false: broker restart
  std::shuffle(cuts.begin(), cuts.end(), rng);
  const auto at = moments(rng, static_cast<int>(cuts.size()), 1500ms, base - 4s, 4s);
  std::vector<Event> events;
  for (std::size_t k = 0; k < cuts.size(); ++k) {
    if (cuts[k]) {
      const milliseconds d = uniform(rng, 1500ms, 4000ms);
      events.push_back({at[k], "cut the network", [&world] { world.cut_network(); }});
      events.push_back({at[k] + d, "heal the network", [&world] { world.heal_network(); }});
    } else {
      const milliseconds d = uniform(rng, 300ms, 2000ms);
      events.push_back({at[k], "stop the broker (SIGTERM)", [&world] { world.stop_broker(); }});
      events.push_back(
          {at[k] + d, "start the broker (persistence on)", [&world] { world.start_broker(true); }});
    }
  }
  // Nothing reset, nothing answered: sometimes the agents give up on their ping and
  // reconnect, sometimes traffic just resumes where it stopped.
  const milliseconds stall = uniform(rng, base, base + 1s);
  events.push_back({stall, "drop all traffic silently", [&world] { world.stall_network(); }});
  events.push_back({stall + uniform(rng, 4000ms, 8500ms), "let traffic through again",
                    [&world] { world.heal_network(); }});
  expect_passed(world.run(std::move(events), Rules{}));
}

// The broker is killed with SIGKILL at seeded moments and restarted, with `persistence`.
Report broker_kills(const std::string& name, bool persistence, const std::string& why) {
  WorldOptions options{name, scenario_seed(name), chaos_load(kDefaultLoad),
                       /*quota_agent=*/false, persistence};
  World world(options);
  world.start();
  std::vector<Event> events;
  add_fault_and_repair(
      world.rng(), events, 3, 1500ms, options.load - 4s, 3s, 300ms, 2500ms,
      {0ms, "kill -9 the broker", [&world] { world.kill_broker(); }},
      {0ms, std::string("start the broker (persistence ") + (persistence ? "on)" : "off)"),
       [&world, persistence] { world.start_broker(persistence); }});
  return world.run(std::move(events), Rules{"", why, why, why});
}

// Without persistence the broker forgets everything, the collector's session included.
// end_to_end loses nothing; at_least_once and direct losses are allowed and printed.
TEST(Chaos, BrokerKillsWithoutPersistence) {
  expect_passed(broker_kills(
      "broker_kills_volatile", false,
      "acked by the broker, then lost with it: no persistence, and no session for the collector "
      "until it subscribes again"));
}

// With persistence the broker reloads its last save (every second here) after a kill -9.
// end_to_end loses nothing; what the broker acked since its last save may be lost for
// at_least_once and direct, and is printed.
TEST(Chaos, BrokerKillsWithPersistence) {
  expect_passed(broker_kills(
      "broker_kills_persistent", true,
      "acked by the broker after its last save (mosquitto saves every autosave_interval, not per "
      "message), then lost with it"));
}

// The collector is killed with SIGKILL and restarted. Nothing is stored twice; end_to_end
// loses nothing; at_least_once and direct losses (Paho's window) are allowed and printed.
TEST(Chaos, CollectorKills) {
  WorldOptions options{"collector_kills", scenario_seed("collector_kills"),
                       chaos_load(kDefaultLoad), /*quota_agent=*/false,
                       /*broker_persistence=*/false};
  World world(options);
  world.start();
  std::vector<Event> events;
  add_fault_and_repair(world.rng(), events, 3, 1500ms, options.load - 4s, 3s, 100ms, 2000ms,
                       {0ms, "kill -9 the collector", [&world] { world.kill_collector(); }},
                       {0ms, "restart the collector", [&world] { world.start_collector(); }});
  const std::string why = "acked by the collector's Paho before it was journaled (docs/storage.md)";
  expect_passed(world.run(std::move(events), Rules{"", why, why, why}));
}

// The events that tell an operator something was lost: with at_least_once agents (delivery
// set explicitly), the broker killed without persistence (it loses what it acked) and the
// collector killed (re-sends of stored batches arrive with newer ones after its restart), the
// batches the data-gap events call missing (data_gap minus data_gap_resolved, and the devices
// table's counts) must be exactly the batches missing from the store: no gap for a stored
// batch, none missed, whatever the restarts did to the holes in between.
TEST(Chaos, GapEventsNameExactlyTheMissingBatches) {
  WorldOptions options{"gap_events", scenario_seed("gap_events"), chaos_load(kDefaultLoad),
                       /*quota_agent=*/false, /*broker_persistence=*/false};
  options.gap_grace = "2s";  // short, so that late re-sends resolve reported gaps too
  World world(options);
  world.start();
  auto& rng = world.rng();
  std::vector<bool> broker = {true, true, true, false, false};  // false: collector kill
  std::shuffle(broker.begin(), broker.end(), rng);
  const auto at = moments(rng, static_cast<int>(broker.size()), 1500ms, options.load - 4s, 2500ms);
  std::vector<Event> events;
  for (std::size_t k = 0; k < broker.size(); ++k) {
    if (broker[k]) {
      events.push_back({at[k], "kill -9 the broker", [&world] { world.kill_broker(); }});
      events.push_back({at[k] + uniform(rng, 300ms, 2000ms), "start the broker (persistence off)",
                        [&world] { world.start_broker(false); }});
    } else {
      events.push_back({at[k], "kill -9 the collector", [&world] { world.kill_collector(); }});
      events.push_back({at[k] + uniform(rng, 100ms, 1500ms), "restart the collector",
                        [&world] { world.start_collector(); }});
    }
  }
  const std::string why = "broker kills without persistence and collector kills";
  expect_passed(world.run(std::move(events), Rules{"", why, why, why}));
  for (const auto& f : world.judge_gap_events(15s)) ADD_FAILURE() << f;
}

// All of it in one run: agents killed, the collector and the broker (persistence on) killed,
// the network cut, the broker restarted, a quota filled. Broker and collector faults take
// turns (a collector restart waits for a broker), agent kills fall anywhere. end_to_end
// must still lose nothing and nothing may be stored twice.
TEST(Chaos, EverythingAtOnce) {
  WorldOptions options{"everything", scenario_seed("everything"), chaos_load(kDefaultLoad),
                       /*quota_agent=*/true, /*broker_persistence=*/true};
  World world(options);
  world.start();
  auto& rng = world.rng();
  std::vector<Event> events;
  enum class Infra { kBrokerKill, kBrokerRestart, kCollectorKill, kCut };
  std::vector<Infra> infra = {Infra::kBrokerKill,    Infra::kBrokerKill, Infra::kCollectorKill,
                              Infra::kCollectorKill, Infra::kCut,        Infra::kBrokerRestart};
  std::shuffle(infra.begin(), infra.end(), rng);
  const auto infra_at =
      moments(rng, static_cast<int>(infra.size()), 1500ms, options.load - 4s, 2800ms);
  for (std::size_t k = 0; k < infra.size(); ++k) {
    const milliseconds at = infra_at[k];
    switch (infra[k]) {
      case Infra::kBrokerKill:
        events.push_back({at, "kill -9 the broker", [&world] { world.kill_broker(); }});
        events.push_back({at + uniform(rng, 300ms, 2000ms), "start the broker (persistence on)",
                          [&world] { world.start_broker(true); }});
        break;
      case Infra::kBrokerRestart:
        events.push_back({at, "stop the broker (SIGTERM)", [&world] { world.stop_broker(); }});
        events.push_back({at + uniform(rng, 300ms, 2000ms), "start the broker (persistence on)",
                          [&world] { world.start_broker(true); }});
        break;
      case Infra::kCollectorKill:
        events.push_back({at, "kill -9 the collector", [&world] { world.kill_collector(); }});
        events.push_back({at + uniform(rng, 100ms, 1500ms), "restart the collector",
                          [&world] { world.start_collector(); }});
        break;
      case Infra::kCut:
        events.push_back({at, "cut the network", [&world] { world.cut_network(); }});
        events.push_back({at + uniform(rng, 1000ms, 2500ms), "heal the network",
                          [&world] { world.heal_network(); }});
        break;
    }
  }
  add_agent_kills(world, events, 5, 2000ms, options.load - 3s);
  add_quota_cut(world, events);
  const std::string why = "broker and collector kills (see the scenarios of one fault each)";
  expect_passed(world.run(std::move(events), Rules{"", why, why, why}));
}

// Shared mode: three collectors in one MQTT shared group ($share/chaos/...: mosquitto hands
// each message to one member, round-robin, so every device's messages spread over all three)
// commit to one PostgreSQL database. Their gap events are judged once one elected leader
// decides them (kSharedGapEvents); until then each member sees a third of every device's
// sequence and reports gaps that are not.
constexpr bool kSharedGapEvents = true;
constexpr milliseconds kSharedLoad = 18s;
// at_least_once readings may be lost only if sent this long before a collector was killed
// or stopped: what its Paho had taken and not journaled, or what was in flight to it. The
// agents flush every 200 ms and seal after 100 ms, so a reading reaches the collector about
// 0.3 s after it was sent; what each fault lost is printed.
constexpr milliseconds kCollectorWindow = 1500ms;

// Skips the scenario, saying why, where PostgreSQL's binaries are not installed.
#define OUTPOST_REQUIRE_POSTGRES()                                        \
  do {                                                                    \
    std::string why;                                                      \
    if (!test_support::Postgres::find_binaries(why)) GTEST_SKIP() << why; \
  } while (false)

WorldOptions shared_options(const std::string& name) {
  WorldOptions options{name, scenario_seed(name), chaos_load(kSharedLoad), /*quota_agent=*/false,
                       /*broker_persistence=*/false};
  options.postgres = true;
  options.collectors = 3;
  options.gap_events = kSharedGapEvents;
  return options;
}

// Kills the collector that holds the PostgreSQL advisory lock (the group's leader) if one
// does, else collector `fallback`; `killed` says which, for the restart.
Event kill_leader_or(World& world, milliseconds at, std::size_t fallback,
                     const std::shared_ptr<std::size_t>& killed) {
  return {
      at, "kill -9 the leader (lock holder) or a collector", [&world, fallback, killed] {
        const auto holder = world.lock_holder();
        *killed = holder.value_or(fallback);
        world.note("-> chaos-collector-" + std::to_string(*killed + 1) +
                   (holder ? " (holds the advisory lock)" : " (no lock holder: seeded choice)"));
        world.kill_collector(*killed);
      }};
}

// Three collectors share the fleet; under load one is killed with SIGKILL (the leader, if a
// collector holds the advisory lock) and restarted, later another one. Their sessions are
// persistent, so the broker keeps a dead member's share until it is back. end_to_end loses
// nothing; at_least_once only what was sent just before a kill (printed per kill); nothing
// stored twice; every malformed message in the DLQ.
TEST(Chaos, PostgresThreeCollectorsKillNine) {
  OUTPOST_REQUIRE_POSTGRES();
  WorldOptions options = shared_options("pg_three_collectors_kill");
  World world(options);
  world.start();
  auto& rng = world.rng();
  std::vector<Event> events;
  const auto at = moments(rng, 2, 2000ms, options.load - 3s, 4000ms);
  const std::size_t n = world.collector_count();
  auto first = std::make_shared<std::size_t>(0);
  events.push_back(kill_leader_or(
      world, at[0], std::uniform_int_distribution<std::size_t>(0, n - 1)(rng), first));
  events.push_back({at[0] + uniform(rng, 1000ms, 3000ms), "restart it",
                    [&world, first] { world.start_collector(*first); }});
  const std::size_t second = std::uniform_int_distribution<std::size_t>(0, n - 1)(rng);
  events.push_back({at[1], "kill -9 chaos-collector-" + std::to_string(second + 1),
                    [&world, second] { world.kill_collector(second); }});
  events.push_back({at[1] + uniform(rng, 500ms, 2000ms),
                    "restart chaos-collector-" + std::to_string(second + 1),
                    [&world, second] { world.start_collector(second); }});
  Rules rules;
  rules.at_least_once = "sent just before a collector kill: acked by its Paho, not yet journaled";
  rules.direct = "acked by the killed collector's Paho before it was journaled (docs/storage.md)";
  rules.collector_window = kCollectorWindow;
  expect_passed(world.run(std::move(events), rules));
}

// Three collectors share the fleet; one is stopped with SIGTERM under load and never comes
// back: the other two carry the fleet. The members use clean sessions: a persistent session
// of a member that is gone would keep receiving its share of the messages (mosquitto 2.0 hands
// a shared subscription's messages to offline persistent members too), for nobody. Same rules
// as the kills.
TEST(Chaos, PostgresCollectorStoppedForGood) {
  OUTPOST_REQUIRE_POSTGRES();
  WorldOptions options = shared_options("pg_collector_stopped");
  options.collector_clean_session = true;
  World world(options);
  world.start();
  auto& rng = world.rng();
  const std::size_t gone =
      std::uniform_int_distribution<std::size_t>(0, world.collector_count() - 1)(rng);
  const milliseconds at = uniform(rng, 3000ms, options.load / 2);
  std::vector<Event> events;
  events.push_back({at, "stop chaos-collector-" + std::to_string(gone + 1) + " (SIGTERM), for good",
                    [&world, gone] { world.stop_collector(gone); }});
  Rules rules;
  rules.at_least_once = "in flight to the collector that stopped";
  rules.direct = "in flight to the collector that stopped";
  rules.collector_window = kCollectorWindow;
  expect_passed(world.run(std::move(events), rules));
}

// Three collectors share the fleet and PostgreSQL goes away under load: a fast shutdown and
// restart, then a SIGKILL of the postmaster and restart. Intake pauses (every collector
// retries its transaction; its bounded queue holds the rest); nothing is lost, in any mode
// but fire_and_forget, nothing stored twice, every malformed message in the DLQ.
TEST(Chaos, PostgresRestartsUnderThreeCollectors) {
  OUTPOST_REQUIRE_POSTGRES();
  WorldOptions options = shared_options("pg_restarts");
  World world(options);
  world.start();
  std::vector<Event> events;
  auto& rng = world.rng();
  const auto at = moments(rng, 2, 2000ms, options.load - 3s, 3500ms);
  events.push_back({at[0], "stop PostgreSQL (fast shutdown)", [&world] { world.stop_postgres(); }});
  events.push_back({at[0] + uniform(rng, 1000ms, 3000ms), "start PostgreSQL",
                    [&world] { world.start_postgres(); }});
  events.push_back({at[1], "kill -9 PostgreSQL", [&world] { world.kill_postgres(); }});
  events.push_back({at[1] + uniform(rng, 500ms, 2000ms), "start PostgreSQL",
                    [&world] { world.start_postgres(); }});
  expect_passed(world.run(std::move(events), Rules{}));
}

}  // namespace
}  // namespace outpost::chaos
