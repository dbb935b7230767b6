// outpost-collector end to end: sustained readings/s from pre-encoded batches through a real
// mosquitto into the real collector's SQLite file (or a PostgreSQL database), with zero loss
// checked; then latency from reading timestamp to commit at a fixed rate; CPU and RSS. Prints a
// table.
//
//   collector_bench [--messages N] [--readings R] [--devices D] [--publishers P] [--rate R]
//                   [--seconds S] [--publisher raw|paho] [--latency-only] [--postgres]
//                   [--collectors N]
//
// The P publishers of the backlog and throughput phases speak MQTT 3.1.1 QoS 1 on their own
// sockets (RawPublisher, about 2 us of CPU a message); --publisher paho uses Paho C++ clients
// instead (about 30 us a message), as the runs before 2026-12-03 did. The latency phase always
// publishes through Paho.
//
// --postgres: a durable throwaway PostgreSQL cluster (fsync and full-page writes on,
// tests/support/postgres.h) on the same machine, one database. --collectors N: N collector
// processes with one [mqtt] shared_group on it (PostgreSQL only: one SQLite file has one
// writer). Then the CPU per reading of each part is given too: the collectors (each and sum),
// PostgreSQL (the postmaster and all its children: backends, WAL writer, checkpointer),
// mosquitto and the publishers (this process), and the readings in the database are counted.
//
// --readings sets the readings per message (a multiple of 5: 5 sensors x R/5 instants) of the
// backlog and throughput phases; the latency phase always sends 50. Collector CPU is read from
// /proc/<pid>/stat (utime + stime) over each phase and given per message and per reading: it
// resists the load of a shared machine better than the rates do.
//
// Ends with one line for scripts (bench/report.sh): RESULT key=value ...
//
// Starts its own mosquitto on a free loopback port and the real outpost-collector binary.
#include <mqtt/async_client.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <mutex>
#include <numeric>
#include <span>
#include <sstream>
#include <thread>

#include "outpost/common/clock.h"
#include "outpost/common/codec.h"
#include "outpost/common/sample.h"
#include "support/daemons.h"
#include "support/postgres.h"
#include "support/process.h"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// One sample of the collector's Prometheus text; -1 if absent.
double metric(const std::string& text, const std::string& name) {
  return outpost::test_support::prometheus_sample(text, name).value_or(-1);
}

std::string device_name(int d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "bench-%04d", d);
  return buf;
}

std::string topic_of(int d) { return "outpost/v1/bench/" + device_name(d) + "/data"; }

std::string encoded(const outpost::common::Envelope& e) {
  auto bytes = outpost::common::encode(e);
  if (!bytes.ok()) {
    std::fprintf(stderr, "encode failed: %s\n", bytes.error().detail.c_str());
    std::exit(1);
  }
  return std::string(bytes.value().begin(), bytes.value().end());
}

// A QoS 1 publisher with a window of unacknowledged messages.
class Publisher {
 public:
  Publisher(const std::string& uri, const std::string& id)
      : client_(uri, id, mqtt::create_options(MQTTVERSION_3_1_1, static_cast<int>(kWindow) * 2)) {
    client_
        .connect(mqtt::connect_options_builder()
                     .clean_session(true)
                     .max_inflight(static_cast<int>(kWindow) * 2)
                     .finalize())
        ->wait();
  }
  ~Publisher() {
    try {
      client_.disconnect()->wait_for(5s);
    } catch (const mqtt::exception&) {
    }
  }
  void publish(const std::string& topic, const std::string& payload) {
    if (window_.size() >= kWindow) {
      window_.front()->wait();
      window_.pop_front();
    }
    window_.push_back(client_.publish(topic, payload.data(), payload.size(), 1, false));
  }
  void drain() {
    for (auto& t : window_) t->wait();
    window_.clear();
  }

 private:
  static constexpr std::size_t kWindow = 500;
  mqtt::async_client client_;
  std::deque<mqtt::delivery_token_ptr> window_;
};

