// The chaos suite's world: processes, the ledgered feeder, the controller's actions, and the
// comparison of the collector's store with what was sent.
#include "chaos/world.h"

#include <libpq-fe.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>

#include "outpost/common/clock.h"
#include "outpost/common/codec.h"
#include "outpost/common/sqlite.h"
#include "outpost/common/topics.h"
#include "outpost/sim/faults.h"
#include "support/daemons.h"
#include "support/manifest.h"

namespace outpost::chaos {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using test_support::Process;
using test_support::wait_until;
using Clock = std::chrono::steady_clock;

constexpr int kLinesPerDatagram = 10;
constexpr auto kFeedPeriod = 20ms;    // 10 readings every 20 ms: 500 readings/s per agent
constexpr int kQuotaMaxInflight = 4;  // few messages in flight: few evicted in flight
constexpr int kMaxReadingsPerMessage = 50;
constexpr int kDirectDevices = 6;
// The floor (docs/chaos.md): a device or a group that stored less than this share of what it
// sent fails, whatever losses the rules allow, and so does one that sent nothing. Allowed
// losses are the windows of faults, never most of a run: a run that stored little cannot pass
// by accident. fire_and_forget (QoS 0) has a lower one: a backlog an agent hands to a
// restarted broker before the collector has subscribed again is lost whole.
constexpr double kFloor = 0.25;
constexpr double kFireAndForgetFloor = 0.10;

using test_support::prometheus_sample;

std::string scrape_metrics(int port) {
  const std::string r = test_support::http_get(port, "/metrics");
  const auto body = r.find("\r\n\r\n");
  return body == std::string::npos ? std::string() : "\n" + r.substr(body + 4);
}

// A read-only view of an SQLite file; every query returns rows of int64 columns.
class Db {
 public:
  explicit Db(const fs::path& path, bool writable = false) {
    if (sqlite3_open_v2(path.c_str(), &db_, writable ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY,
                        nullptr) != SQLITE_OK) {
      sqlite3_close(db_);
      db_ = nullptr;
    }
    if (db_) sqlite3_busy_timeout(db_, 5000);
  }
  ~Db() { sqlite3_close(db_); }
  bool ok() const { return db_ != nullptr; }
  // Calls `row` with the statement at each result row.
  bool each(const std::string& sql, const std::function<void(common::sqlite::Statement&)>& row,
            const std::string& bind_text = "") {
    if (!db_) return false;
    common::sqlite::Statement s(db_, sql);
    if (!s.ok()) return false;
    if (!bind_text.empty()) s.bind(1, bind_text);
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) row(s);
    return rc == SQLITE_DONE;
  }
  int64_t one(const std::string& sql) {
    int64_t v = -1;
    each(sql, [&](common::sqlite::Statement& s) { v = s.integer(0); });
    return v;
  }

 private:
  sqlite3* db_ = nullptr;
};

}  // namespace

// A read-only view of the collector's store. The reckoning's SQL runs on both schemas where
// they agree (`$1` is the one parameter, for SQLite too); where they differ (readings keep
// integers in `value` on SQLite and `value_int` on PostgreSQL; a batch's rows are a rowid range
// on SQLite and a batch id on PostgreSQL) the caller picks by postgres().
class World::Store {
 public:
  // One result row, as text cells (nullopt: NULL), whichever the backend: the reckoning's
  // lambdas read it as they read an SQLite statement.
  struct Row {
    std::vector<std::optional<std::string>> cells;
    bool is_null(int i) const { return !cells.at(i); }
    std::string text(int i) const { return cells.at(i).value_or(""); }
    int64_t integer(int i) const {
      const std::string t = text(i);
      int64_t v = 0;
      std::from_chars(t.data(), t.data() + t.size(), v);
      return v;
    }
  };
  virtual ~Store() = default;
  virtual bool postgres() const = 0;
  // Calls `row` for each result row; false if the query failed.
  virtual bool each(const std::string& sql, const std::function<void(const Row&)>& row,
                    const std::string& bind_text = "") = 0;
  int64_t one(const std::string& sql) {
    int64_t v = -1;
    each(sql, [&](const Row& r) { v = r.integer(0); });
    return v;
  }
};

namespace {

class SqliteStore : public World::Store {
 public:
  using Row = World::Store::Row;
  explicit SqliteStore(const fs::path& path) : db_(path) {}
  bool postgres() const override { return false; }
  bool each(const std::string& sql, const std::function<void(const Row&)>& row,
            const std::string& bind_text) override {
    return db_.each(
        sql,
        [&](common::sqlite::Statement& s) {
          Row r;
          const int n = sqlite3_column_count(s.get());
          for (int i = 0; i < n; ++i) {
            r.cells.push_back(s.is_null(i) ? std::nullopt : std::optional(s.text(i)));
          }
          row(r);
        },
        bind_text);
  }

 private:
  Db db_;
};

class PostgresStore : public World::Store {
 public:
  using Row = World::Store::Row;
  explicit PostgresStore(const std::string& dsn) {
    const std::string conninfo = dsn + " connect_timeout=5";
    conn_ = PQconnectdb(conninfo.c_str());
    if (PQstatus(conn_) != CONNECTION_OK) {
      PQfinish(conn_);
      conn_ = nullptr;
    }
  }
  ~PostgresStore() override {
    if (conn_) PQfinish(conn_);
  }
  bool postgres() const override { return true; }
  bool each(const std::string& sql, const std::function<void(const Row&)>& row,
            const std::string& bind_text) override {
    if (!conn_) return false;
    const char* param = bind_text.c_str();
    PGresult* res = PQexecParams(conn_, sql.c_str(), bind_text.empty() ? 0 : 1, nullptr,
                                 bind_text.empty() ? nullptr : &param, nullptr, nullptr, 0);
    const bool ok = PQresultStatus(res) == PGRES_TUPLES_OK;
    if (ok) {
      for (int i = 0; i < PQntuples(res); ++i) {
        Row r;
        for (int j = 0; j < PQnfields(res); ++j) {
          r.cells.push_back(PQgetisnull(res, i, j)
                                ? std::nullopt
                                : std::optional<std::string>(PQgetvalue(res, i, j)));
        }
        row(r);
      }
    }
    PQclear(res);
    return ok;
  }

 private:
  PGconn* conn_ = nullptr;
};

// One device of the simulator's manifest, as the reckoning uses it.
struct ManifestDevice {
  std::set<std::pair<uint64_t, uint64_t>> seqs;  // valid (epoch, seq) acknowledged
  std::map<std::string, uint64_t> numbers;       // readings_sent, malformed kinds, ...
};

std::map<std::string, ManifestDevice> read_manifest(const fs::path& path) {
  std::map<std::string, ManifestDevice> out;
  for (const auto& [device, d] : test_support::read_manifest(path)) {
    out[device] = {d.seqs(), d.numbers};
  }
  return out;
}

std::string fmt_ms(std::chrono::milliseconds d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%6.2f s", static_cast<double>(d.count()) / 1000.0);
  return buf;
}

// argv run so that the child gets SIGKILL when the test process dies, even by SIGKILL (a
// ctest timeout, a sanitizer abort): no broker, agent or collector outlives a run. setpriv is
// util-linux's, always on Debian; the parent-death signal is the forking thread's, and every
// process here is started from the test's main thread.
std::vector<std::string> dies_with_us(std::vector<std::string> argv) {
  static const bool have_setpriv = ::access("/usr/bin/setpriv", X_OK) == 0;
  if (have_setpriv) argv.insert(argv.begin(), {"/usr/bin/setpriv", "--pdeathsig", "KILL", "--"});
  return argv;
}

}  // namespace

