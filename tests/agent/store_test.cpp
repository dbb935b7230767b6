// Tests of the agent's SQLite store-and-forward queue, on real files in a temp directory.
#include "outpost/agent/store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

namespace outpost::agent {
namespace {

namespace fs = std::filesystem;
using common::Value;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("outpost_store_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    options_.path = (dir_ / "queue.db").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<Store> open(uint64_t epoch = 1) {
    auto s = Store::open(options_, epoch);
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
    return s.ok() ? std::move(s).value() : nullptr;
  }

  static QueueItem reading(int i, Value v = Value(0.0)) {
    QueueItem item;
    item.stream = Stream::kData;
    item.time_us = 1'700'000'000'000'000 + i;
    item.sensor = "sensor_" + std::to_string(i % 5);
    item.unit = "Cel";
    item.value = std::holds_alternative<double>(v) && std::get<double>(v) == 0.0
                     ? Value(static_cast<double>(i) / 4)
                     : v;
    return item;
  }

  static std::vector<QueueItem> readings(int from, int count) {
    std::vector<QueueItem> out;
    for (int i = from; i < from + count; ++i) out.push_back(reading(i));
    return out;
  }

  static common::Result<std::vector<uint8_t>> fake_encode(uint64_t seq) {
    return std::vector<uint8_t>{static_cast<uint8_t>(seq), 1, 2, 3};
  }

  static std::vector<int64_t> ids_of(const std::vector<QueueItem>& items) {
    std::vector<int64_t> ids;
    for (const auto& i : items) ids.push_back(i.id);
    return ids;
  }

  fs::path dir_;
  StoreOptions options_;
};

TEST_F(StoreTest, AppendedItemsComeBackInOrderWithTheirTypes) {
  auto store = open();
  std::vector<QueueItem> in = {reading(1, Value(21.37)), reading(2, Value(int64_t{-7})),
                               reading(3, Value(true)), reading(4, Value(std::string("idle")))};
  QueueItem log;
  log.stream = Stream::kLogs;
  log.time_us = 5;
  log.log = {5, common::Severity::kWarning, "disk full", {{"mount", "/data"}, {"dev", "sda"}}};
  in.push_back(log);
  auto r = store->append(in);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().accepted, 5u);

  auto data = store->peek(Stream::kData, 100);
  ASSERT_TRUE(data.ok());
  ASSERT_EQ(data.value().size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) {
    QueueItem expected = in[i];
    expected.id = data.value()[i].id;
    EXPECT_EQ(data.value()[i], expected) << i;
  }
  auto logs = store->peek(Stream::kLogs, 100);
  ASSERT_TRUE(logs.ok());
  ASSERT_EQ(logs.value().size(), 1u);
  EXPECT_EQ(logs.value()[0].log, log.log);
}

TEST_F(StoreTest, SealMovesItemsIntoOneMessageWithTheNextSequenceNumber) {
  auto store = open(77);
  ASSERT_TRUE(store->append(readings(0, 10)).ok());
  auto items = store->peek(Stream::kData, 4).value();
  auto msg = store->seal(Stream::kData, ids_of(items), fake_encode);
  ASSERT_TRUE(msg.ok()) << msg.error().message;
  EXPECT_EQ(msg.value().seq, 1u);
  EXPECT_EQ(msg.value().epoch, 77u);
  EXPECT_EQ(msg.value().item_count, 4u);
  EXPECT_EQ(msg.value().payload, (std::vector<uint8_t>{1, 1, 2, 3}));
  EXPECT_EQ(store->peek(Stream::kData, 100).value().size(), 6u);
  auto second =
      store->seal(Stream::kData, ids_of(store->peek(Stream::kData, 6).value()), fake_encode);
  EXPECT_EQ(second.value().seq, 2u);
  auto out = store->outbox(10).value();
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].seq, 1u);
  EXPECT_EQ(out[1].seq, 2u);
  EXPECT_EQ(store->stats().value().queued_items, 0u);
}

