// The Reader contract on every backend (SQLite and PostgreSQL, support/backends.h): what the
// operator tools read back, written through the backend's Sink, and device presence as the
// FleetTracker decided it.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "outpost/collector/fleet.h"
#include "outpost/collector/sqlite_reader.h"
#include "outpost/collector/sqlite_sink.h"
#include "outpost/common/sample.h"
#include "support/backends.h"

namespace outpost::collector {
namespace {

namespace fs = std::filesystem;
constexpr int64_t kSec = 1'000'000;
constexpr int64_t kT0 = 1'800'000'000 * kSec;  // readings start here, one a second

using test_support::Backend;

class ReaderTest : public test_support::BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    if (IsSkipped()) return;
    auto s = open_sink();
    ASSERT_TRUE(s.ok()) << s.error().message;
    sink_ = std::move(s).value();
    auto r = open_reader();
    ASSERT_TRUE(r.ok()) << r.error().message;
    reader_ = std::move(r).value();
  }
  void TearDown() override {
    reader_.reset();
    sink_.reset();
    BackendTest::TearDown();
  }

  // A batch of 5 sensors x `instants` readings, one instant a second from `start_us`.
  static BatchItem batch(std::string device, uint64_t seq, int64_t start_us, int instants = 10) {
    common::Envelope env = common::sample_reading_batch(device, start_us, instants, seq);
    env.seq = seq;
    env.epoch = 3;
    return BatchItem{"lab", std::move(env), start_us + instants * kSec};
  }
  void commit(Transaction tx) {
    auto r = sink_->commit(tx);
    ASSERT_TRUE(r.ok()) << r.error().message;
  }
  std::vector<ReadingRow> query(const ReadingQuery& q) {
    std::vector<ReadingRow> rows;
    auto s = reader_->query_readings(q, [&](const ReadingRow& r) { rows.push_back(r); });
    EXPECT_TRUE(s.ok()) << s.error().message;
    return rows;
  }
  static DlqItem dead(std::string topic, common::Reason reason, int64_t received_us) {
    return DlqItem{std::move(topic), "\x01\x02", received_us, reason, "bad"};
  }

  std::unique_ptr<Sink> sink_;
  std::unique_ptr<Reader> reader_;
};

TEST_P(ReaderTest, AnEmptyDatabaseReadsAsNothingAndZeroCounts) {
  auto devices = reader_->devices();
  ASSERT_TRUE(devices.ok());
  EXPECT_TRUE(devices.value().empty());
  EXPECT_TRUE(query(ReadingQuery{}).empty());
  auto dlq = reader_->dlq(DlqFilter{});
  ASSERT_TRUE(dlq.ok());
  EXPECT_TRUE(dlq.value().empty());
  auto entry = reader_->dlq_entry(1);
  ASSERT_TRUE(entry.ok());
  EXPECT_FALSE(entry.value().has_value());
  auto events = reader_->events(0);
  ASSERT_TRUE(events.ok());
  EXPECT_TRUE(events.value().empty());
  auto reasons = reader_->dlq_reasons();
  ASSERT_TRUE(reasons.ok());
  EXPECT_TRUE(reasons.value().empty());
  auto kinds = reader_->event_kinds();
  ASSERT_TRUE(kinds.ok());
  EXPECT_TRUE(kinds.value().empty());
  auto counts = reader_->counts();
  ASSERT_TRUE(counts.ok());
  for (const char* key :
       {"readings", "logs", "batches", "dlq", "events", "devices", "duplicates", "gaps"}) {
    ASSERT_TRUE(counts.value().contains(key)) << key;
    EXPECT_EQ(counts.value().at(key), 0u) << key;
  }
}

TEST_P(ReaderTest, NoStoreThereIsRefusedNamingIt) {
  if (backend() == Backend::kPostgres) {
    // A database the collector never set up: the reader says so, and creates nothing.
    std::string why;
    test_support::Postgres* cluster = test_support::suite_cluster(why);
    ASSERT_NE(cluster, nullptr) << why;
    const std::string name = "empty_" + std::to_string(::getpid());
    cluster->sql("postgres", "DROP DATABASE IF EXISTS " + name);
    cluster->create_database(name);
    dsn_ = cluster->dsn(name);
    auto r = open_reader();
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("no Outpost schema"), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find(name), std::string::npos) << r.error().message;
    EXPECT_EQ(cluster->sql(name, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"),
              "0");
    return;
  }
  auto r = SqliteReader::open((dir_ / "missing.db").string());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("missing.db"), std::string::npos) << r.error().message;
  EXPECT_FALSE(fs::exists(dir_ / "missing.db"));  // a reader never creates a database
}

TEST_P(ReaderTest, QueryFiltersByDeviceSensorAndInclusiveTimeRange) {
  Transaction tx;
  tx.batches = {batch("gw-1", 1, kT0), batch("gw-2", 1, kT0)};
  commit(tx);
  const std::string sensor =
      std::get<common::ReadingBatch>(tx.batches[0].envelope.body).sensor_names[0];

  EXPECT_EQ(query(ReadingQuery{}).size(), 100u);
  auto gw2 = query(ReadingQuery{.device = "gw-2"});
  ASSERT_EQ(gw2.size(), 50u);
  for (const auto& r : gw2) EXPECT_EQ(r.device, "gw-2");
  EXPECT_EQ(gw2[0].site, "lab");
  EXPECT_EQ(gw2[0].epoch, 3u);
  EXPECT_EQ(gw2[0].seq, 1u);

  auto one_sensor = query(ReadingQuery{.device = "gw-1", .sensor = sensor});
  ASSERT_EQ(one_sensor.size(), 10u);
  for (const auto& r : one_sensor) EXPECT_EQ(r.sensor, sensor);

  // Seconds 2..4 of the ten, both ends included.
  auto window = query(ReadingQuery{
      .device = "gw-1", .sensor = sensor, .since_us = kT0 + 2 * kSec, .until_us = kT0 + 4 * kSec});
  ASSERT_EQ(window.size(), 3u);
  EXPECT_EQ(window.front().time_us, kT0 + 2 * kSec);
  EXPECT_EQ(window.back().time_us, kT0 + 4 * kSec);

  EXPECT_TRUE(query(ReadingQuery{.since_us = kT0 + 100 * kSec}).empty());
  EXPECT_TRUE(query(ReadingQuery{.device = "gw-9"}).empty());
  EXPECT_TRUE(query(ReadingQuery{.sensor = "no-such-sensor"}).empty());
}

