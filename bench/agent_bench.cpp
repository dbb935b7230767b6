// outpost-agent end to end on this machine: input rate with persistence, CPU and memory at
// 1,000 readings/s, and the drain rate of a 1,000,000-reading backlog. Prints a table.
//
//   build/bench/agent_bench [--backlog N] [--burst N] [--sweep R1,R2,...] [--sweep-seconds S]
// --sweep: CPU and memory at each input rate instead (one table row and one RESULT line per
// rate, for plots). Starts its own mosquitto on a free loopback port and the real binary.
#include <mqtt/async_client.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "outpost/agent/store.h"
#include "outpost/common/codec.h"
#include "outpost/common/topics.h"
#include "support/daemons.h"
#include "support/process.h"

namespace {

using namespace outpost;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Counts the readings the broker delivers on data topics.
class Counter {
 public:
  explicit Counter(const std::string& uri) : client_(uri, "bench-counter") {
    client_.set_message_callback([this](mqtt::const_message_ptr msg) {
      const std::string& p = msg->get_payload_str();
      auto env = common::decode(std::span(reinterpret_cast<const uint8_t*>(p.data()), p.size()));
      if (env.ok() && env.value().kind() == common::PayloadKind::kReadings) {
        readings_ += std::get<common::ReadingBatch>(env.value().body).readings.size();
      }
    });
    client_.connect(mqtt::connect_options_builder().clean_session(true).finalize())->wait();
    client_.subscribe("outpost/v1/+/+/data", 1)->wait();
  }
  ~Counter() {
    try {
      client_.disconnect()->wait_for(2s);
    } catch (const mqtt::exception&) {
    }
  }
  uint64_t readings() const { return readings_; }

 private:
  mqtt::async_client client_;
  std::atomic<uint64_t> readings_{0};
};

struct ProcStats {
  double cpu_seconds = 0;
  long rss_kb = 0;
  long pss_kb = 0;
};

ProcStats proc_stats(pid_t pid) {
  ProcStats s;
  s.cpu_seconds = test_support::cpu_seconds(pid);
  std::string line;
  std::ifstream rollup("/proc/" + std::to_string(pid) + "/smaps_rollup");
  while (std::getline(rollup, line)) {
    if (line.rfind("Rss:", 0) == 0) s.rss_kb = std::stol(line.substr(4));
    if (line.rfind("Pss:", 0) == 0) s.pss_kb = std::stol(line.substr(4));
  }
  return s;
}

std::string lines(int first, int count) {
  std::string d;
  for (int i = first; i < first + count; ++i) {
    d += "bench,host=h" + std::to_string(i % 5) + " value=" + std::to_string(i % 1000) + "." +
         std::to_string(i % 10) + "\n";
  }
  return d;
}

// One sample of the agent's metrics endpoint, e.g. "outpost_agent_persisted_total"; -1 if absent.
double metric(int port, const std::string& name) {
  return test_support::prometheus_sample(test_support::http_get(port, "/metrics"), name)
      .value_or(-1);
}

struct Setup {
  fs::path dir;
  int udp_port = 0;      // chosen by each start_agent()
  int metrics_port = 0;  // likewise
  fs::path config;
  std::unique_ptr<test_support::Mosquitto> broker;