std::string_view group_name(Group group) {
  switch (group) {
    case Group::kEndToEnd:
      return "agents e2e";
    case Group::kAtLeastOnce:
      return "agents alo";
    case Group::kFireAndForget:
      return "agents ff";
    case Group::kQuota:
      return "agent quota";
    case Group::kDirect:
      return "sim direct";
  }
  return "?";
}

uint64_t chaos_seed() {
  if (const char* s = std::getenv("OUTPOST_CHAOS_SEED"); s && *s)
    return std::strtoull(s, nullptr, 0);
  return 20240611;
}

std::chrono::milliseconds chaos_load(std::chrono::milliseconds fallback) {
  if (const char* s = std::getenv("OUTPOST_CHAOS_LOAD_SECONDS"); s && *s) {
    return std::chrono::milliseconds(static_cast<int64_t>(std::strtod(s, nullptr) * 1000));
  }
  return fallback;
}

// One agent process and the ledger of what was fed to it. Each run of the process is a
// "life"; readings are numbered 0, 1, 2, ... per agent, in the order the socket took them.
struct World::Agent {
  std::string name;  // device id
  Group group;
  std::string delivery;
  fs::path config, db, socket, log;
  int metrics_port = 0;
  Relay* relay = nullptr;
  std::unique_ptr<Process> process;

  // Held by the feeder while it sends and by the controller while it kills or starts the
  // process: a datagram the socket took belongs to exactly one life.
  std::mutex mu;
  int64_t next = 0;  // index of the next reading to send
  struct Life {
    int64_t base = 0;  // first reading index sent to this life
    int64_t end = -1;  // one past the last (set when killed or at the end)
    bool killed = false;
    int64_t persisted = 0;  // outpost_agent_persisted_total scraped just before the kill
    int64_t held_max = -1;  // highest index its store held right after the kill
    uint64_t held = 0;      // readings of this life its store held then
  };
  std::vector<Life> lives;
  uint64_t refused = 0;  // readings whose datagram the socket refused (agent dead)
  uint64_t blocked = 0;  // readings not sent because the socket buffer was full (retried)
  std::string final_metrics;
  // When each datagram was sent (index: reading / kLinesPerDatagram), for the at_least_once
  // window around collector faults.
  std::vector<Clock::time_point> sent_at;
};

// One outpost-collector process of the shared group (or the only one).
struct World::Collector {
  std::string client_id;
  fs::path config, log, journal;
  int metrics_port = 0;
  std::unique_ptr<Process> process;
};

World::World(WorldOptions options) : options_(std::move(options)), rng_(options_.seed) {
  dir_ = fs::temp_directory_path() /
         ("outpost_chaos_" + std::to_string(::getpid()) + "_" + options_.scenario);
  fs::remove_all(dir_);
  fs::create_directories(dir_ / "broker");
  // mosquitto started as root drops to its own user: it must be able to write its store.
  fs::permissions(dir_ / "broker", fs::perms::all);
  manifest_ = dir_ / "manifest.json";
}

World::~World() {
  feeding_ = false;
  if (feeder_.joinable()) feeder_.join();
  sim_.reset();
  agents_.clear();
  collectors_.clear();
  postgres_.reset();
  relay_.reset();
  quota_relay_.reset();
  broker_.reset();
  if (!keep_dir_ && !std::getenv("OUTPOST_CHAOS_KEEP")) fs::remove_all(dir_);
}

std::vector<std::size_t> World::agents_of(Group group) const {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < agents_.size(); ++i) {
    if (agents_[i]->group == group) out.push_back(i);
  }
  return out;
}

std::string World::agent_name(std::size_t i) const { return agents_.at(i)->name; }

std::string World::log_tail(const fs::path& file) const {
  const std::string text = test_support::read_text(file);
  return text.size() > 3000 ? "..." + text.substr(text.size() - 3000) : text;
}

void World::start_broker(bool persistence) {
  if (!broker_) {
    test_support::Mosquitto::Options o;
    // Saved every second: what a kill -9 of a persistent broker can lose is the last second.
    o.extra_config = "autosave_interval 1\n";
    // Run as root when started as root (the fixture's config says "user root"): dropping to
    // its own user would also clear the parent-death signal.
    o.launcher = dies_with_us({});
    broker_ = std::make_unique<test_support::Mosquitto>(dir_ / "broker", o);
  }
  broker_->set_persistence(persistence);
  broker_->start();  // throws with the broker's log if it does not come up
}

void World::kill_broker() {
  if (broker_) broker_->kill();
}

void World::stop_broker() {
  if (broker_) broker_->stop(15s);
}

void World::start_collector(std::size_t i) {
  Collector& c = *collectors_.at(i);
  std::string error;
  c.process = test_support::start_outpost_collector(
      dies_with_us({OUTPOST_COLLECTOR_BIN, "--config", c.config.string()}), c.config, c.log,
      c.metrics_port, error);
  if (!c.process) throw std::runtime_error(c.client_id + " did not subscribe: " + error);
}

void World::kill_collector(std::size_t i) {
  Collector& c = *collectors_.at(i);
  const auto begin = Clock::now();
  if (c.process) c.process->stop(SIGKILL);
  c.process.reset();
  collector_faults_.push_back({begin, Clock::now(), i, "kill -9"});
}

void World::stop_collector(std::size_t i) {
  Collector& c = *collectors_.at(i);
  const auto begin = Clock::now();
  if (c.process) c.process->stop(SIGTERM, 30s);
  c.process.reset();
  collector_faults_.push_back({begin, Clock::now(), i, "SIGTERM"});
}

std::optional<std::size_t> World::lock_holder() {
  if (!postgres_ || !postgres_->running()) return std::nullopt;
  // Any advisory lock but the schema migration's (key 0x6f7574706f7374, held for a moment
  // while a collector starts): pg_locks shows a bigint key as classid (high 32 bits) and objid.
  std::string ports;
  try {
    ports = postgres_->sql("postgres",
                           "SELECT a.client_port FROM pg_locks l JOIN pg_stat_activity a ON "
                           "a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted AND "
                           "a.client_port IS NOT NULL AND NOT (l.classid = 7304564 AND "
                           "l.objid = 1886352244)");
  } catch (const std::exception&) {
    return std::nullopt;
  }
  std::istringstream in(ports);
  for (int port; in >> port;) {
    for (std::size_t i = 0; i < collectors_.size(); ++i) {
      const auto& p = collectors_[i]->process;
      if (!p) continue;
      const auto held = test_support::connected_tcp_ports(p->pid());
      if (std::find(held.begin(), held.end(), port) != held.end()) return i;
    }
  }
  return std::nullopt;
}

