// Tests of outpost-agent's configuration: the documented example, defaults, cross-key errors.
#include "outpost/agent/config.h"

#include <gtest/gtest.h>

#include "outpost/common/codec.h"

namespace outpost::agent {
namespace {

std::string error_of(std::string_view toml) {
  auto reader = common::ConfigReader::parse_string(toml, "agent.toml");
  if (!reader.ok()) return reader.error().to_string();
  AgentConfig config;
  auto s = read_agent_config(reader.value(), config);
  return s.ok() ? "" : s.error().to_string();
}

TEST(AgentConfig, TheDocumentedExampleIsValidAndMatchesTheDefaults) {
  auto reader =
      common::ConfigReader::load_file(std::string(OUTPOST_SOURCE_DIR) + "/docs/agent.toml");
  ASSERT_TRUE(reader.ok()) << reader.error().to_string();
  AgentConfig from_file;
  auto s = read_agent_config(reader.value(), from_file);
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  AgentConfig defaults;
  finish_agent_defaults(defaults);
  EXPECT_EQ(from_file.site, defaults.site);
  EXPECT_EQ(from_file.device_id, defaults.device_id);
  EXPECT_EQ(from_file.udp_listen, defaults.udp_listen);
  EXPECT_EQ(from_file.store.path, defaults.store.path);
  EXPECT_EQ(from_file.flush_interval_us, defaults.flush_interval_us);
  EXPECT_EQ(from_file.store.max_bytes, defaults.store.max_bytes);
  EXPECT_EQ(from_file.batch.max_readings, defaults.batch.max_readings);
  EXPECT_EQ(from_file.max_batch_delay_us, defaults.max_batch_delay_us);
  EXPECT_EQ(from_file.broker, defaults.broker);
  EXPECT_EQ(from_file.reconnect_min_us, defaults.reconnect_min_us);
  EXPECT_EQ(from_file.reconnect_max_us, defaults.reconnect_max_us);
  EXPECT_EQ(from_file.status_interval_us, defaults.status_interval_us);
  EXPECT_EQ(from_file.data_delivery, defaults.data_delivery);
  EXPECT_EQ(from_file.ack_timeout_us, defaults.ack_timeout_us);
  EXPECT_EQ(from_file.system_interval_us, defaults.system_interval_us);
  EXPECT_EQ(from_file.system_disk_paths, defaults.system_disk_paths);
  EXPECT_EQ(from_file.metrics_listen, defaults.metrics_listen);
  EXPECT_EQ(from_file.tail_files, defaults.tail_files);
  EXPECT_EQ(from_file.tail_from_beginning, defaults.tail_from_beginning);
  EXPECT_EQ(from_file.tail_interval_us, defaults.tail_interval_us);
  EXPECT_EQ(from_file.tail_severity, defaults.tail_severity);
  EXPECT_EQ(from_file.max_awaiting_ack, defaults.max_awaiting_ack);
  EXPECT_EQ(from_file.line.precision, defaults.line.precision);
  EXPECT_EQ(from_file.line.min_timestamp_us, defaults.line.min_timestamp_us);
  // The agent refuses below the collector's own default floor.
  EXPECT_EQ(defaults.line.min_timestamp_us, common::ValidationOptions{}.min_timestamp_us);
}

TEST(AgentConfig, DefaultsFillDeviceAndClientIds) {
  AgentConfig c;
  finish_agent_defaults(c);
  EXPECT_TRUE(common::is_valid_id(c.device_id)) << c.device_id;
  EXPECT_EQ(c.client_id, "outpost-default-" + c.device_id);
}

TEST(AgentConfig, ValuesAreRead) {
  auto reader = common::ConfigReader::parse_string(
      "[device]\nsite = \"plant-7\"\nid = \"gw-9\"\n[mqtt]\ndata_delivery = \"fire_and_forget\"\n"
      "[store]\npolicy = \"drop_newest\"\nmax_bytes = \"1MiB\"\n",
      "agent.toml");
  ASSERT_TRUE(reader.ok());
  AgentConfig c;
  ASSERT_TRUE(read_agent_config(reader.value(), c).ok());
  EXPECT_EQ(c.site, "plant-7");
  EXPECT_EQ(c.device_id, "gw-9");
  EXPECT_EQ(c.client_id, "outpost-plant-7-gw-9");
  EXPECT_EQ(c.data_delivery, DeliveryMode::kFireAndForget);
  EXPECT_EQ(c.store.policy, DropPolicy::kDropNewest);
  EXPECT_EQ(c.store.max_bytes, 1u << 20);
}

TEST(AgentConfig, TheLineTimestampFloorIsADate) {
  auto reader =
      common::ConfigReader::parse_string("[inputs]\nmin_timestamp = 1970-01-01\n", "agent.toml");
  ASSERT_TRUE(reader.ok());
  AgentConfig c;
  ASSERT_TRUE(read_agent_config(reader.value(), c).ok());
  EXPECT_EQ(c.line.min_timestamp_us, 0);
  EXPECT_NE(error_of("[inputs]\nmin_timestamp = \"2000-01-01\"\n").find("inputs.min_timestamp"),
            std::string::npos);
}

TEST(AgentConfig, CrossKeyErrorsPointAtTheKeyToChange) {
  EXPECT_EQ(error_of("[device]\nsite = \"events\"\n"),
            "agent.toml:2:8: device.site: must be 1-64 characters of [A-Za-z0-9._-] and not "
            "'events'");
  EXPECT_EQ(error_of("[device]\nid = \"gw/1\"\n"),
            "agent.toml:2:6: device.id: must be 1-64 characters of [A-Za-z0-9._-]");
  EXPECT_EQ(error_of("[inputs]\nudp_listen = \"\"\nunix_socket = \"\"\n"),
            "agent.toml:2:14: inputs.udp_listen: no input: set inputs.udp_listen or "
            "inputs.unix_socket");
  EXPECT_EQ(error_of("[mqtt]\nreconnect_min = \"10s\"\nreconnect_max = \"5s\"\n"),
            "agent.toml:3:17: mqtt.reconnect_max: is below mqtt.reconnect_min");
  EXPECT_EQ(error_of("[mqtt]\nbroker = \"localhost:1883\"\n"),
            "agent.toml:2:10: mqtt.broker: must start with tcp://, ssl://, mqtt:// or mqtts://");
  EXPECT_EQ(error_of("[mqtt]\ncert_file = \"a.pem\"\n"),
            "agent.toml:2:13: mqtt.cert_file: cert_file and key_file go together");
  EXPECT_EQ(error_of("[mqtt]\ndata_delivery = \"exactly_once\"\n"),
            "agent.toml:2:17: mqtt.data_delivery: expected one of fire_and_forget, "
            "at_least_once, end_to_end, got \"exactly_once\"");
  EXPECT_EQ(error_of("[batch]\nmax_readings = 5000\n"),
            "agent.toml:2:16: batch.max_readings: 5000 is out of range [1, 1000]");
}

TEST(AgentConfig, PasswordNeverAppearsInErrors) {
  const std::string e = error_of("[mqtt]\npassword = 12345\n");
  EXPECT_NE(e.find("mqtt.password: expected a string"), std::string::npos) << e;
  EXPECT_EQ(e.find("12345"), std::string::npos) << e;
}

}  // namespace
}  // namespace outpost::agent
