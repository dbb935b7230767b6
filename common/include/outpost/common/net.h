// Network addresses in configuration files: "host:port" with a literal IP address.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace outpost::common {

struct HostPort {
  std::string host;  // an IPv4 or IPv6 address (no names: nothing to resolve at start)
  uint16_t port = 0;
};

// Parses "127.0.0.1:8094" or "[::1]:8094"; nullopt if malformed or the port is 0.
std::optional<HostPort> parse_host_port(std::string_view text);

}  // namespace outpost::common
