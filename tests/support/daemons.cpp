// Test support: starting our own programs on ports nobody else holds.
#include "support/daemons.h"

#include <signal.h>

#include <algorithm>
#include <fstream>
#include <regex>
#include <sstream>

namespace outpost::test_support {

std::map<std::string, int> assign_ports(const std::filesystem::path& config,
                                        const std::vector<PortKey>& keys) {
  std::map<std::string, int> ports;
  std::istringstream in(read_text(config));
  std::string out;
  const std::regex line_re(R"re(^(\s*)([a-z_]+)(\s*=\s*)"127\.0\.0\.1:\d+"(.*)$)re");
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_match(line, m, line_re)) {
      const std::string key = m[2];
      const bool wanted =
          std::any_of(keys.begin(), keys.end(), [&](const PortKey& k) { return k.key == key; });
      if (wanted) {
        int port = candidate_port();
        while (std::any_of(ports.begin(), ports.end(), [&](auto& p) { return p.second == port; })) {
          port = candidate_port();
        }
        ports[key] = port;
        line = std::string(m[1]) + key + std::string(m[3]) + "\"127.0.0.1:" + std::to_string(port) +
               "\"" + std::string(m[4]);
      }
    }
    out += line + "\n";
  }
  std::ofstream(config) << out;
  return ports;
}

bool holds_ports(pid_t pid, const std::vector<PortKey>& keys,
                 const std::map<std::string, int>& ports) {
  const auto tcp = listening_tcp_ports(pid);
  const auto udp = bound_udp_ports(pid);
  for (const PortKey& k : keys) {
    const auto it = ports.find(k.key);
    if (it == ports.end()) continue;
    const auto& held = k.udp ? udp : tcp;
    if (std::find(held.begin(), held.end(), it->second) == held.end()) return false;
  }
  return true;
}

bool wait_logged(Process& process, const std::filesystem::path& log, const std::string& ready,
                 std::size_t before, std::chrono::milliseconds timeout, std::string& error) {
  const auto is_ready = [&] { return count_in_file(log, ready) > before; };
  if (wait_until([&] { return is_ready() || !process.running(); }, timeout) && is_ready()) {
    return true;
  }
  error = std::string(process.running() ? "did not log '" + ready + "' in time" : "exited") + ": " +
          read_text(log);
  return false;
}

std::size_t taken_port_reports(const std::filesystem::path& log) {
  return count_in_file(log, "Address already in use");
}

std::unique_ptr<Process> start_on_free_ports(
    const std::vector<std::string>& argv, const std::filesystem::path& config,
    const std::vector<PortKey>& keys, const std::filesystem::path& log, const std::string& ready,
    std::chrono::milliseconds timeout, std::map<std::string, int>& ports, std::string& error) {
  constexpr int kAttempts = 20;  // each one fails only if another process holds a candidate
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    ports = assign_ports(config, keys);
    const std::size_t ready_before = count_in_file(log, ready);
    const std::size_t taken_before = taken_port_reports(log);
    auto process = std::make_unique<Process>(argv, log);
    if (wait_logged(*process, log, ready, ready_before, timeout, error)) {
      if (holds_ports(process->pid(), keys, ports)) return process;
      error = "ready, but the kernel does not show it holding its ports: " + read_text(log);
      process->stop(SIGKILL);
      return nullptr;
    }
    process->stop(SIGKILL);
    if (taken_port_reports(log) == taken_before) {
      error = argv.front() + " " + error;
      return nullptr;
    }
  }
  error = argv.front() + ": its ports were taken " + std::to_string(kAttempts) + " times";
  return nullptr;
}

std::unique_ptr<Process> start_outpost_agent(const std::vector<std::string>& argv,
                                             const std::filesystem::path& config,
                                             const std::filesystem::path& log, AgentPorts& ports,
                                             std::string& error) {
  std::map<std::string, int> bound;
  auto p = start_on_free_ports(argv, config, kAgentPorts, log, kAgentReady,
                               std::chrono::seconds(15), bound, error);
  ports = {bound.count("udp_listen") ? bound["udp_listen"] : 0,
           bound.count("listen") ? bound["listen"] : 0};
  return p;
}

std::unique_ptr<Process> start_outpost_collector(const std::vector<std::string>& argv,
                                                 const std::filesystem::path& config,
                                                 const std::filesystem::path& log,
                                                 int& metrics_port, std::string& error) {
  std::map<std::string, int> bound;
  auto p = start_on_free_ports(argv, config, kCollectorPorts, log, kCollectorReady,
                               std::chrono::seconds(20), bound, error);
  metrics_port = bound.count("listen") ? bound["listen"] : 0;
  return p;
}

}  // namespace outpost::test_support
