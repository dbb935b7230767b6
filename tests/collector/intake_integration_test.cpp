// The collector's MQTT intake end to end (real mosquitto, the real outpost-collector binary):
// oversized messages cost bounded memory, misaddressed topics reach the DLQ, a bad topic filter
// is refused at load, the subscription comes up at once, and a stopped broker is logged per
// change of state, not per attempt.
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>

#include <ctime>
#include <fstream>
#include <sstream>

#include "outpost/common/clock.h"
#include "outpost/common/codec.h"
#include "outpost/common/sample.h"
#include "outpost/common/sha256.h"
#include "outpost/common/sqlite.h"
#include "support/daemons.h"
#include "support/mqtt_clients.h"
#include "support/process.h"

namespace outpost {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using test_support::Process;
using test_support::wait_until;

constexpr std::size_t kMiB = 1u << 20;

// The rows of a query on the collector's database, each column as text (read-only, WAL).
std::vector<std::vector<std::string>> sql_rows(const fs::path& db, const std::string& sql) {
  std::vector<std::vector<std::string>> rows;
  sqlite3* h = nullptr;
  if (sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_busy_timeout(h, 2000);
    common::sqlite::Statement s(h, sql);
    while (s.ok() && s.step() == SQLITE_ROW) {
      std::vector<std::string> row;
      for (int i = 0; i < sqlite3_column_count(s.get()); ++i) row.push_back(s.text(i));
      rows.push_back(std::move(row));
    }
  }
  sqlite3_close(h);
  return rows;
}

int64_t sql_int(const fs::path& db, const std::string& sql) {
  const auto rows = sql_rows(db, sql);
  return rows.empty() || rows[0].empty() ? -1 : std::strtoll(rows[0][0].c_str(), nullptr, 10);
}

// Milliseconds since the epoch of a log line's timestamp ("2026-12-01T20:43:51.285 ..."), or
// -1. The lines compared come from one process, so the time zone does not matter.
int64_t log_time_ms(const std::string& line) {
  std::tm tm{};
  int ms = 0;
  if (std::sscanf(line.c_str(), "%d-%d-%dT%d:%d:%d.%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) != 7) {
    return -1;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<int64_t>(::timegm(&tm)) * 1000 + ms;
}

// The lines of `log` that contain `needle`.
std::vector<std::string> lines_with(const fs::path& log, const std::string& needle) {
  std::vector<std::string> out;
  std::istringstream in(test_support::read_text(log));
  for (std::string line; std::getline(in, line);) {
    if (line.find(needle) != std::string::npos) out.push_back(line);
  }
  return out;
}

std::size_t line_count(const fs::path& log) {
  std::istringstream in(test_support::read_text(log));
  std::size_t n = 0;
  for (std::string line; std::getline(in, line);) ++n;
  return n;
}

class CollectorIntake : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("outpost_intake_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    db_ = dir_ / "collector.db";
    config_ = dir_ / "collector.toml";
    log_ = dir_ / "collector.log";
  }
  void TearDown() override {
    collector_.reset();
    broker_.reset();
    if (!HasFailure()) fs::remove_all(dir_);
  }
  // A broker that lets 40 MB messages through (mosquitto's default does too, but the test
  // must not depend on it): the collector's own bound is what is tested.
  void start_broker() {
    test_support::Mosquitto::Options options;
    options.extra_config = "message_size_limit 40000000\n";
    broker_ = std::make_unique<test_support::Mosquitto>(dir_ / "broker", options);
    broker_->start();
  }
  // `metrics` off for a collector started without start_collector (which picks the port).
  void write_config(const std::string& broker_uri, const std::string& mqtt_extra = "",
                    bool metrics = true) {
    std::ofstream(config_) << "[mqtt]\nbroker = \"" << broker_uri << "\"\n"
                           << "client_id = \"collector-intake\"\n"
                           << "reconnect_min = \"100ms\"\nreconnect_max = \"500ms\"\n"
                           << mqtt_extra << "[storage]\npath = \"" << db_.string() << "\"\n"
                           << "commit_interval = \"50ms\"\n"
                           << "[metrics]\nlisten = \"" << (metrics ? "127.0.0.1:0" : "") << "\"\n";
  }
  void start_collector() {
    std::string error;
    collector_ = test_support::start_outpost_collector(
        {OUTPOST_COLLECTOR_BIN, "--config", config_.string()}, config_, log_, metrics_port_, error);
    ASSERT_TRUE(collector_) << error;
  }
  std::optional<double> metric(const std::string& name) {
    return test_support::prometheus_sample(test_support::http_get(metrics_port_, "/metrics"), name);
  }
  std::string batch(const std::string& device, uint64_t seq) {
    common::Envelope e =
        common::sample_reading_batch(device, common::wall_now_us() - 20'000'000, 10, seq);
    e.epoch = 5;
    e.seq = seq;
    auto b = common::encode(e);
    return std::string(b.value().begin(), b.value().end());
  }
  int64_t sql(const std::string& q) { return sql_int(db_, q); }

  fs::path dir_, db_, config_, log_;
  int metrics_port_ = 0;
  std::unique_ptr<test_support::Mosquitto> broker_;
  std::unique_ptr<Process> collector_;
};

// One 32 MiB message and 200 of 1 MiB (the default bound is 512 KiB): none is journaled or
// stored whole, each DLQ entry holds the first 4 KiB, the length and the SHA-256, and the
// collector's memory stays bounded. What cannot be avoided is Paho's: Paho C reads a packet
// into one buffer that grows to the largest packet and is kept, copies the payload for the
// message it hands over, and Paho C++ copies it again into its message; so the peak is about
// three times the largest message, and the rest one time (docs/collector.md of the bounds).
TEST_F(CollectorIntake, OversizedMessagesAreCutToPrefixLengthAndHashAndMemoryStaysBounded) {
  start_broker();
  write_config(broker_->uri());
  start_collector();
  const pid_t pid = collector_->pid();
  const double rest_rss = test_support::status_mb(pid, "VmRSS:");
  const double rest_hwm = test_support::status_mb(pid, "VmHWM:");
  ASSERT_GT(rest_rss, 0);

  test_support::MqttPublisher pub(broker_->uri());
  std::string huge(32 * kMiB, '\0');
  for (std::size_t i = 0; i < huge.size(); ++i) huge[i] = static_cast<char>(i * 131 + (i >> 12));
  ASSERT_TRUE(pub.publish("outpost/v1/lab/gw-1/data", huge));
  ASSERT_TRUE(wait_until([&] { return sql("SELECT count(*) FROM dlq") == 1; }, 60s))
      << test_support::read_text(log_);
  const double after_huge_hwm = test_support::status_mb(pid, "VmHWM:");

  std::string mib(kMiB, 'm');
  std::vector<std::string> hashes;
  for (int i = 0; i < 200; ++i) {
    std::memcpy(mib.data(), &i, sizeof i);
    hashes.push_back(common::to_hex(common::sha256(mib)));
    ASSERT_TRUE(pub.publish("outpost/v1/lab/gw-2/data", mib)) << i;
  }
  ASSERT_TRUE(wait_until([&] { return sql("SELECT count(*) FROM dlq") == 201; }, 120s))
      << test_support::read_text(log_);
  // Normal data after them is still stored.
  ASSERT_TRUE(pub.publish("outpost/v1/lab/gw-3/data", batch("gw-3", 1)));
  ASSERT_TRUE(wait_until([&] { return sql("SELECT count(*) FROM readings") == 50; }, 30s))
      << test_support::read_text(log_);

  const double peak = test_support::status_mb(pid, "VmHWM:");
  const double rss = test_support::status_mb(pid, "VmRSS:");
  RecordProperty("rest_rss_mb", std::to_string(rest_rss));
  RecordProperty("peak_hwm_mb", std::to_string(peak));
  RecordProperty("end_rss_mb", std::to_string(rss));
  std::printf(
      "collector RSS at rest %.1f MB (HWM %.1f), HWM after the 32 MiB message %.1f MB, "
      "after 200 x 1 MiB %.1f MB, RSS at the end %.1f MB\n",
      rest_rss, rest_hwm, after_huge_hwm, peak, rss);
#if defined(__SANITIZE_ADDRESS__)
  // AddressSanitizer keeps freed memory in quarantine (256 MB by default): RSS says nothing
  // about the collector's own bound there. The plain build checks it; the rest holds here too.
  std::printf("RSS bounds not checked: AddressSanitizer build\n");
#else
  // Paho's three copies of the largest message, and 24 MB for everything of ours.
  EXPECT_LT(peak, rest_hwm + 3 * 32 * 1.048576 + 24) << "peak RSS";
  // Paho C's read buffer stays as large as the largest packet; ours is back near rest.
  EXPECT_LT(rss, rest_rss + 32 * 1.048576 + 16) << "RSS after the stream";
#endif

  const auto huge_row =
      sql_rows(db_, "SELECT length(payload), detail, reason FROM dlq WHERE topic LIKE '%gw-1%'");
  ASSERT_EQ(huge_row.size(), 1u);
  EXPECT_EQ(huge_row[0][0], "4096");
  EXPECT_EQ(huge_row[0][2], std::to_string(static_cast<int>(common::Reason::kOversized)));
  EXPECT_NE(huge_row[0][1].find("message of 33554432 bytes"), std::string::npos) << huge_row[0][1];
  EXPECT_NE(huge_row[0][1].find("sha256 " + common::to_hex(common::sha256(huge))),
            std::string::npos)
      << huge_row[0][1];
  const auto rows = sql_rows(
      db_, "SELECT length(payload), detail FROM dlq WHERE topic LIKE '%gw-2%' ORDER BY id");
  ASSERT_EQ(rows.size(), 200u);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(rows[i][0], "4096") << i;
    EXPECT_NE(rows[i][1].find("message of 1048576 bytes"), std::string::npos) << rows[i][1];
    EXPECT_NE(rows[i][1].find("sha256 " + hashes[i]), std::string::npos) << i;
  }
  EXPECT_EQ(metric("outpost_collector_oversized_cut_total"), 201);
  EXPECT_EQ(metric("outpost_collector_dlq_total{reason=\"oversized\"}"), 201);
  // The journal never held them whole.
  uint64_t journal_bytes = 0;
  for (const auto& e : fs::recursive_directory_iterator(fs::path(db_.string() + ".journal"))) {
    if (e.is_regular_file()) journal_bytes += e.file_size();
  }
  EXPECT_LT(journal_bytes, 4 * kMiB);
  EXPECT_EQ(collector_->stop(SIGTERM), 0);
}

// Under the default catch-all (outpost/#), whatever does not parse is an unroutable_topic dead
// letter; the collector's own acks and events, which arrive there too, are not. A topic in
// another case (Outpost/...) is outside outpost/# and stays invisible (docs/topics.md).
TEST_F(CollectorIntake, MisaddressedTopicsUnderThePrefixLandInTheDlqAndOurOwnTopicsDoNot) {
  start_broker();
  write_config(broker_->uri());
  start_collector();
  test_support::MqttPublisher pub(broker_->uri());
  const std::vector<std::string> misaddressed = {
      "outpost/v2/lab/gw-1/data",        // another version
      "outpost/v1/lab/gw-1/data/extra",  // a level too many
      "outpost/v1/gw-1/data",            // a level missing
      "outpost/v1/lab/gw-1/reading",     // an unknown suffix
      "outpost/v1/events/not_a_kind",    // an event topic of no kind
  };
  for (const auto& t : misaddressed) ASSERT_TRUE(pub.publish(t, batch("gw-1", 1)));
  ASSERT_TRUE(pub.publish("Outpost/v1/lab/gw-1/data", batch("gw-1", 1)));
  ASSERT_TRUE(pub.publish("outpost/v1/lab/gw-1/data", batch("gw-1", 2)));
  ASSERT_TRUE(wait_until(
      [&] {
        return sql("SELECT count(*) FROM dlq") == static_cast<int64_t>(misaddressed.size()) &&
               sql("SELECT count(*) FROM readings") == 50;
      },
      30s))
      << test_support::read_text(log_);
  for (const auto& t : misaddressed) {
    EXPECT_EQ(sql("SELECT count(*) FROM dlq WHERE reason = 10 AND topic = '" + t + "'"), 1) << t;
  }
  // The batch's ack (published by the collector) came back through the catch-all and was
  // dropped as ours, not dead-lettered.
  ASSERT_TRUE(
      wait_until([&] { return metric("outpost_collector_ignored_total").value_or(0) >= 1; }, 10s))
      << test_support::read_text(log_);
  EXPECT_EQ(sql("SELECT count(*) FROM dlq WHERE topic LIKE '%/ack' OR topic LIKE '%events/%/%'"),
            0);
  EXPECT_EQ(metric("outpost_collector_dlq_total{reason=\"unroutable_topic\"}"),
            static_cast<double>(misaddressed.size()));
  // Nothing loops: the count stays where it is.
  ASSERT_TRUE(pub.publish("outpost/v1/lab/gw-1/data", batch("gw-1", 3)));
  ASSERT_TRUE(wait_until([&] { return sql("SELECT count(*) FROM readings") == 100; }, 30s));
  EXPECT_EQ(sql("SELECT count(*) FROM dlq"), static_cast<int64_t>(misaddressed.size()));
  EXPECT_EQ(collector_->stop(SIGTERM), 0);
}

TEST_F(CollectorIntake, AnInvalidTopicFilterIsRefusedAtLoadNamingTheKeyAndTheProblem) {
  test_support::RefusingPort nobody;
  for (const auto& [filters, problem] : std::vector<std::pair<std::string, std::string>>{
           {"topics = [\"outpost/#/data\"]\n", "'#' must be the last level"},
           {"topics = [\"outpost/v1/+/gw+/data\"]\n", "'+' must be a whole level"},
           {"topics = [\"\"]\n", "is empty"},
           {"catch_all = \"outpost/v1#\"\n", "'#' must be a whole level"}}) {
    write_config("tcp://127.0.0.1:" + std::to_string(nobody.port()), filters, false);
    const fs::path log = dir_ / "refused.log";
    fs::remove(log);
    Process p({OUTPOST_COLLECTOR_BIN, "--config", config_.string()}, log);
    ASSERT_TRUE(wait_until([&] { return !p.running(); }, 10s)) << filters << " was not refused:\n"
                                                               << test_support::read_text(log);
    const std::string out = test_support::read_text(log);
    EXPECT_NE(p.stop(SIGKILL), 0) << out;
    const std::string key = filters.starts_with("topics") ? "mqtt.topics" : "mqtt.catch_all";
    EXPECT_NE(out.find("collector.toml:"), std::string::npos) << out;
    EXPECT_NE(out.find(key), std::string::npos) << out;
    EXPECT_NE(out.find(problem), std::string::npos) << out;
  }
}

// A broker backlog many times mqtt.intake_max_bytes: the collector takes it in pauses (it
// disconnects at the bound, its persistent session keeps the rest at the broker, and it
// connects again at a quarter), holds little more than the bound at any time, stores every
// reading once (the broker's re-sends after a pause are recognised as duplicates), and does not
// subscribe again on a resume.
TEST_F(CollectorIntake, ABacklogOverTheIntakeBoundIsTakenInPausesLosingAndDoublingNothing) {
  start_broker();
  write_config(broker_->uri(), "intake_max_bytes = \"64KiB\"\n");
  start_collector();
  EXPECT_EQ(collector_->stop(SIGTERM), 0);  // its session stays at the broker
  constexpr int kDevices = 30, kPerDevice = 500;
  {
    test_support::MqttPublisher pub(broker_->uri());
    for (int seq = 1; seq <= kPerDevice; ++seq) {
      for (int d = 0; d < kDevices; ++d) {
        const std::string device = "gw-" + std::to_string(d);
        ASSERT_TRUE(pub.publish("outpost/v1/lab/" + device + "/data",
                                batch(device, static_cast<uint64_t>(seq))));
      }
    }
  }
  // About 11.6 MB of backlog (520 bytes of payload and 256 counted a message), 180 bounds;
  // without the pauses about two thirds of it piles up (Paho reads faster than storage goes).
  log_ = dir_ / "collector-2.log";
  start_collector();
  constexpr int64_t kMessages = kDevices * kPerDevice;
  ASSERT_TRUE(
      wait_until([&] { return sql("SELECT count(*) FROM readings") == kMessages * 50; }, 120s))
      << sql("SELECT count(*) FROM readings") << " readings\n"
      << test_support::read_text(log_);
  EXPECT_EQ(sql("SELECT count(*) FROM batches"), kMessages);
  EXPECT_EQ(sql("SELECT count(*) FROM dlq"), 0);
  const double pauses = metric("outpost_collector_intake_pauses_total").value_or(-1);
  const double peak = metric("outpost_collector_intake_peak_bytes").value_or(-1);
  const double dups = metric("outpost_collector_duplicates_total").value_or(-1);
  const double received = metric("outpost_collector_received_total").value_or(-1);
  std::printf("intake: %.0f pauses, peak %.0f bytes, %.0f duplicates of %.0f received\n", pauses,
              peak, dups, received);
  RecordProperty("pauses", std::to_string(pauses));
  RecordProperty("intake_peak_bytes", std::to_string(peak));
  EXPECT_GE(pauses, 3);
  // The bound, and what Paho hands over before the pause is done: what arrives within a check
  // (every 5 ms) and the 20 ms the pause waits for the broker to read our PUBACKs (0.6-2.1 MB
  // measured on a quiet machine).
  EXPECT_LE(peak, 64 * 1024 + 3 * kMiB);
  EXPECT_GT(peak, 0);
  // Every message received was stored or recognised as already stored.
  EXPECT_EQ(received, static_cast<double>(kMessages) + dups);
  EXPECT_EQ(lines_with(log_, "subscribed to").size(), 1u) << test_support::read_text(log_);
  EXPECT_FALSE(lines_with(log_, "subscription paused").empty()) << test_support::read_text(log_);
  EXPECT_TRUE(lines_with(log_, "connection to").empty()) << test_support::read_text(log_);
  EXPECT_EQ(metric("outpost_collector_intake_paused"), 0);  // all taken: resumed
  EXPECT_EQ(collector_->stop(SIGTERM), 0);
}

// The subscription comes first and at once: under 200 ms from the start line to the
// subscribed line on loopback (it was about 2.1 s, the publisher's connection first), and
// soon after the broker comes back.
TEST_F(CollectorIntake, SubscribesAtOnceAtStartAndSoonAfterABrokerRestart) {
  start_broker();
  write_config(broker_->uri());
  start_collector();
  const auto started = lines_with(log_, "started:");
  const auto subscribed = lines_with(log_, "subscribed to");
  ASSERT_EQ(started.size(), 1u);
  ASSERT_EQ(subscribed.size(), 1u);
  const int64_t at_start = log_time_ms(subscribed[0]) - log_time_ms(started[0]);
  RecordProperty("subscribe_after_start_ms", std::to_string(at_start));
  EXPECT_LT(at_start, 200) << test_support::read_text(log_);
  // A QoS 1 probe published now is stored: the subscription exists.
  test_support::MqttPublisher pub(broker_->uri(), "probe");
  ASSERT_TRUE(pub.publish("outpost/v1/lab/gw-1/data", batch("gw-1", 1)));
  ASSERT_TRUE(wait_until([&] { return sql("SELECT count(*) FROM readings") == 50; }, 30s));

  broker_->stop();
  broker_->start();
  const auto up = std::chrono::steady_clock::now();
  ASSERT_TRUE(wait_until([&] { return lines_with(log_, "subscribed to").size() == 2; }, 20s))
      << test_support::read_text(log_);
  const auto after_restart =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - up)
          .count();
  RecordProperty("subscribe_after_broker_restart_ms", std::to_string(after_restart));
  std::printf("subscribed %lld ms after start, %lld ms after the broker was back\n",
              static_cast<long long>(at_start), static_cast<long long>(after_restart));
  // At most: the backoff wait in progress when the broker came back (reconnect_max is 500 ms
  // here), and Paho C's receive thread, which sends a new connection's CONNECT only when its
  // poll for readable sockets returns: after up to 1 s (+100 ms) once it has served a first
  // connection (docs/collector.toml, mqtt.reconnect_max). It was 1.1-4.6 s.
  EXPECT_LT(after_restart, 2500) << test_support::read_text(log_);
  test_support::MqttPublisher again(broker_->uri(), "probe-2");
  ASSERT_TRUE(again.publish("outpost/v1/lab/gw-1/data", batch("gw-1", 2)));
  ASSERT_TRUE(wait_until([&] { return sql("SELECT count(*) FROM readings") == 100; }, 30s));
}

