// The chaos suite's world: a broker, a relay, one collector on SQLite or several in one shared
// group on PostgreSQL, agents fed by a ledgered feeder and a direct simulated fleet, the faults a
// scenario throws at them, and the final reckoning.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "chaos/relay.h"
#include "support/postgres.h"
#include "support/process.h"

namespace outpost::chaos {

// Device groups: agents by delivery mode, the quota agent, and the simulator's direct fleet.
enum class Group { kEndToEnd, kAtLeastOnce, kFireAndForget, kQuota, kDirect };
std::string_view group_name(Group group);

// What a scenario demands of each group. An empty string means "must lose nothing"
// (beyond what an agent had not yet persisted when it was killed, and counted quota drops);
// otherwise losses are allowed, printed, and the string says why the design allows them.
struct Rules {
  std::string end_to_end;
  std::string at_least_once;
  std::string direct;
  std::string malformed;  // "": every malformed message the simulator sent is in the DLQ
  // > 0: at_least_once losses (beyond agent kill windows) are allowed only for readings the
  // feeder sent at most this long before a collector was killed or stopped (what its Paho had
  // taken and not journaled, or what was in flight to it); each such fault's loss is printed.
  std::chrono::milliseconds collector_window{0};
};

// One line of the printed table.
struct Row {
  Group group;
  std::string mode;
  int devices = 0;
  uint64_t sent = 0;            // readings handed over (socket took it / broker acked it)
  uint64_t refused = 0;         // agents only: sends refused because the agent was dead
  uint64_t stored = 0;          // distinct sent readings found in the collector's store
  uint64_t lost = 0;            // sent - stored
  uint64_t kill_window = 0;     // ...of which the agent had not persisted when killed
  uint64_t quota = 0;           // ...of which the agent counted as dropped by its quota policy
  uint64_t unexplained = 0;     // lost - kill_window - quota: the figure the rules judge
  uint64_t twice = 0;           // extra copies of a reading in the store
  uint64_t unexpected = 0;      // stored readings nobody sent
  uint64_t unacked_stored = 0;  // direct: stored batches the broker never acknowledged
  uint64_t malformed = 0;       // malformed messages sent (direct)
  uint64_t dlq = 0;             // DLQ entries on the group's topics
  std::string verdict;          // "ok", "allowed: ...", "FAIL: ..."
};

struct Report {
  std::vector<Row> rows;
  std::vector<std::string> failures;  // empty: the scenario passed
  std::string table;                  // what was printed
};

// A timed action of the controller; `at` is measured from the start of the load.
struct Event {
  std::chrono::milliseconds at;
  std::string what;
  std::function<void()> act;
};

struct WorldOptions {
  std::string scenario;
  uint64_t seed = 1;
  std::chrono::milliseconds load{25'000};  // how long the feeder and simulator send
  bool quota_agent = false;                // add an at_least_once agent with a 64 KiB quota
  bool broker_persistence = false;         // the broker's first start
  std::string gap_grace = {};              // the collector's [events] gap_grace; "" = default
  // The store: one collector on an SQLite file, or `collectors` collectors in one MQTT shared
  // group (mqtt.shared_group) committing to one PostgreSQL database (a throwaway cluster).
  bool postgres = false;
  int collectors = 1;                    // > 1 needs postgres
  bool collector_clean_session = false;  // the collectors' mqtt.clean_session
  // run() also judges the data-gap events (judge_gap_events) against the store. Several
  // collectors report gaps correctly only once one elected leader decides them.
  bool gap_events = false;
};

// Not thread-safe: one test thread calls everything (and starts every process, which matters
// for the children's parent-death signal); the feeder runs on its own thread inside run().
class World {
 public:
  using Clock = std::chrono::steady_clock;
  class Store;  // a read-only view of the collector's store, SQLite or PostgreSQL (world.cpp)
  explicit World(WorldOptions options);
  ~World();
  World(const World&) = delete;
  World& operator=(const World&) = delete;

  // Starts broker, relay, collector, agents; throws std::runtime_error if something
  // does not come up.
  void start();
  // Runs the load (feeder + simulator) while executing `events` at their times, then waits
  // until everything that can arrive has arrived, and judges the store against `rules`.
  Report run(std::vector<Event> events, const Rules& rules);