TEST_F(StoreTest, CountStopsAtItsLimitAndCountsOneStreamOnly) {
  auto store = open();
  auto items = readings(0, 7);
  QueueItem log;
  log.stream = Stream::kLogs;
  log.log.message = "hello";
  items.push_back(log);
  ASSERT_TRUE(store->append(items).ok());
  EXPECT_EQ(store->count(Stream::kData, 100).value(), 7u);
  EXPECT_EQ(store->count(Stream::kData, 5).value(), 5u);
  EXPECT_EQ(store->count(Stream::kLogs, 100).value(), 1u);
  auto peeked = store->peek(Stream::kData, 3).value();
  ASSERT_TRUE(store->seal(Stream::kData, ids_of(peeked), fake_encode).ok());
  EXPECT_EQ(store->count(Stream::kData, 100).value(), 4u);
}

TEST_F(StoreTest, SealFreesTheBytesOfExactlyTheSealedItems) {
  auto store = open();
  ASSERT_TRUE(store->append(readings(0, 10)).ok());
  const uint64_t before = store->stats().value().bytes;
  auto peeked = store->peek(Stream::kData, 4).value();
  auto sealed = store->seal(Stream::kData, ids_of(peeked), fake_encode);
  ASSERT_TRUE(sealed.ok());
  // Every reading here accounts the same bytes; the message adds 32 + its payload.
  const uint64_t per_item = before / 10;
  EXPECT_EQ(store->stats().value().bytes, before - 4 * per_item + 32 + 4);
  ASSERT_TRUE(store->acknowledge(sealed.value().id).ok());
  EXPECT_EQ(store->stats().value().bytes, before - 4 * per_item);
}

TEST_F(StoreTest, SealRefusesItemsThatAreNotALeadingRunOfTheirStreamAndChangesNothing) {
  auto store = open();
  ASSERT_TRUE(store->append(readings(0, 6)).ok());
  auto ids = ids_of(store->peek(Stream::kData, 6).value());
  const auto before = store->stats().value();
  // A gap (item 2 left out) and the other stream's name for the same items.
  EXPECT_FALSE(
      store->seal(Stream::kData, std::vector<int64_t>{ids[0], ids[1], ids[3]}, fake_encode).ok());
  EXPECT_FALSE(store->seal(Stream::kLogs, std::vector<int64_t>{ids[0], ids[1]}, fake_encode).ok());
  const auto after = store->stats().value();
  EXPECT_EQ(after.queued_items, before.queued_items);
  EXPECT_EQ(after.outbox_messages, 0u);
  EXPECT_EQ(after.bytes, before.bytes);
  EXPECT_EQ(store->last_seq(), 0u);
  EXPECT_EQ(
      store->seal(Stream::kData, std::vector<int64_t>{ids[0], ids[1]}, fake_encode).value().seq,
      1u);
}

TEST_F(StoreTest, FailedEncodeChangesNothing) {
  auto store = open();
  ASSERT_TRUE(store->append(readings(0, 3)).ok());
  auto ids = ids_of(store->peek(Stream::kData, 3).value());
  auto msg = store->seal(Stream::kData, ids, [](uint64_t) {
    return common::Result<std::vector<uint8_t>>(common::Error{"too big"});
  });
  ASSERT_FALSE(msg.ok());
  EXPECT_EQ(msg.error().message, "too big");
  EXPECT_EQ(store->peek(Stream::kData, 10).value().size(), 3u);
  EXPECT_TRUE(store->outbox(10).value().empty());
  EXPECT_EQ(store->seal(Stream::kData, ids, fake_encode).value().seq, 1u);
}

TEST_F(StoreTest, AcknowledgementsRemoveExactlyTheirMessageInAnyOrder) {
  auto store = open();
  for (int m = 0; m < 3; ++m) {
    ASSERT_TRUE(store->append(readings(m * 2, 2)).ok());
    ASSERT_TRUE(
        store->seal(Stream::kData, ids_of(store->peek(Stream::kData, 2).value()), fake_encode)
            .ok());
  }
  auto out = store->outbox(10).value();
  ASSERT_EQ(out.size(), 3u);
  ASSERT_TRUE(store->acknowledge(out[2].id).ok());  // the newest completes first
  ASSERT_TRUE(store->acknowledge(out[0].id).ok());
  ASSERT_TRUE(store->acknowledge(out[0].id).ok());  // twice: harmless
  auto left = store->outbox(10).value();
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].seq, 2u);
}

