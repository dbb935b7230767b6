// outpost-collector end to end: sustained readings/s from pre-encoded batches through a real
// mosquitto into the real collector's SQLite file, with zero loss checked; then latency from
// reading timestamp to commit at a fixed rate; collector CPU and RSS. Prints a table.
//
//   collector_bench [--messages N] [--readings R] [--devices D] [--publishers P] [--rate R]
//                   [--seconds S] [--latency-only]
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
#include <signal.h>
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

struct Stack {
  fs::path dir;
  fs::path config;
  int metrics_port = 0;  // chosen by each start_collector()
  std::unique_ptr<outpost::test_support::Mosquitto> broker;
  std::unique_ptr<outpost::test_support::Process> collector;

  Stack() {
    dir = fs::temp_directory_path() / ("outpost_collector_bench_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    broker = std::make_unique<outpost::test_support::Mosquitto>(dir / "broker");
    broker->start();
    config = dir / "collector.toml";
    std::ofstream(config) << "[mqtt]\nbroker = \"" << broker->uri() << "\"\n"
                          << "client_id = \"collector-bench\"\n"
                          << "[storage]\npath = \"" << (dir / "collector.db").string() << "\"\n"
                          << "[metrics]\nlisten = \"127.0.0.1:0\"\n";
  }
  ~Stack() {
    collector.reset();
    broker.reset();
    fs::remove_all(dir);
  }
  // Starts the collector (on a metrics port nobody else holds); waits for its subscription
  // only when `wait_subscribed`, else only until it has started.
  void start_collector(bool wait_subscribed) {
    namespace ts = outpost::test_support;
    std::map<std::string, int> ports;
    std::string error;
    collector = ts::start_on_free_ports({OUTPOST_COLLECTOR_BIN, "--config", config.string()},
                                        config, ts::kCollectorPorts, dir / "collector.log",
                                        wait_subscribed ? ts::kCollectorReady : "started:", 30s,
                                        ports, error);
    if (!collector) {
      std::fprintf(stderr, "the collector did not start: %s\n", error.c_str());
      std::exit(1);
    }
    metrics_port = ports.at("listen");
  }
  void stop_collector() {
    if (collector->stop(SIGTERM, 60s) != 0) {
      std::fprintf(stderr, "the collector did not stop cleanly\n");
      std::exit(1);
    }
  }
  std::string metrics() const { return outpost::test_support::http_get(metrics_port, "/metrics"); }
  double stored() const { return metric(metrics(), "outpost_collector_readings_stored_total"); }
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
  std::printf("| %-62s | %22s | %-26s |\n", what.c_str(), value.c_str(), target.c_str());
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
    } else if (a == "--latency-only") {
      latency_only = true;
    } else {
      std::fprintf(stderr,
                   "usage: collector_bench [--messages N (40000)] [--readings PER_MESSAGE "
                   "(50, a multiple of 5)] [--devices D (100)] [--publishers P (2)] "
                   "[--rate READINGS_PER_S (50000)] [--seconds S (20)] [--latency-only]\n");
      return a == "--help" ? 0 : 2;
    }
  }
  if (messages < 1 || devices < 1 || publishers < 1 || rate <= 0 || seconds <= 0 ||
      per_message < 1) {
    std::fprintf(stderr, "collector_bench: every value must be positive\n");
    return 2;
  }
  if (per_message % 5 != 0 || per_message > 500) {
    std::fprintf(stderr, "collector_bench: --readings must be a multiple of 5, at most 500\n");
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
  auto publish_all = [&](const std::string& uri) {
    const auto started = Clock::now();
    std::vector<std::thread> threads;
    for (int p = 0; p < publishers; ++p) {
      threads.emplace_back([&, p] {
        Publisher pub(uri, "bench-pub-" + std::to_string(p));
        for (long m = p; m < messages; m += publishers) {
          const auto& [d, payload] = payloads[static_cast<std::size_t>(m)];
          pub.publish(topic_of(d), payload);
        }
        pub.drain();
      });
    }
    for (auto& t : threads) t.join();
    return seconds_since(started);
  };

  Stack stack;

  // Figures of the backlog and throughput phases (skipped with --latency-only).
  bool drained = true, all = true;
  double drain_s = 1, drained_readings = 0, publish_s = 1, store_s = 1, cpu_used = 0;
  double stored = 0, dups = 0, dlq_rows = 0, throughput_rss_hwm = 0;
  double drain_cpu = 0, drain_rss_hwm = 0;
  long throughput_sent = 0;
  if (latency_only) {
    stack.start_collector(true);
  } else {
    // --- Backlog: the broker holds the messages for the collector's persistent session while
    // it is down; the collector then starts and drains them (broker -> collector -> SQLite).
    std::fprintf(stderr, "backlog: %ld messages queued while the collector is down...\n", messages);
    stack.start_collector(true);
    stack.stop_collector();
    publish_all(stack.broker->uri());
    const auto drain_started = Clock::now();
    stack.start_collector(false);
    drained = outpost::test_support::wait_until(
        [&] { return stack.stored() >= static_cast<double>(readings_sent); }, 600s);
    drain_s = seconds_since(drain_started);
    drained_readings = stack.stored();
    // A fresh process: its CPU and its high-water mark so far are the drain's.
    drain_cpu = outpost::test_support::cpu_seconds(stack.collector->pid());
    drain_rss_hwm = outpost::test_support::status_mb(stack.collector->pid(), "VmHWM:");
    payloads = encode_all(3);
    throughput_sent = readings_sent;

    // --- Throughput: P publishers, as fast as the broker takes QoS 1 messages.
    std::fprintf(stderr, "throughput: %ld messages, %ld readings...\n", messages, readings_sent);
    const double cpu_before = outpost::test_support::cpu_seconds(stack.collector->pid());
    const double stored_before = stack.stored();
    const auto started = Clock::now();
    publish_s = publish_all(stack.broker->uri());
    double peak_rss = 0;
    all = outpost::test_support::wait_until(
        [&] {
          peak_rss = std::max(peak_rss,
                              outpost::test_support::status_mb(stack.collector->pid(), "VmRSS:"));
          return stack.stored() - stored_before >= static_cast<double>(readings_sent);
        },
        600s);
    store_s = seconds_since(started);
    cpu_used = outpost::test_support::cpu_seconds(stack.collector->pid()) - cpu_before;
    const std::string after_throughput = stack.metrics();
    stored = metric(after_throughput, "outpost_collector_readings_stored_total") - stored_before;
    dups = metric(after_throughput, "outpost_collector_duplicates_total");
    const double received = metric(after_throughput, "outpost_collector_received_total");
    const double batches = metric(after_throughput, "outpost_collector_batches_stored_total");
    dlq_rows = received - batches - dups;  // neither stored nor duplicate
    throughput_rss_hwm = outpost::test_support::status_mb(stack.collector->pid(), "VmHWM:");
  }
  const pid_t collector_pid = stack.collector->pid();

  // --- Latency at a fixed rate: readings stamped when published; the commit acks the
  // collector publishes after each commit tell when each message was committed.
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
  const auto hist_before = latency_buckets(stack.metrics());
  const double cpu_lat_before = outpost::test_support::cpu_seconds(collector_pid);
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
  const double lat_cpu =
      (outpost::test_support::cpu_seconds(collector_pid) - cpu_lat_before) / seconds;
  const double lat_rss = outpost::test_support::status_mb(collector_pid, "VmRSS:");
  auto hist_after = latency_buckets(stack.metrics());
  for (std::size_t i = 0; i < hist_after.size() && i < hist_before.size(); ++i) {
    hist_after[i].second -= hist_before[i].second;
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

  std::printf("\n| %-62s | %22s | %-26s |\n", "measure", "result", "target");
  std::printf("|%s|%s|%s|\n", std::string(64, '-').c_str(), std::string(24, '-').c_str(),
              std::string(28, '-').c_str());
  const double per_msg = per_message;
  const double msgs = static_cast<double>(messages);
  if (!latency_only) {
    row("backlog: messages x readings, devices",
        std::to_string(messages) + " x " + std::to_string(per_message) + ", " +
            std::to_string(devices),
        "");
    row("  collector start to the last of the queued readings stored",
        fmt("%.0f readings/s", drained_readings / drain_s), ">= 700,000 readings/s");
    row("  messages/s", fmt("%.0f", drained_readings / per_msg / drain_s),
        per_message == 5 ? ">= 25,000 messages/s" : "");
    row("  collector CPU per message / per reading",
        fmt("%.1f", 1e6 * drain_cpu / msgs) + " / " +
            fmt("%.2f us", 1e6 * drain_cpu / msgs / per_msg),
        "");
    row("  collector CPU (of one core)", fmt("%.0f %%", 100 * drain_cpu / drain_s), "");
    row("  collector RSS: peak while draining (VmHWM)", fmt("%.1f MB", drain_rss_hwm), "<= 64 MB");
    row("throughput: messages x readings, devices, publishers",
        std::to_string(messages) + " x " + std::to_string(per_message) + ", " +
            std::to_string(devices) + ", " + std::to_string(publishers),
        "");
    row("  bytes per message (pre-encoded)", fmt("%.0f", bytes_per_message), "");
    row("  published (QoS 1, PUBACKed by mosquitto)",
        fmt("%.0f readings/s", readings_sent / publish_s), "");
    row("  stored (first publish to last reading committed)",
        fmt("%.0f readings/s", stored / store_s), ">= 600,000 readings/s");
    row("  messages/s stored", fmt("%.0f", stored / per_msg / store_s),
        per_message == 5 ? ">= 25,000 messages/s" : "");
    row("  readings sent / stored / duplicates / DLQ",
        std::to_string(throughput_sent) + " / " + fmt("%.0f", stored) + " / " + fmt("%.0f", dups) +
            " / " + fmt("%.0f", dlq_rows),
        "zero loss");
    row("  collector CPU (of one core)", fmt("%.0f %%", 100 * cpu_used / store_s), "");
    row("  collector CPU per message / per reading",
        fmt("%.1f", 1e6 * cpu_used / msgs) + " / " +
            fmt("%.2f us", 1e6 * cpu_used / msgs / per_msg),
        "");
    row("  collector RSS: peak since start (VmHWM)", fmt("%.1f MB", throughput_rss_hwm), "");
  }
  row("latency: fixed rate", fmt("%.0f readings/s", rate), "50,000 readings/s");
  row("  p50 / p90 (reading time -> commit ack at the bench)",
      fmt("%.1f", pct(0.5)) + " / " + fmt("%.1f ms", pct(0.9)), "");
  row("  p99 / max", fmt("%.1f", pct(0.99)) + " / " + fmt("%.1f ms", lat.empty() ? 0 : lat.back()),
      "p99 <= 250 ms");
  row("  p50 / p99 from the collector's histogram (to commit)",
      fmt("%.1f", 1000 * histogram_quantile(0.5, hist_after)) + " / " +
          fmt("%.1f ms", 1000 * histogram_quantile(0.99, hist_after)),
      "");
  row("  messages never acknowledged", std::to_string(unacked), "0");
  row("  collector CPU / RSS", fmt("%.0f %%", 100 * lat_cpu) + " / " + fmt("%.1f MB", lat_rss), "");
  std::printf(
      "\nRESULT readings_per_message=%d backlog_rps=%.0f backlog_cpu_us_per_msg=%.1f "
      "backlog_rss_peak_mb=%.1f publish_rps=%.0f stored_rps=%.0f cpu_pct=%.0f "
      "cpu_us_per_msg=%.1f rss_peak_mb=%.1f rate=%.0f p50_ms=%.1f p90_ms=%.1f p99_ms=%.1f "
      "max_ms=%.1f unacked=%zu lat_cpu_pct=%.0f lat_rss_mb=%.1f\n",
      per_message, latency_only ? 0 : drained_readings / drain_s,
      latency_only ? 0 : 1e6 * drain_cpu / msgs, drain_rss_hwm,
      latency_only ? 0 : static_cast<double>(throughput_sent) / publish_s,
      latency_only ? 0 : stored / store_s, latency_only ? 0 : 100 * cpu_used / store_s,
      latency_only ? 0 : 1e6 * cpu_used / msgs, throughput_rss_hwm, rate, pct(0.5), pct(0.9),
      pct(0.99), lat.empty() ? 0 : lat.back(), unacked, 100 * lat_cpu, lat_rss);
  const bool ok = latency_only
                      ? unacked == 0
                      : drained && drained_readings == static_cast<double>(throughput_sent) &&
                            all && stored == static_cast<double>(throughput_sent) && dups == 0 &&
                            unacked == 0;
  if (!ok) std::printf("\nFAILED: readings lost or not acknowledged (see the table)\n");
  return ok ? 0 : 1;
}
