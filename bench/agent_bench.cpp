// outpost-agent end to end on this machine: input rate with persistence, CPU and memory at
// 1,000 readings/s, and the drain rate of a 1,000,000-reading backlog. Prints a table.
//
//   build/bench/agent_bench [--backlog N] [--burst N]
// Starts its own mosquitto on a free loopback port and the real outpost-agent binary.
#include <mqtt/async_client.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "outpost/agent/store.h"
#include "outpost/common/codec.h"
#include "outpost/common/topics.h"
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
  int udp_port = test_support::free_port();
  int metrics_port = test_support::free_port();
  fs::path config;
  std::unique_ptr<test_support::Mosquitto> broker;

  explicit Setup(const std::string& name) {
    dir = fs::temp_directory_path() / ("outpost_agent_bench_" + name + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    broker = std::make_unique<test_support::Mosquitto>(dir / "broker");
    config = dir / "agent.toml";
    std::ofstream(config) << "[device]\nid = \"bench\"\n[inputs]\nudp_listen = \"127.0.0.1:"
                          << udp_port << "\"\nunix_socket = \"\"\n[store]\npath = \""
                          << (dir / "agent.db").string()
                          << "\"\nmax_bytes = \"1GiB\"\n[batch]\nmax_delay = \"200ms\"\n"
                          << "[mqtt]\nbroker = \"" << broker->uri()
                          << "\"\nreconnect_min = \"100ms\"\nreconnect_max = \"500ms\"\n"
                          << "max_inflight = 64\n[log]\nlevel = \"warn\"\n"
                          << "[system]\ninterval = \"0s\"\n"
                          << "[metrics]\nlisten = \"127.0.0.1:" << metrics_port << "\"\n";
  }
  ~Setup() { fs::remove_all(dir); }
  std::unique_ptr<test_support::Process> start_agent() {
    auto p = std::make_unique<test_support::Process>(
        std::vector<std::string>{OUTPOST_AGENT_BIN, "--config", config.string(), "--log-level",
                                 "info"},
        dir / "agent.log");
    test_support::wait_until(
        [&] {
          return test_support::read_text(dir / "agent.log").find("started:") != std::string::npos;
        },
        10s);
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

}  // namespace

int main(int argc, char** argv) {
  int backlog = 1'000'000;
  int burst = 200'000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::string(argv[i]) == "--backlog") backlog = std::stoi(argv[i + 1]);
    if (std::string(argv[i]) == "--burst") burst = std::stoi(argv[i + 1]);
  }
  std::printf("| %-52s | %16s | %-22s |\n|%s|%s|%s|\n", "measure", "result", "PRODUCT.md target",
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
    Setup s("steady");
    s.broker->start();
    Counter counter(s.broker->uri());
    auto agent = s.start_agent();
    const auto start = Clock::now();
    const ProcStats before = proc_stats(agent->pid());
    int sent = 0;
    for (int tick = 0; tick < 2000; ++tick) {  // 10 readings every 10 ms
      test_support::send_udp(s.udp_port, lines(sent, 10));
      sent += 10;
      std::this_thread::sleep_until(start + std::chrono::milliseconds(10 * (tick + 1)));
    }
    const ProcStats after = proc_stats(agent->pid());
    const double wall = std::chrono::duration<double>(Clock::now() - start).count();
    test_support::wait_until([&] { return counter.readings() >= static_cast<uint64_t>(sent); },
                             10s);
    row("steady 1,000 readings/s: CPU (% of one core)",
        fmt(100 * (after.cpu_seconds - before.cpu_seconds) / wall, "%"), "<= 2 %");
    row("steady 1,000 readings/s: RSS", fmt(after.rss_kb / 1024.0, "MB"), "<= 8 MB");
    row("steady 1,000 readings/s: PSS", fmt(after.pss_kb / 1024.0, "MB"), "<= 5 MB");
    row("steady: delivered / sent", std::to_string(counter.readings()) + "/" + std::to_string(sent),
        "");
    agent->stop(SIGTERM);
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
    agent->stop(SIGTERM);
  }
  return 0;
}