// A QoS 1 publisher that speaks MQTT 3.1.1 on its own loopback socket: each PUBLISH is framed
// into a buffer written 64 KiB at a time, the PUBACKs are read between writes, and at most
// kWindow wait for theirs. The broker sees real QoS 1 publishes and acknowledges each; only
// the load generator's own cost is cut (a Paho C++ publish costs about 30 us of this process's
// CPU, a token and several allocations; this one about 1 us), so that on 2 shared cores the
// collector, not the bench, sets the pace. --publisher paho keeps the Paho one.
class RawPublisher {
 public:
  RawPublisher(int port, const std::string& id) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    const sockaddr_in addr = outpost::test_support::loopback_address(port);
    if (fd_ < 0 || ::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
      die("connect");
    }
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // CONNECT: protocol "MQTT" level 4, clean session, keepalive 60 s, the client id.
    std::string body = std::string("\0\4MQTT\4\2\0\x3c", 10);
    body += static_cast<char>(id.size() >> 8);
    body += static_cast<char>(id.size() & 0xff);
    body += id;
    frame(0x10, body, out_);
    flush();
    char connack[4];
    if (!read_exact(connack, 4) || connack[0] != 0x20 || connack[3] != 0) die("CONNACK");
  }
  ~RawPublisher() {
    const char disconnect[2] = {static_cast<char>(0xe0), 0};
    (void)!::write(fd_, disconnect, 2);
    ::close(fd_);
  }
  void publish(const std::string& topic, const std::string& payload) {
    std::string body;
    body.reserve(topic.size() + payload.size() + 4);
    body += static_cast<char>(topic.size() >> 8);
    body += static_cast<char>(topic.size() & 0xff);
    body += topic;
    body += static_cast<char>(next_id_ >> 8);
    body += static_cast<char>(next_id_ & 0xff);
    body += payload;
    next_id_ = static_cast<uint16_t>(next_id_ % 65535 + 1);  // 1..65535, never 0
    frame(0x32, body, out_);                                 // PUBLISH, QoS 1
    ++unacked_;
    if (out_.size() >= (64u << 10) || unacked_ >= kWindow) flush();
    read_acks(/*wait=*/unacked_ >= kWindow);
  }
  void drain() {
    flush();
    while (unacked_ > 0) read_acks(true);
  }

 private:
  static constexpr std::size_t kWindow = 2000;
  [[noreturn]] static void die(const char* what) {
    std::fprintf(stderr, "collector_bench: raw publisher: %s failed: %s\n", what,
                 std::strerror(errno));
    std::exit(1);
  }
  static void frame(uint8_t type, const std::string& body, std::string& out) {
    out += static_cast<char>(type);
    std::size_t n = body.size();
    do {  // the remaining length, 7 bits a byte
      uint8_t b = n % 128;
      n /= 128;
      out += static_cast<char>(n > 0 ? b | 0x80 : b);
    } while (n > 0);
    out += body;
  }
  void flush() {
    std::size_t at = 0;
    while (at < out_.size()) {
      const ssize_t w = ::write(fd_, out_.data() + at, out_.size() - at);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) die("write");
      at += static_cast<std::size_t>(w);
    }
    out_.clear();
  }
  bool read_exact(char* p, std::size_t n) {
    while (n > 0) {
      const ssize_t r = ::read(fd_, p, n);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return false;
      p += r;
      n -= static_cast<std::size_t>(r);
    }
    return true;
  }
  // Takes the PUBACKs that have arrived (waiting for at least one when `wait`).
  void read_acks(bool wait) {
    char buf[16384];
    const ssize_t r = ::recv(fd_, buf, sizeof buf, wait ? 0 : MSG_DONTWAIT);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (r <= 0) die("read");
    in_.append(buf, static_cast<std::size_t>(r));
    std::size_t at = 0;
    for (; in_.size() - at >= 4; at += 4) {
      if (in_[at] != 0x40 || in_[at + 1] != 2) die("PUBACK framing");
      --unacked_;
    }
    in_.erase(0, at);
  }

  int fd_ = -1;
  uint16_t next_id_ = 1;
  std::size_t unacked_ = 0;
  std::string out_, in_;
};

double cpu_self_s() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// pid, parent pid and utime + stime (seconds) of every process, from /proc/<pid>/stat.
struct ProcStat {
  long pid = 0, ppid = 0;
  std::string comm;
  double cpu_s = 0;
};
std::vector<ProcStat> all_processes() {
  const double tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
  std::vector<ProcStat> out;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), {});
    const auto open = stat.find('(');
    const auto close = stat.rfind(')');
    if (open == std::string::npos || close == std::string::npos) continue;
    ProcStat p;
    p.pid = std::stol(name);
    p.comm = stat.substr(open + 1, close - open - 1);
    std::istringstream fields(stat.substr(close + 2));
    std::string state, skip;
    fields >> state >> p.ppid;
    for (int i = 0; i < 9; ++i) fields >> skip;  // pgrp .. cmajflt
    double utime = 0, stime = 0;
    fields >> utime >> stime;
    p.cpu_s = (utime + stime) / tick;
    out.push_back(p);
  }
  return out;
}

// CPU seconds of `root` and its children (a postmaster's backends and helpers). Children that
// exited are missed: the collectors hold their connections for the whole run.
double cpu_tree_s(pid_t root) {
  double total = 0;
  for (const auto& p : all_processes()) {
    if (p.pid == root || p.ppid == root) total += p.cpu_s;
  }
  return total;
}

// This process's child named `comm` (the mosquitto the Stack started); -1 if none.
pid_t child_named(const std::string& comm) {
  for (const auto& p : all_processes()) {
    if (p.ppid == ::getpid() && p.comm == comm) return static_cast<pid_t>(p.pid);
  }
  return -1;
}

struct Stack {
  fs::path dir;
  int count = 1;          // collector processes
  bool postgres = false;  // else SQLite
  std::unique_ptr<outpost::test_support::Postgres> pg;
  std::unique_ptr<outpost::test_support::Mosquitto> broker;
  pid_t broker_pid = -1;
  std::vector<fs::path> configs;
  std::vector<int> metrics_ports;  // chosen by each start_collectors()
  std::vector<std::unique_ptr<outpost::test_support::Process>> collectors;