void World::stop_postgres() {
  if (postgres_) postgres_->stop();
}

void World::kill_postgres() {
  if (postgres_) postgres_->kill();
}

void World::start_postgres() {
  if (postgres_) postgres_->start();
}

std::unique_ptr<World::Store> World::open_store() const {
  if (options_.postgres) return std::make_unique<PostgresStore>(dsn_);
  return std::make_unique<SqliteStore>(collector_db_);
}

void World::write_collector_config(Collector& c) {
  std::ostringstream storage;
  if (options_.postgres) {
    storage << "kind = \"postgres\"\ndsn = \"" << dsn_ << "\"\njournal_dir = \""
            << c.journal.string() << "\"\n";
  } else {
    storage << "path = \"" << collector_db_.string() << "\"\n";
  }
  std::ofstream(c.config) << "[mqtt]\nbroker = \"" << broker_->uri() << "\"\nclient_id = \""
                          << c.client_id << "\"\n"
                          << "reconnect_min = \"100ms\"\nreconnect_max = \"1s\"\n"
                          << (options_.collectors > 1 ? "shared_group = \"chaos\"\n" : "")
                          << (options_.collector_clean_session ? "clean_session = true\n" : "")
                          << "[storage]\n"
                          << storage.str() << "commit_interval = \"50ms\"\n"
                          << (options_.gap_grace.empty()
                                  ? std::string()
                                  : "[events]\ngap_grace = \"" + options_.gap_grace + "\"\n")
                          << "[metrics]\nlisten = \"127.0.0.1:0\"\n";
}

void World::write_agent_config(Agent& a) {
  const bool quota = a.group == Group::kQuota;
  std::ofstream(a.config)
      << "[device]\nsite = \"chaos\"\nid = \"" << a.name << "\"\n"
      << "[inputs]\nudp_listen = \"\"\nunix_socket = \"" << a.socket.string() << "\"\n"
      << "timestamp_precision = \"us\"\n"
      << "[store]\npath = \"" << a.db.string() << "\"\n"
      << "flush_interval = \"200ms\"\n"  // the documented default kill -9 window
      << (quota ? "max_bytes = \"64KiB\"\npolicy = \"drop_oldest\"\n" : "")
      << "[batch]\nmax_readings = " << kMaxReadingsPerMessage << "\nmax_delay = \"100ms\"\n"
      << "[mqtt]\nbroker = \"" << a.relay->uri() << "\"\n"
      << "keepalive = \"5s\"\nreconnect_min = \"100ms\"\nreconnect_max = \"1s\"\n"
      << "data_delivery = \"" << a.delivery << "\"\n"
      << "ack_timeout = \"3s\"\n"
      << (quota ? "max_inflight = " + std::to_string(kQuotaMaxInflight) + "\n" : "")
      << "[system]\ninterval = \"0s\"\n"
      << "[metrics]\nlisten = \"127.0.0.1:0\"\n";  // start_agent reads back the port
}

void World::start() {
  start_broker(options_.broker_persistence);
  relay_ = std::make_unique<Relay>(broker_->port());
  if (options_.quota_agent) quota_relay_ = std::make_unique<Relay>(broker_->port());

  if (options_.collectors > 1 && !options_.postgres) {
    throw std::runtime_error("several collectors need the postgres store");
  }
  if (options_.postgres) {
    postgres_ = std::make_unique<test_support::Postgres>(dir_ / "pg");
    postgres_->start();
    postgres_->create_database("outpost");
    dsn_ = postgres_->dsn("outpost");
  } else {
    collector_db_ = dir_ / "collector.db";
  }
  for (int k = 1; k <= options_.collectors; ++k) {
    auto c = std::make_unique<Collector>();
    // One collector keeps the names it always had; a group's members are numbered.
    const std::string suffix = options_.collectors > 1 ? "-" + std::to_string(k) : "";
    c->client_id = "chaos-collector" + suffix;
    c->config = dir_ / ("collector" + suffix + ".toml");
    c->log = dir_ / ("collector" + suffix + ".log");
    c->journal = dir_ / ("journal" + suffix);
    if (options_.postgres) fs::create_directories(c->journal);
    write_collector_config(*c);
    collectors_.push_back(std::move(c));
  }
  for (std::size_t i = 0; i < collectors_.size(); ++i) start_collector(i);

  auto add = [&](Group g, const std::string& delivery, const std::string& name) {
    auto a = std::make_unique<Agent>();
    a->name = "chaos-" + name;
    a->group = g;
    a->delivery = delivery;
    a->config = dir_ / (name + ".toml");
    a->db = dir_ / (name + ".db");
    a->socket = dir_ / (name + ".sock");
    a->log = dir_ / (name + ".log");
    a->relay = g == Group::kQuota ? quota_relay_.get() : relay_.get();
    write_agent_config(*a);
    agents_.push_back(std::move(a));
  };
  add(Group::kEndToEnd, "end_to_end", "e2e-1");
  add(Group::kEndToEnd, "end_to_end", "e2e-2");
  add(Group::kAtLeastOnce, "at_least_once", "alo-1");
  add(Group::kAtLeastOnce, "at_least_once", "alo-2");
  add(Group::kFireAndForget, "fire_and_forget", "ff-1");
  if (options_.quota_agent) add(Group::kQuota, "at_least_once", "quota-1");
  for (std::size_t i = 0; i < agents_.size(); ++i) start_agent(i);
}

void World::start_agent(std::size_t i) {
  Agent& a = *agents_.at(i);
  // Each try is a life of its own: one whose metrics port was taken (it exits, counted in
  // taken_port_reports) may have taken datagrams before it died, a kill window like any other.
  constexpr int kAttempts = 20;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    const auto ports = test_support::assign_ports(a.config, test_support::kAgentPorts);
    const std::size_t ready_before = test_support::count_in_file(a.log, test_support::kAgentReady);
    const std::size_t taken_before = test_support::taken_port_reports(a.log);
    {
      std::lock_guard lock(a.mu);
      a.lives.push_back({});
      a.lives.back().base = a.next;
      a.metrics_port = ports.at("listen");
      a.process = std::make_unique<Process>(
          dies_with_us({OUTPOST_AGENT_BIN, "--config", a.config.string()}), a.log);
    }
    // Ready once it says it started: its inputs and metrics endpoint are bound by then. The
    // feeder is not held off meanwhile: what it sends before the socket is bound is refused.
    std::string error;
    if (test_support::wait_logged(*a.process, a.log, test_support::kAgentReady, ready_before, 15s,
                                  error) &&
        test_support::holds_ports(a.process->pid(), test_support::kAgentPorts, ports)) {
      return;
    }
    {
      std::lock_guard lock(a.mu);
      a.process->stop(SIGKILL);
      a.process.reset();
      a.lives.back().end = a.next;
      a.lives.back().killed = true;
    }
    if (test_support::taken_port_reports(a.log) == taken_before) {
      throw std::runtime_error(a.name + " did not start: " + error);
    }
  }
  throw std::runtime_error(a.name + ": its metrics port was taken " + std::to_string(kAttempts) +
                           " times");
}

