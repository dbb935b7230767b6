// outpost-wire: inspect Outpost payloads (decode, validate, render as JSON) and demo the codec.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "outpost/common/cli.h"
#include "outpost/common/codec.h"
#include "outpost/common/config.h"
#include "outpost/common/json.h"
#include "outpost/common/logging.h"
#include "outpost/common/sample.h"
#include "outpost/common/topics.h"

namespace {

using namespace outpost::common;

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string to_hex(const std::vector<uint8_t>& bytes, std::size_t max_bytes, bool spaced) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < bytes.size() && i < max_bytes; ++i) {
    if (spaced && i) out += (i % 16 == 0) ? "\n                   " : " ";
    out += kHex[bytes[i] >> 4];
    out += kHex[bytes[i] & 15];
  }
  if (bytes.size() > max_bytes) out += " ...";
  return out;
}

// Accepts hex with any whitespace between digits; nullopt on anything else.
std::optional<std::vector<uint8_t>> from_hex(std::string_view text) {
  std::vector<uint8_t> out;
  int high = -1;
  for (char c : text) {
    int v;
    if (c >= '0' && c <= '9') {
      v = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      v = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      v = c - 'A' + 10;
    } else if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
      continue;
    } else {
      return std::nullopt;
    }
    if (high < 0) {
      high = v;
    } else {
      out.push_back(static_cast<uint8_t>(high << 4 | v));
      high = -1;
    }
  }
  if (high >= 0) return std::nullopt;
  return out;
}

// ------------------------------------------------------------------- example

// The worked example of docs/wire-format.md; `t0` is its first timestamp.
constexpr int64_t kWorkedExampleT0 = 1'700'000'000'000'000;  // 2023-11-14T22:13:20Z

Envelope worked_example(int64_t t0) {
  ReadingBatch b;
  b.time_synced = true;
  b.sensor_names = {"temp", "door"};
  b.units = {"Cel"};
  b.readings = {
      {0, t0, 21.37}, {1, t0, true}, {0, t0 + 1'000'000, 21.4}, {1, t0 + 1'000'000, false}};
  return Envelope{kSchemaVersion, "gw-7", 3, 42, std::move(b)};
}

// With `now`, the same readings stamped one second ago and now: a payload that `decode
// --topic` and the collector accept (the fixed 2023 timestamps are older than any
// max_past_age up to about three years).
// With `binary`, the payload's bytes as they are (for mosquitto_pub -s), not hex.
int run_example(bool now, bool binary) {
  auto bytes = encode(worked_example(now ? now_us() - 1'000'000 : kWorkedExampleT0));
  if (!bytes.ok()) {
    std::cerr << "outpost-wire: " << bytes.error().detail << "\n";
    return kExitFailure;
  }
  if (binary) {
    std::cout.write(reinterpret_cast<const char*>(bytes.value().data()),
                    static_cast<std::streamsize>(bytes.value().size()));
  } else {
    std::cout << to_hex(bytes.value(), bytes.value().size(), false) << "\n";
  }
  std::cout.flush();
  return std::cout ? kExitOk : kExitFailure;
}

// -------------------------------------------------------------------- decode

struct DecodeOptions {
  std::string input = "-";  // file, or - for stdin
  bool hex = false;
  std::string topic;            // validate as a payload received on this topic
  int64_t receive_time_us = 0;  // 0: now
};

