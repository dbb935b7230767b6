// The SQLite sink on real files (read back through the SqliteReader), the journal, and
// classification of received messages.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>

#include "outpost/collector/config.h"
#include "outpost/collector/ingest.h"
#include "outpost/collector/journal.h"
#include "outpost/collector/sqlite_reader.h"
#include "outpost/collector/sqlite_sink.h"
#include "outpost/common/clock.h"
#include "outpost/common/codec.h"
#include "outpost/common/sample.h"

namespace outpost::collector {
namespace {

namespace fs = std::filesystem;

class SinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("outpost_sink_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::unique_ptr<SqliteSink> open(uint64_t dlq_max = 1000) {
    auto s = SqliteSink::open(SqliteOptions{(dir_ / "c.db").string(), false, dlq_max, true});
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
    return s.ok() ? std::move(s).value() : nullptr;
  }
  // A reader of the same file, as the tools open one.
  std::unique_ptr<SqliteReader> read() {
    auto r = SqliteReader::open((dir_ / "c.db").string());
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? std::move(r).value() : nullptr;
  }
  BatchItem sample(std::string device, uint64_t seq) {
    common::Envelope env =
        common::sample_reading_batch(device, common::wall_now_us() - 10'000'000, 10, seq);
    env.seq = seq;
    env.epoch = 77;
    return BatchItem{"lab", std::move(env), common::wall_now_us()};
  }
  fs::path dir_;
};

TEST_F(SinkTest, StoresEachBatchOnceHoweverOftenItArrives) {
  auto sink = open();
  Transaction tx;
  tx.batches = {sample("gw-1", 1), sample("gw-1", 2), sample("gw-1", 1)};
  auto r = sink->commit(tx);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().outcomes,
            (std::vector{BatchOutcome::kStored, BatchOutcome::kStored, BatchOutcome::kDuplicate}));
  EXPECT_EQ(r.value().readings_stored, 100u);
  auto again = sink->commit(tx);  // the same messages delivered again later
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again.value().readings_stored, 0u);
  auto counts = read()->counts();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts.value()["readings"], 100u);
  EXPECT_EQ(counts.value()["batches"], 2u);
  auto devices = read()->devices();
  ASSERT_TRUE(devices.ok());
  ASSERT_EQ(devices.value().size(), 1u);
  EXPECT_EQ(devices.value()[0].readings, 100u);
  EXPECT_EQ(devices.value()[0].duplicates, 4u);
  EXPECT_EQ(devices.value()[0].epoch, 77u);
}

TEST_F(SinkTest, QueryReturnsTheValuesAsSentWithTheirTypesAndUnits) {
  auto sink = open();
  Transaction tx;
  BatchItem b = sample("gw-1", 1);
  auto& batch = std::get<common::ReadingBatch>(b.envelope.body);
  const int64_t t = batch.readings[0].time_us;
  batch.sensor_names.push_back("door");
  batch.sensor_names.push_back("state");
  const auto door = static_cast<uint32_t>(batch.sensor_names.size() - 2);
  common::Reading open_door;
  open_door.sensor = door;
  open_door.time_us = t;
  open_door.value = true;
  batch.readings.push_back(open_door);
  common::Reading state = open_door;
  state.sensor = door + 1;
  state.value = std::string("idle");
  batch.readings.push_back(state);
  tx.batches = {b};
  ASSERT_TRUE(sink->commit(tx).ok());
  std::vector<ReadingRow> rows;
  ReadingQuery q{.device = "gw-1", .sensor = "door"};
  ASSERT_TRUE(read()->query_readings(q, [&](const ReadingRow& r) { rows.push_back(r); }).ok());
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].value, common::Value(true));
  EXPECT_EQ(rows[0].epoch, 77u);
  rows.clear();
  q.sensor = "state";
  ASSERT_TRUE(read()->query_readings(q, [&](const ReadingRow& r) { rows.push_back(r); }).ok());
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].value, common::Value(std::string("idle")));
  rows.clear();
  q.sensor = batch.sensor_names[0];
  ASSERT_TRUE(read()->query_readings(q, [&](const ReadingRow& r) { rows.push_back(r); }).ok());
  ASSERT_EQ(rows.size(), 10u);
  EXPECT_EQ(rows[0].unit, std::string(batch.unit_of(0)));
  EXPECT_EQ(rows[0].value, batch.readings[0].value);
  q.since_us = t + 1;
  rows.clear();
  ASSERT_TRUE(read()->query_readings(q, [&](const ReadingRow& r) { rows.push_back(r); }).ok());
  EXPECT_EQ(rows.size(), 9u);
}