void World::kill_agent(std::size_t i) {
  Agent& a = *agents_.at(i);
  std::lock_guard lock(a.mu);
  if (!a.process) throw std::runtime_error(a.name + " is not running");
  Agent::Life& life = a.lives.back();
  // The feeder is held off: what this scrape says was persisted is a lower bound at the kill.
  life.persisted = static_cast<int64_t>(
      prometheus_sample(scrape_metrics(a.metrics_port), "outpost_agent_persisted_total")
          .value_or(0));
  a.process->stop(SIGKILL);
  a.process.reset();
  life.end = a.next;
  life.killed = true;
  // What the store held at the kill: queued items and sealed messages not yet removed.
  Db store(a.db, /*writable=*/true);  // WAL recovery needs write access; the agent is dead
  auto note = [&](int64_t v) {
    if (v < life.base || v >= life.end) return;
    ++life.held;
    life.held_max = std::max(life.held_max, v);
  };
  store.each("SELECT value FROM items WHERE name = 'chaos' AND typeof(value) = 'integer'",
             [&](auto& s) { note(s.integer(0)); });
  store.each("SELECT payload FROM outbox WHERE stream = 0", [&](auto& s) {
    const std::vector<uint8_t> payload = s.bytes(0);
    auto env = common::decode(std::span(payload));
    if (!env.ok()) return;
    const auto* batch = std::get_if<common::ReadingBatch>(&env.value().body);
    if (!batch) return;
    for (const auto& r : batch->readings) {
      if (const auto* v = std::get_if<int64_t>(&r.value)) note(*v);
    }
  });
}

void World::send_to(Agent& a, int fd) {
  std::lock_guard lock(a.mu);
  std::string datagram;
  const int64_t now = common::wall_now_us();
  for (int i = 0; i < kLinesPerDatagram; ++i) {
    datagram += "chaos value=" + std::to_string(a.next + i) + "i " + std::to_string(now) + "\n";
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, a.socket.c_str(), sizeof addr.sun_path - 1);
  const ssize_t n = ::sendto(fd, datagram.data(), datagram.size(), MSG_DONTWAIT,
                             reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  if (n == static_cast<ssize_t>(datagram.size())) {
    a.next += kLinesPerDatagram;
    a.sent_at.push_back(Clock::now());
  } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
    a.blocked += kLinesPerDatagram;  // the same readings go in the next datagram
  } else {
    a.refused += kLinesPerDatagram;  // no agent on the socket: the sender sees it
  }
}

void World::feed_loop() {
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  auto next = Clock::now();
  while (feeding_) {
    for (auto& a : agents_) send_to(*a, fd);
    next += kFeedPeriod;
    std::this_thread::sleep_until(next);  // the load's pace, not a synchronisation
  }
  ::close(fd);
}

bool World::converged(std::string& why) {
  if (sim_ && sim_->running()) {
    why = "the simulator is still running";
    return false;
  }
  // On PostgreSQL a transaction can be retried for seconds (a server restart, a deadlock
  // between members of the group) while the store stands still: every running collector must
  // have committed every message it received (journaled, replayed included).
  for (const auto& c : collectors_) {
    if (!options_.postgres || !c->process) continue;
    const std::string m = scrape_metrics(c->metrics_port);
    const auto received = prometheus_sample(m, "outpost_collector_received_total");
    const auto committed = prometheus_sample(m, "outpost_collector_commit_messages_total");
    if (!received || !committed || *received != *committed) {
      why = c->client_id + ": received " + std::to_string(received.value_or(-1)) +
            " messages, committed " + std::to_string(committed.value_or(-1));
      return false;
    }
  }
  for (auto& a : agents_) {
    if (!a->process) continue;
    const std::string m = scrape_metrics(a->metrics_port);
    const auto accepted = prometheus_sample(m, "outpost_agent_accepted_total{kind=\"reading\"}");
    const auto persisted = prometheus_sample(m, "outpost_agent_persisted_total");
    const auto items = prometheus_sample(m, "outpost_agent_queue_items");
    const auto messages = prometheus_sample(m, "outpost_agent_queue_messages");
    const int64_t sent = a->next - a->lives.back().base;
    if (!accepted || !persisted || !items || !messages || static_cast<int64_t>(*accepted) != sent ||
        *persisted != *accepted || *items != 0 || *messages != 0) {
      why = a->name + ": sent " + std::to_string(sent) + ", metrics: accepted " +
            std::to_string(accepted.value_or(-1)) + " persisted " +
            std::to_string(persisted.value_or(-1)) + " queued items " +
            std::to_string(items.value_or(-1)) + " messages " +
            std::to_string(messages.value_or(-1));
      return false;
    }
  }
  return true;
}

Report World::run(std::vector<Event> events, const Rules& rules) {
  std::sort(events.begin(), events.end(),
            [](const Event& x, const Event& y) { return x.at < y.at; });
  std::vector<std::string> event_failures;
  load_start_ = Clock::now();
  feeding_ = true;
  feeder_ = std::thread([this] { feed_loop(); });
  const auto load_s = std::to_string(options_.load.count()) + "ms";
  const std::vector<std::string> sim_argv = {OUTPOST_SIM_BIN,
                                             "--broker",
                                             relay_->uri(),
                                             "--site",
                                             "chaos",
                                             "--devices",
                                             std::to_string(kDirectDevices),
                                             "--period",
                                             "100ms",
                                             "--batch-size",
                                             "10",
                                             "--logs-per-minute",
                                             "30",
                                             "--duration",
                                             load_s,
                                             "--seed",
                                             std::to_string(options_.seed),
                                             "--malformed-fraction",
                                             "0.05",
                                             "--malformed-kinds",
                                             "all",
                                             "--duplicate-fraction",
                                             "0.05",
                                             "--threads",
                                             "1",
                                             "--manifest",
                                             manifest_.string()};
  sim_ = std::make_unique<Process>(dies_with_us(sim_argv), dir_ / "sim.log");
  for (Event& e : events) {
    std::this_thread::sleep_until(load_start_ + e.at);  // the seeded moment of the fault
    const auto late =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - load_start_);
    timeline_.push_back(fmt_ms(late) + "  " + e.what);
    try {
      e.act();
    } catch (const std::exception& ex) {
      event_failures.push_back(e.what + ": " + ex.what());
      timeline_.back() += "  FAILED: " + std::string(ex.what());
    }
  }
  std::this_thread::sleep_until(load_start_ + options_.load);
  feeding_ = false;
  feeder_.join();
  timeline_.push_back(
      fmt_ms(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - load_start_)) +
      "  load ends; waiting for everything to arrive");

  // Converged: the simulator is done, every agent's queue is empty, and the store has not
  // changed for a while (the collector commits every 50 ms).
  std::string why;
  std::tuple<int64_t, int64_t, int64_t> last{-1, -1, -1};
  auto last_change = Clock::now();
  const bool settled = wait_until(
      [&] {
        auto db = open_store();
        const std::tuple<int64_t, int64_t, int64_t> now{db->one("SELECT count(*) FROM readings"),
                                                        db->one("SELECT count(*) FROM batches"),
                                                        db->one("SELECT count(*) FROM dlq")};
        if (now != last) {
          last = now;
          last_change = Clock::now();
        }
        if (!converged(why)) return false;
        if (Clock::now() - last_change < 1500ms) {
          why = "the store is still changing";
          return false;
        }
        return true;
      },
      120s);
  timeline_.push_back(
      fmt_ms(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - load_start_)) +
      (settled ? "  settled" : "  did NOT settle: " + why));
  if (sim_) sim_exit_ = sim_->stop(SIGKILL, 5s);
  for (auto& a : agents_) {
    std::lock_guard lock(a->mu);
    if (a->lives.back().end < 0) a->lives.back().end = a->next;
    if (a->process) a->final_metrics = scrape_metrics(a->metrics_port);
  }
  Report report = judge(rules);
  if (!settled) report.failures.push_back("did not settle within 120 s: " + why);
  for (const auto& f : event_failures) report.failures.push_back("fault action failed: " + f);
  if (options_.gap_events) {
    for (auto& f : judge_gap_events(15s)) report.failures.push_back(std::move(f));
  }
  if (!report.failures.empty()) {
    keep_dir_ = true;  // configs, logs, databases and manifest, for whoever investigates
    report.failures.push_back("work directory kept: " + dir_.string());
  }
  return report;
}

