// The words for a failed broker connection.
#include "outpost/common/connect_error.h"

namespace outpost::common {

std::string describe_connect_failure(const ConnectFailure& f, const MqttSettings& s) {
  switch (f.return_code) {
    case 1:
      return "refused by the broker (CONNACK 1): it does not accept MQTT 3.1.1";
    case 2:
      return "refused by the broker (CONNACK 2): it rejects the client id (mqtt.client_id)";
    case 3:
      return "refused by the broker (CONNACK 3): the MQTT service is unavailable";
    case 4:
      return "refused by the broker (CONNACK 4): bad user name or password (check mqtt.username "
             "and mqtt.password)";
    case 5:
      return "not authorised (CONNACK 5): the broker refused these credentials (check " +
             std::string(s.username.empty() ? "mqtt.username, none is set" : "mqtt.username") +
             ", mqtt.password and the broker's ACL)";
    default:
      break;
  }
  if (!f.resolve_error.empty()) return "cannot resolve the broker's host: " + f.resolve_error;
  if (f.return_code == -1 && !f.message.empty()) {
    std::string tls;
    if (uses_tls(s)) {
      tls = ", or the TLS handshake failed (the broker's certificate verified with " +
            (s.ca_file.empty() ? std::string("the system's trust store")
                               : "mqtt.ca_file " + s.ca_file) +
            (s.verify_hostname ? ", its name checked: verify_hostname" : "") + ")";
    }
    return "no connection: refused, host unreachable or no answer" + tls + " (" + f.message + ")";
  }
  return "MQTT error " + std::to_string(f.return_code) +
         (f.message.empty() ? std::string() : ": " + f.message);
}

std::string broker_host(const std::string& broker) {
  const std::size_t scheme = broker.find("://");
  std::string rest = scheme == std::string::npos ? broker : broker.substr(scheme + 3);
  rest = rest.substr(0, rest.find('/'));
  if (const std::size_t at = rest.rfind('@'); at != std::string::npos) rest = rest.substr(at + 1);
  if (!rest.empty() && rest.front() == '[') return rest.substr(1, rest.find(']') - 1);
  return rest.substr(0, rest.find(':'));
}

}  // namespace outpost::common