  explicit Setup(const std::string& name) {
    dir = fs::temp_directory_path() / ("outpost_agent_bench_" + name + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    broker = std::make_unique<test_support::Mosquitto>(dir / "broker");
    config = dir / "agent.toml";
  }
  ~Setup() { fs::remove_all(dir); }
  // Call after broker->start(): the config names the broker's port.
  std::unique_ptr<test_support::Process> start_agent() {
    std::ofstream(config) << "[device]\nid = \"bench\"\n[inputs]\nudp_listen = \"127.0.0.1:0\"\n"
                          << "unix_socket = \"\"\n[store]\npath = \"" << (dir / "agent.db").string()
                          << "\"\nmax_bytes = \"1GiB\"\n[batch]\nmax_delay = \"200ms\"\n"
                          << "[mqtt]\nbroker = \"" << broker->uri()
                          << "\"\nreconnect_min = \"100ms\"\nreconnect_max = \"500ms\"\n"
                          << "max_inflight = 64\n"
                          // No collector: delivery ends at the broker's PUBACK.
                          << "data_delivery = \"at_least_once\"\n"
                          << "logs_delivery = \"at_least_once\"\n[log]\nlevel = \"warn\"\n"
                          << "[system]\ninterval = \"0s\"\n"
                          << "[metrics]\nlisten = \"127.0.0.1:0\"\n";
    std::string error;
    test_support::AgentPorts ports;
    auto p = test_support::start_outpost_agent(
        {OUTPOST_AGENT_BIN, "--config", config.string(), "--log-level", "info"}, config,
        dir / "agent.log", ports, error);
    if (!p) throw std::runtime_error(error);
    udp_port = ports.udp;
    metrics_port = ports.metrics;
    return p;
  }
};

void row(const char* what, const std::string& value, const char* target) {
  std::printf("| %-52s | %16s | %-22s |\n", what, value.c_str(), target);
}

std::string fmt(double v, const char* unit) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f %s", v, unit);
  return buf;
}

// " key=value" for the RESULT line.
std::string result(const char* key, double v) {
  char buf[96];
  std::snprintf(buf, sizeof buf, " %s=%.2f", key, v);
  return buf;
}

struct Steady {
  double cpu_percent = 0;
  double rss_mb = 0;   // at the end of the run
  double peak_mb = 0;  // the kernel's high-water mark of RSS
  double pss_mb = 0;
  uint64_t sent = 0;
  uint64_t delivered = 0;
};

// `rate` readings/s over UDP for `seconds`, in ticks of 10 ms (datagrams of at most 50
// lines); the agent's CPU share and memory over the run, and what reached the broker.
Steady steady(int rate, int seconds) {
  Setup s("steady");
  s.broker->start();
  Counter counter(s.broker->uri());
  auto agent = s.start_agent();
  const auto start = Clock::now();
  const ProcStats before = proc_stats(agent->pid());
  Steady r;
  const int ticks = seconds * 100;
  for (int tick = 0; tick < ticks; ++tick) {
    // Readings due by the end of this tick, so rates below 100/s are kept too.
    const uint64_t due = static_cast<uint64_t>(rate) * static_cast<uint64_t>(tick + 1) / 100;
    while (r.sent < due) {
      const int n = static_cast<int>(std::min<uint64_t>(50, due - r.sent));
      test_support::send_udp(s.udp_port, lines(static_cast<int>(r.sent), n));
      r.sent += static_cast<uint64_t>(n);
    }
    std::this_thread::sleep_until(start + std::chrono::milliseconds(10 * (tick + 1)));
  }
  const ProcStats after = proc_stats(agent->pid());
  const double wall = std::chrono::duration<double>(Clock::now() - start).count();
  r.cpu_percent = 100 * (after.cpu_seconds - before.cpu_seconds) / wall;
  r.rss_mb = after.rss_kb / 1024.0;
  r.pss_mb = after.pss_kb / 1024.0;
  r.peak_mb = test_support::status_mb(agent->pid(), "VmHWM:");
  test_support::wait_until([&] { return counter.readings() >= r.sent; }, 20s);
  r.delivered = counter.readings();
  agent->stop(SIGTERM);
  return r;
}

std::vector<int> parse_rates(const std::string& list) {
  std::vector<int> rates;
  std::stringstream in(list);
  for (std::string item; std::getline(in, item, ',');) {
    const int rate = std::stoi(item);
    if (rate <= 0) throw std::invalid_argument("rates must be positive: " + item);
    rates.push_back(rate);
  }
  return rates;
}

}  // namespace

