// Tests of log level parsing, the journal's line prefix, and the rate limiter for bad-input
// logging.
#include "outpost/common/logging.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <regex>
#include <sstream>

namespace outpost::common {
namespace {

using namespace std::chrono_literals;

TEST(LogLevel, ParsesEveryNameCaseInsensitively) {
  EXPECT_EQ(parse_log_level("trace"), spdlog::level::trace);
  EXPECT_EQ(parse_log_level("DEBUG"), spdlog::level::debug);
  EXPECT_EQ(parse_log_level("Info"), spdlog::level::info);
  EXPECT_EQ(parse_log_level("warn"), spdlog::level::warn);
  EXPECT_EQ(parse_log_level("warning"), spdlog::level::warn);
  EXPECT_EQ(parse_log_level("error"), spdlog::level::err);
  EXPECT_EQ(parse_log_level("critical"), spdlog::level::critical);
  EXPECT_EQ(parse_log_level("off"), spdlog::level::off);
  EXPECT_EQ(parse_log_level("err"), std::nullopt);
  EXPECT_EQ(parse_log_level(""), std::nullopt);
}

TEST(RateLimiter, AllowsABurstThenCountsTheRest) {
  RateLimiter limiter(3, 1s);
  const auto t0 = RateLimiter::Clock::time_point{} + 10s;
  EXPECT_TRUE(limiter.allow(t0));
  EXPECT_TRUE(limiter.allow(t0 + 1ms));
  EXPECT_TRUE(limiter.allow(t0 + 2ms));
  for (int i = 0; i < 1000; ++i) EXPECT_FALSE(limiter.allow(t0 + 3ms));
  EXPECT_EQ(limiter.take_suppressed(), 1000u);
  EXPECT_EQ(limiter.take_suppressed(), 0u);
}

TEST(RateLimiter, ANewPeriodAllowsANewBurst) {
  RateLimiter limiter(1, 1s);
  const auto t0 = RateLimiter::Clock::time_point{} + 10s;
  EXPECT_TRUE(limiter.allow(t0));
  EXPECT_FALSE(limiter.allow(t0 + 999ms));
  EXPECT_TRUE(limiter.allow(t0 + 1s));
  EXPECT_FALSE(limiter.allow(t0 + 1500ms));
  EXPECT_EQ(limiter.take_suppressed(), 2u);
}

// What a logger with `target`'s formatter writes for one line at each level.
std::string lines_for(LogTarget target) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_st>(out);
  spdlog::logger logger("outpost-test", sink);
  logger.set_formatter(make_log_formatter(target));
  logger.set_level(spdlog::level::trace);
  logger.debug("d");
  logger.info("i");
  logger.warn("w");
  logger.error("e");
  logger.critical("c");
  return out.str();
}

TEST(JournalLog, EachLineStartsWithItsSyslogPriorityAndNoTime) {
  EXPECT_EQ(lines_for(LogTarget::kJournal),
            "<7>debug d\n<6>info  i\n<4>warning w\n<3>error e\n<2>critical c\n");
  EXPECT_EQ(journal_priority(spdlog::level::trace), "<7>");
}

TEST(JournalLog, PlainLinesKeepTimeLevelAndProgram) {
  const std::string lines = lines_for(LogTarget::kPlain);
  EXPECT_TRUE(std::regex_search(
      lines, std::regex(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3} info  outpost-test: i$)",
                        std::regex::multiline)))
      << lines;
  EXPECT_EQ(lines.find('<'), std::string::npos) << lines;
}

TEST(JournalLog, StreamMatchesOnlyItsDeviceAndInode) {
  EXPECT_TRUE(journal_stream_matches("8:1234", 8, 1234));
  EXPECT_TRUE(journal_stream_matches("2049:18446744073709551615", 2049, 18446744073709551615u));
  EXPECT_FALSE(journal_stream_matches("8:1235", 8, 1234));
  EXPECT_FALSE(journal_stream_matches("9:1234", 8, 1234));
  for (const char* bad : {"", "8", "8:", ":1234", "8:1234 ", "x:1234", "8;1234", "8:12:34"}) {
    EXPECT_FALSE(journal_stream_matches(bad, 8, 1234)) << bad;
  }
}

// fd 2 pointed at a file of the test's for the scope, the variable set as systemd would.
class Stderr : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = std::filesystem::temp_directory_path() /
            ("outpost_logging_test_" + std::to_string(::getpid()));
    file_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ASSERT_GE(file_, 0);
    saved_ = ::dup(2);
    ASSERT_EQ(::dup2(file_, 2), 2);
    struct stat st {};
    ASSERT_EQ(::fstat(file_, &st), 0);
    dev_ = st.st_dev;
    ino_ = st.st_ino;
  }
  void TearDown() override {
    ::dup2(saved_, 2);
    ::close(saved_);
    ::close(file_);
    ::unsetenv("JOURNAL_STREAM");
    std::filesystem::remove(path_);
  }
  std::filesystem::path path_;
  int file_ = -1;
  int saved_ = -1;
  uint64_t dev_ = 0, ino_ = 0;
};

TEST_F(Stderr, IsTheJournalOnlyWhenJournalStreamNamesIt) {
  ::unsetenv("JOURNAL_STREAM");
  EXPECT_FALSE(stderr_is_journal());
  ::setenv("JOURNAL_STREAM", (std::to_string(dev_) + ":" + std::to_string(ino_)).c_str(), 1);
  EXPECT_TRUE(stderr_is_journal());
  // Inherited by a process whose stderr went elsewhere: another inode.
  ::setenv("JOURNAL_STREAM", (std::to_string(dev_) + ":" + std::to_string(ino_ + 1)).c_str(), 1);
  EXPECT_FALSE(stderr_is_journal());
}

}  // namespace
}  // namespace outpost::common
