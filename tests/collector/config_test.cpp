// The collector's intake keys: topic filters checked at load, the catch-all and what it is
// subscribed in place of, the message size bound; the storage backend keys.
#include "outpost/collector/config.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace outpost::collector {
namespace {

// The error of reading `text`, "" if it is accepted.
std::string error_of(const std::string& text, CollectorConfig& config) {
  auto reader = common::ConfigReader::parse_string(text, "c.toml");
  if (!reader.ok()) return reader.error().to_string();
  auto s = read_collector_config(reader.value(), config);
  return s.ok() ? "" : s.error().to_string();
}

std::string error_of(const std::string& text) {
  CollectorConfig config;
  return error_of(text, config);
}

TEST(CollectorIntakeConfig, AnInvalidTopicFilterIsRefusedWithFileLineKeyAndProblem) {
  const std::string e = error_of("[mqtt]\ntopics = [\"outpost/v1/+/+/data\", \"outpost/#/x\"]\n");
  EXPECT_NE(e.find("c.toml:2"), std::string::npos) << e;
  EXPECT_NE(e.find("mqtt.topics"), std::string::npos) << e;
  EXPECT_NE(e.find("filter 2 \"outpost/#/x\""), std::string::npos) << e;
  EXPECT_NE(e.find("'#' must be the last level"), std::string::npos) << e;
}

TEST(CollectorIntakeConfig, EachKindOfBadFilterIsNamed) {
  EXPECT_NE(error_of("[mqtt]\ntopics = [\"\"]\n").find("is empty"), std::string::npos);
  EXPECT_NE(error_of("[mqtt]\ntopics = [\"outpost/v1/a+/x\"]\n").find("'+' must be a whole"),
            std::string::npos);
  EXPECT_NE(error_of("[mqtt]\ntopics = [\"$share/g/outpost/#\"]\n").find("mqtt.shared_group"),
            std::string::npos);
  EXPECT_NE(error_of("[mqtt]\ntopics = [\"" + std::string(70000, 'a') + "\"]\n").find("65535"),
            std::string::npos);
  const std::string nul = error_of("[mqtt]\ntopics = [\"out\\u0000post/#\"]\n");
  EXPECT_NE(nul.find("NUL"), std::string::npos) << nul;
  EXPECT_NE(nul.find("out\\0post"), std::string::npos) << nul;
  const std::string c = error_of("[mqtt]\ncatch_all = \"outpost/#/\"\n");
  EXPECT_NE(c.find("mqtt.catch_all"), std::string::npos) << c;
}

TEST(CollectorIntakeConfig, TheCatchAllReplacesTheFiltersItCovers) {
  CollectorConfig config;
  ASSERT_EQ(error_of("", config), "");
  EXPECT_EQ(subscription_filters(config), std::vector<std::string>{"outpost/#"});
  ASSERT_EQ(error_of("[mqtt]\ntopics = [\"outpost/v1/+/+/data\", \"other/+/data\"]\n"
                     "shared_group = \"g\"\n",
                     config),
            "");
  EXPECT_EQ(subscription_filters(config),
            (std::vector<std::string>{"$share/g/outpost/#", "$share/g/other/+/data"}));
  CollectorConfig off;
  ASSERT_EQ(error_of("[mqtt]\ncatch_all = \"\"\n", off), "");
  EXPECT_EQ(subscription_filters(off), off.topics);
}

TEST(CollectorIntakeConfig, MaxMessageBytesTakesASizeWithinItsBounds) {
  CollectorConfig config;
  ASSERT_EQ(error_of("", config), "");
  EXPECT_EQ(config.max_message_bytes, 512u * 1024);
  ASSERT_EQ(error_of("[mqtt]\nmax_message_bytes = \"1MiB\"\n", config), "");
  EXPECT_EQ(config.max_message_bytes, 1u << 20);
  EXPECT_NE(error_of("[mqtt]\nmax_message_bytes = \"100KiB\"\n").find("mqtt.max_message_bytes"),
            std::string::npos);
  EXPECT_NE(error_of("[mqtt]\nmax_message_bytes = \"1GiB\"\n").find("mqtt.max_message_bytes"),
            std::string::npos);
}

TEST(CollectorStorageConfig, PostgresNeedsADsnAndAnUnknownKindIsRefused) {
  const std::string e = error_of("[storage]\nkind = \"postgres\"\n");
  EXPECT_NE(e.find("c.toml:2"), std::string::npos) << e;
  EXPECT_NE(e.find("storage.dsn"), std::string::npos) << e;
  const std::string k = error_of("[storage]\nkind = \"mysql\"\n");
  EXPECT_NE(k.find("storage.kind"), std::string::npos) << k;
  EXPECT_NE(k.find("postgres"), std::string::npos) << k;  // the choices are listed
  CollectorConfig config;
  ASSERT_EQ(error_of("[storage]\nkind = \"postgres\"\ndsn = \"host=db dbname=outpost\"\n", config),
            "");
  EXPECT_EQ(config.kind, "postgres");
  EXPECT_EQ(config.dsn, "host=db dbname=outpost");
  CollectorConfig defaults;
  ASSERT_EQ(error_of("", defaults), "");
  EXPECT_EQ(defaults.kind, "sqlite");
}

TEST(CollectorStorageConfig, ThePasswordComesFromItsFileElseTheEnvironment) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("outpost_pgpass_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "pass") << "s3cret\nignored\n";
  ::setenv("OUTPOST_POSTGRES_PASSWORD", "from-env", 1);
  CollectorConfig from_file;
  ASSERT_EQ(error_of("[storage]\nkind = \"postgres\"\ndsn = \"host=db\"\npassword_file = \"" +
                         (dir / "pass").string() + "\"\n",
                     from_file),
            "");
  EXPECT_EQ(from_file.postgres_password, "s3cret");
  CollectorConfig from_env;
  ASSERT_EQ(error_of("[storage]\nkind = \"postgres\"\ndsn = \"host=db\"\n", from_env), "");
  EXPECT_EQ(from_env.postgres_password, "from-env");
  ::unsetenv("OUTPOST_POSTGRES_PASSWORD");
  const std::string e =
      error_of("[storage]\npassword_file = \"" + (dir / "none").string() + "\"\n");
  EXPECT_NE(e.find("c.toml:2"), std::string::npos) << e;
  EXPECT_NE(e.find("storage.password_file"), std::string::npos) << e;
  std::filesystem::remove_all(dir);
}

TEST(CollectorStorageConfig, ADsnIsShownWithoutItsPassword) {
  EXPECT_EQ(redacted_dsn("host=db password=hunter2 dbname=x"), "host=db password=*** dbname=x");
  EXPECT_EQ(redacted_dsn("password = 'two words \\' x' host=db"), "password = *** host=db");
  EXPECT_EQ(redacted_dsn("host=db user=passwordless"), "host=db user=passwordless");
  EXPECT_EQ(redacted_dsn("postgresql://u:hunter2@db:5432/x?sslmode=require&password=p2"),
            "postgresql://u:***@db:5432/x?sslmode=require&password=***");
  EXPECT_EQ(redacted_dsn("postgres://db/x"), "postgres://db/x");
  // A dsn in a config error is hidden like a password (it may hold one).
  const std::string e = error_of("[storage]\ndsn = 42\n");
  EXPECT_NE(e.find("storage.dsn"), std::string::npos) << e;
}

TEST(CollectorConsoleConfig, OffByDefaultAndTheTokenComesFromTheKeyItsFileOrTheEnvironment) {
  CollectorConfig none;
  ASSERT_EQ(error_of("", none), "");
  EXPECT_EQ(none.console_listen, "");
  EXPECT_EQ(none.console_token, "");

  CollectorConfig keyed;
  ASSERT_EQ(
      error_of("[console]\nlisten = \"127.0.0.1:8088\"\ntoken = \"0123456789abcdef\"\n", keyed),
      "");
  EXPECT_EQ(keyed.console_listen, "127.0.0.1:8088");
  EXPECT_EQ(keyed.console_token, "0123456789abcdef");

  const auto dir =
      std::filesystem::temp_directory_path() / ("outpost_console_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "token") << "fedcba9876543210fedc\r\nignored\n";
  CollectorConfig from_file;
  ASSERT_EQ(error_of("[console]\nlisten = \"127.0.0.1:8088\"\ntoken_file = \"" +
                         (dir / "token").string() + "\"\n",
                     from_file),
            "");
  EXPECT_EQ(from_file.console_token, "fedcba9876543210fedc");

  ::setenv("OUTPOST_CONSOLE_TOKEN", "from-the-environment", 1);
  CollectorConfig from_env;
  ASSERT_EQ(error_of("[console]\nlisten = \"127.0.0.1:8088\"\n", from_env), "");
  EXPECT_EQ(from_env.console_token, "from-the-environment");
  ::unsetenv("OUTPOST_CONSOLE_TOKEN");

  const std::string missing =
      error_of("[console]\ntoken_file = \"" + (dir / "none").string() + "\"\n");
  EXPECT_NE(missing.find("console.token_file"), std::string::npos) << missing;
  EXPECT_NE(missing.find("cannot read"), std::string::npos) << missing;
  std::filesystem::remove_all(dir);
}

TEST(CollectorConsoleConfig, AShortTokenTwoTokensOrABadAddressAreRefused) {
  std::string e = error_of("[console]\ntoken = \"short\"\n");
  EXPECT_NE(e.find("console.token"), std::string::npos) << e;
  EXPECT_NE(e.find("at least 16 characters"), std::string::npos) << e;
  e = error_of("[console]\ntoken = \"0123456789abcdef\"\ntoken_file = \"/x\"\n");
  EXPECT_NE(e.find("not both"), std::string::npos) << e;
  e = error_of("[console]\nlisten = \"localhost:8088\"\n");
  EXPECT_NE(e.find("console.listen"), std::string::npos) << e;
  e = error_of("[console]\nlisten = \"127.0.0.1:8088\"\ncolour = \"red\"\n");
  EXPECT_NE(e.find("console.colour"), std::string::npos) << e;
}

}  // namespace
}  // namespace outpost::collector
