// The collector's per-message work without the broker: classify (topic, decode, validate) and
// the storage thread's part (fleet tracking, one SQLite transaction per commit_max_messages,
// metrics) on a real file, through the same StorageLoop and SqliteSink the collector runs.
// Prints CPU microseconds per message and per reading for each part.
//
//   collector_store_bench [--messages N (40000)] [--readings R (50)] [--devices D (100)]
//
// Deterministic enough for instruction counts: run it under
//   valgrind --tool=callgrind --toggle-collect='*store_phase*' build/bench/collector_store_bench
// for the storage part alone (or '*classify_phase*').
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "outpost/collector/config.h"
#include "outpost/collector/counters.h"
#include "outpost/collector/ingest.h"
#include "outpost/collector/sqlite_sink.h"
#include "outpost/collector/storage_loop.h"
#include "outpost/common/clock.h"
#include "outpost/common/codec.h"
#include "outpost/common/sample.h"

namespace {

using namespace outpost;
namespace fs = std::filesystem;

double thread_cpu_s() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// Not inlined: the names callgrind's --toggle-collect selects.
[[gnu::noinline]] std::vector<collector::StorageWork> classify_phase(
    std::vector<collector::RawMessage>& raw, const common::ValidationOptions& options) {
  std::vector<collector::StorageWork> out;
  out.reserve(raw.size());
  for (auto& m : raw)
    out.push_back(collector::StorageWork{collector::classify(std::move(m), options), std::nullopt});
  return out;
}

[[gnu::noinline]] void store_phase(collector::StorageLoop& loop,
                                   std::vector<collector::StorageWork>& work) {
  for (auto& w : work) loop.add(std::move(w));
  loop.flush();
}

}  // namespace

int main(int argc, char** argv) {
  long messages = 40'000;
  int per_message = 50;
  int devices = 100;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    if (a == "--messages" && v) {
      messages = std::atol(v);
    } else if (a == "--readings" && v) {
      per_message = std::atoi(v);
    } else if (a == "--devices" && v) {
      devices = std::atoi(v);
    } else {
      std::fprintf(stderr,
                   "usage: collector_store_bench [--messages N (40000)] [--readings R (50, a "
                   "multiple of 5)] [--devices D (100)]\n");
      return a == "--help" ? 0 : 2;
    }
    ++i;
  }
  if (messages < 1 || devices < 1 || per_message < 5 || per_message % 5 != 0) {
    std::fprintf(stderr, "collector_store_bench: positive values; --readings a multiple of 5\n");
    return 2;
  }
  const fs::path dir =
      fs::temp_directory_path() / ("outpost_store_bench_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);

  // Messages as the MQTT thread takes them from Paho: topic, payload, arrival time.
  const int64_t now = common::wall_now_us();
  std::vector<collector::RawMessage> raw;
  raw.reserve(static_cast<std::size_t>(messages));
  for (long m = 0; m < messages; ++m) {
    const int d = static_cast<int>(m % devices);
    char device[32];
    std::snprintf(device, sizeof device, "bench-%04d", d);
    const auto seq = static_cast<uint64_t>(m / devices) + 1;
    auto e = common::sample_reading_batch(device, now - 60'000'000, per_message / 5, seq);
    e.epoch = 1;
    e.seq = seq;
    auto bytes = common::encode(e);
    if (!bytes.ok()) return 1;
    raw.push_back(collector::take_message(
        std::string("outpost/v1/bench/") + device + "/data",
        std::string_view(reinterpret_cast<const char*>(bytes.value().data()), bytes.value().size()),
        now, 1u << 20));
  }

  collector::CollectorConfig config;  // the defaults the collector runs with
  auto sink = collector::SqliteSink::open(
      collector::SqliteOptions{(dir / "collector.db").string(), false, 10'000, true});
  if (!sink.ok()) {
    std::fprintf(stderr, "%s\n", sink.error().message.c_str());
    return 1;
  }
  collector::SystemStorageClock clock;
  collector::Counters counters;
  collector::StorageLoop loop(config, collector::FleetTracker(collector::FleetOptions{}),
                              *sink.value(), clock, counters, nullptr, nullptr);

  const double t0 = thread_cpu_s();
  auto work = classify_phase(raw, config.validation);
  const double t1 = thread_cpu_s();
  store_phase(loop, work);
  const double t2 = thread_cpu_s();
  const uint64_t stored = counters.readings_stored;
  fs::remove_all(dir);

  const double msgs = static_cast<double>(messages);
  std::printf("| %-44s | %18s |\n", "collector_store_bench", "result");
  std::printf("|%s|%s|\n", std::string(46, '-').c_str(), std::string(20, '-').c_str());
  std::printf("| %-44s | %18s |\n", "messages x readings, devices",
              (std::to_string(messages) + " x " + std::to_string(per_message) + ", " +
               std::to_string(devices))
                  .c_str());
  std::printf("| %-44s | %10.2f / %5.3f |\n", "classify: CPU us per message / per reading",
              1e6 * (t1 - t0) / msgs, 1e6 * (t1 - t0) / msgs / per_message);
  std::printf("| %-44s | %10.2f / %5.3f |\n", "store: CPU us per message / per reading",
              1e6 * (t2 - t1) / msgs, 1e6 * (t2 - t1) / msgs / per_message);
  std::printf("| %-44s | %18llu |\n", "readings stored", static_cast<unsigned long long>(stored));
  std::printf("\nRESULT classify_us_per_msg=%.2f store_us_per_msg=%.2f stored=%llu\n",
              1e6 * (t1 - t0) / msgs, 1e6 * (t2 - t1) / msgs,
              static_cast<unsigned long long>(stored));
  const bool ok = stored == static_cast<uint64_t>(messages) * static_cast<uint64_t>(per_message);
  if (!ok) std::printf("\nFAILED: readings stored differ from readings sent\n");
  return ok ? 0 : 1;
}
