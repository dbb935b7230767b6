// The PostgreSQL sink against a real cluster: exactly-once by claimed keys, all-or-nothing
// transactions, transient errors and reconnection across a server restart, schema versions,
// daily partitions and retention by dropping them. What every backend shares (the Reader
// contract) is tested on both in reader_test.cpp.
#include "outpost/collector/postgres.h"

#include <gtest/gtest.h>

#include "outpost/common/clock.h"
#include "outpost/common/sample.h"
#include "support/postgres.h"

namespace outpost::collector {
namespace {

constexpr int64_t kSec = 1'000'000;
constexpr int64_t kDay = 86'400 * kSec;

class PostgresSinkTest : public test_support::PostgresSuite {
 protected:
  PostgresOptions options(uint64_t dlq_max = 1000) const {
    PostgresOptions o;
    o.dsn = dsn();
    o.dlq_max_entries = dlq_max;
    return o;
  }
  std::unique_ptr<PostgresSink> open(uint64_t dlq_max = 1000) {
    auto s = PostgresSink::open(options(dlq_max));
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
    return s.ok() ? std::move(s).value() : nullptr;
  }
  std::unique_ptr<PostgresReader> read() {
    auto r = PostgresReader::open(options());
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? std::move(r).value() : nullptr;
  }
  // 10 instants x 5 sensors = 50 readings, received at `received_us`.
  static BatchItem sample(std::string device, uint64_t seq,
                          int64_t received_us = common::wall_now_us()) {
    common::Envelope env = common::sample_reading_batch(device, received_us - 10 * kSec, 10, seq);
    env.seq = seq;
    env.epoch = 77;
    return BatchItem{"lab", std::move(env), received_us};
  }
  std::string sql(const std::string& text) { return cluster().sql(database(), text); }
  // A logs message of `n` records "line 0" .. at one a second from `start_us`.
  static BatchItem log_batch(std::string device, uint64_t seq, int64_t received_us,
                             int64_t start_us, int n) {
    common::LogBatch logs;
    for (int i = 0; i < n; ++i) {
      logs.records.push_back(common::LogRecord{
          start_us + i * kSec, common::Severity::kInfo, "line " + std::to_string(i), {}});
    }
    return BatchItem{"lab", common::Envelope{common::kSchemaVersion, device, 77, seq, logs},
                     received_us};
  }
  // A data message of one sensor, "v", with one reading per value, `step_us` apart.
  static BatchItem values(std::string device, uint64_t seq, int64_t received_us, int64_t start_us,
                          int64_t step_us, std::vector<common::Value> vs) {
    common::ReadingBatch b;
    b.sensor_names = {"v"};
    b.units = {"u"};
    for (std::size_t i = 0; i < vs.size(); ++i) {
      b.readings.push_back(
          common::Reading{0, start_us + static_cast<int64_t>(i) * step_us, std::move(vs[i])});
    }
    return BatchItem{"lab", common::Envelope{common::kSchemaVersion, device, 77, seq, b},
                     received_us};
  }
};

TEST_F(PostgresSinkTest, StoresEachBatchOnceHoweverOftenItArrives) {
  auto sink = open();
  ASSERT_NE(sink, nullptr);
  Transaction tx;
  tx.batches = {sample("gw-1", 1), sample("gw-1", 2), sample("gw-1", 1)};
  auto r = sink->commit(tx);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().outcomes,
            (std::vector{BatchOutcome::kStored, BatchOutcome::kStored, BatchOutcome::kDuplicate}));
  EXPECT_EQ(r.value().readings_stored, 100u);
  auto again = sink->commit(tx);  // the same messages delivered again later
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again.value().outcomes, std::vector(3, BatchOutcome::kDuplicate));
  EXPECT_EQ(again.value().readings_stored, 0u);
  // A second sink (another connection: a restarted collector) recognises them too.
  auto other = open();
  auto third = other->commit(tx);
  ASSERT_TRUE(third.ok()) << third.error().message;
  EXPECT_EQ(third.value().readings_stored, 0u);

  auto counts = read()->counts();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts.value()["readings"], 100u);
  EXPECT_EQ(counts.value()["batches"], 2u);
  auto devices = read()->devices();
  ASSERT_TRUE(devices.ok());
  ASSERT_EQ(devices.value().size(), 1u);
  EXPECT_EQ(devices.value()[0].readings, 100u);
  EXPECT_EQ(devices.value()[0].duplicates, 7u);
  EXPECT_EQ(devices.value()[0].epoch, 77u);
  // Exactly-once rests on the batch key alone: readings has no unique or B-tree index.
  EXPECT_EQ(sql("SELECT count(*) FROM pg_indexes WHERE tablename = 'readings' AND indexdef NOT "
                "LIKE '%USING brin%'"),
            "0");
}