TEST_P(ReaderTest, QueryStopsAtTheLimitAcrossBatches) {
  Transaction tx;
  tx.batches = {batch("gw-1", 1, kT0, 2), batch("gw-1", 2, kT0 + 10 * kSec, 2)};
  commit(tx);
  EXPECT_EQ(query(ReadingQuery{.limit = 7}).size(), 7u);  // 10 per batch
  EXPECT_EQ(query(ReadingQuery{.limit = 1000}).size(), 20u);
  auto first = query(ReadingQuery{.limit = 1});
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].seq, 1u);  // batches in the order of their earliest reading
}

TEST_P(ReaderTest, LogsFilterByDeviceSeverityTimeTextAndLimit) {
  auto logs = [](std::string device, uint64_t seq, std::vector<common::LogRecord> records) {
    return BatchItem{
        "lab", common::Envelope{1, std::move(device), 3, seq, common::LogBatch{true, records}},
        kT0};
  };
  Transaction tx;
  tx.batches.push_back(logs("gw-1", 1,
                            {{kT0, common::Severity::kInfo, "boot", {}},
                             {kT0 + 10 * kSec,
                              common::Severity::kWarning,
                              "Disk 90% full",
                              {{"mount", "/data"}, {"free", "1GiB"}}}}));
  tx.batches.push_back(
      logs("gw-2", 1, {{kT0 + 20 * kSec, common::Severity::kError, "disk_a failed", {}}}));
  commit(std::move(tx));
  auto run = [&](const LogQuery& q) {
    std::vector<LogRow> rows;
    auto s = reader_->query_logs(q, [&](const LogRow& r) { rows.push_back(r); });
    EXPECT_TRUE(s.ok()) << s.error().message;
    return rows;
  };
  auto all = run(LogQuery{});
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[1].device, "gw-1");
  EXPECT_EQ(all[1].site, "lab");
  EXPECT_EQ(all[1].severity, common::Severity::kWarning);
  EXPECT_EQ(all[1].time_us, kT0 + 10 * kSec);
  EXPECT_EQ(all[1].fields,
            (std::vector<common::LogField>{{"mount", "/data"}, {"free", "1GiB"}}));  // in order
  EXPECT_TRUE(all[0].fields.empty());
  EXPECT_EQ(run(LogQuery{.device = "gw-2"}).size(), 1u);
  EXPECT_EQ(run(LogQuery{.min_severity = common::Severity::kWarning}).size(), 2u);
  EXPECT_EQ(run(LogQuery{.since_us = kT0 + 10 * kSec, .until_us = kT0 + 10 * kSec}).size(), 1u);
  EXPECT_EQ(run(LogQuery{.contains = "DISK"}).size(), 2u);  // ASCII case ignored
  EXPECT_EQ(run(LogQuery{.contains = "90%"}).size(), 1u);
  EXPECT_EQ(run(LogQuery{.contains = "9%"}).size(), 0u);     // % is no wildcard
  EXPECT_EQ(run(LogQuery{.contains = "disk_"}).size(), 1u);  // nor is _
  EXPECT_EQ(run(LogQuery{.limit = 2}).size(), 2u);
  EXPECT_TRUE(query(ReadingQuery{}).empty());  // log batches are no readings
}

TEST_P(ReaderTest, DlqFiltersByReasonTopicPrefixReceiveTimeAndLimit) {
  Transaction tx;
  tx.dlq = {dead("outpost/v1/lab/gw-1/data", common::Reason::kNotDecodable, 100),
            dead("outpost/v1/lab/gw-2/data", common::Reason::kOversized, 200),
            dead("outpost/v1/yard/gw-3/data", common::Reason::kNotDecodable, 300),
            dead("not/ours", common::Reason::kUnroutableTopic, 400)};
  commit(tx);

  auto all = reader_->dlq(DlqFilter{});
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all.value().size(), 4u);
  EXPECT_EQ(all.value()[0].payload, "\x01\x02");
  EXPECT_LT(all.value()[0].id, all.value()[1].id);  // oldest first

  DlqFilter by_reason;
  by_reason.reason = common::Reason::kNotDecodable;
  auto rows = reader_->dlq(by_reason);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows.value().size(), 2u);
  EXPECT_EQ(rows.value()[1].topic, "outpost/v1/yard/gw-3/data");

  DlqFilter by_topic;
  by_topic.topic_prefix = "outpost/v1/lab/";
  rows = reader_->dlq(by_topic);
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows.value().size(), 2u);

  DlqFilter by_time;
  by_time.since_us = 200;
  by_time.until_us = 300;
  rows = reader_->dlq(by_time);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows.value().size(), 2u);
  EXPECT_EQ(rows.value()[0].received_us, 200);
  EXPECT_EQ(rows.value()[1].received_us, 300);

  DlqFilter limited;
  limited.limit = 3;
  rows = reader_->dlq(limited);
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows.value().size(), 3u);

  auto entry = reader_->dlq_entry(all.value()[3].id);
  ASSERT_TRUE(entry.ok());
  ASSERT_TRUE(entry.value().has_value());
  EXPECT_EQ(entry.value()->reason, common::Reason::kUnroutableTopic);
  EXPECT_EQ(entry.value()->detail, "bad");

  auto reasons = reader_->dlq_reasons();
  ASSERT_TRUE(reasons.ok());
  EXPECT_EQ(reasons.value(),
            (std::map<common::Reason, uint64_t>{{common::Reason::kNotDecodable, 2},
                                                {common::Reason::kOversized, 1},
                                                {common::Reason::kUnroutableTopic, 1}}));
}

