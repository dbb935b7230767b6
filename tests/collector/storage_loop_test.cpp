// The collector's storage loop over fakes: batching, retry, isolation, shutdown, hand-off.
#include "outpost/collector/storage_loop.h"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
#include <span>
#include <thread>

#include "support/fake_collector_ports.h"
#include "support/fake_sink.h"

namespace outpost::collector {
namespace {

using namespace std::chrono_literals;
using common::EventKind;
using common::Reason;
using test_support::FakeCollectorPublisher;
using test_support::FakeEventForwarder;
using test_support::FakeJournalRelease;
using test_support::FakeSink;
using test_support::FakeStorageClock;
using test_support::FakeWorkSource;

constexpr int64_t kDayUs = 86'400'000'000;

JournalPosition at(uint64_t offset) { return JournalPosition{1, offset}; }

uint64_t reason_count(const Counters& c, Reason r) {
  return c.dlq_by_reason[static_cast<std::size_t>(r) % 16].load();
}

std::vector<EventKind> kinds(const std::vector<EventItem>& events) {
  std::vector<EventKind> out;
  for (const auto& e : events) out.push_back(e.event.kind);
  return out;
}

// Everything a StorageLoop runs over, faked; small batches (3 messages, 100 ms).
struct Harness {
  CollectorConfig config;
  FakeSink sink;
  FakeStorageClock clock;
  Counters counters;
  FakeJournalRelease journal;
  FakeEventForwarder webhooks;
  FakeCollectorPublisher publisher;
  FakeWorkSource source{clock};
  std::unique_ptr<StorageLoop> loop;

  Harness() {
    config.commit_max_messages = 3;
    config.commit_interval_us = 100'000;
    config.retention_us = 0;
  }

  StorageLoop& make(bool attach_publisher = true) {
    return make(FleetTracker(FleetOptions{}), attach_publisher);
  }
  StorageLoop& make(FleetTracker fleet, bool attach_publisher = true) {
    loop = std::make_unique<StorageLoop>(config, std::move(fleet), sink, clock, counters, &journal,
                                         &webhooks);
    if (attach_publisher) loop->attach_publisher(publisher);
    return *loop;
  }

