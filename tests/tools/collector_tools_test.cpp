// The collector's read-side tools end to end: a database written through the SqliteSink, read
// back by the real outpost-collector binary (query, logs), its output checked as a user sees
// it: each value's type, times that --since/--until read back, clear errors for bad input.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "outpost/collector/sqlite_sink.h"
#include "outpost/common/clock.h"
#include "outpost/common/time_text.h"

namespace outpost::collector {
namespace {

namespace fs = std::filesystem;
constexpr int64_t kSec = 1'000'000;

struct ToolRun {
  int code = -1;
  std::string out, err;
};

class CollectorTools : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("outpost_tools_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    auto s = SqliteSink::open(SqliteOptions{db(), false, 1000, true});
    ASSERT_TRUE(s.ok()) << s.error().message;
    Transaction tx;
    // One reading of each type, two hours ago, and the same sensors ten minutes ago.
    for (int64_t t : {now_ - 7200 * kSec, now_ - 600 * kSec}) {
      common::ReadingBatch b;
      b.time_synced = true;
      b.sensor_names = {"temp", "count", "door", "state"};
      b.units = {"Cel"};
      b.readings = {{0, t, 22.0}, {1, t, int64_t{22}}, {2, t, true}, {3, t, std::string("op\"en")}};
      tx.batches.push_back(BatchItem{
          "lab", common::Envelope{1, "gw-7", 3, static_cast<uint64_t>(t / kSec), std::move(b)}, t});
    }
    common::LogBatch logs;
    logs.time_synced = true;
    logs.records = {
        {now_ - 3600 * kSec, common::Severity::kInfo, "boot complete", {}},
        {now_ - 1800 * kSec, common::Severity::kWarning, "Disk almost full", {{"mount", "/data"}}},
        {now_ - 900 * kSec, common::Severity::kError, "sensor bus timeout", {{"bus", "i2c-1"}}},
        {now_ - 60 * kSec, common::Severity::kDebug, "disk check done", {}},
    };
    tx.batches.push_back(BatchItem{"lab", common::Envelope{1, "gw-7", 3, 100, logs}, now_});
    logs.records = {{now_ - 120 * kSec, common::Severity::kCritical, "disk failed", {}}};
    tx.batches.push_back(BatchItem{"lab", common::Envelope{1, "gw-8", 1, 1, logs}, now_});
    auto r = s.value()->commit(tx);
    ASSERT_TRUE(r.ok()) << r.error().message;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string db() const { return (dir_ / "c.db").string(); }

  ToolRun run(const std::string& args) {
    const fs::path out = dir_ / "out.txt", err = dir_ / "err.txt";
    // OUTPOST_TEST_COLLECTOR_BIN runs these checks against another build of the binary.
    const char* bin = std::getenv("OUTPOST_TEST_COLLECTOR_BIN");
    const std::string cmd = std::string(bin ? bin : OUTPOST_COLLECTOR_BIN) + " --db '" + db() +
                            "' " + args + " >'" + out.string() + "' 2>'" + err.string() + "'";
    const int status = std::system(cmd.c_str());
    ToolRun r;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = read(out);
    r.err = read(err);
    return r;
  }
  static std::string read(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  static int lines(const std::string& text) {
    return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
  }

  fs::path dir_;
  // Whole seconds plus 123 ms: printed times (milliseconds) are exact, and a time cut to the
  // second falls before the reading.
  const int64_t now_ = common::wall_now_us() / kSec * kSec + 123'000;
};

TEST_F(CollectorTools, QueryTableShowsEachValuesType) {
  const ToolRun r = run("query --limit 4");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(\stemp\s+22\.0\s+Cel\n)"))) << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(\scount\s+22i\s*\n)"))) << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(\sdoor\s+true\s*\n)"))) << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(\sstate\s+"op\\"en"\s*\n)"))) << r.out;
}

TEST_F(CollectorTools, QueryCsvAndJsonCarryTheType) {
  const ToolRun csv = run("query --limit 4 --format csv");
  ASSERT_EQ(csv.code, 0) << csv.err;
  EXPECT_EQ(csv.out.substr(0, csv.out.find('\n')),
            "device,site,sensor,time,time_us,value,type,unit,epoch,seq");
  EXPECT_NE(csv.out.find(",22.0,double,Cel,"), std::string::npos) << csv.out;
  EXPECT_NE(csv.out.find(",22,integer,,"), std::string::npos) << csv.out;
  EXPECT_NE(csv.out.find(",true,bool,,"), std::string::npos) << csv.out;
  EXPECT_NE(csv.out.find(",\"op\"\"en\",string,,"), std::string::npos) << csv.out;
  const ToolRun json = run("query --limit 4 --format json");
  ASSERT_EQ(json.code, 0) << json.err;
  EXPECT_NE(json.out.find("\"value\":22.0,\"type\":\"double\""), std::string::npos) << json.out;
  EXPECT_NE(json.out.find("\"value\":22,\"type\":\"integer\""), std::string::npos) << json.out;
  EXPECT_NE(json.out.find("\"value\":true,\"type\":\"bool\""), std::string::npos) << json.out;
  EXPECT_NE(json.out.find("\"value\":\"op\\\"en\",\"type\":\"string\""), std::string::npos)
      << json.out;
}

