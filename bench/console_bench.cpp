// The console's fleet page against a large fleet: stores N devices (one reading batch and one
// status each, 2% lost, 1% offline) through the SqliteSink into a real file, then times what
// the console's API does for the fleet page's first paint and for the live poll, wall clock
// and peak RSS; then changes the statuses of 1% and 10% of the devices through the writer and
// times the live poll that applies and sends them.
//
//   console_bench [--devices N (100000)] [--keep PATH]
//
// --keep leaves the database at PATH (for a browser measurement of the same fleet:
// tests/console/first_paint.js).
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "outpost/collector/console.h"
#include "outpost/collector/sqlite_reader.h"
#include "outpost/collector/sqlite_sink.h"
#include "outpost/common/clock.h"
#include "outpost/common/sample.h"

namespace {

using namespace outpost;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

long peak_rss_kb() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

common::HttpRequest get(std::string path, std::map<std::string, std::string, std::less<>> q) {
  common::HttpRequest r;
  r.method = "GET";
  r.path = std::move(path);
  r.target = r.path;
  r.query = std::move(q);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  long devices = 100'000;
  std::string keep;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    if (a == "--devices" && v) {
      devices = std::atol(v);
    } else if (a == "--keep" && v) {
      keep = v;
    } else {
      std::fprintf(stderr, "usage: console_bench [--devices N (100000)] [--keep PATH]\n");
      return a == "--help" ? 0 : 2;
    }
    ++i;
  }
  if (devices < 1) {
    std::fprintf(stderr, "console_bench: --devices must be positive\n");
    return 2;
  }
  const fs::path dir =
      fs::temp_directory_path() / ("outpost_console_bench_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string path = keep.empty() ? (dir / "collector.db").string() : keep;
  fs::remove(path);

  // 1. The fleet, through the writer the collector uses.
  const auto fill_start = Clock::now();
  {
    auto sink = collector::SqliteSink::open(collector::SqliteOptions{path, false, 10'000, true});
    if (!sink.ok()) {
      std::fprintf(stderr, "%s\n", sink.error().message.c_str());
      return 1;
    }
    const int64_t now = common::wall_now_us();
    collector::Transaction tx;
    for (long d = 0; d < devices; ++d) {
      char device[32];
      std::snprintf(device, sizeof device, "dev-%06ld", d);
      const std::string site = "site-" + std::to_string(d % 50);
      auto e = common::sample_reading_batch(device, now - 60'000'000 + d, 1, 1);
      e.epoch = 1;
      e.seq = 1;
      tx.batches.push_back(collector::BatchItem{site, std::move(e), now - 30'000'000 + d});
      common::DeviceStatus st;
      st.state = d % 50 == 7    ? common::DeviceState::kLost
                 : d % 100 == 3 ? common::DeviceState::kOffline
                                : common::DeviceState::kOnline;
      st.time_us = now - 3'600'000'000 + d;
      st.queue_depth = static_cast<uint64_t>(d % 17);
      tx.statuses.push_back(collector::StatusItem{site, device, st, now - 3'600'000'000 + d});
      if (tx.batches.size() == 2000 || d + 1 == devices) {
        if (auto c = sink.value()->commit(tx); !c.ok()) {
          std::fprintf(stderr, "%s\n", c.error().message.c_str());
          return 1;
        }
        tx = collector::Transaction{};
      }
    }
  }
  const double fill_ms = ms_since(fill_start);

  // 2. The console's API over its own reader, as its thread runs it.
  auto reader = collector::SqliteReader::open(path);
  if (!reader.ok()) {
    std::fprintf(stderr, "%s\n", reader.error().message.c_str());
    return 1;
  }
  int64_t fake_now = common::wall_now_us();
  collector::ConsoleApi api(*reader.value(), collector::ConsoleOptions{}, nullptr,
                            [&fake_now] { return fake_now; });
  struct Row {
    std::string what;
    double ms;
    int status;
    std::size_t bytes;
  };
  std::vector<Row> rows;
  const auto time = [&](std::string what, const common::HttpRequest& req, bool cold) {
    if (cold) fake_now += 2'000'000;  // past the fleet cache's second: read again
    const auto t = Clock::now();
    const auto r = api.answer(req);
    rows.push_back({std::move(what), ms_since(t), r.status, r.body.size()});
  };
  // The reads a fleet refresh makes, each alone.
  const auto read = [&](std::string what, auto&& call) {
    const auto t = Clock::now();
    const bool ok = call();
    rows.push_back({std::move(what), ms_since(t), ok ? 200 : 503, 0});
  };
  read("  reader: devices()", [&] { return reader.value()->devices().ok(); });
  read("  reader: seq_lines()", [&] { return reader.value()->seq_lines().ok(); });
  read("  reader: dlq_topics()", [&] { return reader.value()->dlq_topics().ok(); });
  time("fleet page, first request (reads the fleet)", get("/api/v1/fleet", {{"limit", "100"}}),
       true);
  time("fleet page, cached", get("/api/v1/fleet", {{"limit", "100"}}), false);
  time("sort last_data, page 500",
       get("/api/v1/fleet", {{"sort", "last_data"}, {"offset", "50000"}}), false);
  time("filter state=lost,offline", get("/api/v1/fleet", {{"state", "lost,offline"}}), false);
  time("filter q=dev-0999 (name contains)", get("/api/v1/fleet", {{"q", "dev-0999"}}), false);
  time("one device (cached fleet)", get("/api/v1/devices/dev-054321", {}), false);
  const auto p0 = Clock::now();
  api.poll();
  const double first_poll = ms_since(p0);
  fake_now += 2'000'000;
  const auto p1 = Clock::now();
  const auto changes = api.poll();
  const double second_poll = ms_since(p1);

  // 3. A live fleet: new statuses of 1%, then 10% of the devices, through the writer, then a
  // poll (which applies what changed and sends it).
  struct Live {
    long changed;
    double commit_ms;
    double poll_ms;
    std::size_t sent;
  };
  std::vector<Live> live;
  {
    auto sink = collector::SqliteSink::open(collector::SqliteOptions{path, false, 10'000, true});
    if (!sink.ok()) {
      std::fprintf(stderr, "%s\n", sink.error().message.c_str());
      return 1;
    }
    for (const long share : {std::max(1L, devices / 100), std::max(1L, devices / 10)}) {
      const int64_t now = common::wall_now_us();
      collector::Transaction tx;
      const long step = devices / share;
      for (long i = 0; i < share; ++i) {
        char device[32];
        std::snprintf(device, sizeof device, "dev-%06ld", i * step);
        common::DeviceStatus st;
        st.state = common::DeviceState::kOnline;
        st.time_us = now + i;
        st.queue_depth = 1;
        tx.statuses.push_back(
            collector::StatusItem{"site-" + std::to_string(i * step % 50), device, st, now + i});
      }
      const auto c0 = Clock::now();
      if (auto c = sink.value()->commit(tx); !c.ok()) {
        std::fprintf(stderr, "%s\n", c.error().message.c_str());
        return 1;
      }
      const double commit_ms = ms_since(c0);
      fake_now += 2'000'000;
      const auto t = Clock::now();
      const auto sent = api.poll();
      live.push_back({share, commit_ms, ms_since(t), sent.size()});
    }
  }

  std::printf("| %-46s | %10s | %6s | %9s |\n", "console_bench", "wall ms", "status", "bytes");
  std::printf("|%s|%s|%s|%s|\n", std::string(48, '-').c_str(), std::string(12, '-').c_str(),
              std::string(8, '-').c_str(), std::string(11, '-').c_str());
  std::printf("| %-46s | %10.0f | %6s | %9s |\n",
              ("store " + std::to_string(devices) + " devices (setup)").c_str(), fill_ms, "", "");
  bool ok = true;
  for (const Row& r : rows) {
    std::printf("| %-46s | %10.1f | %6d | %9zu |\n", r.what.c_str(), r.ms, r.status, r.bytes);
    ok = ok && r.status == 200;
  }
  std::printf("| %-46s | %10.1f | %6s | %9s |\n", "live poll, first (learns the fleet)", first_poll,
              "", "");
  std::printf("| %-46s | %10.1f | %6s | %9zu |\n", "live poll, nothing changed", second_poll, "",
              changes.size());
  for (const Live& l : live) {
    std::printf("| %-46s | %10.1f | %6s | %9s |\n",
                ("  writer: commit " + std::to_string(l.changed) + " statuses").c_str(),
                l.commit_ms, "", "");
    std::printf("| %-46s | %10.1f | %6s | %9zu |\n",
                ("live poll, " + std::to_string(l.changed) + " devices changed (sent)").c_str(),
                l.poll_ms, "", l.sent);
    ok = ok && l.sent == static_cast<std::size_t>(l.changed);
  }
  std::printf("| %-46s | %10ld | %6s | %9s |\n", "peak RSS KiB", peak_rss_kb(), "", "");
  std::printf("\nRESULT first_fleet_ms=%.1f cached_fleet_ms=%.1f poll_ms=%.1f rss_kb=%ld\n",
              rows[3].ms, rows[4].ms, second_poll, peak_rss_kb());
  if (keep.empty()) fs::remove_all(dir);
  if (!ok) std::printf("\nFAILED: a request did not answer 200, or a poll missed a change\n");
  return ok ? 0 : 1;
}
