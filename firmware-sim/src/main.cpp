// outpost-sim: simulates a fleet of devices against a real broker, with faults on demand, and
// writes a manifest of what it sent. Reads top to bottom: flags -> scenario -> logging ->
// shard processes -> signals -> run -> manifest -> summary.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <thread>

#include "agent_fleet.h"
#include "direct_fleet.h"
#include "outpost/common/cli.h"
#include "outpost/common/config.h"
#include "outpost/common/logging.h"
#include "outpost/sim/scenario.h"
#include "sharded_fleet.h"

namespace {

using namespace outpost;
using sim::Scenario;

struct Flags {
  std::string scenario;
  std::string manifest;
  bool progress = false;
  // Overrides: applied when given on the command line.
  std::string broker, mode, site, agent_bin, work_dir, agent_delivery, malformed_kinds;
  std::string duration, period, reconnect_max, clock_skew, reboot_every, storm_every, burst_every,
      burst_length;
  uint32_t devices = 0, agents = 0, threads = 0, processes = 0, connections = 0, batch_size = 0,
           max_inflight = 0, burst_factor = 0;
  uint64_t seed = 0;
  int qos = 1;
  double logs_per_minute = 0, malformed_fraction = 0, duplicate_fraction = 0,
         out_of_order_fraction = 0, storm_fraction = 0, cut_fraction = 0, offline_fraction = 0;
};

void add_flags(CLI::App& app, Flags& f) {
  app.add_option("--scenario", f.scenario,
                 "Scenario file (TOML), e.g. "
                 "firmware-sim/scenarios/small-office.toml (--config is the same)")
      ->type_name("FILE");
  app.add_option("--manifest", f.manifest, "Write the run manifest (JSON) here")->type_name("FILE");
  app.add_flag("--progress", f.progress,
               "Print progress every second (default: if stderr is a TTY)");
  auto* run = "Run (override the scenario)";
  app.add_option("--broker", f.broker, "MQTT broker URI, e.g. tcp://127.0.0.1:1883")->group(run);
  app.add_option("--duration", f.duration, "How long devices run, e.g. 30s")->group(run);
  app.add_option("--seed", f.seed, "Seed: the same seed, the same fleet and faults")->group(run);
  app.add_option("--mode", f.mode, "direct (encode and publish) or agent (via outpost-agent)")
      ->check(CLI::IsMember({"direct", "agent"}))
      ->group(run);
  app.add_option("--threads", f.threads, "Worker threads (direct mode)")->group(run);
  app.add_option("--processes", f.processes,
                 "Direct mode: split the fleet over this many processes, each with its own "
                 "Paho threads (for fleets beyond ~10,000 connections)")
      ->group(run);
  app.add_option("--agents", f.agents, "Agent mode: number of agents (= devices) to start")
      ->group(run);
  app.add_option("--agent-bin", f.agent_bin, "Agent mode: path of outpost-agent")->group(run);
  app.add_option("--work-dir", f.work_dir, "Agent mode: directory for configs, stores, logs")
      ->group(run);
  app.add_option("--agent-delivery", f.agent_delivery,
                 "Agent mode: the agents' delivery mode; default from --qos (0: "
                 "fire_and_forget, else at_least_once); end_to_end against an Outpost collector")
      ->check(CLI::IsMember({"fire_and_forget", "at_least_once", "end_to_end"}))
      ->group(run);
  auto* fleet = "Fleet (override the scenario)";
  app.add_option("--devices", f.devices, "Number of devices (direct mode)")->group(fleet);
  app.add_option("--site", f.site, "Site id of every device")->group(fleet);
  app.add_option("--period", f.period, "Time between reads of all sensors, e.g. 1s")->group(fleet);
  app.add_option("--batch-size", f.batch_size, "Readings per data message (1-1000)")->group(fleet);
  app.add_option("--logs-per-minute", f.logs_per_minute, "Log records per device and minute")
      ->group(fleet);
  app.add_option("--qos", f.qos, "QoS of data and logs (0, 1, 2)")->group(fleet);
  app.add_option("--connections", f.connections,
                 "MQTT connections to spread the fleet over; 0: one per device")
      ->group(fleet);
  app.add_option("--max-inflight", f.max_inflight, "Unacknowledged messages per connection")
      ->group(fleet);
  app.add_option("--reconnect-max", f.reconnect_max,
                 "Longest wait between reconnect attempts (the backoff doubles from 0.5s), e.g. 1s")
      ->group(fleet);
  auto* faults = "Faults (override the scenario)";
  app.add_option("--malformed-fraction", f.malformed_fraction,
                 "Chance per valid batch of an extra malformed message")
      ->group(faults);
  app.add_option("--malformed-kinds", f.malformed_kinds,
                 "Comma-separated: truncated, random_bytes, wrong_message_type, "
                 "identity_mismatch, oversized, nan, timestamp_far_off, or all")
      ->group(faults);
  app.add_option("--duplicate-fraction", f.duplicate_fraction,
                 "Chance per valid batch of sending it twice")
      ->group(faults);
  app.add_option("--out-of-order-fraction", f.out_of_order_fraction,
                 "Chance per valid batch of sending it after the next one")
      ->group(faults);
  app.add_option("--clock-skew", f.clock_skew, "Device clocks off by up to +/- this, e.g. 10m")
      ->group(faults);
  app.add_option("--reboot-every", f.reboot_every, "Mean time between reboots of a device")
      ->group(faults);
  app.add_option("--storm-every", f.storm_every, "Disconnect/reconnect storms this often")
      ->group(faults);
  app.add_option("--storm-fraction", f.storm_fraction, "Share of devices in each storm")
      ->group(faults);
  app.add_option("--cut-fraction", f.cut_fraction,
                 "Share of devices cut once without DISCONNECT (last will fires)")
      ->group(faults);
  app.add_option("--offline-fraction", f.offline_fraction,
                 "Share of devices stopping once cleanly (offline status)")
      ->group(faults);
  app.add_option("--burst-every", f.burst_every, "Bursts of faster reads this often")
      ->group(faults);
  app.add_option("--burst-length", f.burst_length, "Length of a burst")->group(faults);
  app.add_option("--burst-factor", f.burst_factor, "Reads this many times faster in a burst")
      ->group(faults);
}

// Applies the flags given on the command line over the scenario; false on a bad value.
bool apply_flags(const CLI::App& app, const Flags& f, Scenario& s, std::string& error) {
  auto given = [&](const char* name) { return app.count(name) > 0; };
  auto duration = [&](const char* name, const std::string& text, int64_t& out) {
    if (!given(name)) return true;
    auto us = common::parse_duration_us(text);
    if (!us) {
      error = std::string(name) + ": expected a duration such as \"30s\", got \"" + text + "\"";
      return false;
    }
    out = *us;
    return true;
  };
  if (given("--broker")) s.broker = f.broker;
  if (given("--seed")) s.seed = f.seed;
  if (given("--mode"))
    s.mode = f.mode == "agent" ? sim::DeviceMode::kAgent : sim::DeviceMode::kDirect;
  if (given("--threads")) s.threads = std::max<uint32_t>(1, f.threads);
  if (given("--processes")) s.processes = std::max<uint32_t>(1, f.processes);
  if (given("--agents")) s.agents = f.agents;
  if (given("--agent-bin")) s.agent_bin = f.agent_bin;
  if (given("--work-dir")) s.work_dir = f.work_dir;
  if (given("--agent-delivery")) s.agent_delivery = f.agent_delivery;
  if (given("--devices")) s.devices = f.devices;
  if (given("--site")) s.site = f.site;
  if (given("--batch-size")) s.device.batch_size = f.batch_size;
  if (given("--logs-per-minute")) s.device.logs_per_minute = f.logs_per_minute;
  if (given("--qos")) s.qos = f.qos;
  if (given("--connections")) s.connections = f.connections;
  if (given("--max-inflight")) s.max_inflight = std::max<uint32_t>(1, f.max_inflight);
  auto& fs = s.device.faults;
  if (given("--malformed-fraction")) fs.malformed_fraction = f.malformed_fraction;
  if (given("--malformed-kinds")) {
    auto kinds = sim::parse_malformed_kinds(f.malformed_kinds);
    if (!kinds.ok()) {
      error = "--malformed-kinds: " + kinds.error().message;
      return false;
    }
    fs.malformed_kinds = kinds.value();
  }
  if (given("--duplicate-fraction")) fs.duplicate_fraction = f.duplicate_fraction;
  if (given("--out-of-order-fraction")) fs.out_of_order_fraction = f.out_of_order_fraction;
  if (given("--storm-fraction")) fs.storm_fraction = f.storm_fraction;
  if (given("--cut-fraction")) fs.cut_fraction = f.cut_fraction;
  if (given("--offline-fraction")) fs.offline_fraction = f.offline_fraction;
  if (given("--burst-factor")) fs.burst_factor = std::max<uint32_t>(1, f.burst_factor);
  int64_t period = s.period_us;
  if (!duration("--duration", f.duration, s.duration_us) ||
      !duration("--period", f.period, period) ||
      !duration("--reconnect-max", f.reconnect_max, s.reconnect_max_us) ||
      !duration("--clock-skew", f.clock_skew, fs.clock_skew_us) ||
      !duration("--reboot-every", f.reboot_every, fs.reboot_every_us) ||
      !duration("--storm-every", f.storm_every, fs.storm_every_us) ||
      !duration("--burst-every", f.burst_every, fs.burst_every_us) ||
      !duration("--burst-length", f.burst_length, fs.burst_length_us)) {
    return false;
  }
  if (period < 1000) {
    error = "--period: at least 1ms";
    return false;
  }
  s.period_us = period;
  if (s.reconnect_max_us < 1000) {
    error = "--reconnect-max: at least 1ms";
    return false;
  }
  if (s.duration_us <= 0) {
    error = "--duration: must be positive";
    return false;
  }
  return true;
}

std::string with_commas(uint64_t v) {
  std::string digits = std::to_string(v);
  for (int i = static_cast<int>(digits.size()) - 3; i > 0; i -= 3) digits.insert(i, ",");
  return digits;
}

// Prints one status line per second until `done`.
void show_progress(const sim::LiveCounters& c, const std::atomic<bool>& done, bool tty) {
  const auto start = std::chrono::steady_clock::now();
  uint64_t last_readings = 0;
  auto next = start;
  while (!done) {
    next += std::chrono::seconds(1);
    while (!done && std::chrono::steady_clock::now() < next) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (done) break;
    const uint64_t readings = c.readings;
    const auto secs =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - start);
    const uint64_t errors = c.publish_failures + c.connect_failures + c.connection_losses;
    std::fprintf(stderr,
                 "%s[%4llds] connected %lld/%llu  readings/s %s  readings %s  messages %s  "
                 "backlog %s  errors %s%s",
                 tty ? "\r" : "", static_cast<long long>(secs.count()),
                 static_cast<long long>(c.connected.load()),
                 static_cast<unsigned long long>(c.devices.load()),
                 with_commas(readings - last_readings).c_str(), with_commas(readings).c_str(),
                 with_commas(c.messages).c_str(), with_commas(c.backlog).c_str(),
                 with_commas(errors).c_str(), tty ? "   " : "\n");
    std::fflush(stderr);
    last_readings = readings;
  }
  if (tty) std::fprintf(stderr, "\n");
}

