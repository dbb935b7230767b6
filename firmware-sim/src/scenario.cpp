// Scenario files: TOML onto the Scenario struct, with file:line:key errors.
#include "outpost/sim/scenario.h"

#include <cstdio>

#include "outpost/common/codec.h"
#include "outpost/common/limits.h"

namespace outpost::sim {
namespace {

void read_fraction(common::ConfigReader& r, std::string_view key, double& out) {
  r.read(key, out, 0.0, 1.0);
}

void read_scenario(common::ConfigReader& r, Scenario& s) {
  r.read_duration_us("run.duration", s.duration_us, 1);
  r.read("run.seed", s.seed, 0, std::numeric_limits<uint64_t>::max());
  r.read_enum("run.mode", s.mode, {{"direct", DeviceMode::kDirect}, {"agent", DeviceMode::kAgent}});
  r.read("run.broker", s.broker);
  r.read("run.threads", s.threads, 1, 64);
  r.read("run.processes", s.processes, 1, 64);

  r.read("fleet.site", s.site);
  r.read("fleet.device_prefix", s.device_prefix);
  r.read("fleet.devices", s.devices, 1, 1'000'000);
  r.read_duration_us("fleet.period", s.period_us, 1000);
  r.read("fleet.batch_size", s.device.batch_size, 1,
         static_cast<uint32_t>(common::kMaxReadingsPerBatch));
  r.read("fleet.logs_per_minute", s.device.logs_per_minute, 0.0, 60'000.0);
  r.read("fleet.max_log_batch", s.device.max_log_batch, 1,
         static_cast<uint32_t>(common::kMaxLogRecordsPerBatch));
  int64_t qos = s.qos;
  r.read("fleet.qos", qos, 0, 2);
  s.qos = static_cast<int>(qos);
  r.read("fleet.connections", s.connections, 0, 1'000'000);
  r.read("fleet.max_inflight", s.max_inflight, 1, 65535);
  r.read_duration_us("fleet.connect_timeout", s.connect_timeout_us, 1000);
  r.read_duration_us("fleet.reconnect_max", s.reconnect_max_us, 1000);

  const auto names = r.table_keys("sensors");
  if (!names.empty()) s.device.sensors.clear();
  for (const auto& name : names) {
    const std::string prefix = "sensors." + name + ".";
    SensorSpec spec;
    spec.name = name;
    r.read_enum(prefix + "kind", spec.kind,
                {{"temperature", SensorKind::kTemperature},
                 {"humidity", SensorKind::kHumidity},
                 {"vibration", SensorKind::kVibration},
                 {"counter", SensorKind::kCounter},
                 {"door", SensorKind::kDoor},
                 {"state", SensorKind::kState}});
    r.read(prefix + "count", spec.count, 1, static_cast<uint32_t>(common::kMaxSensorsPerBatch));
    r.read(prefix + "unit", spec.unit);
    r.read(prefix + "wrap", spec.wrap, 2);
    if (!r.has(prefix + "kind")) r.add_error("sensors." + name, "missing key \"kind\"");
    if (!common::is_valid_sensor_name(spec.name + (spec.count > 1 ? ".00" : ""))) {
      r.add_error("sensors." + name, "not a valid sensor name (1-64 printable ASCII, no space)");
    }
    if (!spec.unit.empty() && !common::is_valid_unit(spec.unit)) {
      r.add_error(prefix + "unit", "a unit is at most 16 bytes without control characters");
    }
    s.device.sensors.push_back(std::move(spec));
  }
  uint32_t total = 0;
  for (const auto& spec : s.device.sensors) total += spec.count;
  if (total > common::kMaxSensorsPerBatch) {
    r.add_error("sensors", std::to_string(total) + " sensors per device, at most " +
                               std::to_string(common::kMaxSensorsPerBatch));
  }

  FaultSettings& f = s.device.faults;
  read_fraction(r, "faults.malformed_fraction", f.malformed_fraction);
  if (r.has("faults.malformed_kinds")) {
    std::vector<std::string> kinds;
    r.read("faults.malformed_kinds", kinds);
    std::string csv;
    for (const auto& k : kinds) csv += k + ",";
    auto parsed = parse_malformed_kinds(csv);
    if (parsed.ok()) {
      f.malformed_kinds = parsed.value();
    } else {
      r.add_error("faults.malformed_kinds", parsed.error().message);
    }
  }
  read_fraction(r, "faults.duplicate_fraction", f.duplicate_fraction);
  read_fraction(r, "faults.out_of_order_fraction", f.out_of_order_fraction);
  r.read_duration_us("faults.clock_skew", f.clock_skew_us);
  r.read_duration_us("faults.reboot_every", f.reboot_every_us);
  r.read_duration_us("faults.storm_every", f.storm_every_us);
  read_fraction(r, "faults.storm_fraction", f.storm_fraction);
  read_fraction(r, "faults.cut_fraction", f.cut_fraction);
  read_fraction(r, "faults.offline_fraction", f.offline_fraction);
  r.read_duration_us("faults.burst_every", f.burst_every_us);
  r.read_duration_us("faults.burst_length", f.burst_length_us);
  r.read("faults.burst_factor", f.burst_factor, 1, 1000);
  if (f.cut_fraction + f.offline_fraction > 1.0) {
    r.add_error("faults.offline_fraction", "cut_fraction + offline_fraction exceeds 1");
  }

  r.read("agents.count", s.agents, 1, 1000);
  r.read("agents.bin", s.agent_bin);
  r.read("agents.work_dir", s.work_dir);
  r.read("agents.delivery", s.agent_delivery);
}

common::Result<Scenario, common::ConfigError> finish(common::ConfigReader& r, Scenario s) {
  read_scenario(r, s);
  if (auto st = r.finish(); !st.ok()) return st.error();
  return s;
}

}  // namespace

std::vector<SensorSpec> default_sensors() {
  return {{"temp", SensorKind::kTemperature, 1, "", 65536},
          {"humidity", SensorKind::kHumidity, 1, "", 65536}};
}

std::string Scenario::device_id(uint32_t index) const {
  char digits[16];
  std::snprintf(digits, sizeof digits, "%04u", index + 1);
  return (device_prefix.empty() ? site + "-" : device_prefix) + digits;
}

common::Result<Scenario, common::ConfigError> load_scenario(const std::string& path,
                                                            Scenario base) {
  if (base.device.sensors.empty()) base.device.sensors = default_sensors();
  auto reader = common::ConfigReader::load_file(path);
  if (!reader.ok()) return reader.error();
  return finish(reader.value(), std::move(base));
}

common::Result<Scenario, common::ConfigError> parse_scenario(std::string_view text,
                                                             const std::string& file_name,
                                                             Scenario base) {
  if (base.device.sensors.empty()) base.device.sensors = default_sensors();
  auto reader = common::ConfigReader::parse_string(text, file_name);
  if (!reader.ok()) return reader.error();
  return finish(reader.value(), std::move(base));
}

common::Status<> check_scenario(const Scenario& s) {
  auto fail = [](std::string m) { return common::Status<>(common::Error{std::move(m)}); };
  if (!common::is_valid_id(s.site) || s.site == "events") {
    return fail("site \"" + s.site + "\" is not a valid id ([A-Za-z0-9._-], 1-64, not events)");
  }
  const uint32_t n = s.mode == DeviceMode::kAgent ? s.agents : s.devices;
  if (n == 0) return fail("a fleet needs at least one device");
  if (!common::is_valid_id(s.device_id(n - 1))) {
    return fail("device ids such as \"" + s.device_id(n - 1) + "\" are not valid ids");
  }
  if (s.device.sensors.empty()) return fail("devices need at least one sensor");
  uint32_t total = 0;
  for (const auto& spec : s.device.sensors) total += spec.count;
  if (total > common::kMaxSensorsPerBatch) {
    return fail(std::to_string(total) + " sensors per device, at most " +
                std::to_string(common::kMaxSensorsPerBatch));
  }
  if (s.device.batch_size < 1 || s.device.batch_size > common::kMaxReadingsPerBatch) {
    return fail("batch size must be 1.." + std::to_string(common::kMaxReadingsPerBatch));
  }
  if (s.qos < 0 || s.qos > 2) return fail("qos must be 0, 1 or 2");
  if (s.processes < 1 || (s.mode == DeviceMode::kDirect && s.processes > s.devices)) {
    return fail("processes must be 1..devices");
  }
  const FaultSettings& f = s.device.faults;
  for (double v : {f.malformed_fraction, f.duplicate_fraction, f.out_of_order_fraction,
                   f.storm_fraction, f.cut_fraction, f.offline_fraction}) {
    if (!(v >= 0 && v <= 1)) return fail("fault fractions must lie in [0, 1]");
  }
  if (f.malformed_fraction > 0 && f.malformed_kinds.empty()) {
    return fail("malformed fraction set but no malformed kinds");
  }
  if (!s.agent_delivery.empty() && s.agent_delivery != "fire_and_forget" &&
      s.agent_delivery != "at_least_once" && s.agent_delivery != "end_to_end") {
    return fail("agent delivery must be fire_and_forget, at_least_once or end_to_end");
  }
  if (s.mode == DeviceMode::kAgent && s.agent_bin.empty()) {
    return fail("agent mode needs the agent binary (--agent-bin or [agents] bin)");
  }
  if (s.connections > 0 && s.connections < s.devices &&
      (f.cut_fraction > 0 || f.offline_fraction > 0 || f.storm_every_us > 0)) {
    return fail(
        "cuts, offline stops and storms need one connection per device "
        "(--connections 0)");
  }
  return {};
}

}  // namespace outpost::sim
