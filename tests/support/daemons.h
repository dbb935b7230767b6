// Test support: real outpost-agent and outpost-collector processes, started on a config,
// waited for until they say they are ready, on ports nobody else holds.
//
// Our programs refuse port 0 in their configs (common/net.h: a configured port is a port
// an operator chose), so, like mosquitto (process.h), they get candidate ports below the
// kernel's ephemeral range, written into the config before each try; a try that exits with
// "Address already in use" is retried with new ones, a bounded number of times. Once a
// program is ready, the kernel must show *it* holding each port: a test never talks to a
// neighbour's process by mistake.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "support/process.h"

namespace outpost::test_support {

// What our programs log once they are ready. The agent logs kAgentReady when its inputs and
// metrics endpoint are bound; the collector logs kCollectorReady when the broker has
// acknowledged its subscriptions, so a message published from then on reaches it.
inline constexpr const char* kAgentReady = "started:";
inline constexpr const char* kCollectorReady = "subscribed to";

// A config key whose value is "127.0.0.1:PORT", a port the program binds.
struct PortKey {
  std::string key;   // e.g. "udp_listen", "listen" (a line `key = "127.0.0.1:PORT"`)
  bool udp = false;  // bound UDP socket; else a listening TCP socket
};
inline const std::vector<PortKey> kAgentPorts = {{"udp_listen", true}, {"listen", false}};
inline const std::vector<PortKey> kCollectorPorts = {{"listen", false}};

// Gives each `key = "127.0.0.1:PORT"` line of `config` named in `keys` a new candidate port
// (lines with other values, e.g. "" for off, are left alone). Returns key -> port.
std::map<std::string, int> assign_ports(const std::filesystem::path& config,
                                        const std::vector<PortKey>& keys);

// Whether process `pid` holds every port of `ports` (as `keys` say: UDP bound, TCP listening).
bool holds_ports(pid_t pid, const std::vector<PortKey>& keys,
                 const std::map<std::string, int>& ports);

// Waits up to `timeout` until `ready` occurs in `log` more than `before` times (the count
// before `process` started). False, with the reason and the log in `error`, if the process
// exits first or time runs out.
bool wait_logged(Process& process, const std::filesystem::path& log, const std::string& ready,
                 std::size_t before, std::chrono::milliseconds timeout, std::string& error);

// The number of times a program said a port was taken: a try to repeat on other ports.
std::size_t taken_port_reports(const std::filesystem::path& log);

// Starts `argv` (a program reading `config`, perhaps behind a launcher) with its output
// appended to `log`, on fresh ports for `keys` (see above), and waits up to `timeout` per try
// until it logs `ready`. Returns the process and fills `ports`, or nullptr with the reason
// and the log in `error`.
std::unique_ptr<Process> start_on_free_ports(
    const std::vector<std::string>& argv, const std::filesystem::path& config,
    const std::vector<PortKey>& keys, const std::filesystem::path& log, const std::string& ready,
    std::chrono::milliseconds timeout, std::map<std::string, int>& ports, std::string& error);

// The ports of a started agent or collector; 0 where the config turns it off.
struct AgentPorts {
  int udp = 0;
  int metrics = 0;
};
std::unique_ptr<Process> start_outpost_agent(const std::vector<std::string>& argv,
                                             const std::filesystem::path& config,
                                             const std::filesystem::path& log, AgentPorts& ports,
                                             std::string& error);
std::unique_ptr<Process> start_outpost_collector(const std::vector<std::string>& argv,
                                                 const std::filesystem::path& config,
                                                 const std::filesystem::path& log,
                                                 int& metrics_port, std::string& error);

}  // namespace outpost::test_support
