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

// The collector's storage thread in small: every message goes to the FleetTracker first, its
// events into the same transaction.
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