// What the reckoning gathers before it judges: a row per group, and what to print with it.
struct World::Tally {
  std::map<Group, Row> rows;
  std::map<std::string, Group> group_of_device;
  std::map<Group, std::vector<std::string>> lost_samples;       // per group, the first few
  std::map<std::string, std::map<int, uint64_t>> expected_dlq;  // device -> reason -> count
  uint64_t malformed_missing = 0;  // malformed messages sent and not in the DLQ
  std::map<std::string, std::pair<uint64_t, uint64_t>> figures;  // device -> sent, stored
  std::vector<std::string> notes;                                // printed under the table
  std::vector<std::string> failures;
  // Rules::collector_window; per collector fault, the at_least_once readings lost in its
  // window: how many, and the earliest and latest send time before the fault (ms).
  std::chrono::milliseconds collector_window{0};
  struct WindowLoss {
    uint64_t readings = 0;
    int64_t earliest_ms = 0, latest_ms = 0;
  };
  std::map<std::size_t, WindowLoss> window_losses;  // index into collector_faults_
  std::map<Group, uint64_t> outside_window;         // lost at_least_once readings in no window

  Row& row(Group g, const std::string& mode) {
    Row& r = rows[g];
    r.group = g;
    r.mode = mode;
    return r;
  }
};

// Agents: each reading is identified by its value.
void World::tally_agents(Tally& t) {
  auto db = open_store();
  for (auto& a : agents_) {
    Row& r = t.row(a->group, a->delivery);
    ++r.devices;
    t.group_of_device[a->name] = a->group;
    std::map<int64_t, uint64_t> copies;
    const std::string value = db->postgres() ? "r.value_int" : "r.value";
    db->each(
        "SELECT " + value + ", count(*) FROM readings r JOIN sensors s ON s.id = r.sensor_id " +
            "JOIN devices d ON d.id = s.device_id WHERE d.device = $1 GROUP BY " + value,
        [&](auto& s) { copies[s.integer(0)] = static_cast<uint64_t>(s.integer(1)); }, a->name);
    for (const auto& [value, n] : copies) {
      if (value < 0 || value >= a->next) {
        r.unexpected += n;
      } else {
        r.twice += n - 1;
      }
    }
    r.sent += static_cast<uint64_t>(a->next);
    r.refused += a->refused;
    if (a->blocked > 0) {
      t.notes.push_back(a->name + ": its socket buffer was full for " +
                        std::to_string(a->blocked / kLinesPerDatagram) +
                        " datagrams (EAGAIN; those readings went in later datagrams)");
    }
    uint64_t agent_lost = 0, agent_window = 0;
    for (const auto& life : a->lives) {
      const int64_t sent = life.end - life.base;
      int64_t stored = 0, stored_max = -1;
      std::vector<int64_t> missing;
      for (int64_t v = life.base; v < life.end; ++v) {
        if (copies.count(v)) {
          ++stored;
          stored_max = v;
        } else {
          missing.push_back(v);
        }
      }
      // Readings are persisted in the order the socket took them, so the persisted part of
      // a killed life is a prefix: at least what the last scrape counted, and at least up to
      // anything of it found in the store after the kill or at the collector.
      int64_t window = 0;
      if (life.killed) {
        const int64_t persisted =
            std::min(sent, std::max({life.persisted, life.held_max + 1 - life.base,
                                     stored_max + 1 - life.base, int64_t{0}}));
        window = sent - persisted;
        t.notes.push_back(
            a->name + " killed after #" + std::to_string(life.end - 1) + ": life sent " +
            std::to_string(sent) + ", persisted >= " + std::to_string(life.persisted) +
            " (scrape), store held " + std::to_string(life.held) + " -> persisted prefix " +
            std::to_string(persisted) + ", kill window " + std::to_string(window) +
            ", lost before it " + std::to_string(persisted - (stored)));
      }
      const int64_t lost = sent - stored;
      agent_lost += static_cast<uint64_t>(lost);
      agent_window += static_cast<uint64_t>(window);
      for (int64_t v : missing) {
        if (v >= life.base + (sent - window)) break;  // in the kill window
        if (t.collector_window.count() > 0 && a->group == Group::kAtLeastOnce) {
          // Sent shortly before a collector fault (or while it stopped): lost with it.
          const Clock::time_point at =
              a->sent_at.at(static_cast<std::size_t>(v) / kLinesPerDatagram);
          bool in_window = false;
          for (std::size_t f = 0; f < collector_faults_.size() && !in_window; ++f) {
            const auto& fault = collector_faults_[f];
            if (at < fault.begin - t.collector_window || at > fault.end) continue;
            in_window = true;
            const int64_t before_ms =
                std::chrono::duration_cast<std::chrono::milliseconds>(fault.begin - at).count();
            auto& w = t.window_losses[f];
            w.earliest_ms = w.readings == 0 ? before_ms : std::max(w.earliest_ms, before_ms);
            w.latest_ms = w.readings == 0 ? before_ms : std::min(w.latest_ms, before_ms);
            ++w.readings;
          }
          if (in_window) continue;
          ++t.outside_window[a->group];
        }
        if (t.lost_samples[a->group].size() < 8) {
          t.lost_samples[a->group].push_back(a->name + " #" + std::to_string(v) + " (life from #" +
                                             std::to_string(life.base) + ", " +
                                             (life.killed ? "killed" : "alive at the end") + ")");
        }
      }
    }
    r.stored += static_cast<uint64_t>(a->next) - agent_lost;
    t.figures[a->name] = {static_cast<uint64_t>(a->next),
                          static_cast<uint64_t>(a->next) - agent_lost};
    r.lost += agent_lost;
    r.kill_window += agent_window;
    if (a->group == Group::kQuota) {
      const auto dropped =
          static_cast<uint64_t>(
              prometheus_sample(a->final_metrics, "outpost_agent_dropped_total{reason=\"oldest\"}")
                  .value_or(0)) +
          static_cast<uint64_t>(
              prometheus_sample(a->final_metrics, "outpost_agent_dropped_total{reason=\"newest\"}")
                  .value_or(0));
      r.quota += std::min<uint64_t>(dropped, agent_lost - agent_window);
      // Every missing reading must be a counted drop (judged below as unexplained). A message
      // evicted while its publish was in flight may still arrive: counted as dropped all the
      // same (docs/agent-store.md), so drops may exceed what is missing; printed, not judged.
      const uint64_t missing = agent_lost - agent_window;
      t.notes.push_back(a->name + ": counted " + std::to_string(dropped) +
                        " readings dropped by its quota; " + std::to_string(missing) +
                        " of its readings are missing" +
                        (dropped > missing ? "; " + std::to_string(dropped - missing) +
                                                 " counted as dropped arrived anyway (evicted "
                                                 "while in flight)"
                                           : std::string()));
      if (dropped == 0) {
        t.failures.push_back(a->name + ": the quota was never reached (nothing dropped)");
      }
    }
  }
}

