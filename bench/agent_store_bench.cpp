// The agent's SQLite queue: append and drain throughput (readings/s) on a real file.
//
//   build/bench/agent_store_bench [--benchmark_filter=Append]
// The file lives in $TMPDIR (default /tmp); put it on the device's real storage to
// measure that storage.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <filesystem>

#include "outpost/agent/store.h"
#include "outpost/common/codec.h"
#include "outpost/common/sample.h"

namespace {

using namespace outpost;
namespace fs = std::filesystem;

constexpr int64_t kNow = 1'700'000'000'000'000;

std::string fresh_path(const char* name) {
  const fs::path p = fs::temp_directory_path() /
                     (std::string("outpost_bench_") + name + "_" + std::to_string(::getpid()));
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(p.string() + suffix);
  return p.string();
}

// Readings shaped like the typical batch: 5 sensors, short decimal values.
std::vector<agent::QueueItem> items(std::size_t n) {
  const auto sample = common::sample_reading_batch("gw", kNow, static_cast<int>(n / 5) + 1);
  const auto& batch = std::get<common::ReadingBatch>(sample.body);
  std::vector<agent::QueueItem> out;
  for (std::size_t i = 0; i < n; ++i) {
    const auto& r = batch.readings[i];
    agent::QueueItem item;
    item.time_us = r.time_us;
    item.sensor = batch.sensor_names[r.sensor];
    item.unit = batch.units[r.sensor];
    item.value = r.value;
    out.push_back(std::move(item));
  }
  return out;
}

// Accepting input: one transaction per flush of `range(0)` readings.
void BM_Append(benchmark::State& state) {
  agent::StoreOptions options;
  options.path = fresh_path("append");
  options.max_bytes = 4ull << 30;
  options.full_sync = state.range(1) != 0;
  auto store = agent::Store::open(options, 1).value();
  const auto batch = items(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    if (!store->append(batch).ok()) state.SkipWithError("append failed");
  }
  state.counters["readings/s"] = benchmark::Counter(
      static_cast<double>(state.iterations() * batch.size()), benchmark::Counter::kIsRate);
  store.reset();
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(options.path + suffix);
}
BENCHMARK(BM_Append)->Args({1000, 0})->Args({1000, 1})->Args({100, 0})->UseRealTime();

// Draining a backlog: peek 500 readings, encode them as one message, seal, acknowledge.
void BM_Drain(benchmark::State& state) {
  agent::StoreOptions options;
  options.path = fresh_path("drain");
  options.max_bytes = 4ull << 30;
  auto store = agent::Store::open(options, 1).value();
  const auto batch = items(1000);
  std::size_t drained = 0;
  for (auto _ : state) {
    state.PauseTiming();
    for (int i = 0; i < 10; ++i) (void)store->append(batch);
    state.ResumeTiming();
    while (true) {
      auto peeked = store->peek(agent::Stream::kData, 500).value();
      if (peeked.empty()) break;
      std::vector<int64_t> ids;
      common::ReadingBatch rb;
      for (const auto& it : peeked) {
        ids.push_back(it.id);
        rb.sensor_names.push_back(
            it.sensor);  // a real batcher dedups names; this is the upper bound
        if (rb.sensor_names.size() > 64) rb.sensor_names.resize(64);
        rb.readings.push_back(
            {static_cast<uint32_t>(rb.sensor_names.size() - 1), it.time_us, it.value});
      }
      auto msg = store->seal(agent::Stream::kData, ids, [&](uint64_t seq) {
        common::Envelope e{common::kSchemaVersion, "gw", 1, seq, rb};
        auto bytes = common::encode(e);
        return bytes.ok() ? common::Result<std::vector<uint8_t>>(std::move(bytes).value())
                          : common::Result<std::vector<uint8_t>>(common::Error{"encode"});
      });
      if (!msg.ok() || !store->acknowledge(msg.value().id).ok()) {
        state.SkipWithError("drain failed");
        break;
      }
      drained += peeked.size();
    }
  }
  state.counters["readings/s"] =
      benchmark::Counter(static_cast<double>(drained), benchmark::Counter::kIsRate);
  store.reset();
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(options.path + suffix);
}
BENCHMARK(BM_Drain)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