int main(int argc, char** argv) {
  int backlog = 1'000'000;
  int burst = 200'000;
  std::vector<int> sweep;
  int sweep_seconds = 15;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      if (arg == "-h" || arg == "--help") {
        std::puts(
            "usage: agent_bench [--backlog N] [--burst N]\n"
            "       agent_bench --sweep R1,R2,... [--sweep-seconds S]\n"
            "Runs outpost-agent against its own mosquitto on loopback and prints a table.\n"
            "  --backlog N        readings in the store for the drain run (1000000)\n"
            "  --burst N          readings sent as fast as possible for the accept run (200000)\n"
            "  --sweep R1,...     instead: CPU and memory at each rate (readings/s)\n"
            "  --sweep-seconds S  length of each sweep run (15)");
        return 0;
      }
      if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
      const std::string value = argv[++i];
      if (arg == "--backlog") {
        backlog = std::stoi(value);
      } else if (arg == "--burst") {
        burst = std::stoi(value);
      } else if (arg == "--sweep") {
        sweep = parse_rates(value);
      } else if (arg == "--sweep-seconds") {
        sweep_seconds = std::stoi(value);
      } else {
        throw std::invalid_argument("unknown argument " + arg);
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "agent_bench: %s (try --help)\n", e.what());
    return 2;
  }
  if (!sweep.empty()) {
    std::printf("| %12s | %10s | %8s | %8s | %8s | %20s |\n|%s|%s|%s|%s|%s|%s|\n", "readings/s",
                "CPU %", "RSS MB", "peak MB", "PSS MB", "delivered / sent",
                std::string(14, '-').c_str(), std::string(12, '-').c_str(),
                std::string(10, '-').c_str(), std::string(10, '-').c_str(),
                std::string(10, '-').c_str(), std::string(22, '-').c_str());
    for (int rate : sweep) {
      const Steady r = steady(rate, sweep_seconds);
      const std::string counts = std::to_string(r.delivered) + " / " + std::to_string(r.sent);
      std::printf("| %12d | %10.2f | %8.1f | %8.1f | %8.1f | %20s |\n", rate, r.cpu_percent,
                  r.rss_mb, r.peak_mb, r.pss_mb, counts.c_str());
      std::fflush(stdout);
      std::fprintf(stderr,
                   "RESULT rate=%d cpu_percent=%.2f rss_mb=%.1f peak_mb=%.1f pss_mb=%.1f "
                   "sent=%llu delivered=%llu\n",
                   rate, r.cpu_percent, r.rss_mb, r.peak_mb, r.pss_mb,
                   static_cast<unsigned long long>(r.sent),
                   static_cast<unsigned long long>(r.delivered));
    }
    return 0;
  }
  std::string results;  // key=value pairs for the RESULT line (bench/report.sh)
  std::printf("| %-52s | %16s | %-22s |\n|%s|%s|%s|\n", "measure", "result", "target",
              std::string(54, '-').c_str(), std::string(18, '-').c_str(),
              std::string(24, '-').c_str());

  // 1. Input burst: readings sent as fast as one sender can, end to end to the broker.
  {
    Setup s("burst");
    s.broker->start();
    Counter counter(s.broker->uri());
    auto agent = s.start_agent();
    const ProcStats cpu_before = proc_stats(agent->pid());
    const auto start = Clock::now();
    for (int i = 0; i < burst; i += 50) test_support::send_udp(s.udp_port, lines(i, 50));
    const double send_s = std::chrono::duration<double>(Clock::now() - start).count();
    // Accepted with persistence on: until every reading sent is committed to the store,
    // or the count stops moving for a second (the rest was lost before the agent read it).
    double persisted = 0;
    auto persisted_at = Clock::now();
    while (persisted < burst) {
      const double now_persisted = metric(s.metrics_port, "outpost_agent_persisted_total");
      if (now_persisted != persisted) {
        persisted = now_persisted;
        persisted_at = Clock::now();
      } else if (Clock::now() - persisted_at > 1s) {
        break;
      }
      std::this_thread::sleep_for(5ms);
    }
    const double persist_s = std::chrono::duration<double>(persisted_at - start).count();
    const double accept_cpu_s = proc_stats(agent->pid()).cpu_seconds - cpu_before.cpu_seconds;
    // Until everything arrived, or nothing more arrives for a second (lost at the socket).
    auto last_change = Clock::now();
    uint64_t last = 0;
    while (counter.readings() < static_cast<uint64_t>(burst)) {
      if (counter.readings() != last) {
        last = counter.readings();
        last_change = Clock::now();
      } else if (Clock::now() - last_change > 1s) {
        break;
      }
      std::this_thread::sleep_for(1ms);
    }
    const auto end =
        counter.readings() >= static_cast<uint64_t>(burst) ? Clock::now() : last_change;
    const double total_s = std::chrono::duration<double>(end - start).count();
    row("burst: readings sent over UDP", std::to_string(burst), "");
    row("burst: sender rate", fmt(burst / send_s / 1000, "k/s"), "");
    row("burst: accepted and persisted", std::to_string(static_cast<long>(persisted)), "");
    row("burst: datagrams dropped by the kernel (metric)",
        std::to_string(static_cast<long>(
            metric(s.metrics_port, "outpost_agent_input_kernel_dropped_datagrams_total"))),
        "");
    row("burst: accept rate (sent to committed in the store)",
        fmt(persisted / persist_s / 1000, "k/s"), ">= 200 k/s accepted");
    results += result("accept_kps", persisted / persist_s / 1000);
    // Less sensitive to what else runs on the machine than the rate: the agent's CPU time
    // (all its threads) from the first datagram to the last reading persisted.
    row("burst: agent CPU until persisted, per reading", fmt(1e6 * accept_cpu_s / persisted, "us"),
        "");
    row("burst: delivered to the broker", std::to_string(counter.readings()), "");
    row("burst: end-to-end rate (persisted, sent, PUBACKed)",
        fmt(static_cast<double>(counter.readings()) / total_s / 1000, "k/s"), "");
    agent->stop(SIGTERM);
  }

  // 2. Steady 1,000 readings/s for 20 s: CPU and memory of the agent.
  {
    const Steady r = steady(1000, 20);
    row("steady 1,000 readings/s: CPU (% of one core)", fmt(r.cpu_percent, "%"), "<= 2 %");
    row("steady 1,000 readings/s: RSS", fmt(r.rss_mb, "MB"), "<= 8 MB");
    row("steady 1,000 readings/s: PSS", fmt(r.pss_mb, "MB"), "<= 5 MB");
    row("steady: delivered / sent", std::to_string(r.delivered) + "/" + std::to_string(r.sent), "");
    results += result("cpu_percent", r.cpu_percent) + result("rss_mb", r.rss_mb) +
               result("pss_mb", r.pss_mb);
  }

  // 3. Backlog drain: a store holding `backlog` readings, then agent and broker start.
  {
    Setup s("drain");
    {
      agent::StoreOptions options;
      options.path = (s.dir / "agent.db").string();
      options.max_bytes = 1ull << 30;
      auto store = agent::Store::open(options, 1).value();
      std::vector<agent::QueueItem> chunk;
      for (int i = 0; i < backlog; ++i) {
        agent::QueueItem item;
        item.time_us = 1'700'000'000'000'000 + i;
        item.sensor = "bench,host=h" + std::to_string(i % 5);
        item.value = static_cast<double>(i % 1000) / 10;
        chunk.push_back(std::move(item));
        if (chunk.size() == 10'000) {
          (void)store->append(chunk);
          chunk.clear();
        }
      }
      (void)store->append(chunk);
    }
    s.broker->start();
    Counter counter(s.broker->uri());
    const auto start = Clock::now();
    auto agent = s.start_agent();
    const bool done = test_support::wait_until(
        [&] { return counter.readings() >= static_cast<uint64_t>(backlog); }, 300s);
    const double secs = std::chrono::duration<double>(Clock::now() - start).count();
    row("drain: backlog in the store", std::to_string(backlog), "");
    row("drain: delivered", std::to_string(counter.readings()) + (done ? "" : " (timeout)"), "");
    row("drain: rate (start to last reading at the broker)",
        fmt(static_cast<double>(counter.readings()) / secs / 1000, "k/s"), ">= 200 k/s");
    results += result("drain_kps", static_cast<double>(counter.readings()) / secs / 1000);
    agent->stop(SIGTERM);
  }
  // For scripts (bench/report.sh): "RESULT accept_kps=250.10 cpu_percent=1.60 ...".
  std::fprintf(stderr, "RESULT%s\n", results.c_str());
  return 0;
}