TEST_F(StoreTest, AcknowledgeRangeForEndToEnd) {
  auto store = open(5);
  for (int m = 0; m < 5; ++m) {
    ASSERT_TRUE(store->append(readings(m, 1)).ok());
    ASSERT_TRUE(
        store->seal(Stream::kData, ids_of(store->peek(Stream::kData, 1).value()), fake_encode)
            .ok());
  }
  EXPECT_EQ(store->acknowledge_range(4, 1, 5).value(), 0u);  // another epoch
  EXPECT_EQ(store->acknowledge_range(5, 2, 4).value(), 3u);
  auto left = store->outbox(10).value();
  ASSERT_EQ(left.size(), 2u);
  EXPECT_EQ(left[0].seq, 1u);
  EXPECT_EQ(left[1].seq, 5u);
}

TEST_F(StoreTest, EverythingSurvivesReopenAndSequenceNumbersAreNeverReused) {
  {
    auto store = open(1);
    ASSERT_TRUE(store->append(readings(0, 10)).ok());
    ASSERT_TRUE(
        store->seal(Stream::kData, ids_of(store->peek(Stream::kData, 4).value()), fake_encode)
            .ok());
    ASSERT_TRUE(store->set_tail_offset("/var/log/app.log", {42, 1000}).ok());
  }  // closed as after a crash: nothing else was flushed by hand
  auto store = open(2);
  EXPECT_EQ(store->last_seq(), 1u);
  EXPECT_EQ(store->peek(Stream::kData, 100).value().size(), 6u);
  auto out = store->outbox(10).value();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].epoch, 1u);  // a re-send keeps its original identity
  auto next =
      store->seal(Stream::kData, ids_of(store->peek(Stream::kData, 6).value()), fake_encode);
  EXPECT_EQ(next.value().seq, 2u);
  EXPECT_EQ(next.value().epoch, 2u);
  auto offset = store->tail_offset("/var/log/app.log").value();
  ASSERT_TRUE(offset);
  EXPECT_EQ(offset->inode, 42u);
  EXPECT_EQ(offset->offset, 1000u);
  EXPECT_FALSE(store->tail_offset("/other").value());
}

TEST_F(StoreTest, ByteTotalIsRecomputedAtOpen) {
  uint64_t bytes = 0;
  {
    auto store = open();
    ASSERT_TRUE(store->append(readings(0, 50)).ok());
    ASSERT_TRUE(
        store->seal(Stream::kData, ids_of(store->peek(Stream::kData, 20).value()), fake_encode)
            .ok());
    bytes = store->stats().value().bytes;
    EXPECT_GT(bytes, 0u);
  }
  EXPECT_EQ(open()->stats().value().bytes, bytes);
}

TEST_F(StoreTest, DropOldestEvictsTheOldestAndCountsThem) {
  options_.max_bytes = 4000;
  options_.policy = DropPolicy::kDropOldest;
  auto store = open();
  std::size_t accepted = 0, evicted = 0;
  for (int i = 0; i < 200; i += 10) {
    auto r = store->append(readings(i, 10));
    ASSERT_TRUE(r.ok());
    accepted += r.value().accepted;
    evicted += r.value().evicted;
    EXPECT_EQ(r.value().refused, 0u);
  }
  EXPECT_EQ(accepted, 200u);
  EXPECT_GT(evicted, 0u);
  const auto stats = store->stats().value();
  EXPECT_LE(stats.bytes, options_.max_bytes);
  EXPECT_EQ(stats.dropped_oldest, evicted);
  EXPECT_EQ(stats.queued_items, 200u - evicted);
  // What is left is the newest, in order.
  auto left = store->peek(Stream::kData, 1000).value();
  ASSERT_FALSE(left.empty());
  EXPECT_EQ(left.back().time_us, reading(199).time_us);
  EXPECT_EQ(left.front().time_us, reading(static_cast<int>(evicted)).time_us);
}