// A broker that is down is said once (and a reminder each minute), not per attempt: the
// backoff here retries every 50-500 ms, which used to log two warnings per attempt.
TEST_F(CollectorIntake, AStoppedBrokerIsLoggedOncePerChangeOfStateNotPerAttempt) {
  {
    test_support::RefusingPort nobody;
    write_config("tcp://127.0.0.1:" + std::to_string(nobody.port()), "", false);
    Process p({OUTPOST_COLLECTOR_BIN, "--config", config_.string()}, log_);
    ASSERT_TRUE(wait_until([&] { return lines_with(log_, "cannot connect").size() >= 1; }, 10s))
        << test_support::read_text(log_);
    const std::size_t first = line_count(log_);
    // Observe three seconds of retries (a window, not a synchronisation).
    EXPECT_FALSE(wait_until([&] { return line_count(log_) > first; }, 3s))
        << test_support::read_text(log_);
    EXPECT_LE(line_count(log_), 3u) << test_support::read_text(log_);
    EXPECT_EQ(p.stop(SIGTERM), 0);
  }
  fs::remove(log_);
  start_broker();
  write_config(broker_->uri());
  start_collector();
  broker_->stop();
  ASSERT_TRUE(wait_until([&] { return lines_with(log_, "lost").size() >= 1; }, 10s))
      << test_support::read_text(log_);
  const std::size_t before = line_count(log_);
  EXPECT_FALSE(wait_until([&] { return line_count(log_) > before + 2; }, 3s))
      << test_support::read_text(log_);
  EXPECT_GE(metric("outpost_collector_connect_failures_total").value_or(0), 4)
      << "the retries went on";
  broker_->start();
  ASSERT_TRUE(wait_until([&] { return lines_with(log_, "subscribed to").size() == 2; }, 20s))
      << test_support::read_text(log_);
  EXPECT_EQ(lines_with(log_, "connected again to").size(), 1u) << test_support::read_text(log_);
}

}  // namespace
}  // namespace outpost