  StorageWork reading(std::string device, uint64_t seq, std::optional<JournalPosition> pos = {},
                      double value = 20.0) {
    BatchItem b;
    b.site = "lab";
    common::ReadingBatch batch;
    batch.sensor_names = {"temp"};
    batch.readings = {common::Reading{0, clock.wall_us() - 20'000, value}};
    b.envelope = common::Envelope{common::kSchemaVersion, std::move(device), 7, seq, batch};
    b.received_us = clock.wall_us();
    return StorageWork{std::move(b), pos};
  }

  StorageWork status(std::string device, common::DeviceState state,
                     std::optional<JournalPosition> pos = {}) {
    StatusItem s;
    s.site = "lab";
    s.device = std::move(device);
    s.status.state = state;
    s.received_us = clock.wall_us();
    return StorageWork{std::move(s), pos};
  }

  StorageWork dead(std::optional<JournalPosition> pos = {}) {
    DlqItem d;
    d.topic = "outpost/v1/lab/gw-9/data";
    d.payload = "\xff\xff";
    d.received_us = clock.wall_us();
    d.reason = Reason::kNotDecodable;
    d.detail = "truncated";
    return StorageWork{std::move(d), pos};
  }
};

TEST(StorageLoop, CommitsOnceTheTransactionHoldsCommitMaxMessages) {
  Harness h;
  auto& loop = h.make();
  loop.add(h.reading("gw-1", 1));
  loop.add(h.reading("gw-1", 2));
  EXPECT_TRUE(h.sink.committed.empty());
  loop.add(h.dead());
  ASSERT_EQ(h.sink.committed.size(), 1u);
  EXPECT_EQ(h.sink.committed[0].batches.size(), 2u);
  EXPECT_EQ(h.sink.committed[0].dlq.size(), 1u);
  EXPECT_EQ(h.counters.commits.load(), 1u);
  EXPECT_EQ(h.counters.commit_messages_total.load(), 3u);
  EXPECT_EQ(reason_count(h.counters, Reason::kNotDecodable), 1u);
}

TEST(StorageLoop, OpenTransactionCommitsCommitIntervalAfterItsFirstMessage) {
  Harness h;
  auto& loop = h.make();
  const auto start = h.clock.steady();
  std::vector<std::chrono::steady_clock::duration> commit_times;
  h.sink.on_commit = [&](const Transaction&) { commit_times.push_back(h.clock.steady() - start); };
  h.source.message(h.reading("gw-1", 1), 10ms).message(h.reading("gw-1", 2), 40ms).wait(500ms);
  loop.run(h.source);
  ASSERT_EQ(commit_times.size(), 1u);
  EXPECT_EQ(commit_times[0], 110ms);  // opened at 10 ms, closed 100 ms later
  EXPECT_EQ(h.sink.batch_seqs(), (std::vector<uint64_t>{1, 2}));
}

TEST(StorageLoop, MessagesBeyondCommitMaxMessagesGoToTheNextTransaction) {
  Harness h;
  auto& loop = h.make();
  for (uint64_t seq = 1; seq <= 5; ++seq) h.source.message(h.reading("gw-1", seq));
  loop.run(h.source);
  ASSERT_EQ(h.sink.committed.size(), 2u);
  EXPECT_EQ(h.sink.committed[0].batches.size(), 3u);
  EXPECT_EQ(h.sink.committed[1].batches.size(), 2u);
  EXPECT_EQ(h.counters.batches_stored.load(), 5u);
}

TEST(StorageLoop, TransientFailuresAreRetriedWithDoublingBackoffUntilStored) {
  Harness h;
  auto& loop = h.make();
  h.sink.transient_failures = 4;
  loop.add(h.reading("gw-1", 1, at(10)));
  loop.flush();
  EXPECT_EQ(h.sink.attempts.load(), 5);
  EXPECT_EQ(h.clock.sleeps(), (std::vector<std::chrono::milliseconds>{50ms, 100ms, 200ms, 400ms}));
  EXPECT_EQ(h.sink.batch_seqs(), (std::vector<uint64_t>{1}));
  EXPECT_EQ(h.counters.commit_failures.load(), 4u);
  EXPECT_EQ(h.counters.commits.load(), 1u);
  EXPECT_EQ(h.counters.batches_stored.load(), 1u);
  EXPECT_EQ(h.journal.released, (std::vector{at(10)}));
}

TEST(StorageLoop, RetryBackoffDoublesUpToFiveSeconds) {
  Harness h;
  auto& loop = h.make();
  h.sink.transient_failures = 10;
  loop.add(h.reading("gw-1", 1));
  loop.flush();
  EXPECT_EQ(h.clock.sleeps(),
            (std::vector<std::chrono::milliseconds>{50ms, 100ms, 200ms, 400ms, 800ms, 1600ms,
                                                    3200ms, 5000ms, 5000ms, 5000ms}));
  EXPECT_EQ(h.counters.batches_stored.load(), 1u);
}

TEST(StorageLoop, PermanentFailureDeadLettersThePoisonBatchStoresTheRestReleasesJournalLast) {
  Harness h;
  auto& loop = h.make();
  h.sink.poison = FakeSink::Key{"gw-1", 7, 2};
  std::size_t commits_at_release = 0;
  std::set<FakeSink::Key> stored_at_release;
  h.journal.on_release = [&](JournalPosition) {
    commits_at_release = h.sink.committed.size();
    stored_at_release = h.sink.stored;
  };
  const StorageWork poison = h.reading("gw-1", 2, at(2));
  loop.add(h.reading("gw-1", 1, at(1)));
  loop.add(h.reading("gw-1", 2, at(2)));
  loop.add(h.reading("gw-1", 3, at(3)));  // the third: commits

  EXPECT_EQ(h.sink.batch_seqs(), (std::vector<uint64_t>{1, 3}));
  const auto dlq = h.sink.dlq();
  ASSERT_EQ(dlq.size(), 1u);
  EXPECT_EQ(dlq[0].reason, Reason::kStorageRejected);
  EXPECT_EQ(dlq[0].topic, "outpost/v1/lab/gw-1/data");
  EXPECT_EQ(dlq[0].detail, "the store refused it: CHECK constraint failed");
  auto payload = common::decode(
      std::span(reinterpret_cast<const uint8_t*>(dlq[0].payload.data()), dlq[0].payload.size()));
  ASSERT_TRUE(payload.ok());
  EXPECT_EQ(payload.value(), std::get<BatchItem>(poison.item).envelope);
  // The position is released once, after everything before it was stored.
  EXPECT_EQ(h.journal.released, (std::vector{at(3)}));
  EXPECT_EQ(commits_at_release, h.sink.committed.size());
  EXPECT_EQ(stored_at_release.size(), 2u);
  EXPECT_EQ(h.sink.committed.back().journal, at(3));
  EXPECT_EQ(reason_count(h.counters, Reason::kStorageRejected), 1u);
  EXPECT_EQ(h.counters.batches_stored.load(), 2u);
  // Acks for what was stored, none for the poison.
  std::vector<common::SeqRange> acked;
  for (const auto* s : h.publisher.on_suffix("/ack")) {
    for (const auto& r : std::get<common::CommitAck>(s->envelope.body).committed) {
      acked.push_back(r);
    }
  }
  EXPECT_EQ(acked, (std::vector<common::SeqRange>{{7, 1, 1}, {7, 3, 3}}));
}

TEST(StorageLoop, PermanentFailureOnAStatusDeadLettersThatStatusOnly) {
  Harness h;
  auto& loop = h.make();
  h.sink.poison_status = "gw-2";
  loop.add(h.status("gw-1", common::DeviceState::kOnline));
  loop.add(h.status("gw-2", common::DeviceState::kOnline, at(5)));
  loop.flush();
  const auto dlq = h.sink.dlq();
  ASSERT_EQ(dlq.size(), 1u);
  EXPECT_EQ(dlq[0].reason, Reason::kStorageRejected);
  EXPECT_EQ(dlq[0].topic, "outpost/v1/lab/gw-2/status");
  std::vector<std::string> statuses;
  for (const auto& tx : h.sink.committed) {
    for (const auto& s : tx.statuses) statuses.push_back(s.device);
  }
  EXPECT_EQ(statuses, (std::vector<std::string>{"gw-1"}));
  EXPECT_EQ(h.journal.released, (std::vector{at(5)}));
  EXPECT_EQ(h.counters.statuses.load(), 2u);
}

TEST(StorageLoop, PermanentFailureWithNoBatchOrStatusToIsolateIsRetriedUntilItPasses) {
  Harness h;
  auto& loop = h.make();
  h.sink.permanent_failures = 5;
  loop.add(h.dead(at(4)));  // no batch or status: nothing to isolate, retried until it passes
  loop.flush();
  EXPECT_EQ(h.sink.attempts.load(), 6);
  EXPECT_EQ(h.sink.dlq().size(), 1u);
  EXPECT_EQ(reason_count(h.counters, Reason::kStorageRejected), 0u);
}

TEST(StorageLoop, ShutdownCommitsTheQueuedWorkAndStopsTheWebhooks) {
  Harness h;
  auto& loop = h.make();
  h.source.message(h.reading("gw-1", 1, at(1))).message(h.reading("gw-1", 2, at(2)));
  loop.run(h.source);  // the source drains after the second message
  EXPECT_EQ(h.sink.batch_seqs(), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(h.sink.committed.size(), 1u);
  EXPECT_EQ(h.journal.released, (std::vector{at(2)}));
  EXPECT_EQ(h.webhooks.stops, 1);
}

TEST(StorageLoop, ShutdownWhileTheStoreKeepsFailingGivesUpAndKeepsTheJournal) {
  Harness h;
  auto& loop = h.make();
  h.sink.always_fail = true;
  loop.begin_shutdown();
  loop.add(h.reading("gw-1", 1, at(1)));
  loop.flush();
  EXPECT_EQ(h.sink.attempts.load(), StorageLoop::kShutdownAttempts);
  EXPECT_TRUE(h.sink.committed.empty());
  EXPECT_TRUE(h.journal.released.empty());
  EXPECT_FALSE(h.sink.position.has_value());
  EXPECT_EQ(h.counters.commits_given_up.load(), 1u);
  EXPECT_TRUE(h.publisher.sent.empty());
  // The loop is usable again: the next commit starts from an empty transaction.
  h.sink.always_fail = false;
  loop.add(h.reading("gw-1", 2, at(2)));
  loop.flush();
  EXPECT_EQ(h.sink.batch_seqs(), (std::vector<uint64_t>{2}));
}

TEST(StorageLoop, ShutdownRequestedFromAnotherThreadEndsACommitThatKeepsFailing) {
  Harness h;
  auto& loop = h.make();
  h.sink.always_fail = true;
  h.sink.stall();
  loop.add(h.reading("gw-1", 1, at(1)));
  std::thread storage([&] { loop.flush(); });
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!h.sink.blocked() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);  // polling a condition with a deadline
  }
  ASSERT_TRUE(h.sink.blocked());
  loop.begin_shutdown();
  h.sink.release();
  storage.join();
  EXPECT_EQ(h.sink.attempts.load(), StorageLoop::kShutdownAttempts);
  EXPECT_EQ(h.counters.commits_given_up.load(), 1u);
  EXPECT_TRUE(h.journal.released.empty());
}

TEST(StorageLoop, ReSentBatchAlreadyStoredIsAckedAgain) {
  Harness h;
  auto& loop = h.make();
  h.sink.stored.insert(FakeSink::Key{"gw-1", 7, 5});
  loop.add(h.reading("gw-1", 5));
  loop.flush();
  const auto acks = h.publisher.on_suffix("/ack");
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0]->topic, "outpost/v1/lab/gw-1/ack");
  EXPECT_EQ(std::get<common::CommitAck>(acks[0]->envelope.body).committed,
            (std::vector<common::SeqRange>{{7, 5, 5}}));
  EXPECT_EQ(h.counters.duplicates.load(), 1u);
  EXPECT_EQ(h.counters.batches_stored.load(), 0u);
  EXPECT_EQ(h.counters.acks_published.load(), 1u);
}

TEST(StorageLoop, AcksMergeEachDevicesSeqsIntoRanges) {
  Harness h;
  h.config.commit_max_messages = 100;
  auto& loop = h.make();
  for (uint64_t seq : {1, 2, 3, 5}) loop.add(h.reading("gw-1", seq));
  loop.add(h.reading("gw-2", 9));
  loop.flush();
  const auto acks = h.publisher.on_suffix("/ack");
  ASSERT_EQ(acks.size(), 2u);
  std::map<std::string, std::vector<common::SeqRange>> by_device;
  for (const auto* a : acks) {
    by_device[a->envelope.device_id] = std::get<common::CommitAck>(a->envelope.body).committed;
  }
  EXPECT_EQ(by_device["gw-1"], (std::vector<common::SeqRange>{{7, 1, 3}, {7, 5, 5}}));
  EXPECT_EQ(by_device["gw-2"], (std::vector<common::SeqRange>{{7, 9, 9}}));
  EXPECT_EQ(h.counters.acks_published.load(), 2u);
}

TEST(StorageLoop, EventsArePublishedAndPostedToWebhooksOnlyAfterTheirCommit) {
  Harness h;
  auto& loop = h.make();
  h.sink.transient_failures = 2;
  std::vector<std::size_t> handed_off_during_commit;
  h.sink.on_commit = [&](const Transaction&) {
    handed_off_during_commit.push_back(h.publisher.sent.size() + h.webhooks.posted.size());
  };
  loop.add(h.status("gw-1", common::DeviceState::kOnline));
  loop.flush();
  EXPECT_EQ(handed_off_during_commit, (std::vector<std::size_t>{0, 0, 0}));
  ASSERT_EQ(h.sink.committed.size(), 1u);
  EXPECT_EQ(kinds(h.sink.committed[0].events), (std::vector{EventKind::kDeviceOnline}));
  const auto events = h.publisher.on_suffix("/lab/gw-1");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]->topic, "outpost/v1/events/device_online/lab/gw-1");
  EXPECT_EQ(events[0]->envelope.device_id, "gw-1");
  EXPECT_EQ(std::get<common::Event>(events[0]->envelope.body).kind, EventKind::kDeviceOnline);
  ASSERT_EQ(h.webhooks.posted.size(), 1u);
  EXPECT_EQ(h.webhooks.posted[0].device, "gw-1");
  EXPECT_EQ(h.counters.events_published.load(), 1u);
  EXPECT_EQ(h.counters.events_by_kind[static_cast<std::size_t>(EventKind::kDeviceOnline)].load(),
            1u);
}

