// Direct mode split over forked shard processes.
#include "sharded_fleet.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <new>
#include <thread>

#include "direct_fleet.h"
#include "outpost/common/clock.h"

namespace outpost::sim {
namespace {

namespace fs = std::filesystem;

std::atomic<bool> child_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free);
static_assert(std::atomic<uint64_t>::is_always_lock_free);  // shared between processes

extern "C" void on_child_signal(int) { child_stop.store(true); }

constexpr auto& wall_us = common::wall_now_us;  // the one wall clock (common/clock.h)

// The body of a shard process.
[[noreturn]] void run_child(const Scenario& s, Shard shard, LiveCounters& counters,
                            const fs::path& out) {
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);  // a shard stops (cleanly) if the parent dies
  struct sigaction sa {};
  sa.sa_handler = on_child_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  auto result = run_direct_fleet(s, counters, child_stop, shard);
  if (!result.ok()) {
    std::cerr << "outpost-sim shard " << shard.index << ": " << result.error().message << "\n";
    std::_Exit(1);
  }
  std::ofstream f(out);
  for (std::size_t k = 0; k < result.value().devices.size(); ++k) {
    const uint32_t index = shard.index + static_cast<uint32_t>(k) * shard.count;
    f << ledger_to_record(index, result.value().devices[k]) << "\n";
  }
  f.close();
  std::_Exit(f ? 0 : 1);
}

}  // namespace

common::Result<std::unique_ptr<ShardedFleet>> ShardedFleet::start(const Scenario& s,
                                                                  uint32_t processes) {
  std::unique_ptr<ShardedFleet> fleet(new ShardedFleet());
  fleet->seed_ = s.seed;
  char dir_template[] = "/tmp/outpost-sim-shards-XXXXXX";
  if (!::mkdtemp(dir_template)) return common::Error{std::string("mkdtemp: ") + strerror(errno)};
  fleet->dir_ = dir_template;
  fleet->shared_bytes_ = sizeof(LiveCounters) * processes;
  void* memory = ::mmap(nullptr, fleet->shared_bytes_, PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) return common::Error{std::string("mmap: ") + strerror(errno)};
  fleet->shared_ = static_cast<LiveCounters*>(memory);
  for (uint32_t p = 0; p < processes; ++p) new (&fleet->shared_[p]) LiveCounters();
  fleet->started_us_ = wall_us();
  std::cout.flush();
  std::cerr.flush();
  for (uint32_t p = 0; p < processes; ++p) {
    const pid_t pid = ::fork();
    if (pid < 0) {
      for (pid_t c : fleet->children_) ::kill(c, SIGTERM);
      return common::Error{std::string("fork: ") + strerror(errno)};
    }
    if (pid == 0) {
      run_child(s, Shard{p, processes}, fleet->shared_[p],
                fleet->dir_ / ("shard-" + std::to_string(p) + ".txt"));
    }
    fleet->children_.push_back(pid);
  }
  return fleet;
}

ShardedFleet::~ShardedFleet() {
  for (pid_t c : children_) {
    if (c > 0) {
      ::kill(c, SIGKILL);
      ::waitpid(c, nullptr, 0);
    }
  }
  if (shared_) ::munmap(shared_, shared_bytes_);
  std::error_code ec;
  if (!dir_.empty()) fs::remove_all(dir_, ec);
}

common::Result<Manifest> ShardedFleet::wait(LiveCounters& total, const std::atomic<bool>& stop) {
  bool stopping = false;
  std::string failures;
  auto sum = [&] {
    auto add = [&](std::atomic<uint64_t> LiveCounters::*field) {
      uint64_t v = 0;
      for (std::size_t p = 0; p < children_.size(); ++p) v += (shared_[p].*field).load();
      (total.*field).store(v);
    };
    add(&LiveCounters::devices);
    add(&LiveCounters::readings);
    add(&LiveCounters::messages);
    add(&LiveCounters::malformed);
    add(&LiveCounters::duplicates);
    add(&LiveCounters::publish_failures);
    add(&LiveCounters::connects);
    add(&LiveCounters::connect_failures);
    add(&LiveCounters::connection_losses);
    add(&LiveCounters::backlog);
    add(&LiveCounters::lost_completions);
    int64_t connected = 0;
    for (std::size_t p = 0; p < children_.size(); ++p) connected += shared_[p].connected.load();
    total.connected.store(connected);
  };
  while (std::any_of(children_.begin(), children_.end(), [](pid_t c) { return c > 0; })) {
    if (stop && !stopping) {
      stopping = true;
      for (pid_t c : children_) {
        if (c > 0) ::kill(c, SIGTERM);
      }
    }
    for (std::size_t p = 0; p < children_.size(); ++p) {
      int status = 0;
      if (children_[p] > 0 && ::waitpid(children_[p], &status, WNOHANG) == children_[p]) {
        children_[p] = -1;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
          failures += " shard " + std::to_string(p);
        }
      }
    }
    sum();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  sum();
  if (!failures.empty()) return common::Error{"shard processes failed:" + failures};

  Manifest m;
  m.seed = seed_;
  m.started_us = started_us_;
  m.finished_us = wall_us();
  std::vector<std::pair<uint32_t, DeviceLedger>> ledgers;
  for (std::size_t p = 0; p < children_.size(); ++p) {
    std::ifstream in(dir_ / ("shard-" + std::to_string(p) + ".txt"));
    std::string line;
    while (std::getline(in, line)) {
      auto parsed = ledger_from_record(line);
      if (!parsed.ok())
        return common::Error{"shard " + std::to_string(p) + ": " + parsed.error().message};
      ledgers.push_back(std::move(parsed).value());
    }
  }
  std::sort(ledgers.begin(), ledgers.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [i, l] : ledgers) m.devices.push_back(std::move(l));
  return m;
}

}  // namespace outpost::sim