TEST_P(ReaderTest, EventsAreTheMostRecentOnesOldestFirst) {
  Transaction tx;
  for (int i = 0; i < 5; ++i) {
    EventItem e;
    e.device = "gw-1";
    e.event.kind = i < 3 ? common::EventKind::kDataGap : common::EventKind::kDeviceRestarted;
    e.event.time_us = kT0 + i;
    e.event.site = "lab";
    e.event.detail = "event " + std::to_string(i);
    tx.events.push_back(e);
  }
  commit(tx);
  auto last_two = reader_->events(2);
  ASSERT_TRUE(last_two.ok());
  ASSERT_EQ(last_two.value().size(), 2u);
  EXPECT_EQ(last_two.value()[0].event.detail, "event 3");
  EXPECT_EQ(last_two.value()[1].event.detail, "event 4");
  EXPECT_EQ(last_two.value()[1].event.kind, common::EventKind::kDeviceRestarted);
  EXPECT_EQ(last_two.value()[1].device, "gw-1");
  auto all = reader_->events(0);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all.value().size(), 5u);
  auto kinds = reader_->event_kinds();
  ASSERT_TRUE(kinds.ok());
  EXPECT_EQ(kinds.value(),
            (std::map<std::string, uint64_t>{{"data_gap", 3}, {"device_restarted", 2}}));
}

// The FleetTracker's sequence lines go through the sink with the batches and gap events that
// changed them, and come back through the reader as the tracker restores them at start.
TEST_P(ReaderTest, SequenceLinesAndGapCountsRoundTripThroughTheStore) {
  FleetTracker fleet(FleetOptions{.gap_grace_us = 10 * kSec});
  const uint64_t big_epoch = 0xfedc'ba98'7654'3210ULL;  // above INT64_MAX: stored as its bits
  auto add = [&](uint64_t seq, int64_t now, Transaction& tx) {
    tx.batches.push_back(batch("gw-1", seq, kT0 + static_cast<int64_t>(seq) * 100 * kSec, 1));
    tx.batches.back().envelope.epoch = big_epoch;
    fleet.on_batch("lab", "gw-1", big_epoch, seq, now, tx.events);
  };
  Transaction tx;
  for (uint64_t seq : {1, 5, 6, 9}) add(seq, kT0, tx);  // holes 2..4 and 7..8
  fleet.take_commit(kT0, tx.events, tx.seq_lines);
  commit(std::move(tx));
  Transaction gaps;
  fleet.tick(kT0 + 10 * kSec, gaps.events);
  ASSERT_EQ(gaps.events.size(), 2u);
  fleet.take_commit(kT0 + 10 * kSec, gaps.events, gaps.seq_lines);
  commit(std::move(gaps));
  Transaction late;
  add(3, kT0 + 20 * kSec, late);  // resolves 1 of the 5 reported
  fleet.take_commit(kT0 + 20 * kSec, late.events, late.seq_lines);
  ASSERT_EQ(late.events.size(), 1u);
  EXPECT_EQ(late.events[0].event.kind, common::EventKind::kDataGapResolved);
  commit(std::move(late));

  auto lines = reader_->seq_lines();
  ASSERT_TRUE(lines.ok()) << lines.error().message;
  ASSERT_EQ(lines.value().size(), 1u);
  const SeqLineState& line = lines.value()[0];
  EXPECT_EQ(line.device, "gw-1");
  EXPECT_EQ(line.site, "lab");
  EXPECT_EQ(line.max_seq, 9u);
  EXPECT_EQ(line.epochs, (std::vector<uint64_t>{big_epoch}));
  EXPECT_EQ(line.holes, fleet.holes("gw-1"));
  ASSERT_EQ(line.holes.size(), 3u);  // 2, 4, 7..8
  EXPECT_EQ(line.holes[1].first, 4u);
  EXPECT_EQ(line.holes[1].epoch, big_epoch);
  EXPECT_EQ(line.holes[1].since_us, kT0);
  EXPECT_EQ(line.holes[1].reported_us, kT0 + 10 * kSec);

  auto devices = reader_->devices();
  ASSERT_TRUE(devices.ok());
  ASSERT_EQ(devices.value().size(), 1u);
  EXPECT_EQ(devices.value()[0].gaps, 4u) << "5 reported missing, 1 arrived since";
  auto counts = reader_->counts();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts.value().at("gaps"), 4u);
  auto kinds = reader_->event_kinds();
  ASSERT_TRUE(kinds.ok());
  EXPECT_EQ(kinds.value().at("data_gap_resolved"), 1u);
}

TEST_P(ReaderTest, DevicesAndCountsShowWhatWasStoredAndAbsorbed) {
  Transaction tx;
  tx.batches = {batch("gw-2", 1, kT0), batch("gw-1", 1, kT0), batch("gw-1", 1, kT0)};
  commit(tx);
  auto devices = reader_->devices();
  ASSERT_TRUE(devices.ok());
  ASSERT_EQ(devices.value().size(), 2u);
  EXPECT_EQ(devices.value()[0].device, "gw-1");  // by site, then device
  EXPECT_EQ(devices.value()[0].readings, 50u);
  EXPECT_EQ(devices.value()[0].batches, 1u);
  EXPECT_EQ(devices.value()[0].duplicates, 1u);
  EXPECT_EQ(devices.value()[0].epoch, 3u);
  auto counts = reader_->counts();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts.value()["readings"], 100u);
  EXPECT_EQ(counts.value()["batches"], 2u);
  EXPECT_EQ(counts.value()["devices"], 2u);
  EXPECT_EQ(counts.value()["duplicates"], 1u);
}

// A readings message of named sensors: `readings` refer to `names` by index.
BatchItem readings_of(std::string device, uint64_t seq, int64_t received_us,
                      std::vector<std::string> names, std::vector<std::string> units,
                      std::vector<common::Reading> readings) {
  common::ReadingBatch body{true, std::move(names), std::move(units), std::move(readings)};
  return BatchItem{"lab", common::Envelope{1, std::move(device), 3, seq, std::move(body)},
                   received_us};
}

const DeviceRow* find_device(const std::vector<DeviceRow>& rows, const std::string& device) {
  for (const DeviceRow& d : rows) {
    if (d.device == device) return &d;
  }
  return nullptr;
}