TEST_F(SinkTest, BatchesOfEverySizeKeepTheirReadingsInOrderAndToThemselves) {
  // Readings go in multi-row INSERTs: sizes around the chunk (25 rows) and several devices in
  // one transaction check that every reading is stored once, in order, under its own batch.
  auto sink = open();
  Transaction tx;
  const std::vector<int> sizes = {1, 24, 25, 26, 49, 50, 51, 77, 3};
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    BatchItem b = sample("gw-" + std::to_string(i % 3), i + 1);
    auto& readings = std::get<common::ReadingBatch>(b.envelope.body).readings;
    readings.resize(static_cast<std::size_t>(sizes[i]), readings.front());
    for (std::size_t r = 0; r < readings.size(); ++r) {
      readings[r].sensor = static_cast<uint32_t>(r % 5);
      readings[r].time_us = 1'000'000 + static_cast<int64_t>(r);
      readings[r].value = static_cast<int64_t>(1000 * (i + 1) + r);  // batch and position
    }
    tx.batches.push_back(std::move(b));
  }
  auto r = sink->commit(tx);
  ASSERT_TRUE(r.ok()) << r.error().message;
  uint64_t total = 0;
  for (int n : sizes) total += static_cast<uint64_t>(n);
  EXPECT_EQ(r.value().readings_stored, total);
  std::vector<ReadingRow> rows;
  ASSERT_TRUE(read()->query_readings({}, [&](const ReadingRow& row) { rows.push_back(row); }).ok());
  ASSERT_EQ(rows.size(), total);
  std::map<uint64_t, std::vector<int64_t>> by_seq;  // seq -> values in the order read back
  for (const ReadingRow& row : rows) {
    ASSERT_TRUE(std::holds_alternative<int64_t>(row.value));
    by_seq[row.seq].push_back(std::get<int64_t>(row.value));
    EXPECT_EQ(row.device, "gw-" + std::to_string((row.seq - 1) % 3));
  }
  ASSERT_EQ(by_seq.size(), sizes.size());
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    std::vector<int64_t> values = by_seq[i + 1];
    std::sort(values.begin(), values.end());
    ASSERT_EQ(values.size(), static_cast<std::size_t>(sizes[i])) << "seq " << i + 1;
    for (std::size_t k = 0; k < values.size(); ++k) {
      EXPECT_EQ(values[k], static_cast<int64_t>(1000 * (i + 1) + k)) << "seq " << i + 1;
    }
  }
}

TEST_F(SinkTest, DlqKeepsRawBytesAndReasonAndIsBounded) {
  auto sink = open(/*dlq_max=*/3);
  Transaction tx;
  for (int i = 0; i < 5; ++i) {
    tx.dlq.push_back(DlqItem{"outpost/v1/lab/gw-1/data", std::string("\x00\xff", 2) + char('a' + i),
                             common::wall_now_us(), common::Reason::kNotDecodable, "bad"});
  }
  auto r = sink->commit(tx);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value().dlq_dropped, 2u);
  auto rows = read()->dlq(DlqFilter{});
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows.value().size(), 3u);
  EXPECT_EQ(rows.value()[0].payload, std::string("\x00\xff", 2) + "c");
  EXPECT_EQ(rows.value()[0].reason, common::Reason::kNotDecodable);
  DlqFilter oversized;
  oversized.reason = common::Reason::kOversized;
  auto only = read()->dlq(oversized);
  ASSERT_TRUE(only.ok());
  EXPECT_TRUE(only.value().empty());
  DlqFilter two;
  two.limit = 2;
  auto purged = sink->purge_dlq(two);
  ASSERT_TRUE(purged.ok());
  EXPECT_EQ(purged.value(), 2u);
}