  // `shared`: the collectors subscribe with one shared group (any number of them).
  Stack(int collector_count, bool use_postgres, bool shared)
      : count(collector_count), postgres(use_postgres) {
    dir = fs::temp_directory_path() / ("outpost_collector_bench_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    if (postgres) {
      std::string why;
      if (!outpost::test_support::Postgres::find_binaries(why)) {
        std::fprintf(stderr, "collector_bench: %s\n", why.c_str());
        std::exit(1);
      }
      // Durable, as a production server: fsync and full-page writes on.
      pg = std::make_unique<outpost::test_support::Postgres>(dir / "pg", true);
      pg->extra_settings = {"shared_buffers=256MB", "max_wal_size=4GB"};
      pg->start();
      pg->create_database("bench");
    }
    broker = std::make_unique<outpost::test_support::Mosquitto>(dir / "broker");
    broker->start();
    broker_pid = child_named("mosquitto");
    for (int i = 0; i < count; ++i) {
      const std::string n = std::to_string(i);
      configs.push_back(dir / ("collector-" + n + ".toml"));
      std::ofstream config(configs.back());
      config << "[mqtt]\nbroker = \"" << broker->uri() << "\"\n"
             << "client_id = \"collector-bench-" << n << "\"\n";
      if (shared) config << "shared_group = \"bench\"\n";
      if (postgres) {
        config << "[storage]\nkind = \"postgres\"\ndsn = \"" << pg->dsn("bench") << "\"\n"
               << "journal_dir = \"" << (dir / ("journal-" + n)).string() << "\"\n";
      } else {
        config << "[storage]\npath = \"" << (dir / "collector.db").string() << "\"\n";
      }
      config << "[metrics]\nlisten = \"127.0.0.1:0\"\n";
    }
    metrics_ports.resize(static_cast<std::size_t>(count));
    collectors.resize(static_cast<std::size_t>(count));
  }
  ~Stack() {
    collectors.clear();
    broker.reset();
    pg.reset();
    fs::remove_all(dir);
  }
  // Starts the collectors (each on a metrics port nobody else holds); waits for their
  // subscriptions only when `wait_subscribed`, else only until each has started.
  void start_collectors(bool wait_subscribed) {
    namespace ts = outpost::test_support;
    for (std::size_t i = 0; i < collectors.size(); ++i) {
      std::map<std::string, int> ports;
      std::string error;
      collectors[i] = ts::start_on_free_ports(
          {OUTPOST_COLLECTOR_BIN, "--config", configs[i].string()}, configs[i], ts::kCollectorPorts,
          dir / ("collector-" + std::to_string(i) + ".log"),
          wait_subscribed ? ts::kCollectorReady : "started:", 60s, ports, error);
      if (!collectors[i]) {
        std::fprintf(stderr, "the collector did not start: %s\n", error.c_str());
        std::exit(1);
      }
      metrics_ports[i] = ports.at("listen");
    }
  }
  void stop_collectors() {
    for (auto& c : collectors) {
      if (c->stop(SIGTERM, 60s) != 0) {
        std::fprintf(stderr, "the collector did not stop cleanly\n");
        std::exit(1);
      }
    }
  }
  std::string metrics(std::size_t i) const {
    return outpost::test_support::http_get(metrics_ports[i], "/metrics");
  }
  // A metric summed over the collectors; -1 if one of them does not show it.
  double sum(const std::string& name) const {
    double total = 0;
    for (std::size_t i = 0; i < collectors.size(); ++i) {
      const double v = metric(metrics(i), name);
      if (v < 0) return -1;
      total += v;
    }
    return total;
  }
  double stored() const { return sum("outpost_collector_readings_stored_total"); }
  std::vector<double> collector_cpu() const {
    std::vector<double> out;
    for (const auto& c : collectors) out.push_back(outpost::test_support::cpu_seconds(c->pid()));
    return out;
  }
  double collector_mb(const std::string& field) const {  // the largest of the collectors
    double most = 0;
    for (const auto& c : collectors) {
      most = std::max(most, outpost::test_support::status_mb(c->pid(), field));
    }
    return most;
  }
  // Commits the collectors retried after PostgreSQL broke a deadlock between them (their logs).
  std::size_t deadlocks() const {
    std::size_t n = 0;
    for (std::size_t i = 0; i < collectors.size(); ++i) {
      n += outpost::test_support::count_in_file(dir / ("collector-" + std::to_string(i) + ".log"),
                                                "deadlock detected");
    }
    return n;
  }
  double pg_cpu() const { return pg ? cpu_tree_s(pg->pid()) : 0; }
  double broker_cpu() const { return broker_pid > 0 ? cpu_tree_s(broker_pid) : 0; }
  // Readings rows in the database (PostgreSQL only; -1 otherwise).
  double rows_in_database() const {
    return pg ? std::stod(pg->sql("bench", "SELECT count(*) FROM readings")) : -1;
  }
};

