// The collector's intake keys: topic filters checked at load, the catch-all and what it is
// subscribed in place of, the message size bound.
#include "outpost/collector/config.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace outpost::collector