TEST_F(SinkTest, PurgeHonoursTopicContainsButNotOffsetOrOrder) {
  auto sink = open();
  Transaction tx;
  for (const char* topic : {"outpost/v1/lab/gw-1/data", "outpost/v1/lab/gw-2/data",
                            "outpost/v1/yard/gw-1/logs", "outpost/v1/yard/GW-1/data"}) {
    tx.dlq.push_back(DlqItem{topic, "x", 1000, common::Reason::kNotDecodable, "bad"});
  }
  ASSERT_TRUE(sink->commit(tx).ok());
  // The offset and the order are the listing's: purge removes what matches, oldest first.
  DlqFilter gw1;
  gw1.topic_contains = "gw-1";
  gw1.offset = 5;
  gw1.newest_first = true;
  auto purged = sink->purge_dlq(gw1);
  ASSERT_TRUE(purged.ok()) << purged.error().message;
  EXPECT_EQ(purged.value(), 2u);
  auto rows = read()->dlq(DlqFilter{});
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows.value().size(), 2u);
  EXPECT_EQ(rows.value()[0].topic, "outpost/v1/lab/gw-2/data");
  EXPECT_EQ(rows.value()[1].topic, "outpost/v1/yard/GW-1/data");  // case-sensitive
}

// Runs `sql` on the database file itself, as an older build or another program would.
void run_sql(const fs::path& file, const char* sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
  char* error = nullptr;
  const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &error);
  const std::string message = error ? error : "";
  sqlite3_free(error);
  sqlite3_close(db);
  ASSERT_EQ(rc, SQLITE_OK) << message;
}