// CPU seconds used by each part over a phase: a snapshot before, minus one after.
struct Cpu {
  std::vector<double> collectors;
  double pg = 0, broker = 0, self = 0;
  static Cpu of(const Stack& s) {
    return {s.collector_cpu(), s.pg_cpu(), s.broker_cpu(), cpu_self_s()};
  }
  Cpu minus(const Cpu& before) const {
    Cpu d = *this;
    for (std::size_t i = 0; i < d.collectors.size() && i < before.collectors.size(); ++i) {
      d.collectors[i] -= before.collectors[i];
    }
    d.pg -= before.pg;
    d.broker -= before.broker;
    d.self -= before.self;
    return d;
  }
  double collectors_sum() const {
    return std::accumulate(collectors.begin(), collectors.end(), 0.0);
  }
};

// p-quantile of the collector's latency histogram (cumulative counts per upper bound),
// interpolated linearly inside the bucket as Prometheus' histogram_quantile does.
double histogram_quantile(double q, const std::vector<std::pair<double, double>>& buckets) {
  if (buckets.empty() || buckets.back().second <= 0) return 0;
  const double rank = q * buckets.back().second;
  double lower = 0, below = 0;
  for (const auto& [le, count] : buckets) {
    if (count >= rank) {
      if (std::isinf(le)) return lower;
      return lower + (le - lower) * (count > below ? (rank - below) / (count - below) : 1);
    }
    lower = le;
    below = count;
  }
  return lower;
}

std::vector<std::pair<double, double>> latency_buckets(const std::string& text) {
  std::vector<std::pair<double, double>> out;
  const std::string prefix = "outpost_collector_reading_latency_seconds_bucket{le=\"";
  for (auto at = text.find(prefix); at != std::string::npos; at = text.find(prefix, at + 1)) {
    const char* p = text.c_str() + at + prefix.size();
    const double le = std::strncmp(p, "+Inf", 4) == 0 ? INFINITY : std::strtod(p, nullptr);
    const auto value_at = text.find("} ", at);
    out.emplace_back(le, std::strtod(text.c_str() + value_at + 2, nullptr));
  }
  return out;
}

void row(const std::string& what, const std::string& value, const std::string& target) {
  std::printf("| %-62s | %30s | %-26s |\n", what.c_str(), value.c_str(), target.c_str());
}