TEST_F(PostgresSinkTest, ATransactionIsAllOrNothingAndARefusedValueIsPermanent) {
  auto sink = open();
  ASSERT_NE(sink, nullptr);
  Transaction tx;
  tx.batches = {sample("gw-1", 1), sample("gw-2", 1)};
  // PostgreSQL text cannot hold a NUL byte: the server refuses the whole COPY.
  std::get<common::ReadingBatch>(tx.batches[1].envelope.body).readings[3].value =
      std::string("a\0b", 3);
  tx.dlq.push_back(DlqItem{"t", "x", common::wall_now_us(), common::Reason::kNotDecodable, "d"});
  tx.journal = JournalPosition{3, 300};
  auto r = sink->commit(tx);
  ASSERT_FALSE(r.ok());
  EXPECT_FALSE(r.error().transient) << r.error().message;
  EXPECT_NE(r.error().message.find("SQLSTATE 22"), std::string::npos) << r.error().message;

  auto counts = read()->counts();
  ASSERT_TRUE(counts.ok());
  for (const char* table : {"readings", "batches", "dlq", "devices"}) {
    EXPECT_EQ(counts.value()[table], 0u) << table;
  }
  auto position = sink->journal_position();
  ASSERT_TRUE(position.ok());
  EXPECT_FALSE(position.value().has_value());

  // The good message alone is stored (what the storage loop's poison isolation relies on),
  // by the same sink: nothing it cached during the failed transaction is trusted.
  Transaction good;
  good.batches = {sample("gw-1", 1)};
  auto g = sink->commit(good);
  ASSERT_TRUE(g.ok()) << g.error().message;
  EXPECT_EQ(g.value().readings_stored, 50u);
  EXPECT_EQ(read()->counts().value()["readings"], 50u);
}

TEST_F(PostgresSinkTest, AStoppedServerIsTransientAndTheSinkReconnectsOnceItIsBack) {
  auto sink = open();
  ASSERT_NE(sink, nullptr);
  Transaction first;
  first.batches = {sample("gw-1", 1)};
  ASSERT_TRUE(sink->commit(first).ok());

  cluster().stop();
  Transaction second;
  second.batches = {sample("gw-1", 2)};
  auto down = sink->commit(second);
  ASSERT_FALSE(down.ok());
  EXPECT_TRUE(down.error().transient) << down.error().message;
  auto journal = sink->journal_position();
  ASSERT_FALSE(journal.ok());
  EXPECT_TRUE(journal.error().transient);

  cluster().start();
  auto up = sink->commit(second);
  ASSERT_TRUE(up.ok()) << up.error().message;
  EXPECT_EQ(up.value().outcomes, std::vector{BatchOutcome::kStored});

  // Killed with SIGKILL mid-life: the same.
  cluster().kill();
  Transaction third;
  third.batches = {sample("gw-1", 3), sample("gw-1", 2)};
  auto killed = sink->commit(third);
  ASSERT_FALSE(killed.ok());
  EXPECT_TRUE(killed.error().transient) << killed.error().message;
  cluster().start();
  auto back = sink->commit(third);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back.value().outcomes, (std::vector{BatchOutcome::kStored, BatchOutcome::kDuplicate}));
  EXPECT_EQ(read()->counts().value()["readings"], 150u);
}

TEST_F(PostgresSinkTest, AnUnreachableServerIsTransientAtOpenAndABadDsnIsNot) {
  PostgresOptions o = options();
  test_support::RefusingPort refusing;
  o.dsn = "host=127.0.0.1 port=" + std::to_string(refusing.port()) + " user=postgres";
  auto s = PostgresSink::open(o);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(s.error().transient) << s.error().message;
  EXPECT_NE(s.error().message.find("cannot connect"), std::string::npos) << s.error().message;

  o.dsn = "host=127.0.0.1 nosuchkey=1 password=hunter2";
  auto bad = PostgresSink::open(o);
  ASSERT_FALSE(bad.ok());
  EXPECT_FALSE(bad.error().transient) << bad.error().message;
  EXPECT_EQ(bad.error().message.find("hunter2"), std::string::npos) << bad.error().message;
}

TEST_F(PostgresSinkTest, TheSchemaIsVersionedAndANewerOneIsRefused) {
  ASSERT_NE(open(), nullptr);
  EXPECT_EQ(sql("SELECT max(version) FROM schema_version"), "4");
  ASSERT_NE(open(), nullptr);  // opening again migrates nothing
  EXPECT_EQ(sql("SELECT count(*) FROM schema_version"), "4");
  sql("INSERT INTO schema_version VALUES (99, 0)");
  auto s = PostgresSink::open(options());
  ASSERT_FALSE(s.ok());
  EXPECT_FALSE(s.error().transient);
  EXPECT_NE(s.error().message.find("schema version 99"), std::string::npos) << s.error().message;
}