TEST_F(SinkTest, ADatabaseWithoutLastDataGetsItFromTheBatchesLedger) {
  {
    auto sink = open();
    Transaction tx;
    BatchItem first = sample("gw-1", 1);
    first.received_us = 5'000;
    BatchItem second = sample("gw-1", 2);
    second.received_us = 7'000;
    tx.batches = {first, second};
    tx.batches.push_back(BatchItem{
        "lab",
        common::Envelope{1, "gw-1", 77, 3,
                         common::LogBatch{true, {{1, common::Severity::kInfo, "boot", {}}}}},
        9'000});  // logs are no data
    tx.statuses = {StatusItem{"lab", "gw-2", {}, 8'000}};
    ASSERT_TRUE(sink->commit(tx).ok());
  }
  // The schema as it was before the column and the version.
  run_sql(dir_ / "c.db", "ALTER TABLE devices DROP COLUMN last_data_us; PRAGMA user_version = 0;");

  auto reader = read();
  ASSERT_NE(reader, nullptr);
  auto devices = reader->devices();
  ASSERT_TRUE(devices.ok()) << devices.error().message;
  ASSERT_EQ(devices.value().size(), 2u);
  EXPECT_EQ(devices.value()[0].device, "gw-1");
  EXPECT_EQ(devices.value()[0].last_data_us, 7'000);
  EXPECT_EQ(devices.value()[0].last_seen_us, 9'000);
  EXPECT_EQ(devices.value()[1].last_data_us, 0);
  reader.reset();

  // The writer keeps it from then on.
  auto sink = open();
  ASSERT_NE(sink, nullptr);
  Transaction tx;
  BatchItem third = sample("gw-1", 4);
  third.received_us = 10'000;
  tx.batches = {third};
  ASSERT_TRUE(sink->commit(tx).ok());
  devices = read()->devices();
  ASSERT_TRUE(devices.ok());
  EXPECT_EQ(devices.value()[0].last_data_us, 10'000);
}

TEST_F(SinkTest, ADatabaseOfSchemaOneGetsChangeRevisionsAndReadsCompleteFirst) {
  {
    auto sink = open();
    Transaction tx;
    tx.batches = {sample("gw-1", 1), sample("gw-2", 1)};
    ASSERT_TRUE(sink->commit(tx).ok());
  }
  // Version 1: no devices.changed, no revision in meta.
  run_sql(dir_ / "c.db",
          "ALTER TABLE devices DROP COLUMN changed; "
          "DELETE FROM meta WHERE key IN ('revision', 'dlq_revision'); PRAGMA user_version = 1;");

  auto reader = read();
  ASSERT_NE(reader, nullptr);
  auto all = reader->fleet_changes(0);
  ASSERT_TRUE(all.ok()) << all.error().message;
  EXPECT_TRUE(all.value().complete);
  EXPECT_EQ(all.value().devices.size(), 2u);
  EXPECT_EQ(all.value().revision, 0u);

  auto sink = open();
  ASSERT_NE(sink, nullptr);
  Transaction tx;
  tx.batches = {sample("gw-2", 2)};
  ASSERT_TRUE(sink->commit(tx).ok());
  // Revision 0 still means "all of it"; after the first revision of the migrated file, gw-2.
  auto again = reader->fleet_changes(0);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again.value().complete);
  ASSERT_EQ(again.value().revision, 1u);
  tx.batches = {sample("gw-2", 3)};
  ASSERT_TRUE(sink->commit(tx).ok());
  auto changed = reader->fleet_changes(1);
  ASSERT_TRUE(changed.ok());
  EXPECT_FALSE(changed.value().complete);
  ASSERT_EQ(changed.value().devices.size(), 1u);
  EXPECT_EQ(changed.value().devices[0].device, "gw-2");
  EXPECT_EQ(changed.value().revision, 2u);
}

TEST_F(SinkTest, ADatabaseOfANewerSchemaIsRefusedNamingItsVersion) {
  ASSERT_NE(open(), nullptr);
  run_sql(dir_ / "c.db", "PRAGMA user_version = 99;");
  auto s = SqliteSink::open(SqliteOptions{(dir_ / "c.db").string(), false, 10, true});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("schema version 99"), std::string::npos) << s.error().message;
  auto r = SqliteReader::open((dir_ / "c.db").string());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("c.db"), std::string::npos) << r.error().message;
}

TEST_F(SinkTest, JournalPositionIsCommittedWithTheData) {
  auto sink = open();
  Transaction tx;
  tx.batches = {sample("gw-1", 1)};
  tx.journal = JournalPosition{3, 1234};
  ASSERT_TRUE(sink->commit(tx).ok());
  auto pos = sink->journal_position();
  ASSERT_TRUE(pos.ok());
  ASSERT_TRUE(pos.value().has_value());
  EXPECT_EQ(*pos.value(), (JournalPosition{3, 1234}));
}

TEST_F(SinkTest, RetentionRemovesWhatArrivedBeforeTheCutoffInChunks) {
  auto sink = open();
  Transaction old_tx;
  old_tx.batches = {sample("gw-1", 1), sample("gw-1", 2)};
  for (auto& b : old_tx.batches) b.received_us = 1000;
  ASSERT_TRUE(sink->commit(old_tx).ok());
  Transaction new_tx;
  new_tx.batches = {sample("gw-1", 3)};
  ASSERT_TRUE(sink->commit(new_tx).ok());
  // Keys are not due yet (their cutoff is older than everything).
  auto removed = sink->expire(2000, INT64_MIN, INT64_MIN, 60);
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(removed.value(), 61u);  // a bounded chunk (ids min..min+60)
  removed = sink->expire(2000, INT64_MIN, INT64_MIN, 60);
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(removed.value(), 39u);
  EXPECT_EQ(read()->counts().value()["readings"], 50u);
  // The batch keys stay: a late duplicate of an expired batch is still recognised.
  auto dup = sink->commit(old_tx);
  ASSERT_TRUE(dup.ok());
  EXPECT_EQ(dup.value().outcomes[0], BatchOutcome::kDuplicate);
  EXPECT_EQ(read()->counts().value()["batches"], 3u);
}

TEST_F(SinkTest, BatchKeysGoOnlyOnceTheirRowsAreGone) {
  auto sink = open();
  Transaction old_tx;
  old_tx.batches = {sample("gw-1", 1), sample("gw-1", 2)};
  for (auto& b : old_tx.batches) b.received_us = 1000;
  ASSERT_TRUE(sink->commit(old_tx).ok());
  Transaction new_tx;
  new_tx.batches = {sample("gw-1", 3)};
  ASSERT_TRUE(sink->commit(new_tx).ok());
  // The first chunk leaves rows of the old batches behind: their keys stay.
  auto removed = sink->expire(2000, INT64_MIN, 2000, 60);
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(removed.value(), 61u);
  EXPECT_EQ(read()->counts().value()["batches"], 3u);
  // Rows caught up: the two old keys go in the same call, the new one stays.
  removed = sink->expire(2000, INT64_MIN, 2000, 60);
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(removed.value(), 39u + 2u);
  EXPECT_EQ(read()->counts().value()["batches"], 1u);
  EXPECT_EQ(read()->counts().value()["readings"], 50u);
  // A duplicate that late is stored again (its first copy is gone with its rows).
  auto again = sink->commit(old_tx);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again.value().outcomes[0], BatchOutcome::kStored);
}

TEST_F(SinkTest, AFileThatIsNotADatabaseIsRefusedWithAClearMessage) {
  std::ofstream(dir_ / "c.db") << std::string(4096, 'x');
  auto s = SqliteSink::open(SqliteOptions{(dir_ / "c.db").string(), false, 10, true});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("c.db"), std::string::npos) << s.error().message;
}

TEST_F(SinkTest, JournalReplaysWhatFollowsThePositionAndStopsAtATornTail) {
  const std::string jdir = (dir_ / "journal").string();
  std::vector<JournalPosition> after;
  {
    auto j = Journal::open(jdir, false);
    ASSERT_TRUE(j.ok());
    ASSERT_TRUE(
        j.value()->append({{"t/1", "one", 1}, {"t/2", "two", 2}, {"t/3", "three", 3}}, after).ok());
  }
  // A torn record at the end, as a crash in the middle of a write could leave.
  for (const auto& e : fs::directory_iterator(jdir)) {
    std::ofstream(e.path(), std::ios::app) << "\x05\x00";
  }
  auto j = Journal::open(jdir, false);
  ASSERT_TRUE(j.ok());
  std::vector<std::string> seen;
  auto n = j.value()->replay(after[0], [&](RawMessage&& m, JournalPosition) {
    seen.push_back(m.topic + "=" + m.payload);
  });
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(seen, (std::vector<std::string>{"t/2=two", "t/3=three"}));
  seen.clear();
  ASSERT_TRUE(
      j.value()
          ->replay(std::nullopt, [&](RawMessage&& m, JournalPosition) { seen.push_back(m.topic); })
          .ok());
  EXPECT_EQ(seen.size(), 3u);
  // Once committed past the old segment, it is deleted.
  std::vector<JournalPosition> newer;
  ASSERT_TRUE(j.value()->append({{"t/4", "four", 4}}, newer).ok());
  ASSERT_TRUE(j.value()->release(newer[0]).ok());
  seen.clear();
  ASSERT_TRUE(
      j.value()
          ->replay(std::nullopt, [&](RawMessage&& m, JournalPosition) { seen.push_back(m.topic); })
          .ok());
  EXPECT_TRUE(seen.empty());
}

TEST_F(SinkTest, JournalSegmentThatCannotBeRemovedIsReportedAndRemovedLater) {
  const std::string jdir = (dir_ / "journal").string();
  std::vector<JournalPosition> after;
  {
    auto j = Journal::open(jdir, false);
    ASSERT_TRUE(j.ok());
    ASSERT_TRUE(j.value()->append({{"t/1", "one", 1}}, after).ok());
  }
  std::vector<fs::path> old;
  for (const auto& e : fs::directory_iterator(jdir)) old.push_back(e.path());
  ASSERT_EQ(old.size(), 1u);
  auto j = Journal::open(jdir, false);  // writes to a new segment from here on
  ASSERT_TRUE(j.ok());
  std::vector<JournalPosition> newer;
  ASSERT_TRUE(j.value()->append({{"t/2", "two", 2}}, newer).ok());
  // The old segment's name now holds a non-empty directory: removing it fails (even as root).
  fs::remove(old[0]);
  fs::create_directory(old[0]);
  std::ofstream(old[0] / "keep") << "x";
  auto released = j.value()->release(newer[0]);
  ASSERT_FALSE(released.ok());
  EXPECT_NE(released.error().message.find(old[0].filename().string()), std::string::npos)
      << released.error().message;
  fs::remove_all(old[0]);
  std::ofstream(old[0]) << "";
  EXPECT_TRUE(j.value()->release(newer[0]).ok());
  EXPECT_FALSE(fs::exists(old[0]));
}

TEST(Classify, SortsMessagesIntoBatchesStatusesAndDlqWithReasons) {
  const int64_t now = common::wall_now_us();
  auto encode = [](const common::Envelope& e) {
    auto bytes = common::encode(e);
    return std::string(bytes.value().begin(), bytes.value().end());
  };
  const common::ValidationOptions options;
  common::Envelope env = common::sample_reading_batch("gw-1", now - 20'000'000);
  auto c = classify(RawMessage{"outpost/v1/lab/gw-1/data", encode(env), now}, options);
  ASSERT_TRUE(std::holds_alternative<BatchItem>(c));
  EXPECT_EQ(std::get<BatchItem>(c).site, "lab");

  c = classify(RawMessage{"outpost/v1/lab/gw-2/data", encode(env), now}, options);
  ASSERT_TRUE(std::holds_alternative<DlqItem>(c));
  EXPECT_EQ(std::get<DlqItem>(c).reason, common::Reason::kIdentityMismatch);

  c = classify(RawMessage{"outpost/v1/lab/gw-1/logs", encode(env), now}, options);
  EXPECT_EQ(std::get<DlqItem>(c).reason, common::Reason::kWrongMessageType);

  c = classify(RawMessage{"not/ours", "x", now}, options);
  EXPECT_EQ(std::get<DlqItem>(c).reason, common::Reason::kUnroutableTopic);
  EXPECT_EQ(std::get<DlqItem>(c).payload, "x");

  c = classify(RawMessage{"outpost/v1/lab/gw-1/data", "{\"temp\": 21}", now}, options);
  EXPECT_EQ(std::get<DlqItem>(c).reason, common::Reason::kNotDecodable);

  common::Envelope st{common::kSchemaVersion, "gw-1", 1, 0, common::DeviceStatus{}};
  std::get<common::DeviceStatus>(st.body).state = common::DeviceState::kLost;
  c = classify(RawMessage{"outpost/v1/lab/gw-1/status", encode(st), now}, options);
  ASSERT_TRUE(std::holds_alternative<StatusItem>(c));
  EXPECT_EQ(std::get<StatusItem>(c).status.state, common::DeviceState::kLost);
}

TEST(CollectorConfig, ErrorsNameFileLineAndKey) {
  auto reader = common::ConfigReader::parse_string(
      "[storage]\npath = \"x.db\"\ncommit_interval = \"fast\"\n", "collector.toml");
  ASSERT_TRUE(reader.ok());
  CollectorConfig config;
  auto s = read_collector_config(reader.value(), config);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().file, "collector.toml");
  EXPECT_EQ(s.error().line, 3);
  EXPECT_EQ(s.error().key, "storage.commit_interval");
}

TEST(CollectorConfig, BrokerKeysAreCheckedAsTheAgentChecksThem) {
  auto key_of = [](const std::string& toml) -> std::string {
    auto reader = common::ConfigReader::parse_string(toml, "collector.toml");
    if (!reader.ok()) return "parse error";
    CollectorConfig config;
    auto s = read_collector_config(reader.value(), config);
    return s.ok() ? "ok" : s.error().key + ": " + s.error().message;
  };
  EXPECT_EQ(key_of("[mqtt]\nbroker = \"127.0.0.1:1883\"\n"),
            "mqtt.broker: must start with tcp://, ssl://, mqtt:// or mqtts://");
  EXPECT_EQ(key_of("[mqtt]\nreconnect_min = \"10s\"\nreconnect_max = \"5s\"\n"),
            "mqtt.reconnect_max: is below mqtt.reconnect_min");
  EXPECT_EQ(key_of("[mqtt]\ncert_file = \"c.pem\"\n"),
            "mqtt.cert_file: cert_file and key_file go together");
  EXPECT_EQ(key_of("[mqtt]\nbroker = \"ssl://broker:8883\"\n"), "ok");
}

TEST(CollectorConfig, SharedGroupPrefixesEveryFilter) {
  auto reader = common::ConfigReader::parse_string(
      "[mqtt]\nshared_group = \"collectors\"\ntopics = [\"outpost/v1/+/+/data\"]\n"
      "catch_all = \"\"\n",
      "c.toml");
  ASSERT_TRUE(reader.ok());
  CollectorConfig config;
  ASSERT_TRUE(read_collector_config(reader.value(), config).ok());
  EXPECT_EQ(subscription_filters(config),
            (std::vector<std::string>{"$share/collectors/outpost/v1/+/+/data"}));
  EXPECT_EQ(journal_dir_of(config), "outpost.db.journal");
}

TEST(CollectorConfig, TheAnnotatedExampleIsTheDefaults) {
  auto reader = common::ConfigReader::load_file(OUTPOST_SOURCE_DIR "/docs/collector.toml");
  ASSERT_TRUE(reader.ok()) << reader.error().to_string();
  CollectorConfig from_file;
  auto s = read_collector_config(reader.value(), from_file);
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  const CollectorConfig defaults;
  EXPECT_EQ(from_file.broker, defaults.broker);
  EXPECT_EQ(from_file.kind, defaults.kind);
  EXPECT_EQ(from_file.dsn, defaults.dsn);
  EXPECT_EQ(from_file.password_file, defaults.password_file);
  EXPECT_EQ(from_file.topics, defaults.topics);
  EXPECT_EQ(from_file.commit_interval_us, defaults.commit_interval_us);
  EXPECT_EQ(from_file.commit_max_messages, defaults.commit_max_messages);
  EXPECT_EQ(from_file.retention_us, defaults.retention_us);
  EXPECT_EQ(from_file.offline_after_us, defaults.offline_after_us);
  EXPECT_EQ(from_file.metrics_listen, defaults.metrics_listen);
  EXPECT_EQ(from_file.queue_messages, defaults.queue_messages);
  EXPECT_EQ(from_file.webhook_max_pending, defaults.webhook_max_pending);
  EXPECT_EQ(from_file.webhook_stop_grace_us, defaults.webhook_stop_grace_us);
  EXPECT_TRUE(from_file.rules.empty());
  EXPECT_TRUE(from_file.webhooks.empty());
}

// The example's commented-out [rules.*], [webhooks.*] and [console] tables, uncommented, are
// valid.
TEST(CollectorConfig, TheCommentedRuleAndWebhookExamplesAreValid) {
  std::ifstream in(OUTPOST_SOURCE_DIR "/docs/collector.toml");
  ASSERT_TRUE(in) << "docs/collector.toml";
  const std::regex example(R"(^# (\[(rules|webhooks)\.[a-z_]+\]|\[console\]|[a-z_]+ = .*)$)");
  std::string text, line;
  while (std::getline(in, line)) {
    text += (std::regex_match(line, example) ? line.substr(2) : line) + "\n";
  }
  auto reader = common::ConfigReader::parse_string(text, "collector.toml");
  ASSERT_TRUE(reader.ok()) << reader.error().to_string();
  CollectorConfig config;
  auto s = read_collector_config(reader.value(), config);
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  EXPECT_EQ(config.console_listen, "127.0.0.1:8088");
  ASSERT_EQ(config.rules.size(), 2u);
  EXPECT_EQ(config.rules[0].name, "hot");
  EXPECT_EQ(config.rules[0].device, "gw-7");
  EXPECT_EQ(config.rules[0].hysteresis, 2.0);
  EXPECT_EQ(config.rules[1].direction, RuleDirection::kBelow);
  ASSERT_EQ(config.webhooks.size(), 1u);
  EXPECT_EQ(config.webhooks[0].name, "ops");
  EXPECT_EQ(config.webhooks[0].kinds.size(), 3u);
  EXPECT_EQ(config.webhooks[0].max_backoff_us, 60'000'000);
}

TEST(CollectorConfig, ABadRuleIsRefusedNamingItsKey) {
  auto reader = common::ConfigReader::parse_string(
      "[rules.hot]\nsensor = \"temp\"\nabove = 30\nbelow = 5\n", "c.toml");
  ASSERT_TRUE(reader.ok());
  CollectorConfig config;
  auto s = read_collector_config(reader.value(), config);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().to_string().find("rules.hot"), std::string::npos) << s.error().to_string();
}

}  // namespace
}  // namespace outpost::collector
