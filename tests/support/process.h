// Test support: real child processes, free loopback ports, a mosquitto broker, deadlines.
#pragma once

#include <netinet/in.h>
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace outpost::test_support {

// Waits until `condition` holds, polling every 10 ms, for at most `timeout`.
// Returns whether it held: tests wait on conditions, never on fixed sleeps.
bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

// 127.0.0.1:port as the socket calls take it.
sockaddr_in loopback_address(int port);

// Ports. A port picked by binding port 0 and releasing it races under `ctest -j`: anyone may
// take it before the child binds it. Neither mosquitto nor our programs bind port 0 on
// request (mosquitto's "listener 0" is a Unix socket; our configs refuse port 0), so a child
// gets a candidate port, and a try that finds it taken is repeated on another (Mosquitto
// below, daemons.h). Candidates lie below the kernel's ephemeral range (ip_local_port_range),
// where no port-0 bind and no outgoing connection of anyone lands: only other candidates
// compete, and the kernel's socket tables (/proc/PID/fd, /proc/PID/net/{tcp,udp}) tell
// whether the child, not a neighbour, holds the port.
//
// A random candidate port (for one try).
int candidate_port();
// The 127.0.0.1 TCP ports process `pid` listens on, ascending (empty if it is gone).
std::vector<int> listening_tcp_ports(pid_t pid);
// The 127.0.0.1 UDP ports process `pid` has bound and not connected, ascending.
std::vector<int> bound_udp_ports(pid_t pid);
// The local 127.0.0.1 ports of process `pid`'s established TCP connections, ascending.
std::vector<int> connected_tcp_ports(pid_t pid);

// A loopback TCP port that is bound but never listens, for "nothing answers there": a
// connection to it is refused, and no other socket can take the port while this lives.
class RefusingPort {
 public:
  RefusingPort();  // throws std::runtime_error if it cannot bind
  ~RefusingPort();
  RefusingPort(const RefusingPort&) = delete;
  RefusingPort& operator=(const RefusingPort&) = delete;
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// How often `needle` occurs in the file (0 if it is missing): "the Nth start" of a log.
std::size_t count_in_file(const std::filesystem::path& path, const std::string& needle);

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

// A mosquitto broker on loopback, with its own config and log (mosquitto.log) in `dir`.
//
// mosquitto can neither bind port 0 ("listener 0" means a Unix socket in 2.0) nor be handed
// a socket, and it reports only the port it was given. So start() gives it a candidate port
// and, when another process already holds it (mosquitto exits with "Address already in
// use"), another, a bounded number of times. It is up once the kernel shows *this* process
// listening on the port: a connect that succeeds may reach a neighbour's broker. The ports
// are fixed by the first successful start (clients hold them): port() and uri() are valid
// from then on, and a restart binds the same ports again.
class Mosquitto {
 public:
  struct Options {
    bool persistence = false;
    std::string extra_config;           // lines appended to mosquitto.conf
    std::vector<std::string> launcher;  // prepended to mosquitto's argv (e.g. setpriv ...)
    std::chrono::milliseconds start_timeout{15'000};
    int first_port = 0;  // tried before the random candidates (a test of the retry); 0: none
  };
  explicit Mosquitto(std::filesystem::path dir, bool persistence = false);
  Mosquitto(std::filesystem::path dir, Options options);
  ~Mosquitto();
  // Applies from the next start().
  void set_persistence(bool on) { options_.persistence = on; }
  // Adds a TLS listener (server certificate signed by a CA made for the test, see
  // make_test_ca) on tls_port(), beside the plain one. Call before start().
  void enable_tls(const std::filesystem::path& ca_dir);
  int tls_port() const { return tls_port_; }
  // Refuses anonymous clients; only `user`/`password` may connect. Call before start().
  void require_password(const std::string& user, const std::string& password);
  // Waits until it listens on its ports; throws std::runtime_error (with its log) if it
  // does not come up.
  void start();
  void stop(std::chrono::milliseconds timeout = std::chrono::seconds(10));  // SIGTERM and wait
  void kill();                                                              // SIGKILL
  bool running() const { return process_ != nullptr; }
  int port() const { return port_; }
  std::string uri() const { return "tcp://127.0.0.1:" + std::to_string(port_); }
  std::filesystem::path log_file() const { return dir_ / "mosquitto.log"; }

 private:
  void write_config() const;
  // One launch on the current ports: true once up, false if a port was taken.
  bool launch();

  std::filesystem::path dir_;
  Options options_;
  int port_ = 0;
  int tls_port_ = 0;
  bool tls_ = false;
  bool ports_fixed_ = false;  // a start succeeded: clients know these ports
  std::filesystem::path tls_dir_;
  std::filesystem::path password_file_;
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