void print_summary(const sim::Manifest& m, const sim::LiveCounters& c) {
  uint64_t readings = 0, logs = 0, dup = 0, status = 0, cuts = 0, reboots = 0, malformed = 0;
  std::size_t batches = 0;
  for (const auto& d : m.devices) {
    readings += d.readings_sent();
    logs += d.logs_sent();
    dup += d.duplicates_sent();
    status += d.status_sent();
    cuts += d.cuts();
    reboots += d.reboots();
    malformed += d.malformed_total();
    batches += d.batches_sent();
  }
  const double secs = static_cast<double>(m.finished_us - m.started_us) / 1e6;
  std::printf("%-22s %s\n", "devices", with_commas(m.devices.size()).c_str());
  std::printf("%-22s %.1f s\n", "run time", secs);
  std::printf("%-22s %s\n", "valid batches", with_commas(batches).c_str());
  std::printf("%-22s %s (%s/s)\n", "readings sent", with_commas(readings).c_str(),
              with_commas(static_cast<uint64_t>(secs > 0 ? readings / secs : 0)).c_str());
  std::printf("%-22s %s\n", "logs sent", with_commas(logs).c_str());
  std::printf("%-22s %s\n", "malformed sent", with_commas(malformed).c_str());
  for (auto k : sim::kAllMalformedKinds) {
    uint64_t n = 0;
    for (const auto& d : m.devices) n += d.malformed(k);
    if (n)
      std::printf("  %-20s %s\n", std::string(sim::malformed_kind_name(k)).c_str(),
                  with_commas(n).c_str());
  }
  std::printf("%-22s %s\n", "duplicates sent", with_commas(dup).c_str());
  std::printf("%-22s %s\n", "status messages", with_commas(status).c_str());
  std::printf("%-22s %s\n", "reboots", with_commas(reboots).c_str());
  std::printf("%-22s %s\n", "cuts", with_commas(cuts).c_str());
  std::printf("%-22s %s\n", "publish failures", with_commas(c.publish_failures).c_str());
  std::printf("%-22s %s\n", "lost completions", with_commas(c.lost_completions).c_str());
  std::printf("%-22s %s\n", "connect failures", with_commas(c.connect_failures).c_str());
  std::printf("%-22s %s\n", "connections lost", with_commas(c.connection_losses).c_str());
  std::printf("%-22s %s\n", "never published", with_commas(c.backlog).c_str());
}

}  // namespace

