// Built-in system readings, so a fresh agent is useful with no other input: CPU, memory,
// disk, load, uptime and thermal zones, read from /proc, /sys and statvfs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "outpost/agent/line_protocol.h"

namespace outpost::agent {

// CPU time counters from /proc/stat's first line, to compute a busy percentage
// between two samples.
struct CpuTimes {
  uint64_t busy = 0;
  uint64_t total = 0;
};

class SystemMetrics {
 public:
  // `root` prefixes /proc and /sys (tests point it at a fake tree); `disk_paths`
  // are the mount points whose free space is reported.
  SystemMetrics(std::string root, std::vector<std::string> disk_paths);

  // One sample, stamped `time_us`. Sources that are missing or unreadable on this
  // machine are skipped, never an error (no thermal zones in a VM, say). CPU
  // percentage appears from the second sample on. Sensor names:
  //   system.cpu_busy (%), system.mem_total, system.mem_available (bytes),
  //   system.load1/5/15, system.uptime (s), system.disk_free,path=<p> (bytes),
  //   system.temperature,zone=<thermal_zoneN> (Cel).
  std::vector<InputReading> sample(int64_t time_us);

 private:
  std::optional<CpuTimes> read_cpu();

  std::string root_;
  std::vector<std::string> disk_paths_;
  std::optional<CpuTimes> last_cpu_;
};

}  // namespace outpost::agent