TEST_F(PostgresSinkTest, PartitionsAreMadeAheadAndRetentionDropsWholeOnes) {
  auto sink = open();
  ASSERT_NE(sink, nullptr);
  // Today and the two days ahead, for readings and for logs.
  EXPECT_EQ(sql("SELECT count(*) FROM pg_inherits WHERE inhparent IN ('readings'::regclass, "
                "'logs'::regclass)"),
            "6");
  const int64_t now = common::wall_now_us();
  Transaction tx;
  tx.batches = {sample("gw-1", 1, now - 10 * kDay), sample("gw-1", 2, now - 9 * kDay),
                sample("gw-1", 3, now)};
  ASSERT_TRUE(sink->commit(tx).ok());  // the old days' partitions are made as needed
  EXPECT_EQ(read()->counts().value()["readings"], 150u);

  // Keys kept a retention period longer than rows: the rows go, the keys stay.
  auto removed = sink->expire(now - 5 * kDay, now - 5 * kDay, now - 20 * kDay, 50'000);
  ASSERT_TRUE(removed.ok()) << removed.error().message;
  EXPECT_EQ(removed.value(), 100u);
  auto counts = read()->counts().value();
  EXPECT_EQ(counts["readings"], 50u);
  EXPECT_EQ(counts["batches"], 3u);
  EXPECT_EQ(sql("SELECT count(*) FROM pg_inherits WHERE inhparent = 'readings'::regclass"), "3");
  // A late duplicate of an expired batch is still recognised by its key.
  Transaction late;
  late.batches = {sample("gw-1", 1, now)};
  auto l = sink->commit(late);
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l.value().outcomes, std::vector{BatchOutcome::kDuplicate});

  // Then the keys, in chunks: only those whose rows are gone.
  auto keys = sink->expire(now - 5 * kDay, now - 5 * kDay, now - 5 * kDay, 1);
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(keys.value(), 1u);
  ASSERT_TRUE(sink->expire(now - 5 * kDay, now - 5 * kDay, now - 5 * kDay, 10).ok());
  EXPECT_EQ(read()->counts().value()["batches"], 1u);
  std::vector<ReadingRow> rows;
  ASSERT_TRUE(read()->query_readings({}, [&](const ReadingRow& r) { rows.push_back(r); }).ok());
  ASSERT_EQ(rows.size(), 50u);
  EXPECT_EQ(rows.front().seq, 3u);
}

TEST_F(PostgresSinkTest, AReadingsTableTheOperatorConvertedIsLeftToItsOwnRetention) {
  ASSERT_NE(open(), nullptr);  // the schema
  // What a conversion to a TimescaleDB hypertable leaves, as far as the collector can tell: a
  // readings table it did not partition.
  sql("ALTER TABLE readings RENAME TO readings_native; CREATE TABLE readings (LIKE "
      "readings_native INCLUDING DEFAULTS); DROP TABLE readings_native CASCADE");
  auto sink = open();
  ASSERT_NE(sink, nullptr);
  const int64_t now = common::wall_now_us();
  Transaction tx;
  tx.batches = {sample("gw-1", 1, now - 10 * kDay), sample("gw-1", 2, now)};
  auto r = sink->commit(tx);
  ASSERT_TRUE(r.ok()) << r.error().message;
  auto removed = sink->expire(now - 5 * kDay, now - 5 * kDay, now - 5 * kDay, 1000);
  ASSERT_TRUE(removed.ok()) << removed.error().message;
  EXPECT_EQ(removed.value(), 0u);  // neither its rows nor their keys: not the collector's to drop
  EXPECT_EQ(read()->counts().value()["readings"], 100u);
  EXPECT_EQ(read()->counts().value()["batches"], 2u);
  EXPECT_EQ(sql("SELECT count(*) FROM pg_inherits WHERE inhparent = 'logs'::regclass"), "3");
}

TEST_F(PostgresSinkTest, DlqKeepsRawBytesIsBoundedAndReplayRemovesWhatItStored) {
  auto sink = open(/*dlq_max=*/3);
  ASSERT_NE(sink, nullptr);
  Transaction tx;
  const std::string bytes("\x00\xff\x01raw", 6);
  for (int i = 0; i < 5; ++i) {
    tx.dlq.push_back(DlqItem{"outpost/v1/lab/gw/data", bytes, common::wall_now_us() + i,
                             common::Reason::kNotDecodable, "truncated " + std::to_string(i)});
  }
  auto r = sink->commit(tx);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().dlq_dropped, 2u);
  auto rows = read()->dlq(DlqFilter{});
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows.value().size(), 3u);
  EXPECT_EQ(rows.value()[0].payload, bytes);
  EXPECT_EQ(rows.value()[0].detail, "truncated 2");

  sink->remove_dlq_on_next_commit({rows.value()[0].id});
  Transaction replay;
  replay.batches = {sample("gw-1", 1)};
  replay.journal = JournalPosition{4, 44};
  ASSERT_TRUE(sink->commit(replay).ok());
  EXPECT_EQ(read()->dlq(DlqFilter{}).value().size(), 2u);
  auto position = sink->journal_position();
  ASSERT_TRUE(position.ok());
  EXPECT_EQ(position.value(), (JournalPosition{4, 44}));

  DlqFilter one;
  one.limit = 1;
  auto purged = sink->purge_dlq(one);
  ASSERT_TRUE(purged.ok());
  EXPECT_EQ(purged.value(), 1u);
  EXPECT_EQ(read()->dlq(DlqFilter{}).value().size(), 1u);
}

