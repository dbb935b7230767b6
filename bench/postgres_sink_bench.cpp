// The PostgreSQL sink's write path: readings/s stored with exactly-once on (keys claimed, binary
// COPY of the new batches), and CPU per reading of this process (the sink: what the collector's
// storage thread spends) and of PostgreSQL (postmaster and backends), on a cluster this program
// starts on the same machine. Prints a table; ends with one RESULT line per run for scripts.
//
//   postgres_sink_bench [--transactions N] [--batches B] [--devices D] [--duplicates PCT]
//                       [--fast]
//
// Each transaction holds B messages of 50 readings (10 instants x 5 sensors), as the storage
// loop closes them (commit_max_messages, 2000 by default). --duplicates: that share of each
// transaction's messages repeats an already stored one (a redelivery storm). The cluster runs
// with fsync and full-page writes on (a durable server) unless --fast.
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "outpost/collector/postgres.h"
#include "outpost/common/clock.h"
#include "outpost/common/sample.h"
#include "support/postgres.h"

namespace {

using namespace outpost;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double cpu_self_s() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// utime + stime of `pid` and every process whose parent it is (the postmaster's backends and
// helpers), in seconds, from /proc. Backends that exited are missed: the sink holds one
// connection for the whole run, so its backend is counted.
double cpu_tree_s(pid_t root) {
  const double tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
  double total = 0;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), {});
    const auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream fields(stat.substr(close + 2));
    std::string state;
    long ppid = 0;
    fields >> state >> ppid;
    const long pid = std::stol(name);
    if (pid != root && ppid != root) continue;
    std::string skip;
    for (int i = 0; i < 9; ++i) fields >> skip;  // pgrp .. cmajflt
    double utime = 0, stime = 0;
    fields >> utime >> stime;
    total += (utime + stime) / tick;
  }
  return total;
}

struct Run {
  int transactions = 20;
  int batches = 2000;
  int devices = 100;
  int duplicates_pct = 0;
  bool fast = false;
};

}  // namespace

int main(int argc, char** argv) {
  Run run;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::atoi(argv[++i]) : 0; };
    if (a == "--transactions") {
      run.transactions = next();
    } else if (a == "--batches") {
      run.batches = next();
    } else if (a == "--devices") {
      run.devices = next();
    } else if (a == "--duplicates") {
      run.duplicates_pct = next();
    } else if (a == "--fast") {
      run.fast = true;
    } else {
      std::fprintf(stderr,
                   "usage: postgres_sink_bench [--transactions N] [--batches B] [--devices D] "
                   "[--duplicates PCT] [--fast]\n");
      return 2;
    }
  }
  std::string why;
  if (!test_support::Postgres::find_binaries(why)) {
    std::fprintf(stderr, "postgres_sink_bench: %s\n", why.c_str());
    return 1;
  }
  test_support::Postgres cluster(
      fs::temp_directory_path() / ("outpost_pg_bench_" + std::to_string(::getpid())), !run.fast);
  cluster.extra_settings = {"shared_buffers=256MB", "max_wal_size=4GB"};
  cluster.start();
  cluster.create_database("bench");
  collector::PostgresOptions options;
  options.dsn = cluster.dsn("bench");
  auto opened = collector::PostgresSink::open(options);
  if (!opened.ok()) {
    std::fprintf(stderr, "postgres_sink_bench: %s\n", opened.error().message.c_str());
    return 1;
  }
  auto sink = std::move(opened).value();

  // All transactions built first: what is measured is the sink and the server only.
  const int64_t now = common::wall_now_us();
  std::vector<collector::Transaction> txs(static_cast<std::size_t>(run.transactions));
  uint64_t seq = 0;
  for (int t = 0; t < run.transactions; ++t) {
    for (int b = 0; b < run.batches; ++b) {
      const int device = b % run.devices;
      // A duplicate repeats a message stored by an earlier transaction (the first has none).
      const bool dup = t > 0 && (b * 100 / run.batches) < run.duplicates_pct;
      const uint64_t s = dup ? static_cast<uint64_t>(b / run.devices + 1) : ++seq + 1'000'000;
      common::Envelope env = common::sample_reading_batch("bench-" + std::to_string(device),
                                                          now - 60'000'000 + b * 1000, 10, s);
      env.epoch = 1;
      env.seq = s;
      txs[static_cast<std::size_t>(t)].batches.push_back(
          collector::BatchItem{"bench", std::move(env), now});
    }
    txs[static_cast<std::size_t>(t)].journal =
        collector::JournalPosition{1, static_cast<uint64_t>(t)};
  }
  // The duplicates' originals, stored before the clock starts.
  collector::Transaction originals;
  for (int b = 0; b < run.batches; ++b) {
    const uint64_t s = static_cast<uint64_t>(b / run.devices + 1);
    common::Envelope env = common::sample_reading_batch("bench-" + std::to_string(b % run.devices),
                                                        now - 120'000'000, 10, s);
    env.epoch = 1;
    env.seq = s;
    originals.batches.push_back(collector::BatchItem{"bench", std::move(env), now});
  }
  if (auto r = sink->commit(originals); !r.ok()) {
    std::fprintf(stderr, "postgres_sink_bench: %s\n", r.error().message.c_str());
    return 1;
  }

  const double self0 = cpu_self_s();
  const double pg0 = cpu_tree_s(cluster.pid());
  const auto t0 = Clock::now();
  uint64_t stored = 0, duplicates = 0;
  for (auto& tx : txs) {
    auto r = sink->commit(tx);
    if (!r.ok()) {
      std::fprintf(stderr, "postgres_sink_bench: %s\n", r.error().message.c_str());
      return 1;
    }
    stored += r.value().readings_stored;
    for (auto o : r.value().outcomes) duplicates += o == collector::BatchOutcome::kDuplicate;
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  const double self = cpu_self_s() - self0;
  const double pg = cpu_tree_s(cluster.pid()) - pg0;
  const uint64_t offered = static_cast<uint64_t>(run.transactions) * run.batches * 50;

  std::printf("%-12s %-8s %-6s %-10s %-10s %-8s %-12s %-14s %-14s\n", "transactions", "batches",
              "dups%", "offered", "stored", "seconds", "readings/s", "sink us/rdg", "pg us/rdg");
  std::printf("%-12d %-8d %-6d %-10llu %-10llu %-8.2f %-12.0f %-14.2f %-14.2f\n", run.transactions,
              run.batches, run.duplicates_pct, (unsigned long long)offered,
              (unsigned long long)stored, seconds, offered / seconds, self * 1e6 / offered,
              pg * 1e6 / offered);
  std::printf("(readings/s and CPU per reading count every reading offered, duplicates too)\n");
  std::printf(
      "RESULT backend=postgres durable=%d transactions=%d batches=%d duplicates_pct=%d "
      "readings_offered=%llu readings_stored=%llu duplicate_batches=%llu seconds=%.3f "
      "readings_per_s=%.0f sink_cpu_us_per_reading=%.3f pg_cpu_us_per_reading=%.3f\n",
      run.fast ? 0 : 1, run.transactions, run.batches, run.duplicates_pct,
      (unsigned long long)offered, (unsigned long long)stored, (unsigned long long)duplicates,
      seconds, offered / seconds, self * 1e6 / offered, pg * 1e6 / offered);
  sink.reset();
  cluster.stop();
  return 0;
}