TEST(StorageLoop, PublisherDownCountsSkippedAcksAndEventsAndStillStores) {
  Harness h;
  auto& loop = h.make();
  h.publisher.up = false;
  loop.add(h.status("gw-1", common::DeviceState::kOnline));
  loop.add(h.reading("gw-1", 1, at(1)));
  loop.flush();
  EXPECT_EQ(h.counters.batches_stored.load(), 1u);
  EXPECT_EQ(h.counters.publish_skipped.load(), 2u);  // the ack and the online event
  EXPECT_EQ(h.counters.acks_published.load(), 0u);
  EXPECT_EQ(h.counters.events_published.load(), 0u);
  EXPECT_EQ(h.webhooks.posted.size(), 1u);  // webhooks do not depend on MQTT
  EXPECT_EQ(h.journal.released, (std::vector{at(1)}));
}

TEST(StorageLoop, PublishThatFailsOnAConnectedPublisherIsCountedSkipped) {
  Harness h;
  auto& loop = h.make();
  h.publisher.fail = true;
  loop.add(h.reading("gw-1", 1));
  loop.flush();
  EXPECT_EQ(h.publisher.refused, 1);
  EXPECT_EQ(h.counters.publish_skipped.load(), 1u);
  EXPECT_EQ(h.counters.acks_published.load(), 0u);
}