// The direct fleet, against the simulator's manifest.
void World::tally_direct(Tally& t) {
  auto db = open_store();
  const auto manifest = read_manifest(manifest_);
  {
    Row& r = t.row(Group::kDirect, "direct, QoS 1");
    if (sim_exit_ != 0) {
      t.failures.push_back("outpost-sim exited with " + std::to_string(sim_exit_) + ": " +
                           log_tail(dir_ / "sim.log"));
    }
    if (manifest.size() != static_cast<std::size_t>(kDirectDevices)) {
      t.failures.push_back("manifest has " + std::to_string(manifest.size()) + " devices");
    }
    for (const auto& [device, m] : manifest) {
      ++r.devices;
      t.group_of_device[device] = Group::kDirect;
      const uint64_t sent = m.numbers.count("readings_sent") ? m.numbers.at("readings_sent") : 0;
      r.sent += sent;
      uint64_t stored = 0;
      const std::string batch_rows_sql = db->postgres() ? "b.rows" : "b.last_row - b.first_row + 1";
      db->each(
          "SELECT b.epoch, b.seq, " + batch_rows_sql + " FROM batches b " +
              "JOIN devices d ON d.id = b.device_id WHERE d.device = $1 AND b.kind = 0",
          [&](auto& s) {
            const auto key =
                std::pair{static_cast<uint64_t>(s.integer(0)), static_cast<uint64_t>(s.integer(1))};
            const auto n = static_cast<uint64_t>(s.integer(2));
            if (m.seqs.count(key)) {
              stored += n;
            } else {
              r.unacked_stored += n;
            }
          },
          device);
      if (stored > sent) {
        r.unexpected += stored - sent;
        stored = sent;
      }
      r.stored += stored;
      r.lost += sent - stored;
      t.figures[device] = {sent, stored};
      // Stored twice: rows no batch accounts for (a batch's rows stored again), and batches
      // with the very same rows under another key. Not (sensor, time) pairs: a lagging
      // simulator worker may read a sensor twice in the same microsecond.
      const int64_t rows = db->one(
          "SELECT count(*) FROM readings r JOIN sensors s ON s.id = r.sensor_id "
          "JOIN devices d ON d.id = s.device_id WHERE d.device = '" +
          device + "'");
      int64_t batch_rows = 0;
      std::map<std::string, int> contents;
      const std::string contents_sql =
          db->postgres()
              // A batch's rows by its id; one aggregate per batch of the device's readings.
              ? "SELECT b.rows, c.rows FROM batches b JOIN devices d ON d.id = b.device_id "
                "LEFT JOIN (SELECT r.batch_id, string_agg(r.sensor_id || ':' || r.time_us || ':' "
                "|| coalesce(r.value::text, r.value_int::text, r.value_text, ''), ',' ORDER BY "
                "r.sensor_id, r.time_us) AS rows FROM readings r JOIN sensors s ON s.id = "
                "r.sensor_id JOIN devices d ON d.id = s.device_id WHERE d.device = $1 GROUP BY "
                "r.batch_id) c ON c.batch_id = b.batch_id WHERE d.device = $1 AND b.kind = 0"
              : "SELECT b.last_row - b.first_row + 1, (SELECT group_concat(r.sensor_id || ':' || "
                "r.time_us || ':' || r.value, ',') FROM readings r WHERE r.id BETWEEN b.first_row "
                "AND b.last_row) FROM batches b JOIN devices d ON d.id = b.device_id "
                "WHERE d.device = $1 AND b.kind = 0";
      db->each(
          contents_sql,
          [&](auto& s) {
            const int64_t n = s.integer(0);
            batch_rows += n;
            // NULL: a batch without rows (group_concat of nothing), never counted twice.
            if (!s.is_null(1) && contents[s.text(1)]++ > 0) {
              r.twice += static_cast<uint64_t>(n);
            }
          },
          device);
      if (rows > batch_rows) r.twice += static_cast<uint64_t>(rows - batch_rows);
      for (auto kind : sim::kAllMalformedKinds) {
        const auto it = m.numbers.find(std::string(sim::malformed_kind_name(kind)));
        const uint64_t n = it == m.numbers.end() ? 0 : it->second;
        r.malformed += n;
        t.expected_dlq[device][static_cast<int>(sim::expected_reason(kind))] += n;
      }
    }
  }
}

// The DLQ, by the device named in each entry's topic.
void World::tally_dlq(Tally& t) {
  auto db = open_store();
  std::map<std::string, std::map<int, uint64_t>> dlq;
  uint64_t dlq_elsewhere = 0;
  db->each("SELECT topic, reason, count(*) FROM dlq GROUP BY topic, reason", [&](auto& s) {
    const std::string topic = s.text(0);
    const auto n = static_cast<uint64_t>(s.integer(2));
    auto parsed = common::parse_device_topic(topic);
    if (!parsed.ok() || !t.group_of_device.count(parsed.value().device)) {
      dlq_elsewhere += n;
      return;
    }
    dlq[parsed.value().device][static_cast<int>(s.integer(1))] += n;
    t.rows[t.group_of_device.at(parsed.value().device)].dlq += n;
  });
  if (dlq_elsewhere > 0) {
    t.failures.push_back(std::to_string(dlq_elsewhere) + " DLQ entries on unknown topics");
  }
  for (const auto& [device, reasons] : t.expected_dlq) {
    for (const auto& [reason, n] : reasons) {
      const uint64_t have = dlq[device][reason];
      if (have < n) t.malformed_missing += n - have;
    }
  }
}