TEST_F(StoreTest, DropOldestAlsoEvictsUnsentMessagesWhenItemsAreNotEnough) {
  options_.max_bytes = 3000;
  auto store = open();
  ASSERT_TRUE(store->append(readings(0, 20)).ok());
  ASSERT_TRUE(store
                  ->seal(Stream::kData, ids_of(store->peek(Stream::kData, 20).value()),
                         [](uint64_t) {
                           return common::Result<std::vector<uint8_t>>(
                               std::vector<uint8_t>(2000, 7));
                         })
                  .ok());
  auto r = store->append(readings(100, 20));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value().accepted, 20u);
  EXPECT_EQ(r.value().evicted, 20u);  // the whole sealed message of 20 readings
  EXPECT_TRUE(store->outbox(10).value().empty());
  EXPECT_EQ(store->stats().value().dropped_oldest, 20u);
}

TEST_F(StoreTest, DropNewestRefusesWhatDoesNotFitAndCountsIt) {
  options_.max_bytes = 2000;
  options_.policy = DropPolicy::kDropNewest;
  auto store = open();
  auto r = store->append(readings(0, 100));
  ASSERT_TRUE(r.ok());
  EXPECT_GT(r.value().accepted, 0u);
  EXPECT_GT(r.value().refused, 0u);
  EXPECT_EQ(r.value().accepted + r.value().refused, 100u);
  EXPECT_EQ(r.value().evicted, 0u);
  const auto stats = store->stats().value();
  EXPECT_EQ(stats.dropped_newest, r.value().refused);
  // The oldest are the ones kept.
  EXPECT_EQ(store->peek(Stream::kData, 1).value()[0].time_us, reading(0).time_us);
  // Drop counters persist.
  store.reset();
  EXPECT_EQ(open()->stats().value().dropped_newest, r.value().refused);
}

TEST_F(StoreTest, ExpiryDropsOldItemsAndCountsThem) {
  options_.max_age_us = 100;
  auto store = open();
  ASSERT_TRUE(store->append(readings(0, 10)).ok());
  const int64_t now = reading(0).time_us + 105;  // items 0..4 are older than 100 us
  EXPECT_EQ(store->expire(now).value(), 5u);
  EXPECT_EQ(store->peek(Stream::kData, 100).value().size(), 5u);
  EXPECT_EQ(store->stats().value().dropped_expired, 5u);
  EXPECT_EQ(store->stats().value().oldest_time_us, reading(5).time_us);
}

TEST_F(StoreTest, CorruptFileIsMovedAsideAndAFreshStoreStarts) {
  {
    auto store = open();
    ASSERT_TRUE(store->append(readings(0, 2000)).ok());
  }
  // Scribble over the middle of the database file.
  {
    std::fstream f(options_.path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4096 + 100);
    std::mt19937 rng(1);
    for (int i = 0; i < 8192; ++i) f.put(static_cast<char>(rng()));
  }
  fs::remove(options_.path + "-wal");
  auto store = open();
  ASSERT_NE(store, nullptr);
  const auto stats = store->stats().value();
  EXPECT_EQ(stats.store_resets, 1u);
  EXPECT_EQ(stats.queued_items, 0u);
  EXPECT_TRUE(store->append(readings(0, 3)).ok());  // and it works
  int moved = 0;
  for (const auto& e : fs::directory_iterator(dir_)) {
    if (e.path().filename().string().starts_with("queue.db.corrupt-")) ++moved;
  }
  EXPECT_GE(moved, 1);
}

TEST_F(StoreTest, TruncatedAndForeignFilesAreMovedAside) {
  {
    auto store = open();
    ASSERT_TRUE(store->append(readings(0, 2000)).ok());
  }
  fs::resize_file(options_.path, fs::file_size(options_.path) / 3);
  fs::remove(options_.path + "-wal");
  auto truncated = open();
  ASSERT_NE(truncated, nullptr);
  EXPECT_EQ(truncated->stats().value().store_resets, 1u);
  truncated.reset();

  fs::remove_all(dir_);
  fs::create_directories(dir_);
  std::ofstream(options_.path) << "this is not an SQLite database, just some text\n";
  auto foreign = open();
  ASSERT_NE(foreign, nullptr);
  EXPECT_EQ(foreign->stats().value().store_resets, 1u);
}

TEST_F(StoreTest, MissingDirectoryIsAClearError) {
  options_.path = (dir_ / "no" / "such" / "dir" / "queue.db").string();
  auto s = Store::open(options_, 1);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("cannot create the store"), std::string::npos)
      << s.error().message;
}

}  // namespace
}  // namespace outpost::agent