TEST(StorageLoop, NothingIsPublishedBeforeAPublisherIsAttached) {
  Harness h;
  auto& loop = h.make(/*attach_publisher=*/false);  // as during the journal replay at start
  loop.add(h.status("gw-1", common::DeviceState::kOnline));
  loop.add(h.reading("gw-1", 1));
  loop.flush();
  EXPECT_EQ(h.counters.batches_stored.load(), 1u);
  EXPECT_EQ(h.counters.publish_skipped.load(), 0u);
  EXPECT_EQ(h.webhooks.posted.size(), 1u);
}

TEST(StorageLoop, RulesRunOnStoredReadingsOnlyAndTheirEventsCommitInATransactionOfTheirOwn) {
  Harness h;
  h.config.rules = {ThresholdRule{"hot", "temp", "", RuleDirection::kAbove, 30.0, 1.0}};
  auto& loop = h.make();
  h.sink.stored.insert(FakeSink::Key{"gw-1", 7, 1});
  loop.add(h.reading("gw-1", 1, {}, 35.0));  // a duplicate: not evaluated
  loop.flush();
  EXPECT_TRUE(h.sink.events().empty());
  EXPECT_EQ(h.counters.rules_tripped.load(), 0u);
  loop.add(h.reading("gw-1", 2, at(2), 35.0));
  loop.flush();
  ASSERT_EQ(h.sink.committed.size(), 3u);
  EXPECT_TRUE(h.sink.committed[2].batches.empty());
  EXPECT_EQ(kinds(h.sink.committed[2].events), (std::vector{EventKind::kThresholdAbove}));
  EXPECT_EQ(h.counters.rules_tripped.load(), 1u);
  EXPECT_EQ(h.publisher.on_suffix("/threshold_above/lab/gw-1").size(), 1u);
  ASSERT_EQ(h.webhooks.posted.size(), 1u);
  EXPECT_EQ(h.webhooks.posted[0].event.kind, EventKind::kThresholdAbove);
}