  // After run(): waits (up to `wait`) until the collector has no open sequence hole, then
  // compares the batches its data-gap events say are missing (data_gap minus
  // data_gap_resolved, and the devices table's gap counts) with the batches really missing
  // from the store (every seq from 1 to the highest stored that is not stored: devices count
  // seq on from 1 across boots). Returns the differences (empty: they match) and prints a
  // table.
  std::vector<std::string> judge_gap_events(std::chrono::milliseconds wait);

  // Controller actions, for scenarios to put in events. Each returns once done.
  std::size_t agent_count() const { return agents_.size(); }
  std::vector<std::size_t> agents_of(Group group) const;
  std::string agent_name(std::size_t i) const;
  void kill_agent(std::size_t i);   // SIGKILL, then reads what its store held
  void start_agent(std::size_t i);  // and waits until it takes input
  void kill_broker();               // SIGKILL
  void stop_broker();               // SIGTERM: a graceful stop (persistence saves)
  void start_broker(bool persistence);
  std::size_t collector_count() const { return collectors_.size(); }
  void kill_collector(std::size_t i = 0);   // SIGKILL
  void stop_collector(std::size_t i = 0);   // SIGTERM and wait: a graceful stop
  void start_collector(std::size_t i = 0);  // and waits until it has subscribed
  // The collector whose PostgreSQL session holds an advisory lock (the shared group's leader),
  // found through pg_locks and the session's client port; nullopt if none does.
  std::optional<std::size_t> lock_holder();
  void stop_postgres();   // a fast shutdown (SIGINT)
  void kill_postgres();   // SIGKILL of the postmaster
  void start_postgres();  // on the same port, and waits until it answers
  void cut_network() { relay_->cut(); }
  void stall_network() { relay_->stall(); }
  void heal_network() { relay_->heal(); }
  void cut_quota_agent() { quota_relay_->cut(); }
  void heal_quota_agent() { quota_relay_->heal(); }

  // A line of the timeline under the last event's (e.g. which collector an action chose).
  void note(const std::string& line) { timeline_.push_back("          " + line); }

  std::mt19937_64& rng() { return rng_; }
  const std::filesystem::path& dir() const { return dir_; }

 private:
  struct Agent;
  struct Collector;
  // A new view of the collector's store (SQLite file or PostgreSQL database).
  std::unique_ptr<Store> open_store() const;
  void write_collector_config(Collector& c);
  void write_agent_config(Agent& a);
  void feed_loop();
  void send_to(Agent& a, int fd);
  bool converged(std::string& why);
  struct Tally;
  void tally_agents(Tally& t);
  void tally_direct(Tally& t);
  void tally_dlq(Tally& t);
  Report judge(const Rules& rules);
  // The table, the timeline and the notes.
  std::string render(const Report& report, const Tally& t) const;
  std::string log_tail(const std::filesystem::path& file) const;

  WorldOptions options_;
  std::mt19937_64 rng_;
  std::filesystem::path dir_;
  std::unique_ptr<test_support::Mosquitto> broker_;  // its port stays for the whole run
  std::unique_ptr<Relay> relay_;
  std::unique_ptr<Relay> quota_relay_;
  std::unique_ptr<test_support::Postgres> postgres_;
  std::string dsn_;                     // postgres: the collectors' database
  std::filesystem::path collector_db_;  // sqlite
  std::vector<std::unique_ptr<Collector>> collectors_;
  // When a collector was killed or stopped (from the signal to its exit), and which: the
  // at_least_once window's reference.
  struct CollectorFault {
    Clock::time_point begin, end;
    std::size_t collector;
    std::string what;  // "kill -9", "SIGTERM"
  };
  std::vector<CollectorFault> collector_faults_;
  std::vector<std::unique_ptr<Agent>> agents_;
  std::unique_ptr<test_support::Process> sim_;
  std::filesystem::path manifest_;
  int sim_exit_ = -1;
  std::atomic<bool> feeding_{false};
  std::thread feeder_;
  Clock::time_point load_start_;
  std::vector<std::string> timeline_;
  bool keep_dir_ = false;  // a failed scenario keeps its work directory
};

// The seed for this run: OUTPOST_CHAOS_SEED if set, else a fixed default.
uint64_t chaos_seed();
// The load duration: OUTPOST_CHAOS_LOAD_SECONDS if set, else `fallback`.
std::chrono::milliseconds chaos_load(std::chrono::milliseconds fallback);

}  // namespace outpost::chaos