TEST_F(CollectorTools, SinceTakesADurationBeforeNow) {
  for (const char* since : {"1h", "30m", "3000s", "1h30m", "-1h"}) {
    const ToolRun r = run(std::string("query --format csv --since ") + since);
    ASSERT_EQ(r.code, 0) << since << ": " << r.err;
    EXPECT_EQ(lines(r.out), 1 + 4) << since << ":\n" << r.out;  // the recent batch only
  }
  const ToolRun all = run("query --format csv --since 2d");
  EXPECT_EQ(lines(all.out), 1 + 8) << all.out;
}

TEST_F(CollectorTools, SinceAndUntilReadBackTheTimesTheToolsPrint) {
  const ToolRun table = run("query --sensor temp");
  ASSERT_EQ(table.code, 0) << table.err;
  std::smatch m;
  std::string rest = table.out;
  std::vector<std::string> times;
  const std::regex stamp(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)");
  while (std::regex_search(rest, m, stamp)) {
    times.push_back(m.str());
    rest = m.suffix();
  }
  ASSERT_EQ(times.size(), 2u) << table.out;
  // The second reading's time, exactly as printed, as --since: that reading and no other.
  ToolRun r = run("query --sensor temp --format csv --since " + times[1]);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(lines(r.out), 2) << r.out;
  // The same instant with an offset, and without the fraction (the reading is then inside).
  const int64_t t = *common::parse_time_us(times[1], now_);
  const std::string plus_one = common::format_time_us(t + 3600 * kSec);
  const std::string with_offset = plus_one.substr(0, 23) + "+01:00";
  r = run("query --sensor temp --format csv --until " + with_offset);
  EXPECT_EQ(lines(r.out), 3) << with_offset << ": " << r.out << r.err;
  r = run("query --sensor temp --format csv --until " + times[0].substr(0, 19) + "Z");
  EXPECT_EQ(lines(r.out), 1) << r.out << r.err;  // the first reading has milliseconds past it
}

TEST_F(CollectorTools, AnUnreadableTimeIsAUsageErrorNamingTheFlagAndTheForms) {
  for (const char* flag : {"--since", "--until"}) {
    const ToolRun r = run(std::string("query ") + flag + " yesterday");
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.err.find(std::string(flag) + ": cannot read 'yesterday' as a time"),
              std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("2026-12-01T20:31:05.123Z"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("1h30m"), std::string::npos) << r.err;
  }
  EXPECT_EQ(run("logs --since 2026-02-29").code, 2);
  EXPECT_EQ(run("dlq list --until 5x").code, 2);
}

TEST_F(CollectorTools, HelpDescribesTheTimeForms) {
  const ToolRun r = run("query --help");
  ASSERT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("1h30m"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("+01:00"), std::string::npos) << r.out;
}

TEST_F(CollectorTools, LogsListsStoredRecordsWithTheirSeverityAndFields) {
  const ToolRun r = run("logs --device gw-7");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(lines(r.out), 1 + 4) << r.out;
  EXPECT_TRUE(
      std::regex_search(r.out, std::regex(R"(gw-7\s+warning\s+Disk almost full \| mount=/data\n)")))
      << r.out;
  EXPECT_NE(r.err.find("4 log records"), std::string::npos) << r.err;
}

TEST_F(CollectorTools, LogsFiltersBySeverityTextTimeAndLimit) {
  ToolRun r = run("logs --severity warning --format csv");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(lines(r.out), 1 + 3) << r.out;  // warning, error, critical
  EXPECT_EQ(r.out.find(",info,"), std::string::npos) << r.out;
  r = run("logs --contains DISK --format csv");
  EXPECT_EQ(lines(r.out), 1 + 3) << r.out;  // "Disk almost full", "disk check done", "disk failed"
  r = run("logs --contains disk --severity error --format csv");
  EXPECT_EQ(lines(r.out), 1 + 1) << r.out;
  EXPECT_NE(r.out.find("gw-8,lab,"), std::string::npos) << r.out;
  r = run("logs --since 20m --until 5m --format csv");
  EXPECT_EQ(lines(r.out), 1 + 1) << r.out;  // the error, 15 minutes ago
  EXPECT_NE(r.out.find("sensor bus timeout"), std::string::npos) << r.out;
  r = run("logs --limit 2 --format csv");
  EXPECT_EQ(lines(r.out), 1 + 2) << r.out;
  r = run("logs --contains 50% --format csv");
  EXPECT_EQ(lines(r.out), 1) << r.out;  // % is a plain character, not a wildcard
}

TEST_F(CollectorTools, LogsJsonIsOneObjectPerRecord) {
  const ToolRun r = run("logs --device gw-7 --severity 5 --format json");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("\"severity\":\"warning\",\"message\":\"Disk almost full\","
                       "\"fields\":{\"mount\":\"/data\"}"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("\"fields\":{\"bus\":\"i2c-1\"}"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("boot complete"), std::string::npos) << r.out;
}

TEST_F(CollectorTools, LogsRefusesAnUnknownSeverity) {
  const ToolRun r = run("logs --severity loud");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--severity: unknown severity 'loud'"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace outpost::collector
