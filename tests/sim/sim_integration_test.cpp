// outpost-sim end to end: a real mosquitto on a free loopback port, the real outpost-sim (and
// outpost-agent) binaries, and a Paho subscriber that decodes and validates everything it
// sees, as the collector would, to check the manifest against what actually arrived.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <set>

#include "outpost/common/clock.h"
#include "outpost/common/codec.h"
#include "outpost/common/topics.h"
#include "outpost/sim/faults.h"
#include "support/broker_test.h"
#include "support/manifest.h"
#include "support/mqtt_clients.h"
#include "support/process.h"

namespace outpost {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using test_support::ManifestDevice;
using test_support::Process;
using test_support::read_manifest;
using test_support::wait_until;

// What the subscriber saw of one device, judged like the collector judges it.
struct Seen {
  std::set<std::pair<uint64_t, uint64_t>> unique;  // valid (epoch, seq)
  uint64_t valid_messages = 0;
  uint64_t readings = 0;  // in unique valid batches
  uint64_t logs = 0;
  std::map<common::Reason, uint64_t> rejected;
  std::map<common::DeviceState, uint64_t> statuses;
};

class Subscriber {
 public:
  explicit Subscriber(const std::string& uri) : tap_(uri) {}

  // Pulls what has arrived and judges it.
  void pump() {
    for (const auto& msg : tap_.take()) {
      auto topic = common::parse_device_topic(msg->get_topic());
      ASSERT_TRUE(topic.ok()) << msg->get_topic();
      const auto bytes = test_support::payload_bytes(*msg);
      Seen& seen = devices[topic.value().device];
      if (topic.value().kind == common::PayloadKind::kStatus) {
        auto env = common::decode(bytes);
        ASSERT_TRUE(env.ok());
        ++seen.statuses[std::get<common::DeviceStatus>(env.value().body).state];
        continue;
      }
      auto env = common::decode_and_validate(
          bytes, {topic.value().kind, topic.value().device, common::wall_now_us()}, {});
      if (!env.ok()) {
        ++seen.rejected[env.error().reason];
        continue;
      }
      ++seen.valid_messages;
      if (!seen.unique.insert({env.value().epoch, env.value().seq}).second) continue;
      if (auto* b = std::get_if<common::ReadingBatch>(&env.value().body)) {
        seen.readings += b->readings.size();
      } else if (auto* l = std::get_if<common::LogBatch>(&env.value().body)) {
        seen.logs += l->records.size();
      }
    }
  }

  std::map<std::string, Seen> devices;

 private:
  test_support::MqttSubscriber tap_;
};

// Waits (10 s) until `matches(id, device)` holds for every device of the manifest, then checks
// each one, so that a failure names the devices that do not match.
template <typename Matches>
void expect_all_match(Subscriber& sub, const std::map<std::string, ManifestDevice>& manifest,
                      Matches matches) {
  EXPECT_TRUE(wait_until(
      [&] {
        sub.pump();
        for (const auto& [id, d] : manifest) {
          if (!matches(id, d)) return false;
        }
        return true;
      },
      10s));
  for (const auto& [id, d] : manifest) EXPECT_TRUE(matches(id, d)) << id;
}

class SimIntegration : public test_support::BrokerTest {
 protected:
  SimIntegration() : BrokerTest("outpost_sim_it") {}

  // Runs outpost-sim to its end; returns its exit code.
  int run_sim(std::vector<std::string> args, std::chrono::seconds timeout = 30s) {
    std::vector<std::string> argv = {OUTPOST_SIM_BIN, "--broker", broker_->uri(), "--manifest",
                                     manifest_path().string()};
    argv.insert(argv.end(), args.begin(), args.end());
    Process p(argv, dir_ / "sim.log");
    if (!wait_until([&] { return !p.running(); }, timeout)) return -1;
    return p.stop(0, 1s);
  }

