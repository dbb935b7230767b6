// The raw-message journal's records of oversized messages: what is left of them (first bytes,
// length, hash) replays as it was appended, beside whole records, and is never whole.
#include "outpost/collector/journal.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

namespace outpost::collector {
namespace {

namespace fs = std::filesystem;

class JournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("outpost_journal_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  uint64_t bytes_on_disk() const {
    uint64_t n = 0;
    for (const auto& e : fs::directory_iterator(dir_)) n += fs::file_size(e.path());
    return n;
  }
  fs::path dir_;
};

TEST_F(JournalTest, AnOversizedMessageIsJournaledAsItsFirstBytesLengthAndHash) {
  const std::string huge(8u << 20, 'x');
  std::vector<RawMessage> burst = {
      {"outpost/v1/lab/gw-1/data", "small", 1},
      take_message("outpost/v1/lab/gw-1/data", huge, 2, 512 * 1024),
      {"outpost/v1/lab/gw-1/logs", "after", 3},
  };
  ASSERT_TRUE(burst[1].cut.has_value());
  std::vector<JournalPosition> after;
  {
    auto j = Journal::open(dir_.string(), false);
    ASSERT_TRUE(j.ok());
    ASSERT_TRUE(j.value()->append(burst, after).ok());
    EXPECT_LT(j.value()->bytes_written(), 2 * kOversizedKeepBytes);
  }
  EXPECT_LT(bytes_on_disk(), 2 * kOversizedKeepBytes);
  auto j = Journal::open(dir_.string(), false);
  ASSERT_TRUE(j.ok());
  std::vector<RawMessage> seen;
  std::vector<JournalPosition> positions;
  auto n = j.value()->replay(std::nullopt, [&](RawMessage&& m, JournalPosition p) {
    seen.push_back(std::move(m));
    positions.push_back(p);
  });
  ASSERT_TRUE(n.ok()) << n.error().message;
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(positions, after);
  EXPECT_EQ(seen[0].payload, "small");
  EXPECT_FALSE(seen[0].cut.has_value());
  EXPECT_EQ(seen[2].payload, "after");
  ASSERT_TRUE(seen[1].cut.has_value());
  EXPECT_EQ(seen[1].payload, std::string(kOversizedKeepBytes, 'x'));
  EXPECT_EQ(seen[1].cut->full_bytes, huge.size());
  EXPECT_EQ(seen[1].cut->limit, 512u * 1024);
  EXPECT_EQ(seen[1].cut->sha256, common::sha256(huge));
  EXPECT_EQ(seen[1].received_us, 2);
}

TEST_F(JournalTest, ACorruptCutRecordEndsTheReplayLikeATornTail) {
  std::vector<JournalPosition> after;
  {
    auto j = Journal::open(dir_.string(), false);
    ASSERT_TRUE(j.ok());
    ASSERT_TRUE(j.value()
                    ->append({{"t/1", "one", 1},
                              take_message("t/2", std::string(600 * 1024, 'y'), 2, 512 * 1024)},
                             after)
                    .ok());
  }
  // Flip one byte of the cut record's trailer (its hash): its checksum no longer holds.
  for (const auto& e : fs::directory_iterator(dir_)) {
    if (fs::file_size(e.path()) == 0) continue;
    FILE* f = std::fopen(e.path().c_str(), "r+b");
    ASSERT_NE(f, nullptr);
    std::fseek(f, -1, SEEK_END);
    std::fputc('!', f);
    std::fclose(f);
  }
  auto j = Journal::open(dir_.string(), false);
  ASSERT_TRUE(j.ok());
  std::vector<std::string> seen;
  ASSERT_TRUE(
      j.value()
          ->replay(std::nullopt, [&](RawMessage&& m, JournalPosition) { seen.push_back(m.topic); })
          .ok());
  EXPECT_EQ(seen, std::vector<std::string>{"t/1"});
}

}  // namespace
}  // namespace outpost::collector