// Shared mode: every sink writes the fleet feed in the transaction of what it describes, and
// leaves the presence a status gives to the leader.
TEST_F(PostgresSinkTest, InSharedModeTheSinkWritesTheFleetFeedWithItsCommit) {
  PostgresOptions o = options();
  o.fleet_feed = true;
  o.feed_sensors = {"temp"};
  auto opened = PostgresSink::open(o);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  auto& sink = *opened.value();
  Transaction tx;
  const int64_t now = common::wall_now_us();
  BatchItem hot{"lab", common::Envelope{common::kSchemaVersion, "gw-1", 77, 3, {}}, now};
  common::ReadingBatch b;
  b.sensor_names = {"temp", "rh"};
  b.readings = {common::Reading{0, now - 1, 31.5}, common::Reading{1, now - 1, 40.0},
                common::Reading{0, now, int64_t{29}}};
  hot.envelope.body = b;
  tx.batches = {sample("gw-1", 1, now), hot, sample("gw-1", 1, now)};
  StatusItem st{"lab", "gw-1", {}, now};
  st.status.state = common::DeviceState::kOnline;
  tx.statuses = {st};
  tx.dlq = {DlqItem{"outpost/v1/lab/gw-1/data", "x", now, common::Reason::kNotDecodable, "bad"},
            DlqItem{"webhook/h", "{}", now, common::Reason::kWebhookGaveUp, "gave up"}};
  ASSERT_TRUE(sink.commit(tx).ok());
  // Statuses first, then each batch (the duplicate too) with its watched readings, then the
  // DLQ entry classification made (not the webhook's).
  EXPECT_EQ(sql("SELECT string_agg(kind || ':' || seq || ':' || stored || ':' || sensor || ':' || "
                "value, ',' ORDER BY id) FROM fleet_feed"),
            "1:0:false::0,0:1:true::0,0:3:true::0,3:0:true:temp:31.5,3:0:true:temp:29,"
            "0:1:false::0,2:0:false::0");
  EXPECT_EQ(sql("SELECT state FROM devices"), "unknown");  // the leader's to decide
}

