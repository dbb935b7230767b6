// Test support: real child processes, free loopback ports, a mosquitto broker, deadlines.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace outpost::test_support {

// Waits until `condition` holds, polling every 10 ms, for at most `timeout`.
// Returns whether it held: tests wait on conditions, never on fixed sleeps.
bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

// A free TCP/UDP port on 127.0.0.1 (bound and released; good enough for tests).
int free_port();

// A child process; killed with SIGKILL on destruction if still running.
class Process {
 public:
  // Starts `argv[0]` with stdout and stderr appended to `log_file`.
  Process(std::vector<std::string> argv, const std::filesystem::path& log_file);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  // Sends `signal` and waits (up to `timeout`) for the exit; returns the exit code,
  // 128 + signal number if killed by a signal, or -1 if still running.
  int stop(int signal, std::chrono::milliseconds timeout = std::chrono::seconds(10));

 private:
  pid_t pid_ = -1;
  int status_ = 0;
  bool reaped_ = false;
};

// A mosquitto broker on a free loopback port, with its own config and log in `dir`.
class Mosquitto {
 public:
  explicit Mosquitto(std::filesystem::path dir, bool persistence = false);
  ~Mosquitto();
  // Adds a TLS listener (server certificate signed by a CA made for the test, see
  // make_test_ca) on tls_port(), beside the plain one. Call before start().
  void enable_tls(const std::filesystem::path& ca_dir);
  int tls_port() const { return tls_port_; }
  // Refuses anonymous clients; only `user`/`password` may connect. Call before start().
  void require_password(const std::string& user, const std::string& password);
  void start();  // waits until it accepts connections
  void stop();   // SIGTERM and wait
  void kill();   // SIGKILL
  int port() const { return port_; }
  std::string uri() const { return "tcp://127.0.0.1:" + std::to_string(port_); }

 private:
  std::filesystem::path dir_;
  int port_;
  int tls_port_ = 0;
  std::filesystem::path tls_dir_;
  std::filesystem::path password_file_;
  bool persistence_;
  std::unique_ptr<Process> process_;
};

// Makes ca.pem/ca.key and a server.pem/server.key for 127.0.0.1 signed by it in `dir`,
// with openssl. Returns false (and the reason in `error`) if openssl fails.
bool make_test_ca(const std::filesystem::path& dir, std::string& error);

// Sends one UDP datagram to 127.0.0.1:port.
void send_udp(int port, const std::string& datagram);

// GET http://127.0.0.1:port<path>; the raw response (status line, headers, body), "" on error.
std::string http_get(int port, const std::string& path);

// The whole text of a file ("" if missing).
std::string read_text(const std::filesystem::path& path);

// One sample from Prometheus text exposition, by its full name with labels
// ("outpost_agent_persisted_total", "x_total{reason=\"oldest\"}"); nullopt if absent.
std::optional<double> prometheus_sample(const std::string& text, const std::string& name);

// CPU seconds (user + system) process `pid` has used so far, from /proc/PID/stat; 0 if gone.
double cpu_seconds(pid_t pid);

// A "VmRSS:"-style line of /proc/PID/status ("VmHWM:" is the peak RSS), in MB; 0 if absent.
double status_mb(pid_t pid, const std::string& field);

}  // namespace outpost::test_support