TEST(StorageLoop, WebhookGiveUpsAreStoredInTheDlqAtTheNextTick) {
  Harness h;
  auto& loop = h.make();
  h.source
      .then([&] {
        loop.webhook_gave_up(WebhookGaveUp{"ops", "http://127.0.0.1:1/hook", "{\"kind\":1}", 3,
                                           "HTTP 503 Service Unavailable"});
      })
      .wait(1500ms);
  loop.run(h.source);
  const auto dlq = h.sink.dlq();
  ASSERT_EQ(dlq.size(), 1u);
  EXPECT_EQ(dlq[0].topic, "webhook/ops");
  EXPECT_EQ(dlq[0].reason, Reason::kWebhookGaveUp);
  EXPECT_EQ(dlq[0].payload, "{\"kind\":1}");
  EXPECT_EQ(dlq[0].detail,
            "webhook ops (http://127.0.0.1:1/hook) gave up after 3 attempts: HTTP 503 Service "
            "Unavailable");
  EXPECT_EQ(reason_count(h.counters, Reason::kWebhookGaveUp), 1u);
  EXPECT_EQ(h.counters.dlq.load(), 1u);
}

TEST(StorageLoop, WebhookDeliveriesHandedBackAtStopAreStored) {
  Harness h;
  auto& loop = h.make();
  h.webhooks.on_stop = [&] {
    loop.webhook_gave_up(
        WebhookGaveUp{"ops", "http://127.0.0.1:1/hook", "{}", 1, "collector stopping"});
  };
  loop.run(h.source);
  const auto dlq = h.sink.dlq();
  ASSERT_EQ(dlq.size(), 1u);
  EXPECT_EQ(dlq[0].detail,
            "webhook ops (http://127.0.0.1:1/hook) gave up after 1 attempt: collector stopping");
}

