// Codec throughput (readings/s) and wire size (bytes/reading) against compact JSON.
//
//   build/bench/codec_bench                     # all benchmarks
//   build/bench/codec_bench --benchmark_filter=Size
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "outpost/common/codec.h"
#include "outpost/common/json.h"
#include "outpost/common/sample.h"

namespace {

using namespace outpost::common;

constexpr int64_t kNow = 1'700'000'000'000'000;

Envelope typical_batch(int instants = 10, uint64_t seed = 1) {
  return sample_reading_batch("gw-0042", kNow, instants, seed);
}

void BM_Encode(benchmark::State& state) {
  const Envelope e = typical_batch(static_cast<int>(state.range(0)) / 5);
  const auto n = std::get<ReadingBatch>(e.body).readings.size();
  std::vector<uint8_t> out;
  for (auto _ : state) {
    if (!encode_into(e, out).ok()) state.SkipWithError("encode failed");
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["readings/s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * n), benchmark::Counter::kIsRate);
  state.counters["bytes/reading"] = static_cast<double>(out.size()) / n;
}
BENCHMARK(BM_Encode)->Arg(50)->Arg(500);

void BM_Decode(benchmark::State& state) {
  const Envelope e = typical_batch(static_cast<int>(state.range(0)) / 5);
  const auto n = std::get<ReadingBatch>(e.body).readings.size();
  const auto bytes = encode(e).value();
  for (auto _ : state) {
    auto d = decode(bytes);
    if (!d.ok()) state.SkipWithError("decode failed");
    benchmark::DoNotOptimize(d);
  }
  state.counters["readings/s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * n), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Decode)->Arg(50)->Arg(500);

// The collector's per-message path: decode plus every semantic check.
void BM_DecodeAndValidate(benchmark::State& state) {
  const Envelope e = typical_batch(static_cast<int>(state.range(0)) / 5);
  const auto n = std::get<ReadingBatch>(e.body).readings.size();
  const auto bytes = encode(e).value();
  const Expectation expect{PayloadKind::kReadings, "gw-0042", kNow};
  for (auto _ : state) {
    auto d = decode_and_validate(bytes, expect, {});
    if (!d.ok()) state.SkipWithError("rejected");
    benchmark::DoNotOptimize(d);
  }
  state.counters["readings/s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * n), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_DecodeAndValidate)->Arg(50)->Arg(500);

// Random 17-digit doubles defeat the decimal packing: the worst case for size.
void BM_EncodeRandomDoubles(benchmark::State& state) {
  Envelope e = typical_batch();
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(-1000, 1000);
  for (auto& r : std::get<ReadingBatch>(e.body).readings) r.value = u(rng);
  const auto n = std::get<ReadingBatch>(e.body).readings.size();
  std::vector<uint8_t> out;
  for (auto _ : state) {
    if (!encode_into(e, out).ok()) state.SkipWithError("encode failed");
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["readings/s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * n), benchmark::Counter::kIsRate);
  state.counters["bytes/reading"] = static_cast<double>(out.size()) / n;
}
BENCHMARK(BM_EncodeRandomDoubles);

// Wire size only: Outpost vs the same batch as compact, lossless JSON (to_json:
// one object per batch, one {"sensor","t","value","unit"} object per reading),
// averaged over 100 batches with different noise so the figure is not one lucky draw.
void BM_SizeTypicalBatch(benchmark::State& state) {
  double outpost_bytes = 0, json_bytes = 0, readings = 0;
  for (auto _ : state) {
    outpost_bytes = json_bytes = readings = 0;
    for (uint64_t seed = 1; seed <= 100; ++seed) {
      const Envelope e = typical_batch(10, seed);
      outpost_bytes += static_cast<double>(encode(e).value().size());
      json_bytes += static_cast<double>(to_json(e).size());
      readings += static_cast<double>(std::get<ReadingBatch>(e.body).readings.size());
    }
  }
  state.counters["outpost_bytes/reading"] = outpost_bytes / readings;
  state.counters["json_bytes/reading"] = json_bytes / readings;
  state.counters["json/outpost"] = json_bytes / outpost_bytes;
}
BENCHMARK(BM_SizeTypicalBatch)->Iterations(1);

}  // namespace

BENCHMARK_MAIN();