// Shared mode: each collector counts a device in its own device_counts row (no collector waits
// for another's), and readers add them up.
TEST_F(PostgresSinkTest, InSharedModeEachCollectorCountsInItsOwnRowAndReadersAddThemUp) {
  PostgresOptions o = options();
  o.fleet_feed = true;
  o.member = "c1";
  auto a = PostgresSink::open(o);
  ASSERT_TRUE(a.ok()) << a.error().message;
  o.member = "c2";
  auto b = PostgresSink::open(o);
  ASSERT_TRUE(b.ok()) << b.error().message;
  Transaction one, two;
  one.batches = {sample("gw-1", 1, 1'000), sample("gw-1", 2, 2'000)};
  two.batches = {sample("gw-1", 3, 3'000), sample("gw-1", 2, 2'500)};  // 2: a duplicate
  ASSERT_TRUE(a.value()->commit(one).ok());
  ASSERT_TRUE(b.value()->commit(two).ok());
  EXPECT_EQ(sql("SELECT string_agg(member || ':' || batches || ':' || duplicates || ':' || "
                "last_seen_us, ',' ORDER BY member) FROM device_counts"),
            "c1:2:0:2000,c2:1:1:3000");
  EXPECT_EQ(sql("SELECT batches FROM devices"), "0");  // the devices row is not written
  auto devices = read()->devices();
  ASSERT_TRUE(devices.ok()) << devices.error().message;
  ASSERT_EQ(devices.value().size(), 1u);
  const DeviceRow& d = devices.value()[0];
  EXPECT_EQ(d.batches, 3u);
  EXPECT_EQ(d.duplicates, 1u);
  EXPECT_EQ(d.readings, 150u);  // 3 batches of 50
  EXPECT_EQ(d.epoch, 77u);
  EXPECT_EQ(d.last_seen_us, 3'000);
  EXPECT_EQ(read()->counts().value().at("duplicates"), 1u);
}

TEST_F(PostgresSinkTest, OneFleetStoreLeadsAtATimeAndARoundCommitsOrLeavesItsRows) {
  ASSERT_NE(open(), nullptr);  // the schema
  PostgresFleetStore a(options()), b(options());
  auto la = a.try_lead();
  ASSERT_TRUE(la.ok()) << la.error().message;
  EXPECT_TRUE(la.value());
  EXPECT_FALSE(b.try_lead().value());
  EXPECT_TRUE(a.still_leading());
  EXPECT_FALSE(b.still_leading());

  sql("INSERT INTO fleet_feed (kind, site, device, epoch, seq, received_us, stored, state, "
      "sensor, value, time_us) VALUES (0, 'lab', 'gw-1', 7, 1, 100, true, 0, '', 0, 0), "
      "(0, 'lab', 'gw-1', 7, 3, 200, true, 0, '', 0, 0), "
      "(1, 'lab', 'gw-1', 0, 0, 50, false, 1, '', 0, 0), "
      "(0, 'lab', 'gw-1', 7, 4, 900, true, 0, '', 0, 0)");
  auto rows = a.take(100, 500);
  ASSERT_TRUE(rows.ok()) << rows.error().message;
  ASSERT_EQ(rows.value().size(), 3u);  // the one received at 900 is not settled yet
  a.abort();
  EXPECT_EQ(sql("SELECT count(*) FROM fleet_feed"), "4");

  rows = a.take(2, 500);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows.value().size(), 2u);  // the oldest ids
  FleetCommit c;
  EventItem online;
  online.device = "gw-1";
  online.event.kind = common::EventKind::kDeviceOnline;
  online.event.site = "lab";
  online.event.detail = "birth";
  c.events = {online};
  c.presence = {{"gw-1", Presence::kOnline}};
  SeqLineUpdate line;
  line.line = SeqLineState{"gw-1", "lab", 3, {7}, {}, {SeqHole{2, 2, 7, 200, 0}}};
  c.seq_lines = {line};
  auto committed = a.commit(c);
  ASSERT_TRUE(committed.ok()) << committed.error().message;
  EXPECT_EQ(sql("SELECT string_agg(seq::text, ',' ORDER BY id) FROM fleet_feed"), "0,4");
  EXPECT_EQ(sql("SELECT state FROM devices WHERE device = 'gw-1'"), "online");
  EXPECT_EQ(sql("SELECT count(*) FROM events WHERE kind = 'device_online'"), "1");
  auto restored = a.restore();
  ASSERT_TRUE(restored.ok());
  ASSERT_EQ(restored.value().size(), 1u);
  ASSERT_TRUE(restored.value()[0].seq_line);
  EXPECT_EQ(restored.value()[0].seq_line->max_seq, 3u);
  EXPECT_EQ(restored.value()[0].seq_line->holes.size(), 1u);

  // The lock's session killed (as when its collector dies): the lock goes with it.
  sql("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted "
      "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())");
  EXPECT_FALSE(a.take(10, 1000).ok());
  a.abort();
  EXPECT_FALSE(a.still_leading());
  EXPECT_TRUE(b.try_lead().value());
  auto again = a.try_lead();  // reconnects, but b holds the lock now
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_FALSE(again.value());
  b.resign();
  EXPECT_TRUE(a.try_lead().value());
}