  fs::path manifest_path() const { return dir_ / "manifest.json"; }
  std::string sim_log() const { return test_support::read_text(dir_ / "sim.log"); }
};

TEST_F(SimIntegration, DirectFleetMessagesDecodeToExactlyWhatTheManifestSays) {
  Subscriber sub(broker_->uri());
  ASSERT_EQ(run_sim({"--devices", "6", "--duration", "3s", "--period", "100ms", "--batch-size",
                     "10", "--logs-per-minute", "120", "--duplicate-fraction", "0.2",
                     "--out-of-order-fraction", "0.2", "--seed", "3"}),
            0)
      << sim_log();
  const auto manifest = read_manifest(manifest_path());
  ASSERT_EQ(manifest.size(), 6u) << test_support::read_text(manifest_path());
  uint64_t total_readings = 0, total_duplicates = 0;
  for (const auto& [id, d] : manifest) {
    total_readings += d.numbers.at("readings_sent");
    total_duplicates += d.numbers.at("duplicates_sent");
  }
  // Two default sensors, read 30 times in 3 s: the count does not depend on timing.
  EXPECT_EQ(total_readings, 6u * 30 * 2);
  EXPECT_GT(total_duplicates, 0u);

  auto all_arrived = [&] {
    sub.pump();
    for (const auto& [id, d] : manifest) {
      const Seen& seen = sub.devices[id];
      if (seen.readings != d.numbers.at("readings_sent") ||
          seen.logs != d.numbers.at("logs_sent") ||
          seen.valid_messages - seen.unique.size() != d.numbers.at("duplicates_sent")) {
        return false;
      }
    }
    return true;
  };
  EXPECT_TRUE(wait_until(all_arrived, 10s));
  for (const auto& [id, d] : manifest) {
    Seen& seen = sub.devices[id];
    EXPECT_EQ(d.mode, "direct");
    EXPECT_EQ(seen.readings, d.numbers.at("readings_sent")) << id;
    EXPECT_GT(seen.logs, 0u) << id;
    EXPECT_EQ(seen.logs, d.numbers.at("logs_sent")) << id;
    EXPECT_EQ(seen.valid_messages - seen.unique.size(), d.numbers.at("duplicates_sent")) << id;
    EXPECT_TRUE(seen.rejected.empty()) << id;
    EXPECT_EQ(seen.unique, d.seqs()) << id;
    ASSERT_EQ(d.epochs.size(), 1u) << id << ": one boot, no gaps";
    EXPECT_EQ(d.epochs[0][1], 1u);
    // Birth on connect and offline at the end, both counted.
    EXPECT_EQ(seen.statuses[common::DeviceState::kOnline], 1u) << id;
    EXPECT_EQ(seen.statuses[common::DeviceState::kOffline], 1u) << id;
    EXPECT_EQ(d.numbers.at("status_sent"), 2u) << id;
  }

  // The same seed gives the same epochs (and so the same fleet).
  const auto first_epochs = manifest.at("sim-0001").epochs[0][0];
  ASSERT_EQ(run_sim({"--devices", "2", "--duration", "200ms", "--seed", "3"}), 0) << sim_log();
  EXPECT_EQ(read_manifest(manifest_path()).at("sim-0001").epochs.at(0)[0], first_epochs);
}

TEST_F(SimIntegration, MalformedFractionsAreCountedPerKindAndRejectedWithTheirReason) {
  Subscriber sub(broker_->uri());
  ASSERT_EQ(run_sim({"--devices", "4", "--duration", "3s", "--period", "100ms", "--batch-size", "2",
                     "--malformed-fraction", "0.5", "--malformed-kinds", "all", "--seed", "5"}),
            0)
      << sim_log();
  const auto manifest = read_manifest(manifest_path());
  ASSERT_EQ(manifest.size(), 4u);

  // Expected rejections per device and reason, from the manifest's kinds.
  std::map<std::string, std::map<common::Reason, uint64_t>> expected;
  std::map<std::string, uint64_t> per_kind;
  uint64_t malformed = 0, batches = 0;
  for (const auto& [id, d] : manifest) {
    for (auto kind : sim::kAllMalformedKinds) {
      const uint64_t n = d.numbers.at(std::string(sim::malformed_kind_name(kind)));
      expected[id][sim::expected_reason(kind)] += n;
      per_kind[std::string(sim::malformed_kind_name(kind))] += n;
      malformed += n;
    }
    for (const auto& [epoch, first, last] : d.epochs) batches += last - first + 1;
  }
  for (const auto& [kind, n] : per_kind) EXPECT_GT(n, 0u) << kind << " never sent";
  // One malformed message per valid batch with probability 0.5.
  EXPECT_NEAR(static_cast<double>(malformed) / static_cast<double>(batches), 0.5, 0.15);

  auto all_arrived = [&] {
    sub.pump();
    for (const auto& [id, d] : manifest) {
      std::map<common::Reason, uint64_t> seen;
      for (const auto& [reason, n] : sub.devices[id].rejected) {
        if (n) seen[reason] = n;
      }
      std::map<common::Reason, uint64_t> want;
      for (const auto& [reason, n] : expected[id]) {
        if (n) want[reason] = n;
      }
      if (seen != want || sub.devices[id].readings != d.numbers.at("readings_sent")) return false;
    }
    return true;
  };
  EXPECT_TRUE(wait_until(all_arrived, 10s));
  for (const auto& [id, d] : manifest) {
    for (const auto& [reason, n] : expected[id]) {
      EXPECT_EQ(sub.devices[id].rejected[reason], n) << id << " " << common::reason_name(reason);
    }
    EXPECT_EQ(sub.devices[id].readings, d.numbers.at("readings_sent")) << id;
  }
}

TEST_F(SimIntegration, LastWillFiresWhenADeviceIsCutAndOfflineWhenItStopsCleanly) {
  Subscriber sub(broker_->uri());
  ASSERT_EQ(run_sim({"--devices", "6", "--duration", "4s", "--period", "100ms", "--cut-fraction",
                     "0.5", "--offline-fraction", "0.5", "--seed", "2"}),
            0)
      << sim_log();
  const auto manifest = read_manifest(manifest_path());
  ASSERT_EQ(manifest.size(), 6u);
  uint64_t cuts = 0;
  for (const auto& [id, d] : manifest) cuts += d.numbers.at("cuts");
  ASSERT_GT(cuts, 0u);
  ASSERT_LT(cuts, 6u) << "seed 2 should give both cut and cleanly stopped devices";

  auto all_arrived = [&] {
    sub.pump();
    for (const auto& [id, d] : manifest) {
      auto& statuses = sub.devices[id].statuses;
      const auto want =
          d.numbers.at("cuts") ? common::DeviceState::kLost : common::DeviceState::kOffline;
      if (statuses[want] != 1 || sub.devices[id].readings != d.numbers.at("readings_sent")) {
        return false;
      }
    }
    return true;
  };
  EXPECT_TRUE(wait_until(all_arrived, 10s));
  for (const auto& [id, d] : manifest) {
    auto& statuses = sub.devices[id].statuses;
    if (d.numbers.at("cuts")) {
      EXPECT_EQ(statuses[common::DeviceState::kLost], 1u) << id << ": the last will";
      EXPECT_EQ(statuses[common::DeviceState::kOffline], 0u) << id;
      EXPECT_EQ(d.numbers.at("status_sent"), 1u) << id << ": birth only";
    } else {
      EXPECT_EQ(statuses[common::DeviceState::kOffline], 1u) << id;
      EXPECT_EQ(statuses[common::DeviceState::kLost], 0u) << id;
    }
    EXPECT_GT(d.numbers.at("readings_sent"), 0u) << id;
    EXPECT_EQ(sub.devices[id].readings, d.numbers.at("readings_sent")) << id;
  }
}

TEST_F(SimIntegration, RebootsAndReconnectStormsKeepSeqsGoingAndTheManifestExact) {
  Subscriber sub(broker_->uri());
  ASSERT_EQ(run_sim({"--devices", "4", "--duration", "4s", "--period", "100ms", "--batch-size", "6",
                     "--reboot-every", "1500ms", "--storm-every", "1s", "--storm-fraction", "0.5",
                     "--duplicate-fraction", "0.1", "--seed", "8"}),
            0)
      << sim_log();
  const auto manifest = read_manifest(manifest_path());
  ASSERT_EQ(manifest.size(), 4u);
  uint64_t reboots = 0, total = 0;
  for (const auto& [id, d] : manifest) {
    reboots += d.numbers.at("reboots");
    total += d.numbers.at("readings_sent");
  }
  EXPECT_GT(reboots, 0u);
  EXPECT_EQ(total, 4u * 40 * 2) << "reboots and storms lose no reading";

  auto all_arrived = [&] {
    sub.pump();
    for (const auto& [id, d] : manifest) {
      if (sub.devices[id].readings != d.numbers.at("readings_sent")) return false;
    }
    return true;
  };
  EXPECT_TRUE(wait_until(all_arrived, 10s));
  for (const auto& [id, d] : manifest) {
    Seen& seen = sub.devices[id];
    std::set<std::pair<uint64_t, uint64_t>> expected;
    uint64_t next_seq = 1;
    std::set<uint64_t> epochs;
    for (const auto& [epoch, first, last] : d.epochs) {
      EXPECT_EQ(first, next_seq) << id << ": seq carries on across reboots, without gaps";
      next_seq = last + 1;
      epochs.insert(epoch);
      for (uint64_t s = first; s <= last; ++s) expected.insert({epoch, s});
    }
    EXPECT_EQ(epochs.size(), d.numbers.at("reboots") + 1) << id << ": a new epoch per boot";
    EXPECT_EQ(seen.unique, expected) << id;
    EXPECT_EQ(seen.valid_messages - seen.unique.size(), d.numbers.at("duplicates_sent")) << id;
    // Every connect publishes a birth, and the run ends with an offline status.
    EXPECT_EQ(
        seen.statuses[common::DeviceState::kOnline] + seen.statuses[common::DeviceState::kOffline],
        d.numbers.at("status_sent"))
        << id;
    EXPECT_EQ(seen.statuses[common::DeviceState::kLost], 0u) << id;
  }
}

TEST_F(SimIntegration, FlakyCellularWithEveryFaultAtOnceStillMatchesTheManifest) {
  Subscriber sub(broker_->uri());
  ASSERT_EQ(
      run_sim({"--scenario",
               std::string(OUTPOST_SOURCE_DIR) + "/firmware-sim/scenarios/flaky-cellular.toml",
               "--devices",
               "12",
               "--duration",
               "5s",
               "--period",
               "100ms",
               "--batch-size",
               "8",
               "--reboot-every",
               "3s",
               "--storm-every",
               "2s",
               "--cut-fraction",
               "0.2",
               "--offline-fraction",
               "0.2",
               "--malformed-fraction",
               "0.2"}),
      0)
      << sim_log();
  const auto manifest = read_manifest(manifest_path());
  ASSERT_EQ(manifest.size(), 12u);
  std::map<std::string, std::map<common::Reason, uint64_t>> expected;
  uint64_t malformed = 0, duplicates = 0, reboots = 0, cuts = 0;
  for (const auto& [id, d] : manifest) {
    for (auto kind : sim::kAllMalformedKinds) {
      const uint64_t n = d.numbers.at(std::string(sim::malformed_kind_name(kind)));
      if (n) expected[id][sim::expected_reason(kind)] += n;
      malformed += n;
    }
    duplicates += d.numbers.at("duplicates_sent");
    reboots += d.numbers.at("reboots");
    cuts += d.numbers.at("cuts");
  }
  // Seed 42 of the scenario: every fault actually happens in this run.
  EXPECT_GT(malformed, 0u);
  EXPECT_GT(duplicates, 0u);
  EXPECT_GT(reboots, 0u);
  EXPECT_GT(cuts, 0u);
  auto matches = [&](const std::string& id, const ManifestDevice& d) {
    Seen& seen = sub.devices[id];
    std::map<common::Reason, uint64_t> rejected;
    for (const auto& [reason, n] : seen.rejected) {
      if (n) rejected[reason] = n;
    }
    return seen.unique == d.seqs() && seen.readings == d.numbers.at("readings_sent") &&
           seen.logs == d.numbers.at("logs_sent") &&
           seen.valid_messages - seen.unique.size() == d.numbers.at("duplicates_sent") &&
           rejected == expected[id];
  };
  expect_all_match(sub, manifest, matches);
}

TEST_F(SimIntegration, SplitOverShardProcessesTheManifestIsStillExactAndTheSame) {
  Subscriber sub(broker_->uri());
  ASSERT_EQ(run_sim({"--devices", "7", "--processes", "3", "--duration", "3s", "--period", "100ms",
                     "--batch-size", "10", "--duplicate-fraction", "0.2", "--cut-fraction", "0.3",
                     "--seed", "6"}),
            0)
      << sim_log();
  const auto manifest = read_manifest(manifest_path());
  ASSERT_EQ(manifest.size(), 7u) << test_support::read_text(manifest_path());
  uint64_t cuts = 0;
  for (const auto& [id, d] : manifest) cuts += d.numbers.at("cuts");
  EXPECT_GT(cuts, 0u);
  auto matches = [&](const std::string& id, const ManifestDevice& d) {
    Seen& seen = sub.devices[id];
    return seen.unique == d.seqs() && seen.readings == d.numbers.at("readings_sent") &&
           seen.valid_messages - seen.unique.size() == d.numbers.at("duplicates_sent") &&
           seen.statuses[d.numbers.at("cuts") ? common::DeviceState::kLost
                                              : common::DeviceState::kOffline] == 1;
  };
  expect_all_match(sub, manifest, matches);

  // One process or three: the same devices, epochs and faults for the same seed.
  ASSERT_EQ(run_sim({"--devices", "7", "--duration", "3s", "--period", "100ms", "--batch-size",
                     "10", "--duplicate-fraction", "0.2", "--cut-fraction", "0.3", "--seed", "6"}),
            0)
      << sim_log();
  const auto single = read_manifest(manifest_path());
  for (const auto& [id, d] : manifest) {
    EXPECT_EQ(single.at(id).epochs, d.epochs) << id;
    EXPECT_EQ(single.at(id).numbers, d.numbers) << id;
  }
}

TEST_F(SimIntegration, ViaTwoRealAgentsTheManifestReadingsArrive) {
  Subscriber sub(broker_->uri());
  ASSERT_EQ(run_sim({"--mode", "agent", "--agents", "2", "--agent-bin", OUTPOST_AGENT_BIN,
                     "--work-dir", (dir_ / "agents").string(), "--duration", "3s", "--period",
                     "100ms", "--batch-size", "20", "--logs-per-minute", "60", "--seed", "4"}),
            0)
      << sim_log();
  const auto manifest = read_manifest(manifest_path());
  ASSERT_EQ(manifest.size(), 2u) << test_support::read_text(manifest_path());
  auto all_arrived = [&] {
    sub.pump();
    for (const auto& [id, d] : manifest) {
      if (sub.devices[id].readings != d.numbers.at("readings_sent") ||
          sub.devices[id].logs != d.numbers.at("logs_sent")) {
        return false;
      }
    }
    return true;
  };
  EXPECT_TRUE(wait_until(all_arrived, 10s))
      << test_support::read_text(dir_ / "agents" / "agent-0.log");
  for (const auto& [id, d] : manifest) {
    EXPECT_EQ(d.mode, "agent");
    EXPECT_TRUE(d.epochs.empty());
    EXPECT_EQ(d.numbers.at("readings_sent"), 30u * 2) << id << ": 2 sensors, 30 reads";
    EXPECT_EQ(sub.devices[id].readings, d.numbers.at("readings_sent")) << id;
    EXPECT_EQ(sub.devices[id].logs, d.numbers.at("logs_sent")) << id;
    EXPECT_TRUE(sub.devices[id].rejected.empty()) << id;
  }
}

TEST_F(SimIntegration, BrokenScenarioNamesFileLineAndKeyAndExits78) {
  const fs::path bad = dir_ / "bad.toml";
  std::ofstream(bad) << "[fleet]\ndevices = 2\nbatch_size = \"many\"\n";
  EXPECT_EQ(run_sim({"--scenario", bad.string()}), 78);
  EXPECT_NE(sim_log().find("bad.toml:3"), std::string::npos) << sim_log();
  EXPECT_NE(sim_log().find("fleet.batch_size"), std::string::npos) << sim_log();
  EXPECT_EQ(run_sim({"--malformed-kinds", "bogus"}), 2);
  EXPECT_NE(sim_log().find("bogus"), std::string::npos) << sim_log();
  EXPECT_FALSE(fs::exists(manifest_path())) << "nothing ran";
}

TEST_F(SimIntegration, UnreachableBrokerIsARuntimeFailureWithAnEmptyManifest) {
  const test_support::RefusingPort nobody;  // bound, never listening: connects are refused
  std::vector<std::string> argv = {OUTPOST_SIM_BIN,
                                   "--broker",
                                   "tcp://127.0.0.1:" + std::to_string(nobody.port()),
                                   "--devices",
                                   "2",
                                   "--duration",
                                   "1s",
                                   "--manifest",
                                   manifest_path().string()};
  Process p(argv, dir_ / "sim.log");
  ASSERT_TRUE(wait_until([&] { return !p.running(); }, 15s)) << sim_log();
  EXPECT_EQ(p.stop(0, 1s), 1) << sim_log();
  EXPECT_NE(sim_log().find("no device could connect"), std::string::npos) << sim_log();
  const auto manifest = read_manifest(manifest_path());
  ASSERT_EQ(manifest.size(), 2u);
  for (const auto& [id, d] : manifest) EXPECT_EQ(d.numbers.at("readings_sent"), 0u) << id;
}

}  // namespace
}  // namespace outpost