int main(int argc, char** argv) {
  // 1. Flags.
  CLI::App app(
      "Outpost fleet simulator: simulated devices publish readings, logs and status to a real\n"
      "broker (directly, or through real outpost-agent processes), with faults on demand, and\n"
      "a manifest of exactly what was sent.",
      "outpost-sim");
  common::CommonOptions common_options;
  add_common_options(app, common_options);
  Flags flags;
  add_flags(app, flags);
  if (auto code = common::parse_command_line(app, argc, argv)) return *code;

  // 2. Scenario, then flags over it.
  Scenario scenario;
  scenario.device.sensors = sim::default_sensors();
  const std::string scenario_path =
      !flags.scenario.empty() ? flags.scenario : common_options.config_path;
  if (!scenario_path.empty()) {
    auto loaded = sim::load_scenario(scenario_path);
    if (!loaded.ok()) {
      std::cerr << "outpost-sim: " << loaded.error().to_string() << "\n";
      return common::kExitConfigError;
    }
    scenario = std::move(loaded).value();
  }
  std::string error;
  if (!apply_flags(app, flags, scenario, error)) {
    std::cerr << "outpost-sim: " << error << "\nRun with --help for more information.\n";
    return common::kExitUsage;
  }
  if (auto s = sim::check_scenario(scenario); !s.ok()) {
    std::cerr << "outpost-sim: " << s.error().message << "\n";
    return scenario_path.empty() ? common::kExitUsage : common::kExitConfigError;
  }

  // 3. Logging.
  common::init_logging(
      "outpost-sim",
      common::parse_log_level(common_options.log_level.empty() ? "warn" : common_options.log_level)
          .value_or(spdlog::level::warn));

  if (scenario.mode == sim::DeviceMode::kDirect && scenario.connections == 0 &&
      scenario.devices / scenario.processes > 10'000) {
    spdlog::warn(
        "{} connections per process: beyond about 10,000, Paho's single receive thread "
        "falls behind (see firmware-sim/README.md); consider --processes or --connections",
        scenario.devices / scenario.processes);
  }
  if (scenario.mode == sim::DeviceMode::kAgent) {
    const auto& f = scenario.device.faults;
    if (f.malformed_fraction > 0 || f.duplicate_fraction > 0 || f.out_of_order_fraction > 0 ||
        f.clock_skew_us > 0 || f.reboot_every_us > 0 || f.storm_every_us > 0 ||
        f.cut_fraction > 0 || f.offline_fraction > 0 || f.burst_every_us > 0) {
      spdlog::warn("agent mode: faults apply to direct mode only and are ignored");
    }
  }

  // 4. Shard processes, if any: forked before this process starts a thread.
  std::unique_ptr<sim::ShardedFleet> shards;
  if (scenario.mode == sim::DeviceMode::kDirect && scenario.processes > 1) {
    auto started = sim::ShardedFleet::start(scenario, scenario.processes);
    if (!started.ok()) {
      std::cerr << "outpost-sim: " << started.error().message << "\n";
      return common::kExitFailure;
    }
    shards = std::move(started).value();
  }

  // 5. Signals: SIGINT/SIGTERM end the run early (flush, wait for acks, manifest as usual).
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::atomic<bool> stop{false};
  std::atomic<bool> done{false};
  std::thread signals([&] {
    const timespec tick{0, 200'000'000};
    while (!done) {
      const int sig = sigtimedwait(&set, nullptr, &tick);
      if (sig == SIGINT || sig == SIGTERM) {
        spdlog::warn("signal {}: stopping the run", sig);
        stop = true;
      }
    }
  });

  // 6. Run.
  sim::LiveCounters counters;
  const bool tty = ::isatty(STDERR_FILENO) == 1;
  std::thread progress;
  if (flags.progress || tty) progress = std::thread([&] { show_progress(counters, done, tty); });
  auto result = shards ? shards->wait(counters, stop)
                : scenario.mode == sim::DeviceMode::kAgent
                    ? sim::run_agent_fleet(scenario, counters, stop)
                    : sim::run_direct_fleet(scenario, counters, stop);
  done = true;
  if (progress.joinable()) progress.join();
  signals.join();
  if (!result.ok()) {
    std::cerr << "outpost-sim: " << result.error().message << "\n";
    return common::kExitFailure;
  }

  // 7. Manifest and summary.
  const sim::Manifest& manifest = result.value();
  if (!flags.manifest.empty()) {
    std::ofstream out(flags.manifest, std::ios::binary | std::ios::trunc);
    out << sim::to_json(manifest);
    out.close();
    if (!out) {
      std::cerr << "outpost-sim: cannot write the manifest to " << flags.manifest << "\n";
      return common::kExitFailure;
    }
  }
  print_summary(manifest, counters);
  if (scenario.mode == sim::DeviceMode::kDirect && counters.connects == 0) {
    std::cerr << "outpost-sim: no device could connect to " << scenario.broker << "\n";
    return common::kExitFailure;
  }
  return common::kExitOk;
}