TEST_P(ReaderTest, LastDataIsTheNewestStoredReadingBatchNotStatusesLogsOrDuplicates) {
  Transaction first;
  first.batches = {batch("gw-1", 1, kT0)};  // received at kT0 + 10 s
  first.statuses = {StatusItem{"lab", "gw-2", {}, kT0}};
  first.statuses[0].status.state = common::DeviceState::kOnline;
  commit(first);
  auto devices = reader_->devices();
  ASSERT_TRUE(devices.ok()) << devices.error().message;
  const DeviceRow* gw1 = find_device(devices.value(), "gw-1");
  const DeviceRow* gw2 = find_device(devices.value(), "gw-2");
  ASSERT_NE(gw1, nullptr);
  ASSERT_NE(gw2, nullptr);
  EXPECT_EQ(gw1->last_data_us, kT0 + 10 * kSec);
  EXPECT_EQ(gw1->last_seen_us, kT0 + 10 * kSec);
  EXPECT_EQ(gw2->last_data_us, 0) << "a status is no data";
  EXPECT_EQ(gw2->last_seen_us, kT0);

  // A status, a logs message and a duplicate of the first batch, all received later: each is
  // seen, none is new data.
  Transaction later;
  later.statuses = {StatusItem{"lab", "gw-1", {}, kT0 + 100 * kSec}};
  later.statuses[0].status.state = common::DeviceState::kOnline;
  later.batches.push_back(BatchItem{
      "lab",
      common::Envelope{1, "gw-1", 3, 50,
                       common::LogBatch{true, {{kT0, common::Severity::kInfo, "boot", {}}}}},
      kT0 + 200 * kSec});
  BatchItem dup = batch("gw-1", 1, kT0);
  dup.received_us = kT0 + 300 * kSec;
  later.batches.push_back(dup);
  commit(later);
  devices = reader_->devices();
  ASSERT_TRUE(devices.ok());
  gw1 = find_device(devices.value(), "gw-1");
  ASSERT_NE(gw1, nullptr);
  EXPECT_EQ(gw1->duplicates, 1u);
  EXPECT_EQ(gw1->last_seen_us, kT0 + 300 * kSec);
  EXPECT_EQ(gw1->last_data_us, kT0 + 10 * kSec);

  // A new batch stamped earlier than the newest keeps the newest; a later one moves it.
  Transaction older;
  BatchItem early = batch("gw-1", 2, kT0);
  early.received_us = kT0 + 5 * kSec;
  older.batches = {early};
  commit(older);
  devices = reader_->devices();
  ASSERT_TRUE(devices.ok());
  EXPECT_EQ(find_device(devices.value(), "gw-1")->last_data_us, kT0 + 10 * kSec);
  Transaction newer;
  BatchItem late = batch("gw-1", 3, kT0);
  late.received_us = kT0 + 400 * kSec;
  newer.batches = {late};
  commit(newer);
  devices = reader_->devices();
  ASSERT_TRUE(devices.ok());
  EXPECT_EQ(find_device(devices.value(), "gw-1")->last_data_us, kT0 + 400 * kSec);
}

TEST_P(ReaderTest, SeriesGivesExactMinMaxMeanAndCountPerBucketSkippingEmptyOnes) {
  // One sensor "level" over two messages, with every value type; 10 s in 5 buckets of 2 s.
  Transaction tx;
  tx.batches.push_back(readings_of("gw-1", 1, kT0 + 20 * kSec, {"level", "other"}, {"m", "m"},
                                   {{0, kT0 - 1, 100.0},  // before the window
                                    {0, kT0, 1.0},
                                    {1, kT0, 1000.0},  // another sensor
                                    {0, kT0 + kSec, int64_t{3}},
                                    {0, kT0 + 4 * kSec, true}}));
  tx.batches.push_back(readings_of("gw-1", 2, kT0 + 20 * kSec, {"level"}, {"m"},
                                   {{0, kT0 + 5 * kSec, 0.5},
                                    {0, kT0 + 5 * kSec + 1, std::string("n/a")},  // text: out
                                    {0, kT0 + 10 * kSec - 1, -2.5},               // the last µs
                                    {0, kT0 + 10 * kSec, 100.0}}));               // after it
  tx.batches.push_back(readings_of("gw-2", 1, kT0 + 20 * kSec, {"level"}, {"m"},
                                   {{0, kT0 + 2 * kSec, 1000.0}}));  // another device
  commit(tx);

  auto s = reader_->series(SeriesQuery{.device = "gw-1",
                                       .sensor = "level",
                                       .since_us = kT0,
                                       .until_us = kT0 + 10 * kSec - 1,
                                       .buckets = 5});
  ASSERT_TRUE(s.ok()) << s.error().message;
  ASSERT_EQ(s.value().size(), 3u);  // buckets 1 and 3 have no readings
  const auto& b = s.value();
  EXPECT_EQ(b[0].start_us, kT0);
  EXPECT_DOUBLE_EQ(b[0].min, 1.0);
  EXPECT_DOUBLE_EQ(b[0].max, 3.0);
  EXPECT_DOUBLE_EQ(b[0].mean, 2.0);
  EXPECT_EQ(b[0].count, 2u);
  EXPECT_EQ(b[1].start_us, kT0 + 4 * kSec);
  EXPECT_DOUBLE_EQ(b[1].min, 0.5);
  EXPECT_DOUBLE_EQ(b[1].max, 1.0);  // true counts as 1
  EXPECT_DOUBLE_EQ(b[1].mean, 0.75);
  EXPECT_EQ(b[1].count, 2u);  // the text reading is left out
  EXPECT_EQ(b[2].start_us, kT0 + 8 * kSec);
  EXPECT_DOUBLE_EQ(b[2].min, -2.5);
  EXPECT_DOUBLE_EQ(b[2].max, -2.5);
  EXPECT_DOUBLE_EQ(b[2].mean, -2.5);
  EXPECT_EQ(b[2].count, 1u);

  // One bucket: everything in the window, once.
  auto one = reader_->series(SeriesQuery{.device = "gw-1",
                                         .sensor = "level",
                                         .since_us = kT0,
                                         .until_us = kT0 + 10 * kSec - 1,
                                         .buckets = 1});
  ASSERT_TRUE(one.ok()) << one.error().message;
  ASSERT_EQ(one.value().size(), 1u);
  EXPECT_EQ(one.value()[0].count, 5u);
  EXPECT_DOUBLE_EQ(one.value()[0].min, -2.5);
  EXPECT_DOUBLE_EQ(one.value()[0].max, 3.0);

  // No such sensor or device: no buckets.
  auto none = reader_->series(
      SeriesQuery{.device = "gw-1", .sensor = "nothing", .since_us = kT0, .until_us = kT0 + kSec});
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_TRUE(none.value().empty());
  none = reader_->series(
      SeriesQuery{.device = "gw-9", .sensor = "level", .since_us = kT0, .until_us = kT0 + kSec});
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_TRUE(none.value().empty());
}