std::string fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  long messages = 40'000;  // x `per_message` readings
  int per_message = 50;
  int devices = 100;
  int publishers = 2;
  double rate = 50'000;  // readings/s in the latency phase
  double seconds = 20;
  bool latency_only = false;
  bool postgres = false;
  int collector_count = 1;
  bool shared = false;           // --collectors given: a shared group, whatever N
  bool paho_publishers = false;  // --publisher paho: the backlog and throughput phases via Paho
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "collector_bench: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--messages") {
      messages = std::atol(next());
    } else if (a == "--readings") {
      per_message = std::atoi(next());
    } else if (a == "--devices") {
      devices = std::atoi(next());
    } else if (a == "--publishers") {
      publishers = std::atoi(next());
    } else if (a == "--rate") {
      rate = std::atof(next());
    } else if (a == "--seconds") {
      seconds = std::atof(next());
    } else if (a == "--publisher") {
      const std::string v = next();
      if (v != "raw" && v != "paho") {
        std::fprintf(stderr, "collector_bench: --publisher is raw or paho\n");
        return 2;
      }
      paho_publishers = v == "paho";
    } else if (a == "--latency-only") {
      latency_only = true;
    } else if (a == "--postgres") {
      postgres = true;
    } else if (a == "--collectors") {
      collector_count = std::atoi(next());
      shared = true;
    } else {
      std::fprintf(
          stderr,
          "usage: collector_bench [--messages N (40000)] [--readings PER_MESSAGE "
          "(50, a multiple of 5)] [--devices D (100)] [--publishers P (2)] "
          "[--rate READINGS_PER_S (50000)] [--seconds S (20)] [--publisher raw|paho (raw)] "
          "[--latency-only] "
          "[--postgres] [--collectors N (1; a shared group; needs --postgres)]\n");
      return a == "--help" ? 0 : 2;
    }
  }
  if (messages < 1 || devices < 1 || publishers < 1 || rate <= 0 || seconds <= 0 ||
      per_message < 1 || collector_count < 1) {
    std::fprintf(stderr, "collector_bench: every value must be positive\n");
    return 2;
  }
  if (per_message % 5 != 0 || per_message > 500) {
    std::fprintf(stderr, "collector_bench: --readings must be a multiple of 5, at most 500\n");
    return 2;
  }
  if (collector_count > 1 && !postgres) {
    std::fprintf(stderr,
                 "collector_bench: --collectors above 1 needs --postgres (one SQLite file has "
                 "one writer)\n");
    return 2;
  }

  // Pre-encoded batches: `per_message` readings each (5 sensors x per_message / 5 instants),
  // seq 1.. per device.
  const int64_t base = outpost::common::wall_now_us() - 60'000'000;
  long readings_sent = 0;
  auto encode_all = [&](uint64_t epoch) {
    std::vector<std::pair<int, std::string>> out;
    out.reserve(static_cast<std::size_t>(messages));
    readings_sent = 0;
    for (long m = 0; m < messages; ++m) {
      const int d = static_cast<int>(m % devices);
      const uint64_t seq = static_cast<uint64_t>(m / devices) + 1;
      auto e = outpost::common::sample_reading_batch(device_name(d), base, per_message / 5, seq);
      e.epoch = epoch;
      e.seq = seq;
      readings_sent +=
          static_cast<long>(std::get<outpost::common::ReadingBatch>(e.body).readings.size());
      out.emplace_back(d, encoded(e));
    }
    return out;
  };
  if (!latency_only) std::fprintf(stderr, "encoding %ld messages...\n", messages);
  auto payloads = latency_only ? std::vector<std::pair<int, std::string>>{} : encode_all(1);
  const double bytes_per_message =
      static_cast<double>(
          std::accumulate(payloads.begin(), payloads.end(), std::size_t{0},
                          [](std::size_t n, const auto& p) { return n + p.second.size(); })) /
      static_cast<double>(messages);
  // P publishers, as fast as the broker takes QoS 1 messages; returns the seconds it took.
  auto publish_all = [&](const std::string& uri, int port) {
    const auto started = Clock::now();
    std::vector<std::thread> threads;
    for (int p = 0; p < publishers; ++p) {
      threads.emplace_back([&, p] {
        auto run = [&](auto& pub) {
          for (long m = p; m < messages; m += publishers) {
            const auto& [d, payload] = payloads[static_cast<std::size_t>(m)];
            pub.publish(topic_of(d), payload);
          }
          pub.drain();
        };
        const std::string id = "bench-pub-" + std::to_string(p);
        if (paho_publishers) {
          Publisher pub(uri, id);
          run(pub);
        } else {
          RawPublisher pub(port, id);
          run(pub);
        }
      });
    }
    for (auto& t : threads) t.join();
    return seconds_since(started);
  };

  Stack stack(collector_count, postgres, shared);

  // Figures of the backlog and throughput phases (skipped with --latency-only).
  bool drained = true, all = true;
  double drain_s = 1, drained_readings = 0, publish_s = 1, store_s = 1;
  double stored = 0, dups = 0, dlq_rows = 0, throughput_rss_hwm = 0;
  double drain_rss_hwm = 0, rows_in_db = -1, rows_expected = 0;
  // Pauses of the subscription at mqtt.intake_max_bytes, the duplicates the broker's re-sends
  // after them brought (recognised, not stored), and the intake's peak, per phase.
  double drain_pauses = 0, drain_dups = 0, drain_intake_peak = 0, pauses = 0;
  Cpu drain_cpu, cpu;  // per part, over each phase
  long throughput_sent = 0;
  if (latency_only) {
    stack.start_collectors(true);
  } else {
    // --- Backlog: the broker holds the messages for the collectors' persistent sessions while
    // they are down; they then start and drain them (broker -> collectors -> database).
    std::fprintf(stderr, "backlog: %ld messages queued while the collectors are down...\n",
                 messages);
    stack.start_collectors(true);
    stack.stop_collectors();
    publish_all(stack.broker->uri(), stack.broker->port());
    const Cpu before_drain = Cpu::of(stack);
    const auto drain_started = Clock::now();
    stack.start_collectors(false);
    drained = outpost::test_support::wait_until(
        [&] { return stack.stored() >= static_cast<double>(readings_sent); }, 600s);
    drain_s = seconds_since(drain_started);
    drained_readings = stack.stored();
    // Fresh processes: their CPU and their high-water marks so far are the drain's.
    drain_cpu = Cpu::of(stack).minus(before_drain);
    drain_cpu.collectors = stack.collector_cpu();
    drain_rss_hwm = stack.collector_mb("VmHWM:");
    drain_pauses = stack.sum("outpost_collector_intake_pauses_total");
    drain_dups = stack.sum("outpost_collector_duplicates_total");
    drain_intake_peak = stack.sum("outpost_collector_intake_peak_bytes");
    rows_expected = static_cast<double>(readings_sent);
    payloads = encode_all(3);
    throughput_sent = readings_sent;
    rows_expected += static_cast<double>(readings_sent);

    // --- Throughput: P publishers, as fast as the broker takes QoS 1 messages.
    std::fprintf(stderr, "throughput: %ld messages, %ld readings...\n", messages, readings_sent);
    const Cpu before = Cpu::of(stack);
    const double stored_before = stack.stored();
    const auto started = Clock::now();
    publish_s = publish_all(stack.broker->uri(), stack.broker->port());
    all = outpost::test_support::wait_until(
        [&] { return stack.stored() - stored_before >= static_cast<double>(readings_sent); }, 600s);
    store_s = seconds_since(started);
    cpu = Cpu::of(stack).minus(before);
    stored = stack.stored() - stored_before;
    dups = stack.sum("outpost_collector_duplicates_total") - drain_dups;
    pauses = stack.sum("outpost_collector_intake_pauses_total") - drain_pauses;
    const double received = stack.sum("outpost_collector_received_total");
    const double batches = stack.sum("outpost_collector_batches_stored_total");
    dlq_rows = received - batches - dups - drain_dups;  // neither stored nor duplicate
    throughput_rss_hwm = stack.collector_mb("VmHWM:");
    rows_in_db = stack.rows_in_database();
  }

  // --- Latency at a fixed rate: readings stamped when published; the commit acks the
  // collectors publish after each commit tell when each message was committed.
  const long lat_messages = static_cast<long>(rate / 50 * seconds);
  std::fprintf(stderr, "latency: %.0f readings/s for %.0f s (%ld messages)...\n", rate, seconds,
               lat_messages);
  std::mutex mutex;
  std::map<std::pair<std::string, uint64_t>, int64_t> sent_at;  // (device, seq) -> reading time
  std::vector<double> latencies_ms;
  mqtt::async_client acks(stack.broker->uri(), "bench-acks");
  acks.set_message_callback([&](mqtt::const_message_ptr msg) {
    const int64_t now = outpost::common::wall_now_us();
    const auto& payload = msg->get_payload();
    auto env = outpost::common::decode(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(payload.data()), payload.size()));
    if (!env.ok()) return;
    const auto* ack = std::get_if<outpost::common::CommitAck>(&env.value().body);
    if (!ack) return;
    std::lock_guard lock(mutex);
    for (const auto& r : ack->committed) {
      if (r.epoch != 2) continue;
      for (uint64_t s = r.first; s <= r.last; ++s) {
        auto it = sent_at.find({env.value().device_id, s});
        if (it == sent_at.end()) continue;
        latencies_ms.push_back(static_cast<double>(now - it->second) / 1000);
        sent_at.erase(it);
      }
    }
  });
  acks.connect(mqtt::connect_options_builder().clean_session(true).finalize())->wait();
  acks.subscribe("outpost/v1/bench/+/ack", 0)->wait();
  std::vector<std::vector<std::pair<double, double>>> hist_before;
  for (std::size_t i = 0; i < stack.collectors.size(); ++i) {
    hist_before.push_back(latency_buckets(stack.metrics(i)));
  }
  const Cpu lat_before = Cpu::of(stack);
  {
    Publisher pub(stack.broker->uri(), "bench-pub-rate");
    const auto period = std::chrono::duration<double>(50.0 / rate);
    const auto t0 = Clock::now();
    for (long m = 0; m < lat_messages; ++m) {
      std::this_thread::sleep_until(
          t0 + std::chrono::duration_cast<Clock::duration>(period * static_cast<double>(m)));
      const int d = static_cast<int>(m % devices);
      const uint64_t seq = static_cast<uint64_t>(m / devices) + 1;
      const int64_t now = outpost::common::wall_now_us();
      auto e = outpost::common::sample_reading_batch(device_name(d), now, 10, seq);
      // Every reading stamped now: the latency measured is broker + collector, not batching.
      for (auto& r : std::get<outpost::common::ReadingBatch>(e.body).readings) r.time_us = now;
      e.epoch = 2;
      e.seq = seq;
      {
        std::lock_guard lock(mutex);
        sent_at[{device_name(d), seq}] = now;
      }
      pub.publish(topic_of(d), encoded(e));
    }
    pub.drain();
  }
  outpost::test_support::wait_until(
      [&] {
        std::lock_guard lock(mutex);
        return sent_at.empty();
      },
      30s);
  const double lat_cpu = Cpu::of(stack).minus(lat_before).collectors_sum() / seconds;
  const double lat_rss = stack.collector_mb("VmRSS:");
  // The collectors' histograms over the phase, added up.
  std::vector<std::pair<double, double>> hist;
  for (std::size_t i = 0; i < stack.collectors.size(); ++i) {
    auto after = latency_buckets(stack.metrics(i));
    for (std::size_t b = 0; b < after.size() && b < hist_before[i].size(); ++b) {
      after[b].second -= hist_before[i][b].second;
    }
    if (hist.empty()) {
      hist = after;
    } else {
      for (std::size_t b = 0; b < after.size() && b < hist.size(); ++b) {
        hist[b].second += after[b].second;
      }
    }
  }
  std::size_t unacked;
  std::vector<double> lat;
  {
    std::lock_guard lock(mutex);
    unacked = sent_at.size();
    lat = latencies_ms;
  }
  try {
    acks.disconnect()->wait_for(5s);
  } catch (const mqtt::exception&) {
  }
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double q) {
    return lat.empty() ? 0.0
                       : lat[std::min(lat.size() - 1, static_cast<std::size_t>(q * lat.size()))];
  };

  const double per_msg = per_message;
  const double msgs = static_cast<double>(messages);
  const double rdgs = msgs * per_msg;
  const double n = collector_count;
  auto us_per_reading = [&](double cpu_s) { return fmt("%.2f us", 1e6 * cpu_s / rdgs); };
  // "sum (each)" of the collectors' CPU per reading.
  auto collectors_us = [&](const Cpu& c) {
    std::string out = fmt("%.2f", 1e6 * c.collectors_sum() / rdgs);
    if (c.collectors.size() > 1) {
      out += " (";
      for (std::size_t i = 0; i < c.collectors.size(); ++i) {
        out += (i ? " " : "") + fmt("%.2f", 1e6 * c.collectors[i] / rdgs);
      }
      out += ")";
    }
    return out + " us";
  };
  const std::string sink = postgres ? "PostgreSQL (durable)" : "SQLite";
  std::printf("\ncollectors: %d%s, storage: %s\n", collector_count, shared ? " (shared group)" : "",
              sink.c_str());
  std::printf("\n| %-62s | %30s | %-26s |\n", "measure", "result", "target");
  std::printf("|%s|%s|%s|\n", std::string(64, '-').c_str(), std::string(32, '-').c_str(),
              std::string(28, '-').c_str());
  if (!latency_only) {
    row("backlog: messages x readings, devices",
        std::to_string(messages) + " x " + std::to_string(per_message) + ", " +
            std::to_string(devices),
        "");
    row("  collector start to the last of the queued readings stored",
        fmt("%.0f readings/s", drained_readings / drain_s),
        postgres ? "" : ">= 700,000 readings/s");
    if (collector_count > 1) {
      row("  per collector", fmt("%.0f readings/s", drained_readings / drain_s / n), "");
    }
    row("  messages/s", fmt("%.0f", drained_readings / per_msg / drain_s),
        per_message == 5 ? ">= 25,000 messages/s" : "");
    row("  collector CPU per message / per reading",
        fmt("%.1f", 1e6 * drain_cpu.collectors_sum() / msgs) + " / " +
            fmt("%.2f us", 1e6 * drain_cpu.collectors_sum() / rdgs),
        "");
    row("  collectors CPU (of one core)",
        fmt("%.0f %%", 100 * drain_cpu.collectors_sum() / drain_s), "");
    if (postgres) {
      row("  CPU per reading: collectors sum (each)", collectors_us(drain_cpu), "");
      row("  CPU per reading: PostgreSQL / mosquitto",
          us_per_reading(drain_cpu.pg) + " / " + us_per_reading(drain_cpu.broker), "");
    }
    row("  collector RSS: peak while draining (VmHWM)", fmt("%.1f MB", drain_rss_hwm), "<= 64 MB");
    row("  intake: pauses / duplicates after them / peak held",
        fmt("%.0f", drain_pauses) + " / " + fmt("%.0f", drain_dups) + " / " +
            fmt("%.1f MB", drain_intake_peak / 1e6),
        "");
    row("throughput: messages x readings, devices, publishers",
        std::to_string(messages) + " x " + std::to_string(per_message) + ", " +
            std::to_string(devices) + ", " + std::to_string(publishers) +
            (paho_publishers ? " (Paho)" : " (raw MQTT)"),
        "");
    row("  bytes per message (pre-encoded)", fmt("%.0f", bytes_per_message), "");
    row("  published (QoS 1, PUBACKed by mosquitto)",
        fmt("%.0f readings/s", readings_sent / publish_s), "");
    row("  stored (first publish to last reading committed)",
        fmt("%.0f readings/s", stored / store_s), postgres ? "" : ">= 600,000 readings/s");
    if (postgres) {
      row("  stored per collector", fmt("%.0f readings/s", stored / store_s / n),
          ">= 250,000 readings/s");
    }
    row("  messages/s stored", fmt("%.0f", stored / per_msg / store_s),
        per_message == 5 ? ">= 25,000 messages/s" : "");
    row("  intake: pauses", fmt("%.0f", pauses), "");
    row("  readings sent / stored / duplicate messages / DLQ",
        std::to_string(throughput_sent) + " / " + fmt("%.0f", stored) + " / " + fmt("%.0f", dups) +
            " / " + fmt("%.0f", dlq_rows),
        "zero loss");
    if (postgres) {
      row("  readings rows in PostgreSQL (backlog + throughput)",
          fmt("%.0f", rows_in_db) + " of " + fmt("%.0f", rows_expected), "exactly once");
    }
    if (postgres) {
      row("  commits retried after a deadlock between collectors (all phases)",
          std::to_string(stack.deadlocks()), "");
    }
    row("  collectors CPU (of one core)", fmt("%.0f %%", 100 * cpu.collectors_sum() / store_s), "");
    row("  collector CPU per message / per reading",
        fmt("%.1f", 1e6 * cpu.collectors_sum() / msgs) + " / " +
            fmt("%.2f us", 1e6 * cpu.collectors_sum() / rdgs),
        "");
    row("  CPU per message: collectors / mosquitto / publishers (this process)",
        fmt("%.1f", 1e6 * cpu.collectors_sum() / msgs) + " / " +
            fmt("%.1f", 1e6 * cpu.broker / msgs) + " / " + fmt("%.1f us", 1e6 * cpu.self / msgs),
        "");
    row("  CPU of all parts (of one core; the machine has 2)",
        fmt("%.0f %%", 100 * (cpu.collectors_sum() + cpu.pg + cpu.broker + cpu.self) / store_s),
        "");
    if (postgres) {
      row("  CPU per reading: collectors sum (each)", collectors_us(cpu), "");
      row("  CPU per reading: PostgreSQL / mosquitto / publishers",
          us_per_reading(cpu.pg) + " / " + us_per_reading(cpu.broker) + " / " +
              us_per_reading(cpu.self),
          "");
    }
    row("  collector RSS: peak since start (VmHWM)", fmt("%.1f MB", throughput_rss_hwm), "");
  }
  row("latency: fixed rate", fmt("%.0f readings/s", rate), "50,000 readings/s");
  row("  p50 / p90 (reading time -> commit ack at the bench)",
      fmt("%.1f", pct(0.5)) + " / " + fmt("%.1f ms", pct(0.9)), "");
  row("  p99 / max", fmt("%.1f", pct(0.99)) + " / " + fmt("%.1f ms", lat.empty() ? 0 : lat.back()),
      "p99 <= 250 ms");
  row("  p50 / p99 from the collectors' histograms (to commit)",
      fmt("%.1f", 1000 * histogram_quantile(0.5, hist)) + " / " +
          fmt("%.1f ms", 1000 * histogram_quantile(0.99, hist)),
      "");
  row("  messages never acknowledged", std::to_string(unacked), "0");
  row("  collectors CPU / RSS", fmt("%.0f %%", 100 * lat_cpu) + " / " + fmt("%.1f MB", lat_rss),
      "");
  std::printf(
      "\nRESULT publisher=%s readings_per_message=%d backlog_rps=%.0f backlog_cpu_us_per_msg=%.1f "
      "backlog_rss_peak_mb=%.1f publish_rps=%.0f stored_rps=%.0f cpu_pct=%.0f "
      "cpu_us_per_msg=%.1f rss_peak_mb=%.1f rate=%.0f p50_ms=%.1f p90_ms=%.1f p99_ms=%.1f "
      "max_ms=%.1f unacked=%zu lat_cpu_pct=%.0f lat_rss_mb=%.1f",
      paho_publishers ? "paho" : "raw", per_message, latency_only ? 0 : drained_readings / drain_s,
      latency_only ? 0 : 1e6 * drain_cpu.collectors_sum() / msgs, drain_rss_hwm,
      latency_only ? 0 : static_cast<double>(throughput_sent) / publish_s,
      latency_only ? 0 : stored / store_s, latency_only ? 0 : 100 * cpu.collectors_sum() / store_s,
      latency_only ? 0 : 1e6 * cpu.collectors_sum() / msgs, throughput_rss_hwm, rate, pct(0.5),
      pct(0.9), pct(0.99), lat.empty() ? 0 : lat.back(), unacked, 100 * lat_cpu, lat_rss);
  std::printf(
      " backlog_pauses=%.0f backlog_dups=%.0f backlog_intake_peak_mb=%.1f pauses=%.0f dups=%.0f "
      "broker_us_per_msg=%.1f publishers_us_per_msg=%.1f",
      drain_pauses, drain_dups, drain_intake_peak / 1e6, pauses, dups, 1e6 * cpu.broker / msgs,
      1e6 * cpu.self / msgs);
  if (postgres && !latency_only) {
    std::printf(
        " backend=postgres collectors=%d backlog_collector_us_per_rdg=%.3f "
        "backlog_pg_us_per_rdg=%.3f backlog_broker_us_per_rdg=%.3f collector_us_per_rdg=%.3f "
        "pg_us_per_rdg=%.3f broker_us_per_rdg=%.3f publisher_us_per_rdg=%.3f "
        "rows_in_db=%.0f rows_expected=%.0f deadlocks=%zu",
        collector_count, 1e6 * drain_cpu.collectors_sum() / rdgs, 1e6 * drain_cpu.pg / rdgs,
        1e6 * drain_cpu.broker / rdgs, 1e6 * cpu.collectors_sum() / rdgs, 1e6 * cpu.pg / rdgs,
        1e6 * cpu.broker / rdgs, 1e6 * cpu.self / rdgs, rows_in_db, rows_expected,
        stack.deadlocks());
  }
  std::printf("\n");
  const bool in_db = !postgres || latency_only || rows_in_db == rows_expected;
  const bool ok =
      latency_only ? unacked == 0
                   : drained && drained_readings == static_cast<double>(throughput_sent) && all &&
                         stored == static_cast<double>(throughput_sent) && unacked == 0 && in_db;
  if (!ok) std::printf("\nFAILED: readings lost, doubled or not acknowledged (see the table)\n");
  return ok ? 0 : 1;
}
