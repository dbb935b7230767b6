// Tests of configuration reading: values, defaults, and errors naming file, line and key.
#include "outpost/common/config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "outpost/common/codec.h"
#include "outpost/common/logging.h"

namespace outpost::common {
namespace {

ConfigReader parse(std::string_view text) {
  auto r = ConfigReader::parse_string(text, "test.toml");
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().to_string());
  return std::move(r).value();
}

// Reads nothing more and returns finish()'s message ("" if it passed).
std::string finish_message(ConfigReader& r) {
  auto s = r.finish();
  return s.ok() ? "" : s.error().to_string();
}

enum class Policy { kDropOldest, kDropNewest };

// A program's config struct, the way STYLE.md asks for them.
struct StoreConfig {
  std::string path = "/var/lib/outpost/queue.db";  // the SQLite file
  int64_t flush_interval_us = 200'000;             // the kill -9 loss window
  uint64_t max_bytes = 64ull << 20;                // disk quota
  uint32_t batch = 500;                            // rows per transaction
  double ratio = 0.5;
  bool full_sync = false;
  Policy policy = Policy::kDropOldest;
  std::vector<std::string> inputs = {"udp"};
};

void read_store(ConfigReader& r, StoreConfig& c) {
  r.read("store.path", c.path);
  r.read_duration_us("store.flush_interval", c.flush_interval_us, 1'000, 60'000'000);
  r.read_size_bytes("store.max_bytes", c.max_bytes, 1 << 20);
  r.read("store.batch", c.batch, 1, 100'000);
  r.read("store.ratio", c.ratio, 0.0, 1.0);
  r.read("store.full_sync", c.full_sync);
  r.read_enum("store.policy", c.policy,
              {{"drop_oldest", Policy::kDropOldest}, {"drop_newest", Policy::kDropNewest}});
  r.read("store.inputs", c.inputs);
}

TEST(Config, ValuesOverwriteDefaults) {
  auto r = parse(R"(
[store]
path = "/tmp/q.db"
flush_interval = "50ms"
max_bytes = "128MiB"
batch = 1000
ratio = 1
full_sync = true
policy = "drop_newest"
inputs = ["udp", "unix"]
)");
  StoreConfig c;
  read_store(r, c);
  EXPECT_EQ(finish_message(r), "");
  EXPECT_EQ(c.path, "/tmp/q.db");
  EXPECT_EQ(c.flush_interval_us, 50'000);
  EXPECT_EQ(c.max_bytes, 128ull << 20);
  EXPECT_EQ(c.batch, 1000u);
  EXPECT_EQ(c.ratio, 1.0);
  EXPECT_TRUE(c.full_sync);
  EXPECT_EQ(c.policy, Policy::kDropNewest);
  EXPECT_EQ(c.inputs, (std::vector<std::string>{"udp", "unix"}));
}

TEST(Config, AbsentKeysKeepTheirDefaults) {
  auto r = parse("[store]\nbatch = 7\n");
  StoreConfig c;
  read_store(r, c);
  EXPECT_EQ(finish_message(r), "");
  EXPECT_EQ(c.batch, 7u);
  EXPECT_EQ(c.path, StoreConfig{}.path);
  EXPECT_EQ(c.flush_interval_us, 200'000);
  EXPECT_EQ(c.policy, Policy::kDropOldest);
}

TEST(Config, EmptyFileIsValid) {
  auto r = parse("");
  StoreConfig c;
  read_store(r, c);
  EXPECT_EQ(finish_message(r), "");
}

TEST(Config, MissingFileNamesTheFile) {
  auto r = ConfigReader::load_file("/nonexistent/outpost.toml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().to_string(),
            "/nonexistent/outpost.toml: cannot open the file: No such file or directory");
}

TEST(Config, LoadFileReadsARealFile) {
  const auto path = std::filesystem::temp_directory_path() / "outpost_config_test.toml";
  std::ofstream(path) << "[store]\nbatch = 3\n";
  auto r = ConfigReader::load_file(path.string());
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  StoreConfig c;
  read_store(r.value(), c);
  EXPECT_EQ(c.batch, 3u);
  std::filesystem::remove(path);
}

TEST(Config, SyntaxErrorNamesLineAndColumn) {
  auto r = ConfigReader::parse_string("[store]\nbatch = 3\npath = \"unterminated\n", "agent.toml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().file, "agent.toml");
  EXPECT_EQ(r.error().line, 3);
  EXPECT_NE(r.error().to_string().find("agent.toml:3:"), std::string::npos)
      << r.error().to_string();
  EXPECT_NE(r.error().message.find("TOML syntax error"), std::string::npos);
}

TEST(Config, WrongTypeNamesLineAndKey) {
  auto r = parse("[store]\n\nbatch = \"many\"\n");
  StoreConfig c;
  read_store(r, c);
  EXPECT_EQ(finish_message(r), "test.toml:3:9: store.batch: expected an integer, got a string");
  EXPECT_EQ(c.batch, 500u);
}

TEST(Config, OutOfRangeIsAnError) {
  auto r = parse("[store]\nbatch = 0\n");
  StoreConfig c;
  read_store(r, c);
  EXPECT_EQ(finish_message(r), "test.toml:2:9: store.batch: 0 is out of range [1, 100000]");
  auto neg = parse("[store]\nmax_bytes = -1\n");
  read_store(neg, c);
  EXPECT_NE(finish_message(neg).find("store.max_bytes: expected a size"), std::string::npos);
  auto ratio = parse("[store]\nratio = 1.5\n");
  read_store(ratio, c);
  EXPECT_NE(finish_message(ratio).find("store.ratio: 1.5 is out of range"), std::string::npos);
}

TEST(Config, BadDurationIsAnErrorAndABareNumberIsRefused) {
  for (const char* text :
       {"flush_interval = \"12abc\"", "flush_interval = \"fast\"", "flush_interval = \"-5s\"",
        "flush_interval = \"1.5s\"", "flush_interval = \"5 s\"", "flush_interval = 200"}) {
    auto r = parse(std::string("[store]\n") + text + "\n");
    StoreConfig c;
    read_store(r, c);
    const std::string msg = finish_message(r);
    EXPECT_NE(msg.find("test.toml:2:"), std::string::npos) << text << " -> " << msg;
    EXPECT_NE(msg.find("store.flush_interval: expected a duration"), std::string::npos)
        << text << " -> " << msg;
    EXPECT_EQ(c.flush_interval_us, 200'000);
  }
  auto r = parse("[store]\nflush_interval = \"2m\"\n");
  StoreConfig c;
  read_store(r, c);
  EXPECT_NE(finish_message(r).find("out of range"), std::string::npos);
}

TEST(Config, BadSizeIsAnError) {
  for (const char* text :
       {"\"64MB2\"", "\"64mib\"", "\"MiB\"", "\"\"", "\"99999999999TiB\"", "true"}) {
    auto r = parse(std::string("[store]\nmax_bytes = ") + text + "\n");
    StoreConfig c;
    read_store(r, c);
    EXPECT_NE(finish_message(r).find("store.max_bytes: expected a size"), std::string::npos)
        << text;
  }
}

TEST(Config, UnknownKeysAreReportedWithTheirLine) {
  auto r = parse("[store]\nbatch = 3\nflush_intervall = \"1s\"\n[stor]\nx = 1\n");
  StoreConfig c;
  read_store(r, c);
  auto s = r.finish();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().to_string(), "test.toml:3:19: store.flush_intervall: unknown key");
  ASSERT_EQ(r.errors().size(), 2u);
  const auto& other = r.errors()[0].key == "stor.x" ? r.errors()[0] : r.errors()[1];
  EXPECT_EQ(other.key, "stor.x");
  EXPECT_EQ(other.line, 5);
}

TEST(Config, UnknownEnumValueListsTheAllowedOnes) {
  auto r = parse("[store]\npolicy = \"drop_random\"\n");
  StoreConfig c;
  read_store(r, c);
  EXPECT_EQ(finish_message(r),
            "test.toml:2:10: store.policy: expected one of drop_oldest, drop_newest, got "
            "\"drop_random\"");
  EXPECT_EQ(c.policy, Policy::kDropOldest);
}

TEST(Config, SecretValuesAreNeverEchoed) {
  auto r = parse("[broker]\npassword = \"hunter2-very-secret\"\ntoken_ttl = \"forever\"\n");
  std::string password_mode = "plain";
  int64_t ttl = 0;
  r.read_enum("broker.password", password_mode, {{"plain", std::string("plain")}});
  r.read_duration_us("broker.token_ttl", ttl);
  r.finish().ok();
  ASSERT_EQ(r.errors().size(), 2u);
  for (const auto& e : r.errors()) {
    EXPECT_EQ(e.to_string().find("hunter2"), std::string::npos) << e.to_string();
    EXPECT_EQ(e.to_string().find("forever"), std::string::npos) << e.to_string();
    EXPECT_NE(e.to_string().find("(value hidden)"), std::string::npos) << e.to_string();
  }
}

TEST(Config, ArrayWithANonStringIsAnError) {
  auto r = parse("[store]\ninputs = [\"udp\", 3]\n");
  StoreConfig c;
  read_store(r, c);
  EXPECT_NE(finish_message(r).find("store.inputs: expected an array of strings, found an integer"),
            std::string::npos);
  EXPECT_EQ(c.inputs, std::vector<std::string>{"udp"});
}

TEST(Config, AddErrorPointsAtTheKey) {
  auto r = parse("[a]\n\nx = 1\n");
  int64_t x = 0;
  r.read("a.x", x);
  r.add_error("a.x", "must be larger than a.y");
  EXPECT_EQ(finish_message(r), "test.toml:3:5: a.x: must be larger than a.y");
}

TEST(Config, HasMarksAWholeTableKnown) {
  auto r = parse("[plugins.custom]\nanything = 1\n");
  EXPECT_TRUE(r.has("plugins"));
  EXPECT_FALSE(r.has("missing"));
  EXPECT_TRUE(r.finish().ok());
}

TEST(Durations, Parse) {
  EXPECT_EQ(parse_duration_us("250us"), 250);
  EXPECT_EQ(parse_duration_us("200ms"), 200'000);
  EXPECT_EQ(parse_duration_us("5s"), 5'000'000);
  EXPECT_EQ(parse_duration_us("10m"), 600'000'000);
  EXPECT_EQ(parse_duration_us("2h"), 7'200'000'000);
  EXPECT_EQ(parse_duration_us("7d"), 604'800'000'000);
  EXPECT_EQ(parse_duration_us("0s"), 0);
  for (const char* bad :
       {"", "5", "s", "5x", "5 s", "-5s", "+5s", "1.5s", "5S", "5ms ",
        "106751992d" /* overflows int64 microseconds */, "99999999999999999999s"}) {
    EXPECT_EQ(parse_duration_us(bad), std::nullopt) << bad;
  }
  EXPECT_EQ(parse_duration_us("106751991d"), 106751991LL * 86'400'000'000);
}

TEST(Sizes, Parse) {
  EXPECT_EQ(parse_size_bytes("512B"), 512u);
  EXPECT_EQ(parse_size_bytes("100kB"), 100'000u);
  EXPECT_EQ(parse_size_bytes("10MB"), 10'000'000u);
  EXPECT_EQ(parse_size_bytes("512KiB"), 512u * 1024);
  EXPECT_EQ(parse_size_bytes("64MiB"), 64ull << 20);
  EXPECT_EQ(parse_size_bytes("1GiB"), 1ull << 30);
  EXPECT_EQ(parse_size_bytes("1TiB"), 1ull << 40);
  for (const char* bad : {"", "64", "MiB", "64mib", "64 MiB", "-1MiB", "1.5GiB", "64MiBs",
                          "16777216TiB" /* 2^64 */}) {
    EXPECT_EQ(parse_size_bytes(bad), std::nullopt) << bad;
  }
  EXPECT_EQ(parse_size_bytes("16777215TiB"), 16777215ull << 40);
}

TEST(Config, ValidationOptionsFromATable) {
  auto r = parse(
      "[validation]\nmax_future_skew = \"30s\"\nmax_past_age = \"90d\"\n"
      "check_unsynced_timestamps = true\nallow_non_finite = true\n");
  ValidationOptions v;
  read_validation_options(r, "validation", v);
  EXPECT_EQ(finish_message(r), "");
  EXPECT_EQ(v.max_future_skew_us, 30'000'000);
  EXPECT_EQ(v.max_past_age_us, 90LL * 86'400'000'000);
  EXPECT_TRUE(v.check_unsynced_timestamps);
  EXPECT_TRUE(v.allow_non_finite);
}

TEST(Config, ValidationTimeBoundsFromATable) {
  auto r = parse("[validation]\nmin_timestamp = 2010-01-01\nmax_unsynced_future_skew = \"30d\"\n");
  ValidationOptions v;
  read_validation_options(r, "validation", v);
  EXPECT_EQ(finish_message(r), "");
  EXPECT_EQ(v.min_timestamp_us, 1'262'304'000'000'000);
  EXPECT_EQ(v.max_unsynced_future_skew_us, 30LL * 86'400'000'000);

  auto offset = parse("[validation]\nmin_timestamp = 2000-01-01T01:00:00.5+01:00\n");
  read_validation_options(offset, "validation", v);
  EXPECT_EQ(finish_message(offset), "");
  EXPECT_EQ(v.min_timestamp_us, 946'684'800'500'000);

  auto before_1970 = parse("[validation]\nmin_timestamp = 1969-12-31T23:59:59Z\n");
  read_validation_options(before_1970, "validation", v);
  EXPECT_EQ(v.min_timestamp_us, -1'000'000);
}

TEST(Config, MinTimestampMustBeADateOrADateTimeWithOffset) {
  for (const char* bad : {"min_timestamp = 2000-01-01T00:00:00", "min_timestamp = \"2000-01-01\"",
                          "min_timestamp = 946684800"}) {
    auto r = parse(std::string("[validation]\n") + bad + "\n");
    ValidationOptions v;
    read_validation_options(r, "validation", v);
    const std::string message = finish_message(r);
    EXPECT_NE(message.find("validation.min_timestamp"), std::string::npos)
        << bad << ": " << message;
    EXPECT_EQ(v.min_timestamp_us, ValidationOptions{}.min_timestamp_us) << bad;
  }
}

TEST(Config, LogLevelIsValidated) {
  auto good = parse("[log]\nlevel = \"DEBUG\"\n");
  LogConfig c;
  read_log_config(good, c);
  EXPECT_EQ(finish_message(good), "");
  EXPECT_EQ(c.level, "DEBUG");
  auto bad = parse("[log]\nlevel = \"loud\"\n");
  LogConfig d;
  read_log_config(bad, d);
  EXPECT_EQ(finish_message(bad),
            "test.toml:2:9: log.level: expected one of trace, debug, info, warn, error, "
            "critical, off, got \"loud\"");
  EXPECT_EQ(d.level, "info");
}

TEST(ConfigReader, TableKeysListNamedEntriesInFileOrderAndUnknownKeysInsideAreStillReported) {
  auto reader = ConfigReader::parse_string(
      "[rules.zeta]\nsensor = \"t\"\n[rules.alpha]\nsensor = \"h\"\ntypo = 1\n", "c.toml");
  ASSERT_TRUE(reader.ok());
  ConfigReader& r = reader.value();
  EXPECT_EQ(r.table_keys("rules"), (std::vector<std::string>{"zeta", "alpha"}));
  EXPECT_TRUE(r.table_keys("absent").empty());
  std::string sensor;
  r.read("rules.zeta.sensor", sensor);
  r.read("rules.alpha.sensor", sensor);
  auto s = r.finish();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().key, "rules.alpha.typo");
  EXPECT_EQ(s.error().line, 5);
}

}  // namespace
}  // namespace outpost::common

namespace outpost::common {
namespace {

TEST(MqttConnection, CredentialsInTheBrokerUriAreRefusedWithoutEchoingThem) {
  for (const char* uri : {"tcp://gw:s3cret@broker:1883", "mqtts://user@broker"}) {
    auto r =
        ConfigReader::parse_string(std::string("[mqtt]\nbroker = \"") + uri + "\"\n", "a.toml");
    ASSERT_TRUE(r.ok());
    BrokerConfig keys;
    read_mqtt_connection(r.value(), keys);
    auto s = r.value().finish();
    ASSERT_FALSE(s.ok()) << uri;
    EXPECT_EQ(s.error().to_string(),
              "a.toml:2:10: mqtt.broker: credentials in the URI (user:password@) are refused: set "
              "mqtt.username and mqtt.password instead");
  }
  // An @ in a path is none of the URI's authority.
  auto r = ConfigReader::parse_string("[mqtt]\nbroker = \"ws://h:80/a@b\"\n", "a.toml");
  ASSERT_TRUE(r.ok());
  BrokerConfig keys;
  read_mqtt_connection(r.value(), keys);
  EXPECT_EQ(r.value().errors().size(), 1u);  // only the scheme
  r = ConfigReader::parse_string("[mqtt]\nbroker = \"tcp://h:1883/a@b\"\n", "a.toml");
  ASSERT_TRUE(r.ok());
  read_mqtt_connection(r.value(), keys);
  EXPECT_TRUE(r.value().finish().ok());
}

}  // namespace
}  // namespace outpost::common