TEST_P(ReaderTest, SeriesRoundsTheBucketWidthUp) {
  // 10 µs in 3 buckets: 4 µs each (the last one reaches past the window's end).
  Transaction tx;
  tx.batches.push_back(readings_of(
      "gw-1", 1, kT0, {"v"}, {""},
      {{0, kT0 + 3, 1.0}, {0, kT0 + 4, 2.0}, {0, kT0 + 7, 4.0}, {0, kT0 + 9, int64_t{8}}}));
  commit(tx);
  auto s = reader_->series(SeriesQuery{
      .device = "gw-1", .sensor = "v", .since_us = kT0, .until_us = kT0 + 9, .buckets = 3});
  ASSERT_TRUE(s.ok()) << s.error().message;
  ASSERT_EQ(s.value().size(), 3u);
  EXPECT_EQ(s.value()[0].start_us, kT0);
  EXPECT_EQ(s.value()[0].count, 1u);
  EXPECT_EQ(s.value()[1].start_us, kT0 + 4);
  EXPECT_EQ(s.value()[1].count, 2u);
  EXPECT_DOUBLE_EQ(s.value()[1].mean, 3.0);
  EXPECT_EQ(s.value()[2].start_us, kT0 + 8);
  EXPECT_DOUBLE_EQ(s.value()[2].max, 8.0);
}

TEST_P(ReaderTest, SeriesRefusesBadBucketsAndReversedRanges) {
  Transaction tx;
  tx.batches = {batch("gw-1", 1, kT0)};
  commit(tx);
  const SeriesQuery ok{.device = "gw-1",
                       .sensor = "temperature",
                       .since_us = kT0,
                       .until_us = kT0 + 10 * kSec,
                       .buckets = 10000};
  auto fine = reader_->series(ok);
  ASSERT_TRUE(fine.ok()) << fine.error().message;
  EXPECT_EQ(fine.value().size(), 10u);  // one reading a second
  for (uint32_t buckets : {0u, 10001u, 4'000'000'000u}) {
    SeriesQuery bad = ok;
    bad.buckets = buckets;
    EXPECT_FALSE(reader_->series(bad).ok()) << buckets;
  }
  SeriesQuery reversed = ok;
  reversed.until_us = ok.since_us - 1;
  EXPECT_FALSE(reader_->series(reversed).ok());
  // The widest window there is: no overflow, one bucket holding all ten.
  SeriesQuery widest = ok;
  widest.since_us = INT64_MIN;
  widest.until_us = INT64_MAX;
  widest.buckets = 1;
  auto all = reader_->series(widest);
  ASSERT_TRUE(all.ok()) << all.error().message;
  ASSERT_EQ(all.value().size(), 1u);
  EXPECT_EQ(all.value()[0].start_us, INT64_MIN);
  EXPECT_EQ(all.value()[0].count, 10u);
}

TEST_P(ReaderTest, SensorsListNameUnitAndReadingsStoredByName) {
  Transaction tx;
  tx.batches = {batch("gw-1", 1, kT0, 4), batch("gw-1", 2, kT0 + 10 * kSec, 3),
                batch("gw-2", 1, kT0, 1)};
  tx.batches.push_back(readings_of("gw-1", 3, kT0, {"door"}, {}, {{0, kT0, true}}));
  commit(tx);
  auto sensors = reader_->sensors("gw-1");
  ASSERT_TRUE(sensors.ok()) << sensors.error().message;
  ASSERT_EQ(sensors.value().size(), 6u);
  const auto& s = sensors.value();
  // By name: battery, co2, door, humidity, pressure, temperature.
  EXPECT_EQ(s[0].sensor, "battery");
  EXPECT_EQ(s[0].unit, "V");
  EXPECT_EQ(s[0].readings, 7u);
  EXPECT_EQ(s[1].sensor, "co2");
  EXPECT_EQ(s[1].unit, "ppm");
  EXPECT_EQ(s[2].sensor, "door");
  EXPECT_EQ(s[2].unit, "");
  EXPECT_EQ(s[2].readings, 1u);
  EXPECT_EQ(s[5].sensor, "temperature");
  EXPECT_EQ(s[5].unit, "Cel");
  EXPECT_EQ(s[5].readings, 7u);
  auto other = reader_->sensors("gw-2");
  ASSERT_TRUE(other.ok());
  ASSERT_EQ(other.value().size(), 5u);
  EXPECT_EQ(other.value()[0].readings, 1u);
  auto none = reader_->sensors("gw-9");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none.value().empty());
}

TEST_P(ReaderTest, FindEventsGivesTheNewestOrTheOldestAfterAnIdByDevice) {
  Transaction tx;
  for (int i = 0; i < 6; ++i) {
    EventItem e;
    e.device = i == 5 ? "" : (i % 2 == 0 ? "gw-1" : "gw-2");  // the last one fleet-wide
    e.event.kind = common::EventKind::kDataGap;
    e.event.time_us = kT0 + i;
    e.event.site = "lab";
    e.event.detail = "event " + std::to_string(i);
    tx.events.push_back(e);
  }
  commit(tx);
  auto details = [](const std::vector<EventRow>& rows) {
    std::vector<std::string> out;
    for (const auto& r : rows) out.push_back(r.event.detail);
    return out;
  };
  auto all = reader_->find_events(EventQuery{.limit = 0});
  ASSERT_TRUE(all.ok()) << all.error().message;
  ASSERT_EQ(all.value().size(), 6u);
  EXPECT_EQ(all.value()[5].device, "");
  const int64_t id1 = all.value()[1].id;

  auto newest = reader_->find_events(EventQuery{.limit = 2});
  ASSERT_TRUE(newest.ok());
  EXPECT_EQ(details(newest.value()), (std::vector<std::string>{"event 4", "event 5"}));
  auto oldest = reader_->find_events(EventQuery{.after_id = id1, .limit = 2, .oldest = true});
  ASSERT_TRUE(oldest.ok());
  EXPECT_EQ(details(oldest.value()), (std::vector<std::string>{"event 2", "event 3"}));
  auto newest_after = reader_->find_events(EventQuery{.after_id = id1, .limit = 2});
  ASSERT_TRUE(newest_after.ok());
  EXPECT_EQ(details(newest_after.value()), (std::vector<std::string>{"event 4", "event 5"}));

  auto gw1 = reader_->find_events(EventQuery{.device = "gw-1", .limit = 2});
  ASSERT_TRUE(gw1.ok());
  EXPECT_EQ(details(gw1.value()), (std::vector<std::string>{"event 2", "event 4"}));
  auto gw1_first = reader_->find_events(EventQuery{.device = "gw-1", .limit = 1, .oldest = true});
  ASSERT_TRUE(gw1_first.ok());
  EXPECT_EQ(details(gw1_first.value()), (std::vector<std::string>{"event 0"}));
  auto gw2_after = reader_->find_events(EventQuery{.device = "gw-2", .after_id = id1});
  ASSERT_TRUE(gw2_after.ok());
  EXPECT_EQ(details(gw2_after.value()), (std::vector<std::string>{"event 3"}));
  auto past_end = reader_->find_events(EventQuery{.after_id = all.value()[5].id, .oldest = true});
  ASSERT_TRUE(past_end.ok());
  EXPECT_TRUE(past_end.value().empty());
}

