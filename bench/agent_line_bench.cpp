// The agent's input parser on its own: lines per second through parse_datagram, one core.
//
//   build/bench/agent_line_bench [--benchmark_filter=Bench]
// Datagrams of 50 lines, as agent_bench sends them ("bench,host=h3 value=417.7"), and lines
// shaped like Telegraf's output and like lines with escapes and UTF-8 names, whose sensor names
// need percent-encoding (docs/agent-input.md).
#include <benchmark/benchmark.h>

#include <string>

#include "outpost/agent/line_protocol.h"

namespace {

using namespace outpost;

constexpr int64_t kNow = 1'700'000'000'000'000;
constexpr int kLinesPerDatagram = 50;

template <typename Line>
std::string datagram(Line line) {
  std::string d;
  for (int i = 0; i < kLinesPerDatagram; ++i) d += line(i) + "\n";
  return d;
}

void run(benchmark::State& state, const std::string& d) {
  std::size_t accepted = 0;
  for (auto _ : state) {
    auto result = agent::parse_datagram(d, kNow);
    accepted += result.accepted.size();
    benchmark::DoNotOptimize(result);
  }
  if (accepted != static_cast<std::size_t>(state.iterations()) * kLinesPerDatagram) {
    state.SkipWithError("a line was rejected");
  }
  state.SetItemsProcessed(state.iterations() * kLinesPerDatagram);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(d.size()));
}

// agent_bench's burst lines: one tag, one float field called value, no timestamp.
void BenchLines(benchmark::State& state) {
  run(state, datagram([](int i) {
        return "bench,host=h" + std::to_string(i % 5) + " value=" + std::to_string(i % 1000) + "." +
               std::to_string(i % 10);
      }));
}
BENCHMARK(BenchLines);

// Telegraf-like: three tags out of order, four fields of three types, a timestamp.
void TelegrafLines(benchmark::State& state) {
  run(state, datagram([](int i) {
        return "cpu,host=gw-" + std::to_string(i % 7) +
               ",cpu=cpu-total,region=eu-west usage_idle=97." + std::to_string(i % 10) +
               ",usage_user=1.25,procs=" + std::to_string(i) + "i,ok=true 1700000000" +
               std::to_string(100000000 + i);
      }));
}
BENCHMARK(TelegrafLines);

// Escaped spaces and commas, and UTF-8 in a tag value: every name is percent-encoded.
void EscapedLines(benchmark::State& state) {
  run(state, datagram([](int i) {
        return "env,room=lab\\ " + std::to_string(i % 9) +
               ",site=K\xc3\xb6ln temp=19.25,note=\"door open, \\\"ajar\\\"\"";
      }));
}
BENCHMARK(EscapedLines);

}  // namespace

BENCHMARK_MAIN();