TEST(StorageLoop, FleetTickCommitsGapEventsInTheirOwnTransaction) {
  Harness h;
  auto& loop = h.make();
  h.source.message(h.reading("gw-1", 1)).message(h.reading("gw-1", 3)).wait(12s);
  loop.run(h.source);
  const auto events = h.sink.events();
  ASSERT_EQ(kinds(events), (std::vector{EventKind::kDataGap}));
  EXPECT_EQ(events[0].device, "gw-1");
  EXPECT_EQ(h.publisher.on_suffix("/data_gap/lab/gw-1").size(), 1u);
  EXPECT_EQ(h.sink.committed.size(), 2u);  // the batches, then the gap
}

TEST(StorageLoop, LateBatchResolvesItsReportedGapInTheTransactionThatStoresIt) {
  Harness h;
  auto& loop = h.make();
  h.source.message(h.reading("gw-1", 1)).message(h.reading("gw-1", 3)).wait(12s);
  h.source.message(h.reading("gw-1", 2)).wait(1s);
  loop.run(h.source);
  ASSERT_EQ(kinds(h.sink.events()),
            (std::vector{EventKind::kDataGap, EventKind::kDataGapResolved}));
  const Transaction& last = h.sink.committed.back();
  ASSERT_EQ(last.batches.size(), 1u);
  EXPECT_EQ(last.batches[0].envelope.seq, 2u);
  ASSERT_EQ(kinds(last.events), (std::vector{EventKind::kDataGapResolved}));
  EXPECT_EQ(last.events[0].event.detail, "seq 2 arrived after it was reported missing (1 message)");
  ASSERT_EQ(last.seq_lines.size(), 1u);
  EXPECT_EQ(last.seq_lines[0].removed, (std::vector<uint64_t>{2}));
  EXPECT_TRUE(h.sink.seq_lines.at("gw-1").holes.empty());
  EXPECT_EQ(h.sink.seq_lines.at("gw-1").max_seq, 3u);
  EXPECT_EQ(h.publisher.on_suffix("/data_gap_resolved/lab/gw-1").size(), 1u);
}