TEST_P(ReaderTest, DlqPagesByOffsetNewestFirstAndFiltersByTopicText) {
  Transaction tx;
  tx.dlq = {dead("outpost/v1/lab/gw-1/data", common::Reason::kNotDecodable, 100),
            dead("outpost/v1/lab/gw-2/data", common::Reason::kOversized, 200),
            dead("outpost/v1/yard/gw-1/logs", common::Reason::kNotDecodable, 300),
            dead("not/ours/%_", common::Reason::kUnroutableTopic, 400),
            dead("outpost/v1/yard/GW-1/data", common::Reason::kNotDecodable, 500)};
  commit(tx);
  auto times = [](const common::Result<std::vector<DlqRow>, SinkError>& rows) {
    std::vector<int64_t> out;
    EXPECT_TRUE(rows.ok()) << rows.error().message;
    if (rows.ok()) {
      for (const auto& r : rows.value()) out.push_back(r.received_us);
    }
    return out;
  };
  EXPECT_EQ(times(reader_->dlq(DlqFilter{.newest_first = true})),
            (std::vector<int64_t>{500, 400, 300, 200, 100}));
  EXPECT_EQ(times(reader_->dlq(DlqFilter{.limit = 2, .offset = 1})),
            (std::vector<int64_t>{200, 300}));
  EXPECT_EQ(times(reader_->dlq(DlqFilter{.limit = 2, .offset = 1, .newest_first = true})),
            (std::vector<int64_t>{400, 300}));
  EXPECT_EQ(times(reader_->dlq(DlqFilter{.offset = 3})), (std::vector<int64_t>{400, 500}));
  EXPECT_TRUE(times(reader_->dlq(DlqFilter{.offset = 5})).empty());
  // Case-sensitive, and % and _ are plain characters.
  EXPECT_EQ(times(reader_->dlq(DlqFilter{.topic_contains = "gw-1"})),
            (std::vector<int64_t>{100, 300}));
  EXPECT_EQ(times(reader_->dlq(DlqFilter{.topic_contains = "%_"})), (std::vector<int64_t>{400}));
  EXPECT_TRUE(times(reader_->dlq(DlqFilter{.topic_contains = "gw_1"})).empty());
  EXPECT_EQ(
      times(reader_->dlq(DlqFilter{.topic_prefix = "outpost/v1/yard/", .topic_contains = "/data"})),
      (std::vector<int64_t>{500}));

  auto count = reader_->dlq_count(DlqFilter{});
  ASSERT_TRUE(count.ok()) << count.error().message;
  EXPECT_EQ(count.value(), 5u);
  count = reader_->dlq_count(DlqFilter{.reason = common::Reason::kNotDecodable,
                                       .topic_contains = "gw-1",
                                       .limit = 1,
                                       .offset = 1,
                                       .newest_first = true});  // limit, offset, order ignored
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(count.value(), 2u);
  count = reader_->dlq_count(DlqFilter{.since_us = 250, .until_us = 450});
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(count.value(), 2u);
}

TEST_P(ReaderTest, DlqHistogramCountsPerBucketAndReasonAndTopicsCountPerTopic) {
  Transaction tx;
  tx.dlq = {dead("a", common::Reason::kNotDecodable, 1000),
            dead("a", common::Reason::kNotDecodable, 1999),
            dead("b", common::Reason::kOversized, 1500),
            dead("b", common::Reason::kNotDecodable, 3000),
            dead("c", common::Reason::kNotDecodable, 500)};  // before since
  commit(tx);
  auto h = reader_->dlq_histogram(1000, 1000);
  ASSERT_TRUE(h.ok()) << h.error().message;
  ASSERT_EQ(h.value().size(), 3u);  // bucket 2000 has none
  EXPECT_EQ(h.value()[0].start_us, 1000);
  EXPECT_EQ(h.value()[0].reason, common::Reason::kNotDecodable);
  EXPECT_EQ(h.value()[0].count, 2u);
  EXPECT_EQ(h.value()[1].start_us, 1000);
  EXPECT_EQ(h.value()[1].reason, common::Reason::kOversized);
  EXPECT_EQ(h.value()[1].count, 1u);
  EXPECT_EQ(h.value()[2].start_us, 3000);
  EXPECT_EQ(h.value()[2].reason, common::Reason::kNotDecodable);
  EXPECT_EQ(h.value()[2].count, 1u);
  // Buckets are multiples of the width, whatever since_us is.
  auto wide = reader_->dlq_histogram(1200, 5000);
  ASSERT_TRUE(wide.ok());
  ASSERT_EQ(wide.value().size(), 2u);
  EXPECT_EQ(wide.value()[0].start_us, 0);
  EXPECT_EQ(wide.value()[0].reason, common::Reason::kNotDecodable);
  EXPECT_EQ(wide.value()[0].count, 2u);  // 1999, 3000
  EXPECT_EQ(wide.value()[1].start_us, 0);
  EXPECT_EQ(wide.value()[1].count, 1u);  // 1500
  EXPECT_FALSE(reader_->dlq_histogram(0, 0).ok());

  auto topics = reader_->dlq_topics();
  ASSERT_TRUE(topics.ok()) << topics.error().message;
  EXPECT_EQ(topics.value(), (std::map<std::string, uint64_t>{{"a", 2}, {"b", 2}, {"c", 1}}));
}

