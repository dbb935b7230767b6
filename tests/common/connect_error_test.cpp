// The words for a failed broker connection: each cause names what to check, never the password.
#include "outpost/common/connect_error.h"

#include <gtest/gtest.h>

namespace outpost::common {
namespace {

MqttSettings with(std::string user, std::string ca = "") {
  MqttSettings s;
  s.username = std::move(user);
  s.password = "s3cret";
  s.ca_file = std::move(ca);
  return s;
}

TEST(ConnectFailure, ConnackRefusalsInWords) {
  EXPECT_EQ(describe_connect_failure({5, "CONNACK return code", ""}, with("gw")),
            "not authorised (CONNACK 5): the broker refused these credentials (check "
            "mqtt.username, mqtt.password and the broker's ACL)");
  EXPECT_NE(describe_connect_failure({5, "", ""}, with("")).find("mqtt.username, none is set"),
            std::string::npos);
  EXPECT_NE(describe_connect_failure({4, "", ""}, with("gw")).find("bad user name or password"),
            std::string::npos);
  EXPECT_NE(describe_connect_failure({2, "", ""}, with("gw")).find("mqtt.client_id"),
            std::string::npos);
  for (int rc : {1, 2, 3, 4, 5}) {
    EXPECT_EQ(describe_connect_failure({rc, "", ""}, with("gw")).find("s3cret"), std::string::npos);
  }
}

TEST(ConnectFailure, TlsDnsAndRefused) {
  EXPECT_EQ(
      describe_connect_failure({-1, "", "broker.invalid: Name or service not known"}, with("")),
      "cannot resolve the broker's host: broker.invalid: Name or service not known");
  EXPECT_EQ(describe_connect_failure({-1, "TCP/TLS connect failure", ""}, with("")),
            "no connection: refused, host unreachable or no answer (TCP/TLS connect failure)");
  EXPECT_NE(describe_connect_failure({-1, "TCP/TLS connect failure", ""}, with("", "ca.pem"))
                .find("or the TLS handshake failed (the broker's certificate verified with "
                      "mqtt.ca_file ca.pem"),
            std::string::npos);
}

TEST(ConnectFailure, BrokerHost) {
  EXPECT_EQ(broker_host("tcp://broker.lan:1883"), "broker.lan");
  EXPECT_EQ(broker_host("ssl://[::1]:8883"), "::1");
  EXPECT_EQ(broker_host("mqtt://10.0.0.1"), "10.0.0.1");
  EXPECT_EQ(broker_host("tcp://u:p@h:1/x"), "h");
}

}  // namespace
}  // namespace outpost::common