Report World::judge(const Rules& rules) {
  Tally t;
  t.collector_window = rules.collector_window;
  tally_agents(t);
  tally_direct(t);
  tally_dlq(t);
  if (collectors_.size() > 1) {
    // A group in which one member did all the work would pass the rest as well: every member
    // still running must have stored a share (its counter counts since its last start).
    std::string shares;
    for (const auto& c : collectors_) {
      if (!c->process) continue;
      const auto stored = prometheus_sample(scrape_metrics(c->metrics_port),
                                            "outpost_collector_readings_stored_total");
      shares += (shares.empty() ? "" : ", ") + c->client_id + " " +
                (stored ? std::to_string(static_cast<int64_t>(*stored)) : "?");
      if (!stored || *stored <= 0) {
        t.failures.push_back(c->client_id +
                             " stored no reading: the group did not share the fleet");
      }
    }
    t.notes.push_back("readings each running collector stored since its last start: " + shares);
  }
  Report report;
  report.failures = t.failures;
  // Verdicts.
  for (auto& [g, r] : t.rows) {
    if (g == Group::kQuota) {
      r.unexplained = r.lost - r.kill_window - r.quota;
    } else {
      r.unexplained = r.lost - r.kill_window;
    }
    const std::string& allowance =
        g == Group::kEndToEnd                            ? rules.end_to_end
        : g == Group::kAtLeastOnce || g == Group::kQuota ? rules.at_least_once
        : g == Group::kDirect                            ? rules.direct
        : g == Group::kFireAndForget                     ? std::string("fire_and_forget is QoS 0")
                                                         : std::string();
    std::vector<std::string> fails;
    if (r.twice > 0) fails.push_back(std::to_string(r.twice) + " stored twice");
    if (r.unexpected > 0) fails.push_back(std::to_string(r.unexpected) + " stored, never sent");
    if (r.unexplained > 0 && allowance.empty()) {
      fails.push_back(std::to_string(r.unexplained) + " lost");
    }
    if (t.outside_window[g] > 0) {
      fails.push_back(std::to_string(t.outside_window[g]) + " lost outside the " +
                      std::to_string(rules.collector_window.count()) +
                      " ms before a collector fault");
    }
    if (g != Group::kDirect && r.dlq > 0) fails.push_back(std::to_string(r.dlq) + " in the DLQ");
    if (g == Group::kDirect && t.malformed_missing > 0 && rules.malformed.empty()) {
      fails.push_back(std::to_string(t.malformed_missing) + " malformed not in the DLQ");
    }
    if (g == Group::kDirect && r.malformed == 0) {
      fails.push_back("no malformed message sent: the DLQ was not tested");
    }
    // The floor, for every group: the ones whose losses are allowed most of all.
    const double floor = g == Group::kFireAndForget ? kFireAndForgetFloor : kFloor;
    const auto below_floor = [floor](uint64_t sent, uint64_t stored) {
      return sent == 0 || static_cast<double>(stored) < floor * static_cast<double>(sent);
    };
    if (below_floor(r.sent, r.stored)) {
      fails.push_back("stored " + std::to_string(r.stored) + " of " + std::to_string(r.sent) +
                      " sent: below the floor of " + std::to_string(int(floor * 100)) + " %");
    }
    for (const auto& [device, figures] : t.figures) {
      const auto& [sent, stored] = figures;
      if (t.group_of_device.at(device) == g && below_floor(sent, stored)) {
        fails.push_back(device + " stored " + std::to_string(stored) + " of " +
                        std::to_string(sent) + " sent: below the floor");
      }
    }
    if (!fails.empty()) {
      std::string text;
      for (const auto& f : fails) text += (text.empty() ? "" : ", ") + f;
      r.verdict = "FAIL: " + text;
      if (r.unexplained > 0 && allowance.empty()) {
        for (const auto& s : t.lost_samples[g]) text += "\n    lost: " + s;
      }
      report.failures.push_back(std::string(group_name(g)) + ": " + text);
    } else if (r.unexplained > 0 || (g == Group::kDirect && t.malformed_missing > 0)) {
      r.verdict = "allowed: " + (r.unexplained > 0 ? allowance : rules.malformed);
    } else {
      r.verdict = "ok";
    }
    report.rows.push_back(r);
  }
  if (t.collector_window.count() > 0) {
    for (std::size_t f = 0; f < collector_faults_.size(); ++f) {
      const auto& fault = collector_faults_[f];
      const auto& w = t.window_losses[f];
      char buf[300];
      std::snprintf(
          buf, sizeof buf,
          "%s of %s at %s (exit after %lld ms): %llu at_least_once readings lost, %s",
          fault.what.c_str(), collectors_.at(fault.collector)->client_id.c_str(),
          fmt_ms(std::chrono::duration_cast<std::chrono::milliseconds>(fault.begin - load_start_))
              .c_str(),
          static_cast<long long>(
              std::chrono::duration_cast<std::chrono::milliseconds>(fault.end - fault.begin)
                  .count()),
          static_cast<unsigned long long>(w.readings),
          w.readings == 0 ? "none in its window"
                          : ("sent " + std::to_string(w.earliest_ms) + " to " +
                             std::to_string(w.latest_ms) + " ms before the signal")
                                .c_str());
      t.notes.push_back(buf);
    }
  }
  report.table = render(report, t);
  std::cout << report.table << std::flush;
  // Also appended to a file (ctest sets one: it shows output only with -V or on failure).
  if (const char* path = std::getenv("OUTPOST_CHAOS_REPORT"); path && *path) {
    std::ofstream(path, std::ios::app) << report.table;
  }
  return report;
}

namespace {

// "seq 5..9 ..." or "seq 5 ..." in a data_gap or data_gap_resolved detail (docs/events.md).
bool parse_seq_span(const std::string& detail, uint64_t& first, uint64_t& last) {
  const auto at = detail.find("seq ");
  if (at == std::string::npos) return false;
  unsigned long long a = 0, b = 0;
  const int n = std::sscanf(detail.c_str() + at, "seq %llu..%llu", &a, &b);
  if (n < 1) return false;
  first = a;
  last = n == 2 ? b : a;
  return first <= last;
}

// "5, 7..9, 12" for a set of seqs, the first `max` runs.
std::string runs(const std::set<uint64_t>& seqs, std::size_t max = 8) {
  std::string out;
  std::size_t n = 0;
  for (auto it = seqs.begin(); it != seqs.end() && n < max; ++n) {
    uint64_t first = *it, last = *it;
    while (++it != seqs.end() && *it == last + 1) last = *it;
    out += (out.empty() ? "" : ", ") + std::to_string(first) +
           (last > first ? ".." + std::to_string(last) : "");
  }
  if (n == max && !seqs.empty()) out += ", ...";
  return out;
}

}  // namespace