TEST_P(ReaderTest, LatestLogsAreTheNewestOnesInTheUsualOrder) {
  auto logs = [](uint64_t seq, int64_t t, std::vector<std::string> messages) {
    common::LogBatch body{true, {}};
    for (std::size_t i = 0; i < messages.size(); ++i) {
      body.records.push_back(
          {t + static_cast<int64_t>(i) * kSec, common::Severity::kInfo, messages[i], {}});
    }
    return BatchItem{"lab", common::Envelope{1, "gw-1", 3, seq, std::move(body)}, t};
  };
  Transaction tx;
  tx.batches = {logs(1, kT0, {"a", "b", "c"}), logs(2, kT0 + 10 * kSec, {"d", "e"})};
  commit(tx);
  auto run = [&](const LogQuery& q) {
    std::vector<std::string> out;
    auto s = reader_->query_logs(q, [&](const LogRow& r) { out.push_back(r.message); });
    EXPECT_TRUE(s.ok()) << s.error().message;
    return out;
  };
  EXPECT_EQ(run(LogQuery{.limit = 3}), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(run(LogQuery{.limit = 3, .latest = true}), (std::vector<std::string>{"c", "d", "e"}));
  EXPECT_EQ(run(LogQuery{.limit = 1, .latest = true}), (std::vector<std::string>{"e"}));
  EXPECT_EQ(run(LogQuery{.limit = 10, .latest = true}),
            (std::vector<std::string>{"a", "b", "c", "d", "e"}));
  EXPECT_EQ(run(LogQuery{.latest = true}), (std::vector<std::string>{"a", "b", "c", "d", "e"}));
  // With the other filters: the newest two of the matching ones.
  EXPECT_EQ(run(LogQuery{.until_us = kT0 + 10 * kSec, .limit = 2, .latest = true}),
            (std::vector<std::string>{"c", "d"}));
}

// The collector's storage thread in small: every message goes to the FleetTracker first, its
// events into the same transaction.
// What the console applies instead of reading the whole fleet again: after a first, complete
// read, only the devices a commit touched, and the DLQ's topics only when the DLQ changed. A
// backend that keeps no revisions answers every call with a complete read (revision 0).
TEST_P(ReaderTest, FleetChangesGiveOnlyWhatChangedSinceTheRevisionAsked) {
  FleetTracker fleet(FleetOptions{.gap_grace_us = 10 * kSec});
  Transaction tx;
  tx.batches = {batch("gw-1", 1, kT0), batch("gw-2", 1, kT0), batch("gw-3", 1, kT0)};
  for (const BatchItem& b : tx.batches) {
    fleet.on_batch("lab", b.envelope.device_id, 3, 1, kT0, tx.events);
  }
  fleet.take_commit(kT0, tx.events, tx.seq_lines);
  tx.dlq = {dead("outpost/v1/lab/gw-1/data", common::Reason::kNotDecodable, kT0)};
  commit(std::move(tx));

  auto all = reader_->fleet_changes(0);
  ASSERT_TRUE(all.ok()) << all.error().message;
  EXPECT_TRUE(all.value().complete);
  ASSERT_EQ(all.value().devices.size(), 3u);
  EXPECT_EQ(all.value().devices[0].device, "gw-1");
  ASSERT_TRUE(all.value().devices[0].seq_line.has_value());
  EXPECT_EQ(all.value().devices[0].seq_line->max_seq, 1u);
  EXPECT_EQ(all.value().devices[0].readings, 50u);
  ASSERT_TRUE(all.value().dlq_topics.has_value());
  EXPECT_EQ(*all.value().dlq_topics,
            (std::map<std::string, uint64_t>{{"outpost/v1/lab/gw-1/data", 1}}));
  // SQLite counts its commits; PostgreSQL hands back its snapshot's xmin (a transaction id).
  const uint64_t first = all.value().revision;
  EXPECT_GT(first, 0u);
  const bool sqlite = backend() == Backend::kSqlite;

  // A status of gw-2 and a batch of gw-3 (its sequence line moves): those two only.
  Transaction next;
  next.statuses = {StatusItem{"lab", "gw-2", {}, kT0 + 20 * kSec}};
  next.batches = {batch("gw-3", 2, kT0 + 10 * kSec)};
  fleet.on_batch("lab", "gw-3", 3, 2, kT0 + 20 * kSec, next.events);
  fleet.take_commit(kT0 + 20 * kSec, next.events, next.seq_lines);
  commit(std::move(next));
  auto changed = reader_->fleet_changes(first);
  ASSERT_TRUE(changed.ok()) << changed.error().message;
  EXPECT_FALSE(changed.value().complete);
  EXPECT_GT(changed.value().revision, first);
  ASSERT_EQ(changed.value().devices.size(), 2u);
  EXPECT_EQ(changed.value().devices[0].device, "gw-2");
  EXPECT_FALSE(changed.value().devices[0].last_status.empty());
  EXPECT_EQ(changed.value().devices[1].device, "gw-3");
  ASSERT_TRUE(changed.value().devices[1].seq_line.has_value());
  EXPECT_EQ(changed.value().devices[1].seq_line->max_seq, 2u);
  EXPECT_EQ(changed.value().devices[1].readings, 100u);
  if (sqlite) {
    EXPECT_FALSE(changed.value().dlq_topics.has_value()) << "the DLQ did not change";
  } else {
    EXPECT_TRUE(changed.value().dlq_topics.has_value()) << "PostgreSQL sends them each time";
  }
  const uint64_t second = changed.value().revision;

  // Nothing committed since: nothing changed.
  auto same = reader_->fleet_changes(second);
  ASSERT_TRUE(same.ok());
  EXPECT_FALSE(same.value().complete);
  EXPECT_TRUE(same.value().devices.empty());
  if (sqlite) {
    EXPECT_EQ(same.value().revision, second);
  }

  // A DLQ entry for a device, and retention removing the first: the topics come each time.
  Transaction bad;
  bad.dlq = {dead("outpost/v1/lab/gw-2/data", common::Reason::kNotDecodable, kT0 + 30 * kSec)};
  commit(std::move(bad));
  auto with_dlq = reader_->fleet_changes(second);
  ASSERT_TRUE(with_dlq.ok());
  ASSERT_TRUE(with_dlq.value().dlq_topics.has_value());
  EXPECT_EQ(with_dlq.value().dlq_topics->size(), 2u);
  EXPECT_TRUE(with_dlq.value().devices.empty());
  auto removed = sink_->expire(INT64_MIN, kT0 + 1, INT64_MIN, 1000);
  ASSERT_TRUE(removed.ok()) << removed.error().message;
  EXPECT_EQ(removed.value(), 1u);
  auto after_expiry = reader_->fleet_changes(with_dlq.value().revision);
  ASSERT_TRUE(after_expiry.ok());
  ASSERT_TRUE(after_expiry.value().dlq_topics.has_value());
  EXPECT_EQ(*after_expiry.value().dlq_topics,
            (std::map<std::string, uint64_t>{{"outpost/v1/lab/gw-2/data", 1}}));

  // A revision this database never gave (another file's): a complete read.
  auto foreign = reader_->fleet_changes(after_expiry.value().revision + 1000);
  ASSERT_TRUE(foreign.ok());
  EXPECT_TRUE(foreign.value().complete);
  EXPECT_EQ(foreign.value().devices.size(), 3u);
}

class PresenceTest : public ReaderTest {
 protected:
  void status(common::DeviceState state, int64_t now_us) {
    StatusItem item{"lab", "gw-1", {}, now_us};
    item.status.state = state;
    fleet_.on_status(item.site, item.device, item.status, now_us, tx_.events);
    tx_.statuses.push_back(item);
  }
  void data(uint64_t seq, int64_t now_us) {
    BatchItem b = batch("gw-1", seq, now_us - 10 * kSec);
    b.received_us = now_us;
    fleet_.on_batch(b.site, b.envelope.device_id, b.envelope.epoch, b.envelope.seq, now_us,
                    tx_.events);
    tx_.batches.push_back(std::move(b));
  }
  void tick(int64_t now_us) { fleet_.tick(now_us, tx_.events); }
  // Commits what was added; returns the stored presence of gw-1.
  Presence stored() {
    commit(std::move(tx_));
    tx_ = Transaction{};
    auto devices = reader_->devices();
    EXPECT_TRUE(devices.ok());
    for (const auto& d : devices.value()) {
      if (d.device == "gw-1") return d.presence;
    }
    ADD_FAILURE() << "gw-1 not stored";
    return Presence::kUnknown;
  }

  FleetTracker fleet_{FleetOptions{.offline_after_us = 60 * kSec}};
  Transaction tx_;
};

TEST_P(PresenceTest, StoredPresenceIsWhatTheFleetTrackerDecidedAfterEachCommit) {
  status(common::DeviceState::kOnline, kT0);
  EXPECT_EQ(stored(), Presence::kOnline);
  EXPECT_EQ(fleet_.presence("gw-1"), Presence::kOnline);

  data(1, kT0 + 10 * kSec);
  tick(kT0 + 100 * kSec);  // silent for 90 s: the tracker gives up on it
  ASSERT_EQ(fleet_.presence("gw-1"), Presence::kSilent);
  EXPECT_EQ(stored(), Presence::kSilent);

  data(2, kT0 + 110 * kSec);  // data after silence: online again, no birth needed
  ASSERT_EQ(fleet_.presence("gw-1"), Presence::kOnline);
  EXPECT_EQ(stored(), Presence::kOnline);

  status(common::DeviceState::kLost, kT0 + 120 * kSec);
  EXPECT_EQ(stored(), Presence::kLost);
  status(common::DeviceState::kOffline, kT0 + 121 * kSec);  // no event: already offline
  ASSERT_EQ(fleet_.presence("gw-1"), Presence::kOffline);
  EXPECT_EQ(stored(), Presence::kOffline);

  data(3, kT0 + 130 * kSec);  // data trailing the will: the tracker keeps it offline
  ASSERT_EQ(fleet_.presence("gw-1"), Presence::kOffline);
  EXPECT_EQ(stored(), Presence::kOffline);
}

TEST_P(PresenceTest, OneTransactionStoresTheTrackersFinalDecision) {
  // Birth, last will and a clean offline in one commit: one online and one offline event,
  // and the device ends offline.
  status(common::DeviceState::kOnline, kT0);
  status(common::DeviceState::kLost, kT0 + kSec);
  status(common::DeviceState::kOffline, kT0 + 2 * kSec);
  ASSERT_EQ(tx_.events.size(), 2u);
  ASSERT_EQ(fleet_.presence("gw-1"), Presence::kOffline);
  EXPECT_EQ(stored(), Presence::kOffline);
}

TEST_P(PresenceTest, EventTextDoesNotDecidePresence) {
  status(common::DeviceState::kOnline, kT0);
  EXPECT_EQ(stored(), Presence::kOnline);
  // An offline event that reads like the tracker's silence, but carries no decision of its
  // (a rule, a replayed event): the stored presence stays.
  EventItem look_alike;
  look_alike.device = "gw-1";
  look_alike.event.kind = common::EventKind::kDeviceOffline;
  look_alike.event.site = "lab";
  look_alike.event.detail = "no message for 300 s";
  tx_.events.push_back(look_alike);
  EXPECT_EQ(stored(), Presence::kOnline);
}

TEST_P(PresenceTest, ARestartedTrackerRemembersTheStoredPresence) {
  status(common::DeviceState::kOnline, kT0);
  data(1, kT0 + kSec);
  tick(kT0 + 100 * kSec);
  ASSERT_EQ(stored(), Presence::kSilent);
  auto devices = reader_->devices();
  ASSERT_TRUE(devices.ok());
  FleetTracker restarted(FleetOptions{.offline_after_us = 60 * kSec});
  for (const DeviceRow& d : devices.value()) {
    restarted.remember(d.site, d.device, d.epoch, d.presence, d.last_seen_us);
  }
  EXPECT_EQ(restarted.presence("gw-1"), Presence::kSilent);
  std::vector<EventItem> out;
  restarted.on_batch("lab", "gw-1", 3, 2, kT0 + 110 * kSec, out);
  ASSERT_EQ(out.size(), 1u);  // back online: it knew the device was silent
  EXPECT_EQ(out[0].event.kind, common::EventKind::kDeviceOnline);
}

OUTPOST_INSTANTIATE_BACKENDS(ReaderTest);
OUTPOST_INSTANTIATE_BACKENDS(PresenceTest);

}  // namespace
}  // namespace outpost::collector
