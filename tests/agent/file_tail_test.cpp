// Tests of following a log file: appends, partial lines, rotation by rename and by truncation,
// and resuming from a saved position.
#include "outpost/agent/file_tail.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace outpost::agent {
namespace {

namespace fs = std::filesystem;
using Lines = std::vector<std::string>;

class FileTailTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("outpost_tail_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    path_ = (dir_ / "app.log").string();
  }
  void TearDown() override { fs::remove_all(dir_); }
  void append(const std::string& text) { std::ofstream(path_, std::ios::app) << text; }

  fs::path dir_;
  std::string path_;
};

TEST_F(FileTailTest, StartAtEndSkipsWhatWasThereAndReadsWhatComes) {
  append("old 1\nold 2\n");
  FileTail tail(path_, false, std::nullopt);
  EXPECT_EQ(tail.poll(), Lines{});
  append("new 1\nnew 2\r\n");
  EXPECT_EQ(tail.poll(), (Lines{"new 1", "new 2"}));
  EXPECT_EQ(tail.poll(), Lines{});
}

TEST_F(FileTailTest, StartAtBeginningReadsEverything) {
  append("a\nb\n");
  FileTail tail(path_, true, std::nullopt);
  EXPECT_EQ(tail.poll(), (Lines{"a", "b"}));
}

TEST_F(FileTailTest, PartialLineWaitsForItsNewline) {
  FileTail tail(path_, true, std::nullopt);
  append("hello wo");
  EXPECT_EQ(tail.poll(), Lines{});
  EXPECT_EQ(tail.position().offset, 0u);
  append("rld\nnext");
  EXPECT_EQ(tail.poll(), Lines{"hello world"});
  EXPECT_EQ(tail.position().offset, 12u);  // the partial "next" is not consumed yet
}

TEST_F(FileTailTest, RenameRotationFinishesTheOldFileThenFollowsTheNewOne) {
  FileTail tail(path_, true, std::nullopt);
  append("1\n");
  EXPECT_EQ(tail.poll(), Lines{"1"});
  append("2\nunfinished");
  fs::rename(path_, path_ + ".1");  // logrotate's default
  append("3\n");                    // a new file at the same path
  EXPECT_EQ(tail.poll(), (Lines{"2", "unfinished", "3"}));
  append("4\n");
  EXPECT_EQ(tail.poll(), Lines{"4"});
}

TEST_F(FileTailTest, TruncationRestartsFromTheTop) {
  FileTail tail(path_, true, std::nullopt);
  append("a long first line\n");
  EXPECT_EQ(tail.poll(), Lines{"a long first line"});
  fs::resize_file(path_, 0);  // copytruncate
  append("x\n");
  EXPECT_EQ(tail.poll(), Lines{"x"});
}

TEST_F(FileTailTest, ResumesFromASavedPositionOnTheSameFile) {
  append("a\nb\n");
  TailPosition saved;
  {
    FileTail tail(path_, true, std::nullopt);
    EXPECT_EQ(tail.poll(), (Lines{"a", "b"}));
    saved = tail.position();
  }
  append("c\n");  // written while the agent was down
  FileTail again(path_, false, saved);
  EXPECT_EQ(again.poll(), Lines{"c"});
}

TEST_F(FileTailTest, SavedPositionOfARotatedFileStartsTheNewFileAtZero) {
  append("a\n");
  TailPosition saved;
  {
    FileTail tail(path_, true, std::nullopt);
    (void)tail.poll();
    saved = tail.position();
  }
  fs::rename(path_, path_ + ".1");
  append("fresh\n");
  FileTail again(path_, false, saved);
  EXPECT_EQ(again.poll(), Lines{"fresh"});
}

TEST_F(FileTailTest, AMissingFileIsWaitedFor) {
  FileTail tail(path_, false, std::nullopt);
  EXPECT_EQ(tail.poll(), Lines{});
  append("born\n");
  EXPECT_EQ(tail.poll(), Lines{"born"});
}

}  // namespace
}  // namespace outpost::agent