int run_decode(const DecodeOptions& opt, const ValidationOptions& validation) {
  std::vector<uint8_t> bytes;
  if (opt.input == "-") {
    bytes.assign(std::istreambuf_iterator<char>(std::cin), {});
  } else {
    std::ifstream in(opt.input, std::ios::binary);
    if (!in) {
      std::cerr << "outpost-wire: cannot open " << opt.input << "\n";
      return kExitFailure;
    }
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  if (opt.hex) {
    auto decoded =
        from_hex(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
    if (!decoded) {
      std::cerr << "outpost-wire: input is not hex (digits 0-9a-f, whitespace allowed)\n";
      return kExitUsage;
    }
    bytes = std::move(*decoded);
  }
  auto refuse = [](const Rejection& r) {
    std::cerr << "rejected: " << reason_name(r.reason) << ": " << r.detail << "\n";
    return kExitRejected;
  };
  Result<Envelope, Rejection> result = decode(bytes);
  if (result.ok() && !opt.topic.empty()) {
    auto topic = parse_device_topic(opt.topic);
    if (!topic.ok()) return refuse(topic.error());
    const Expectation expect{topic.value().kind, topic.value().device,
                             opt.receive_time_us ? opt.receive_time_us : now_us()};
    if (auto s = validate(result.value(), expect, validation); !s.ok()) return refuse(s.error());
  }
  if (!result.ok()) return refuse(result.error());
  std::cout << to_json(result.value()) << "\n";
  return kExitOk;
}

// ---------------------------------------------------------------------- demo

struct Fault {
  std::string what;
  std::string topic;
  std::vector<uint8_t> bytes;
};

std::vector<Fault> demo_faults(const Envelope& good, const std::string& topic, int64_t now) {
  std::vector<Fault> faults;
  const auto good_bytes = encode(good).value();
  auto add = [&](std::string what, const Envelope& e, std::string t = "") {
    auto bytes = encode(e);
    faults.push_back({std::move(what), t.empty() ? topic : t,
                      bytes.ok() ? bytes.value() : std::vector<uint8_t>{}});
  };

  faults.push_back({"empty payload", topic, {}});
  faults.push_back(
      {"truncated to half its length", topic,
       std::vector<uint8_t>(good_bytes.begin(), good_bytes.begin() + good_bytes.size() / 2)});
  std::mt19937 rng(7);
  std::vector<uint8_t> junk(64);
  for (auto& b : junk) b = static_cast<uint8_t>(rng());
  faults.push_back({"64 random bytes", topic, junk});
  faults.push_back({"300 KiB flood", topic, std::vector<uint8_t>(300 * 1024, 0x2a)});

  Envelope v2 = good;
  v2.schema_version = 2;
  add("schema version 2 (a newer agent)", v2);
  add("a log batch sent on the data topic",
      Envelope{kSchemaVersion, good.device_id, good.epoch, good.seq + 1,
               LogBatch{true, {{now, Severity::kInfo, "hello", {}}}}});
  Envelope forged = good;
  forged.device_id = "gw-9999";
  add("device id gw-9999 on gw-0042's topic", forged);
  Envelope nan = good;
  std::get<ReadingBatch>(nan.body).readings[7].value = std::nan("");
  add("one reading is NaN", nan);
  Envelope future = good;
  std::get<ReadingBatch>(future.body).readings.back().time_us = now + 86'400'000'000LL;
  add("one timestamp a day ahead", future);
  Envelope bad_index = good;
  std::get<ReadingBatch>(bad_index.body).readings[3].sensor = 9;
  add("sensor index 9 in a table of 5", bad_index);
  faults.push_back(
      {"valid payload, topic with a '+'", "outpost/v1/demo-site/gw+0042/data", good_bytes});
  return faults;
}

int run_demo(const ValidationOptions& validation) {
  const int64_t now = now_us();
  const std::string device = "gw-0042";
  const std::string topic = device_topic("demo-site", device, PayloadKind::kReadings).value();
  const Envelope batch = sample_reading_batch(device, now - 10'000'000);
  const auto& readings = std::get<ReadingBatch>(batch.body).readings;
  const auto bytes = encode(batch).value();
  const std::string json = to_json(batch);
  const double n = static_cast<double>(readings.size());

  std::printf("Outpost wire format demo (outpost-wire %s)\n\n", OUTPOST_VERSION);
  std::printf("1. A typical batch on %s:\n", topic.c_str());
  std::printf("   5 sensors (temperature, humidity, pressure, co2, battery) read every second\n");
  std::printf("   for 10 s = %zu readings, with units, epoch and sequence number.\n\n",
              readings.size());
  std::printf("   protobuf (nanopb): %5zu bytes = %5.1f bytes/reading\n", bytes.size(),
              static_cast<double>(bytes.size()) / n);
  std::printf("   same batch, JSON:  %5zu bytes = %5.1f bytes/reading (%.1fx larger)\n\n",
              json.size(), static_cast<double>(json.size()) / n,
              static_cast<double>(json.size()) / static_cast<double>(bytes.size()));
  std::printf("   first 48 bytes: %s\n", to_hex(bytes, 48, true).c_str());
  std::printf("   as JSON:        %.150s...\n\n", json.c_str());

  auto back = decode_and_validate(bytes, {PayloadKind::kReadings, device, now}, validation);
  const bool exact = back.ok() && back.value() == batch;
  std::printf("   decoded and validated: %s; every value, type and timestamp identical: %s\n\n",
              back.ok() ? "accepted" : "REJECTED", exact ? "yes" : "NO");

  std::printf("2. Malformed payloads. Each is refused with the reason code the collector's\n");
  std::printf("   dead-letter queue records (docs/wire-format.md lists them all):\n\n");
  std::printf("   %-40s %-24s %s\n", "payload", "reason", "detail");
  int wrongly_accepted = 0;
  for (const Fault& f : demo_faults(batch, topic, now)) {
    Rejection rejection{Reason::kNotDecodable, ""};
    auto parsed = parse_device_topic(f.topic);
    if (!parsed.ok()) {
      rejection = parsed.error();
    } else {
      auto r = decode_and_validate(f.bytes, {parsed.value().kind, parsed.value().device, now},
                                   validation);
      if (r.ok()) {
        ++wrongly_accepted;
        std::printf("   %-40s %-24s\n", f.what.c_str(), "ACCEPTED (unexpected)");
        continue;
      }
      rejection = r.error();
    }
    std::printf("   %-40s %-24s %.70s\n", f.what.c_str(),
                std::string(reason_name(rejection.reason)).c_str(), rejection.detail.c_str());
  }

  std::printf("\n3. Explore further:\n");
  std::printf(
      "   build/common/outpost-wire example                 # the docs' worked example, hex\n");
  std::printf(
      "   build/common/outpost-wire example --now | build/common/outpost-wire decode --hex \\\n");
  std::printf(
      "       --topic outpost/v1/site-a/gw-7/data -           # stamped now, so it validates\n");
  std::printf("   build/bench/codec_bench                           # throughput, bytes/reading\n");
  std::printf("   scripts/test.sh                                   # the whole test suite\n");
  std::printf("\n   This demo exercises the wire format and codec that the agent, the collector\n");
  std::printf("   and the fleet simulator share.\n");
  return exact && wrongly_accepted == 0 ? kExitOk : kExitFailure;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app(
      "Inspect Outpost MQTT payloads: decode and validate them, render them as JSON, and\n"
      "demonstrate the wire format.",
      "outpost-wire");
  CommonOptions common;
  add_common_options(app, common);
  app.require_subcommand(1);

  app.add_subcommand("demo", "Encode a typical batch, compare with JSON, reject malformed ones");
  bool example_now = false, example_binary = false;
  auto* ex =
      app.add_subcommand("example", "Print the worked example of docs/wire-format.md in hex");
  ex->add_flag("--now", example_now,
               "Stamp its readings with the current time instead of 2023-11-14, so that\n"
               "`decode --topic outpost/v1/<site>/gw-7/data` accepts it");
  ex->add_flag("--binary", example_binary,
               "Write the payload's bytes instead of hex (e.g. for mosquitto_pub -s)");
  DecodeOptions decode_opt;
  auto* dec = app.add_subcommand(
      "decode",
      "Decode one payload and print it as JSON. Exit codes: 0 valid, 3 rejected (the reason\n"
      "is printed on stderr), 1 I/O error, 2 usage error, 78 bad config.");
  dec->add_option("input", decode_opt.input, "Payload file, or - for standard input")
      ->type_name("FILE");
  dec->add_flag("--hex", decode_opt.hex, "The input is hex text (as mosquitto_sub -F %x prints)");
  dec->add_option("--topic", decode_opt.topic,
                  "Also validate as received on this topic (kind, device id, timestamps)");
  dec->add_option("--receive-time-us", decode_opt.receive_time_us,
                  "Receive time for timestamp checks, Unix microseconds (default: now)");

  if (auto code = parse_command_line(app, argc, argv)) return *code;

  // Configuration: [log] and [validation], both optional.
  LogConfig log_config;
  ValidationOptions validation;
  if (!common.config_path.empty()) {
    auto reader = ConfigReader::load_file(common.config_path);
    if (!reader.ok()) {
      std::cerr << "outpost-wire: " << reader.error().to_string() << "\n";
      return kExitConfigError;
    }
    read_log_config(reader.value(), log_config);
    read_validation_options(reader.value(), "validation", validation);
    if (auto s = reader.value().finish(); !s.ok()) {
      std::cerr << "outpost-wire: " << s.error().to_string() << "\n";
      return kExitConfigError;
    }
  }
  const std::string level = common.log_level.empty() ? log_config.level : common.log_level;
  init_logging("outpost-wire", parse_log_level(level).value_or(spdlog::level::info));
  spdlog::debug("validation: future skew {} us, past age {} us", validation.max_future_skew_us,
                validation.max_past_age_us);

  if (app.got_subcommand("demo")) return run_demo(validation);
  if (app.got_subcommand("example")) return run_example(example_now, example_binary);
  return run_decode(decode_opt, validation);
}