// A collector restart in the middle of a hole, with re-sends of batches stored before it and
// newer batches arriving together after it: the hole is still reported, and only the hole.
TEST(StorageLoop, RestartFromTheStoredLinesReportsTheOpenHoleAndNoStoredBatch) {
  Harness before;
  auto& first = before.make();
  for (uint64_t seq : {1, 2, 3, 5}) before.source.message(before.reading("gw-1", seq));
  before.source.wait(2s);  // killed before the grace ran out: no gap yet
  first.run(before.source);
  ASSERT_TRUE(before.sink.events().empty());

  Harness after;  // the same store, a new process
  after.sink.stored = before.sink.stored;
  after.sink.seq_lines = before.sink.seq_lines;
  FleetTracker fleet(FleetOptions{});
  fleet.remember("lab", "gw-1", 7, Presence::kOnline, before.clock.wall_us());
  fleet.restore(after.sink.seq_lines.at("gw-1"));
  auto& second = after.make(std::move(fleet));
  for (uint64_t seq : {2, 3, 6, 7}) after.source.message(after.reading("gw-1", seq));
  after.source.wait(12s);
  second.run(after.source);
  const auto events = after.sink.events();
  ASSERT_EQ(kinds(events), (std::vector{EventKind::kDataGap}));
  EXPECT_EQ(events[0].event.detail, "epoch 7: seq 4 missing (1 message)");
  EXPECT_EQ(after.counters.duplicates.load(), 2u);
}