std::vector<std::string> World::judge_gap_events(std::chrono::milliseconds wait) {
  std::vector<std::string> failures;
  // Every hole the collector still has open is reported within its grace.
  int64_t open_holes = -1;
  const bool closed = wait_until(
      [&] {
        auto db = open_store();
        open_holes = db->one("SELECT count(*) FROM seq_holes WHERE reported_us = 0");
        return open_holes == 0;
      },
      wait);
  if (!closed) {
    failures.push_back("gap events: " + std::to_string(open_holes) +
                       " sequence holes still open after " + std::to_string(wait.count()) + " ms");
  }
  auto db = open_store();
  std::map<std::string, std::set<uint64_t>> stored;
  db->each("SELECT d.device, b.seq FROM batches b JOIN devices d ON d.id = b.device_id",
           [&](auto& s) { stored[s.text(0)].insert(static_cast<uint64_t>(s.integer(1))); });
  std::map<std::string, std::map<uint64_t, int64_t>> reported;  // device -> seq -> net count
  std::map<std::string, std::pair<uint64_t, uint64_t>> events;  // device -> gaps, resolved
  db->each(
      "SELECT device, kind, detail FROM events WHERE kind IN ('data_gap', 'data_gap_resolved') "
      "ORDER BY id",
      [&](auto& s) {
        const std::string device = s.text(0);
        const bool gap = s.text(1) == "data_gap";
        uint64_t first = 0, last = 0;
        if (!parse_seq_span(s.text(2), first, last)) {
          failures.push_back("gap events: " + device + ": cannot read \"" + s.text(2) + "\"");
          return;
        }
        ++(gap ? events[device].first : events[device].second);
        for (uint64_t q = first; q <= last; ++q) reported[device][q] += gap ? 1 : -1;
      });
  std::map<std::string, int64_t> gap_counts;
  db->each("SELECT device, gaps FROM devices",
           [&](auto& s) { gap_counts[s.text(0)] = s.integer(1); });

  std::ostringstream out;
  out << "\ngap events (" << options_.scenario << "): missing = seqs 1..highest stored not stored; "
      << "reported = data_gap minus data_gap_resolved\n";
  char line[200];
  std::snprintf(line, sizeof line, "  %-16s %8s %8s %8s %6s %8s %8s %6s  %s\n", "device", "stored",
                "highest", "missing", "gaps", "resolved", "reported", "count", "verdict");
  out << line;
  uint64_t total_missing = 0;
  for (const auto& [device, seqs] : stored) {
    const uint64_t highest = seqs.empty() ? 0 : *seqs.rbegin();
    std::set<uint64_t> missing, said, stored_but_reported, twice;
    for (uint64_t q = 1; q <= highest; ++q) {
      if (!seqs.count(q)) missing.insert(q);
    }
    for (const auto& [q, n] : reported[device]) {
      if (n > 0) said.insert(q);
      if (n > 1 || n < 0) twice.insert(q);
      if (n > 0 && seqs.count(q)) stored_but_reported.insert(q);
    }
    std::set<uint64_t> unreported;
    std::set_difference(missing.begin(), missing.end(), said.begin(), said.end(),
                        std::inserter(unreported, unreported.end()));
    total_missing += missing.size();
    std::vector<std::string> fails;
    if (!stored_but_reported.empty()) {
      fails.push_back("reported missing but stored: " + runs(stored_but_reported));
    }
    if (!unreported.empty()) fails.push_back("missing but not reported: " + runs(unreported));
    if (!twice.empty()) fails.push_back("reported twice or resolved unreported: " + runs(twice));
    if (gap_counts[device] != static_cast<int64_t>(missing.size())) {
      fails.push_back("devices.gaps is " + std::to_string(gap_counts[device]) + ", " +
                      std::to_string(missing.size()) + " missing");
    }
    std::string verdict = "ok";
    if (!fails.empty()) {
      verdict = "FAIL";
      for (const auto& f : fails) failures.push_back("gap events: " + device + ": " + f);
    }
    std::snprintf(line, sizeof line, "  %-16s %8zu %8llu %8zu %6llu %8llu %8zu %6lld  %s\n",
                  device.c_str(), seqs.size(), static_cast<unsigned long long>(highest),
                  missing.size(), static_cast<unsigned long long>(events[device].first),
                  static_cast<unsigned long long>(events[device].second), said.size(),
                  static_cast<long long>(gap_counts[device]), verdict.c_str());
    out << line;
    if (!missing.empty()) out << "    missing: " << runs(missing) << "\n";
  }
  if (total_missing == 0) {
    // Not a failure (a seed may lose nothing), but then the events were not put to the test.
    out << "  nothing was missing in this run: the gap events were checked for false reports "
           "only\n";
  }
  std::cout << out.str() << std::flush;
  if (const char* path = std::getenv("OUTPOST_CHAOS_REPORT"); path && *path) {
    std::ofstream(path, std::ios::app) << out.str();
  }
  if (!failures.empty()) {
    keep_dir_ = true;
    failures.push_back("work directory kept: " + dir_.string());
  }
  return failures;
}

std::string World::render(const Report& report, const Tally& t) const {
  std::ostringstream out;
  char line[400];
  out << "\n=== chaos scenario " << options_.scenario << ": OUTPOST_CHAOS_SEED=" << chaos_seed()
      << " (scenario seed " << options_.seed << "), load " << options_.load.count() / 1000.0
      << " s ===\n";
  out << "timeline (from the start of the load):\n";
  for (const auto& entry : timeline_) out << "  " << entry << "\n";
  std::snprintf(line, sizeof line, "%-12s %-16s %3s %8s %7s %8s %6s %6s %6s %6s %5s %6s %5s  %s\n",
                "group", "mode", "dev", "sent", "refused", "stored", "lost", "kill-w", "quota",
                "unexp", "twice", "malfmd", "dlq", "verdict");
  out << line;
  for (const Row& r : report.rows) {
    std::snprintf(
        line, sizeof line,
        "%-12s %-16s %3d %8llu %7llu %8llu %6llu %6llu %6llu %6llu %5llu %6llu %5llu  %s\n",
        std::string(group_name(r.group)).c_str(), r.mode.c_str(), r.devices,
        static_cast<unsigned long long>(r.sent), static_cast<unsigned long long>(r.refused),
        static_cast<unsigned long long>(r.stored), static_cast<unsigned long long>(r.lost),
        static_cast<unsigned long long>(r.kill_window), static_cast<unsigned long long>(r.quota),
        static_cast<unsigned long long>(r.unexplained), static_cast<unsigned long long>(r.twice),
        static_cast<unsigned long long>(r.malformed), static_cast<unsigned long long>(r.dlq),
        r.verdict.c_str());
    out << line;
  }
  out << "  sent: readings the agent's socket took (a dead agent's socket refuses: 'refused', not "
         "sent) or the broker acknowledged (direct); lost = sent - stored;\n"
         "  kill-w: not yet persisted by an agent when it was killed (its flush window and socket "
         "buffer); quota: dropped by the agent's quota policy, counted by it;\n"
         "  unexp(lained) = lost - kill-w - quota, judged by the scenario's rules; malfmd: "
         "malformed messages sent; dlq: DLQ entries on the group's topics.\n";
  for (const Row& r : report.rows) {
    if (r.group == Group::kDirect && r.unacked_stored > 0) {
      out << "  sim direct: " << r.unacked_stored
          << " more readings stored from batches the broker never acknowledged to the simulator "
             "(sent, then the connection broke; not in the manifest)\n";
    }
  }
  for (const auto& n : t.notes) out << "  " << n << "\n";
  if (t.malformed_missing > 0) {
    out << "  " << t.malformed_missing << " malformed messages sent are not in the DLQ\n";
  }
  return out.str();
}

}  // namespace outpost::chaos