// Version 3 adds each device's newest reading batch: a version 2 database gets it from the
// ledger (reading batches only, not logs or statuses). Version 4 adds the changed columns and
// their triggers: after it, a reader is given only the devices written since its last read.
TEST_F(PostgresSinkTest, MigratingFromVersion2FillsTheLastDataTimeAndTracksChanges) {
  {
    auto sink = open();
    ASSERT_NE(sink, nullptr);
    Transaction tx;
    tx.batches = {sample("gw-1", 1, 5'000), sample("gw-1", 2, 4'000),
                  log_batch("gw-1", 3, 9'000, 1'000, 2), log_batch("gw-2", 1, 9'500, 1'000, 1)};
    StatusItem st{"lab", "gw-1", {}, 10'000};
    tx.statuses = {st};
    ASSERT_TRUE(sink->commit(tx).ok());
  }
  // What a version 2 schema was.
  sql("DROP TRIGGER devices_changed ON devices; DROP TRIGGER device_counts_changed ON "
      "device_counts; DROP TRIGGER seq_lines_changed ON seq_lines; DROP FUNCTION outpost_touch; "
      "ALTER TABLE devices DROP COLUMN changed; ALTER TABLE device_counts DROP COLUMN changed; "
      "ALTER TABLE seq_lines DROP COLUMN changed");
  sql("ALTER TABLE devices DROP COLUMN last_data_us; ALTER TABLE device_counts DROP COLUMN "
      "last_data_us; DELETE FROM schema_version WHERE version >= 3");
  auto old = PostgresReader::open(options());
  ASSERT_FALSE(old.ok());
  EXPECT_NE(old.error().message.find("schema version 2 is older"), std::string::npos)
      << old.error().message;

  auto sink = open();
  ASSERT_NE(sink, nullptr);
  EXPECT_EQ(sql("SELECT max(version) FROM schema_version"), "4");
  auto devices = read()->devices();
  ASSERT_TRUE(devices.ok()) << devices.error().message;
  ASSERT_EQ(devices.value().size(), 2u);
  EXPECT_EQ(devices.value()[0].device, "gw-1");
  EXPECT_EQ(devices.value()[0].last_data_us, 5'000);
  EXPECT_EQ(devices.value()[0].last_seen_us, 10'000);
  EXPECT_EQ(devices.value()[1].last_data_us, 0);  // logs only

  auto reader = read();
  auto all = reader->fleet_changes(0);
  ASSERT_TRUE(all.ok()) << all.error().message;
  EXPECT_TRUE(all.value().complete);
  Transaction tx;
  tx.statuses = {StatusItem{"lab", "gw-2", {}, 20'000}};
  ASSERT_TRUE(sink->commit(tx).ok());
  auto changed = reader->fleet_changes(all.value().revision);
  ASSERT_TRUE(changed.ok()) << changed.error().message;
  EXPECT_FALSE(changed.value().complete);
  ASSERT_EQ(changed.value().devices.size(), 1u);
  EXPECT_EQ(changed.value().devices[0].device, "gw-2");
}

// The last data time is counted where last_seen is: the devices row alone, or each collector's
// own device_counts row in shared mode (readers take the newest); a duplicate does not move it.
TEST_F(PostgresSinkTest, TheLastDataTimeIsTheNewestStoredReadingBatchInEitherMode) {
  {
    auto single = open();
    ASSERT_NE(single, nullptr);
    Transaction tx;
    tx.batches = {sample("gw-1", 1, 2'000), log_batch("gw-1", 2, 3'000, 1'000, 1)};
    ASSERT_TRUE(single->commit(tx).ok());
    Transaction dup;
    dup.batches = {sample("gw-1", 1, 8'000)};
    ASSERT_TRUE(single->commit(dup).ok());
  }
  auto devices = read()->devices();
  ASSERT_TRUE(devices.ok());
  EXPECT_EQ(devices.value().at(0).last_data_us, 2'000);
  EXPECT_EQ(devices.value().at(0).last_seen_us, 8'000);

  PostgresOptions o = options();
  o.fleet_feed = true;
  o.member = "c1";
  auto a = PostgresSink::open(o);
  ASSERT_TRUE(a.ok()) << a.error().message;
  o.member = "c2";
  auto b = PostgresSink::open(o);
  ASSERT_TRUE(b.ok()) << b.error().message;
  Transaction one, two;
  one.batches = {sample("gw-1", 10, 6'000), sample("gw-1", 11, 9'000)};
  two.batches = {sample("gw-1", 12, 7'000), sample("gw-1", 11, 12'000),  // 11: a duplicate
                 log_batch("gw-1", 13, 13'000, 1'000, 1)};
  ASSERT_TRUE(a.value()->commit(one).ok());
  ASSERT_TRUE(b.value()->commit(two).ok());
  EXPECT_EQ(sql("SELECT string_agg(member || ':' || last_data_us || ':' || last_seen_us, ',' "
                "ORDER BY member) FROM device_counts"),
            "c1:9000:9000,c2:7000:13000");
  devices = read()->devices();
  ASSERT_TRUE(devices.ok());
  EXPECT_EQ(devices.value().at(0).last_data_us, 9'000);
  EXPECT_EQ(devices.value().at(0).last_seen_us, 13'000);
}

TEST_F(PostgresSinkTest, TheDlqIsFilteredPagedCountedAndPurgedByTopicText) {
  auto sink = open();
  ASSERT_NE(sink, nullptr);
  Transaction tx;
  const auto bad = common::Reason::kNotDecodable;
  const auto late = common::Reason::kStorageRejected;
  // Topics with LIKE's wildcards in them: they are plain characters.
  tx.dlq = {DlqItem{"a/100%/x", "1", 1'000, bad, ""}, DlqItem{"a/1000/x", "2", 1'500, bad, ""},
            DlqItem{"b/_x", "3", 2'500, late, ""}, DlqItem{"b/ax", "4", 3'000, bad, ""},
            DlqItem{"c/100%", "5", -1, late, ""}};
  ASSERT_TRUE(sink->commit(tx).ok());
  auto reader = read();
  ASSERT_NE(reader, nullptr);
  auto payloads = [&](const DlqFilter& f) {
    std::string out;
    auto r = reader->dlq(f);
    EXPECT_TRUE(r.ok()) << r.error().message;
    for (const DlqRow& d : r.value()) out += d.payload;
    return out;
  };
  DlqFilter percent;
  percent.topic_contains = "100%";
  EXPECT_EQ(payloads(percent), "15");
  DlqFilter under;
  under.topic_contains = "_x";
  EXPECT_EQ(payloads(under), "3");
  DlqFilter upper;
  upper.topic_contains = "A/";  // case-sensitive
  EXPECT_EQ(payloads(upper), "");
  DlqFilter page;
  page.newest_first = true;
  page.offset = 1;
  page.limit = 2;
  EXPECT_EQ(payloads(page), "43");
  page.limit = 0;
  EXPECT_EQ(payloads(page), "4321");
  page.topic_contains = "/";
  page.reason = bad;
  EXPECT_EQ(reader->dlq_count(page).value(), 3u);  // limit, offset and order ignored
  EXPECT_EQ(reader->dlq_topics().value(),
            (std::map<std::string, uint64_t>{
                {"a/100%/x", 1}, {"a/1000/x", 1}, {"b/_x", 1}, {"b/ax", 1}, {"c/100%", 1}}));

  auto h = reader->dlq_histogram(-5, 1'000);
  ASSERT_TRUE(h.ok()) << h.error().message;
  std::string buckets;
  for (const DlqBucket& b : h.value()) {
    buckets += std::to_string(b.start_us) + ":" + std::to_string(static_cast<int>(b.reason)) + ":" +
               std::to_string(b.count) + " ";
  }
  EXPECT_EQ(buckets, "-1000:12:1 1000:1:2 2000:12:1 3000:1:1 ");
  EXPECT_EQ(reader->dlq_histogram(1'500, 1'000).value().size(), 3u);
  EXPECT_FALSE(reader->dlq_histogram(0, 0).ok());

  auto purged = sink->purge_dlq(percent);
  ASSERT_TRUE(purged.ok()) << purged.error().message;
  EXPECT_EQ(purged.value(), 2u);
  EXPECT_EQ(payloads(DlqFilter{}), "234");
}

TEST_F(PostgresSinkTest, LatestLogsAreTheNewestRecordsInTheUsualOrderAcrossPages) {
  auto sink = open();
  ASSERT_NE(sink, nullptr);
  // More messages than one page of the ledger (256), three records each, and another device.
  Transaction tx;
  for (int i = 0; i < 300; ++i) {
    tx.batches.push_back(
        log_batch("gw-1", static_cast<uint64_t>(i + 1), 1'000'000, i * 10 * kSec, 3));
  }
  tx.batches.push_back(log_batch("gw-2", 1, 1'000'000, 9'000 * kSec, 3));
  ASSERT_TRUE(sink->commit(tx).ok());
  auto reader = read();
  auto seqs = [&](const LogQuery& q) {
    std::vector<std::string> out;
    auto s = reader->query_logs(q, [&](const LogRow& r) {
      out.push_back(std::to_string(r.seq) + "." + r.message.substr(5));
    });
    EXPECT_TRUE(s.ok()) << s.error().message;
    return out;
  };
  LogQuery q;
  q.device = "gw-1";
  q.limit = 4;
  q.latest = true;
  EXPECT_EQ(seqs(q), (std::vector<std::string>{"299.2", "300.0", "300.1", "300.2"}));
  q.latest = false;
  EXPECT_EQ(seqs(q), (std::vector<std::string>{"1.0", "1.1", "1.2", "2.0"}));
  q.limit = 0;
  q.latest = true;  // no limit: every record
  EXPECT_EQ(seqs(q).size(), 900u);
  q.limit = 5;
  q.contains = "LINE 1";
  q.until_us = 150 * 10 * kSec;
  // The last message the span reaches (seq 151, from 1500 s) has its "line 1" after it.
  EXPECT_EQ(seqs(q), (std::vector<std::string>{"146.1", "147.1", "148.1", "149.1", "150.1"}));
  LogQuery all;
  all.limit = 2;
  all.latest = true;
  EXPECT_EQ(seqs(all), (std::vector<std::string>{"1.1", "1.2"}));  // gw-2's, by time the newest
}

TEST_F(PostgresSinkTest, EventsAreFoundByDeviceAfterAnIdOldestOrNewest) {
  auto sink = open();
  ASSERT_NE(sink, nullptr);
  Transaction tx;
  for (int i = 0; i < 6; ++i) {
    EventItem e;
    e.device = i % 3 == 2 ? "" : (i % 2 ? "gw-2" : "gw-1");
    e.event.kind = common::EventKind::kDeviceOnline;
    e.event.time_us = i;
    e.event.detail = std::to_string(i);
    tx.events.push_back(e);
  }
  ASSERT_TRUE(sink->commit(tx).ok());
  auto reader = read();
  auto details = [&](const EventQuery& q) {
    std::string out;
    auto r = reader->find_events(q);
    EXPECT_TRUE(r.ok()) << r.error().message;
    for (const EventRow& e : r.value()) out += e.event.detail;
    return out;
  };
  EXPECT_EQ(details(EventQuery{}), "012345");
  EXPECT_EQ(details(EventQuery{.device = "gw-1"}), "04");  // 0, 4; 2 is fleet-wide
  EXPECT_EQ(details(EventQuery{.limit = 2}), "45");
  EXPECT_EQ(details(EventQuery{.limit = 2, .oldest = true}), "01");
  const int64_t first = reader->events(0).value().at(0).id;
  EXPECT_EQ(details(EventQuery{.after_id = first + 1, .limit = 2, .oldest = true}), "23");
  EXPECT_EQ(details(EventQuery{.device = "gw-2", .after_id = first + 1}), "3");
}

TEST_F(PostgresSinkTest, SensorsCountTheirReadingsAndASeriesIsBucketedInTheServer) {
  auto sink = open();
  ASSERT_NE(sink, nullptr);
  Transaction tx;
  // Sensor v of gw-1: 0..9 at 0..9 s, received on two days (two partitions); text left out.
  tx.batches = {
      values("gw-1", 1, 1'000, 0, kSec, {0.0, int64_t{1}, true, 3.5, int64_t{4}}),
      values("gw-1", 2, kDay + 5, 5 * kSec, kSec, {5.0, std::string("x"), 6.0, 7.0, 8.0, 9.0}),
      sample("gw-1", 3, 2'000), values("gw-2", 1, 1'000, 0, kSec, {100.0})};
  ASSERT_TRUE(sink->commit(tx).ok());
  auto reader = read();
  auto sensors = reader->sensors("gw-1");
  ASSERT_TRUE(sensors.ok()) << sensors.error().message;
  ASSERT_EQ(sensors.value().size(), 6u);  // v and sample's five
  const SensorRow& v = sensors.value().back();
  EXPECT_EQ(v.sensor, "v");
  EXPECT_EQ(v.unit, "u");
  EXPECT_EQ(v.readings, 11u);
  EXPECT_EQ(sensors.value().front().readings, 10u);
  EXPECT_TRUE(reader->sensors("nobody").value().empty());

  // [0 s, 9 s] in 4 buckets: width ceil(9'000'001 / 4) = 2'250'001 us.
  SeriesQuery q{"gw-1", "v", 0, 9 * kSec, 4};
  auto s = reader->series(q);
  ASSERT_TRUE(s.ok()) << s.error().message;
  ASSERT_EQ(s.value().size(), 4u);
  const int64_t w = 2'250'001;
  // By reading time: 0, 1, true | 3.5, 4 | 5.0 ("x" at 6 s left out) | 6.0, 7.0, 8.0 (at 7, 8
  // and 9 s; 9.0 at 10 s is after the span).
  EXPECT_EQ(s.value()[0].start_us, 0);
  EXPECT_EQ(s.value()[0].count, 3u);
  EXPECT_DOUBLE_EQ(s.value()[0].max, 1.0);
  EXPECT_EQ(s.value()[1].start_us, w);
  EXPECT_DOUBLE_EQ(s.value()[1].mean, 3.75);
  EXPECT_EQ(s.value()[2].start_us, 2 * w);
  EXPECT_EQ(s.value()[2].count, 1u);
  EXPECT_EQ(s.value()[3].start_us, 3 * w);
  EXPECT_EQ(s.value()[3].count, 3u);
  EXPECT_DOUBLE_EQ(s.value()[3].min, 6.0);
  EXPECT_DOUBLE_EQ(s.value()[3].max, 8.0);
  EXPECT_DOUBLE_EQ(s.value()[3].mean, 7.0);

  // Empty buckets are left out; a bounded span keeps only its readings.
  auto sparse = reader->series(SeriesQuery{"gw-1", "v", 0, 99 * kSec, 100});
  ASSERT_TRUE(sparse.ok());
  EXPECT_EQ(sparse.value().size(), 10u);
  auto one = reader->series(SeriesQuery{"gw-1", "v", 4 * kSec, 4 * kSec, 1});
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one.value().size(), 1u);
  EXPECT_EQ(one.value()[0].count, 1u);
  EXPECT_DOUBLE_EQ(one.value()[0].min, 4.0);
  // The whole int64 range, which no 64-bit width spans.
  auto everything = reader->series(SeriesQuery{"gw-1", "v", INT64_MIN, INT64_MAX, 1});
  ASSERT_TRUE(everything.ok()) << everything.error().message;
  ASSERT_EQ(everything.value().size(), 1u);
  EXPECT_EQ(everything.value()[0].start_us, INT64_MIN);
  EXPECT_EQ(everything.value()[0].count, 10u);

  EXPECT_FALSE(reader->series(SeriesQuery{"gw-1", "v", 0, 10, 0}).ok());
  EXPECT_FALSE(reader->series(SeriesQuery{"gw-1", "v", 0, 10, 10'001}).ok());
  EXPECT_FALSE(reader->series(SeriesQuery{"gw-1", "v", 10, 9, 1}).ok());
}

}  // namespace
}  // namespace outpost::collector
