// System readings from /proc, /sys and statvfs.
#include "outpost/agent/system_metrics.h"

#include <sys/statvfs.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "outpost/common/codec.h"

namespace outpost::agent {
namespace {

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

SystemMetrics::SystemMetrics(std::string root, std::vector<std::string> disk_paths)
    : root_(std::move(root)), disk_paths_(std::move(disk_paths)) {}

std::optional<CpuTimes> SystemMetrics::read_cpu() {
  auto text = read_file(root_ + "/proc/stat");
  if (!text || text->rfind("cpu ", 0) != 0) return std::nullopt;
  std::istringstream line(text->substr(4, text->find('\n') - 4));
  // user nice system idle iowait irq softirq steal: idle and iowait are not busy.
  uint64_t v[8] = {};
  for (auto& x : v) {
    if (!(line >> x)) return std::nullopt;
  }
  CpuTimes t;
  for (uint64_t x : v) t.total += x;
  t.busy = t.total - v[3] - v[4];
  return t;
}

std::vector<InputReading> SystemMetrics::sample(int64_t time_us) {
  std::vector<InputReading> out;
  auto add = [&](std::string sensor, std::string unit, common::Value value) {
    if (common::is_valid_sensor_name(sensor)) {
      out.push_back({std::move(sensor), std::move(unit), std::move(value), time_us});
    }
  };

  if (auto cpu = read_cpu()) {
    if (last_cpu_ && cpu->total > last_cpu_->total && cpu->busy >= last_cpu_->busy) {
      const double pct = 100.0 * static_cast<double>(cpu->busy - last_cpu_->busy) /
                         static_cast<double>(cpu->total - last_cpu_->total);
      add("system.cpu_busy", "%", std::round(pct * 10) / 10);
    }
    last_cpu_ = cpu;
  }
  if (auto meminfo = read_file(root_ + "/proc/meminfo")) {
    std::istringstream in(*meminfo);
    std::string key;
    uint64_t kb;
    std::string unit;
    while (in >> key >> kb) {
      std::getline(in, unit);
      if (key == "MemTotal:") add("system.mem_total", "By", static_cast<int64_t>(kb * 1024));
      if (key == "MemAvailable:") {
        add("system.mem_available", "By", static_cast<int64_t>(kb * 1024));
      }
    }
  }
  if (auto loadavg = read_file(root_ + "/proc/loadavg")) {
    std::istringstream in(*loadavg);
    double l1, l5, l15;
    if (in >> l1 >> l5 >> l15) {
      add("system.load1", "", l1);
      add("system.load5", "", l5);
      add("system.load15", "", l15);
    }
  }
  if (auto uptime = read_file(root_ + "/proc/uptime")) {
    std::istringstream in(*uptime);
    double seconds;
    if (in >> seconds) add("system.uptime", "s", std::floor(seconds));
  }
  for (const auto& path : disk_paths_) {
    struct statvfs fs = {};
    if (::statvfs((root_ + path).c_str(), &fs) == 0) {
      add("system.disk_free,path=" + path, "By",
          static_cast<int64_t>(static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize));
    }
  }
  std::error_code ec;
  const std::filesystem::path thermal = root_ + "/sys/class/thermal";
  std::vector<std::string> zones;
  for (const auto& entry : std::filesystem::directory_iterator(thermal, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("thermal_zone", 0) == 0) zones.push_back(name);
  }
  std::sort(zones.begin(), zones.end());
  for (const auto& zone : zones) {
    auto text = read_file((thermal / zone / "temp").string());
    int64_t millidegrees;
    if (text && std::istringstream(*text) >> millidegrees) {
      add("system.temperature,zone=" + zone, "Cel", static_cast<double>(millidegrees) / 1000);
    }
  }
  return out;
}

}  // namespace outpost::agent