TEST(StorageLoop, RetentionRunsInBoundedChunksUntilNothingIsLeft) {
  Harness h;
  h.config.retention_us = kDayUs;
  h.config.dlq_max_age_us = 2 * kDayUs;
  auto& loop = h.make();
  h.sink.expirable_rows = 120'000;
  h.source.wait(14s);
  const int64_t start_wall = h.clock.wall_us();
  loop.run(h.source);
  // First run 10 s in; 200 ms later (at the next wake-up) for as long as chunks come back full.
  ASSERT_EQ(h.sink.expire_calls.size(), 3u);
  for (const auto& c : h.sink.expire_calls) {
    EXPECT_EQ(c.max_rows, StorageLoop::kRetentionChunkRows);
  }
  const auto& first = h.sink.expire_calls[0];
  const int64_t wall = start_wall + 10'000'000;
  EXPECT_EQ(first.cutoff_us, wall - kDayUs);
  EXPECT_EQ(first.key_cutoff_us, wall - 2 * kDayUs);
  EXPECT_EQ(first.dlq_cutoff_us, wall - 2 * kDayUs);
  EXPECT_EQ(h.counters.expired_rows.load(), 120'000u);
  EXPECT_EQ(h.sink.expirable_rows, 0u);
}

TEST(StorageLoop, RetentionWaitsForTheOpenTransactionToCommit) {
  Harness h;
  h.config.retention_us = kDayUs;
  h.config.commit_interval_us = 5'000'000;
  auto& loop = h.make();
  h.sink.expirable_rows = 10;
  std::size_t commits_before_expire = 99;
  h.source.message(h.reading("gw-1", 1), 9500ms).wait(6s);
  h.sink.on_commit = [&](const Transaction&) {
    commits_before_expire = h.sink.expire_calls.size();
  };
  loop.run(h.source);
  ASSERT_EQ(h.sink.expire_calls.size(), 1u);
  EXPECT_EQ(commits_before_expire, 0u);  // the commit at 14.5 s came before the expire
}

TEST(StorageLoop, RetentionFailureIsCountedAndRetriedAMinuteLater) {
  Harness h;
  h.config.retention_us = kDayUs;
  auto& loop = h.make();
  h.sink.fail_expire = true;
  h.source.wait(71s);
  loop.run(h.source);
  EXPECT_EQ(h.sink.expire_calls.size(), 2u);  // at 10 s and at 70 s
  EXPECT_EQ(h.counters.retention_failures.load(), 2u);
  EXPECT_EQ(h.counters.expired_rows.load(), 0u);
}

TEST(StorageLoop, JournalPositionIsReleasedOnlyAfterASuccessfulCommit) {
  Harness h;
  auto& loop = h.make();
  h.sink.transient_failures = 2;
  std::vector<int> attempts_at_release;
  h.journal.on_release = [&](JournalPosition) { attempts_at_release.push_back(h.sink.attempts); };
  loop.add(h.reading("gw-1", 1, at(1)));
  loop.add(h.reading("gw-1", 2));  // its journal write failed: the position stays at 1
  loop.flush();
  EXPECT_EQ(attempts_at_release, (std::vector<int>{3}));
  EXPECT_EQ(h.journal.released, (std::vector{at(1)}));
  EXPECT_EQ(h.sink.position, at(1));
}

TEST(StorageLoop, CommitTimeIsMeasuredOnTheInjectedClock) {
  Harness h;
  auto& loop = h.make();
  h.sink.on_commit = [&](const Transaction&) { h.clock.advance(30ms); };  // a slow store
  loop.add(h.reading("gw-1", 1));
  loop.flush();
  EXPECT_EQ(h.counters.commit_us_total.load(), 30'000u);
}

TEST(StorageLoop, ReadingLatencyIsObservedForStoredReadings) {
  Harness h;
  auto& loop = h.make();
  loop.add(h.reading("gw-1", 1));  // read 20 ms before now: the 0.025 s bucket
  loop.flush();
  EXPECT_EQ(h.counters.latency_counts[2].load(), 1u);
  EXPECT_EQ(h.counters.latency_sum_us.load(), 20'000u);
}

TEST(StorageLoop, EventThatCannotBeEncodedIsStoredAndCountedNotPublished) {
  Harness h;
  // A rule name long enough that the event's detail breaks kMaxEventDetailLength.
  h.config.rules = {
      ThresholdRule{std::string(300, 'r'), "temp", "", RuleDirection::kAbove, 30.0, 0.0}};
  auto& loop = h.make();
  loop.add(h.reading("gw-1", 1, {}, 35.0));
  loop.flush();
  EXPECT_EQ(kinds(h.sink.events()), (std::vector{EventKind::kThresholdAbove}));
  EXPECT_EQ(h.counters.encode_failures.load(), 1u);
  EXPECT_EQ(h.counters.events_published.load(), 0u);
  EXPECT_EQ(h.counters.acks_published.load(), 1u);
}

TEST(StorageLoop, AckWhoseTopicCannotBeBuiltIsCountedAsAnEncodeFailure) {
  Harness h;
  auto& loop = h.make();
  StorageWork w = h.reading("gw-1", 1);
  std::get<BatchItem>(w.item).site = "bad/site";  // validation refuses this; the loop copes
  loop.add(std::move(w));
  loop.flush();
  EXPECT_EQ(h.counters.batches_stored.load(), 1u);
  EXPECT_EQ(h.counters.encode_failures.load(), 1u);
  EXPECT_TRUE(h.publisher.sent.empty());
}

TEST(StorageLoop, PoisonBatchWithAnUnroutableSiteIsDeadLetteredWithoutTopicAndCounted) {
  Harness h;
  auto& loop = h.make();
  h.sink.poison = FakeSink::Key{"gw-1", 7, 1};
  StorageWork w = h.reading("gw-1", 1);
  std::get<BatchItem>(w.item).site = "bad/site";
  loop.add(std::move(w));
  loop.flush();
  const auto dlq = h.sink.dlq();
  ASSERT_EQ(dlq.size(), 1u);
  EXPECT_EQ(dlq[0].topic, "");
  EXPECT_FALSE(dlq[0].payload.empty());
  EXPECT_EQ(h.counters.encode_failures.load(), 1u);
}

}  // namespace
}  // namespace outpost::collector
