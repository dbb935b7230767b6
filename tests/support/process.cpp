// Test support: processes, ports, mosquitto, deadlines.
#include "support/process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace outpost::test_support {

bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

sockaddr_in loopback_address(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  return addr;
}

namespace {

// The inodes of process `pid`'s sockets, from its /proc/PID/fd links ("socket:[INODE]").
std::set<std::string> socket_inodes(pid_t pid) {
  std::set<std::string> out;
  std::error_code ec;
  const std::filesystem::path fds = "/proc/" + std::to_string(pid) + "/fd";
  for (std::filesystem::directory_iterator it(fds, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code link_ec;
    const std::string target = std::filesystem::read_symlink(it->path(), link_ec).string();
    if (!link_ec && target.starts_with("socket:[") && target.ends_with("]")) {
      out.insert(target.substr(8, target.size() - 9));
    }
  }
  return out;
}

// Local 127.0.0.1 ports in /proc/PID/net/<table> in socket state `state` (hex, as the kernel
// prints it) whose inode belongs to `pid`.
std::vector<int> ports_in(pid_t pid, const std::string& table, const std::string& state) {
  const auto inodes = socket_inodes(pid);
  std::set<int> ports;
  std::istringstream in(read_text("/proc/" + std::to_string(pid) + "/net/" + table));
  std::string line;
  std::getline(in, line);  // the header
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, st, queues, timer, retransmits, uid, timeout, inode;
    if (!(fields >> slot >> local >> remote >> st >> queues >> timer >> retransmits >> uid >>
          timeout >> inode)) {
      continue;
    }
    // "0100007F:1F90": the address in host order hex (127.0.0.1 on little-endian), the port.
    const auto colon = local.find(':');
    if (st != state || colon == std::string::npos || !inodes.count(inode)) continue;
    const auto address = std::stoul(local.substr(0, colon), nullptr, 16);
    if (ntohl(static_cast<uint32_t>(address)) != INADDR_LOOPBACK) continue;
    ports.insert(static_cast<int>(std::stoul(local.substr(colon + 1), nullptr, 16)));
  }
  return {ports.begin(), ports.end()};
}

}  // namespace

int candidate_port() {
  int low = 32768, high = 60999;
  std::istringstream(read_text("/proc/sys/net/ipv4/ip_local_port_range")) >> low >> high;
  const int top = std::max(low, 12000);
  static std::mt19937 rng(std::random_device{}() ^ static_cast<unsigned>(::getpid()));
  static std::mutex mu;
  std::lock_guard lock(mu);
  return std::uniform_int_distribution<int>(top - 10000, top - 1)(rng);
}

std::vector<int> listening_tcp_ports(pid_t pid) { return ports_in(pid, "tcp", "0A"); }

std::vector<int> bound_udp_ports(pid_t pid) { return ports_in(pid, "udp", "07"); }

std::vector<int> connected_tcp_ports(pid_t pid) { return ports_in(pid, "tcp", "01"); }

RefusingPort::RefusingPort() {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr = loopback_address(0);
  socklen_t len = sizeof addr;
  if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    if (fd_ >= 0) ::close(fd_);
    throw std::runtime_error("RefusingPort: cannot bind a loopback port");
  }
  port_ = ntohs(addr.sin_port);
}

RefusingPort::~RefusingPort() { ::close(fd_); }

std::size_t count_in_file(const std::filesystem::path& path, const std::string& needle) {
  const std::string text = read_text(path);
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

Process::Process(std::vector<std::string> argv, const std::filesystem::path& log_file) {
  // The constructor returns once the child has exec'd (the pipe's write end closes with
  // O_CLOEXEC): until then the child holds copies of the test's sockets, which must not be
  // taken for the child's own (listening_tcp_ports). An exec that fails sends its errno.
  int exec_pipe[2];
  if (::pipe2(exec_pipe, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    ::close(exec_pipe[0]);
    const int log = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (log >= 0) {
      ::dup2(log, STDOUT_FILENO);
      ::dup2(log, STDERR_FILENO);
    }
    // Nothing of the test's leaks into the child: an inherited listening socket (a test's
    // HTTP server, say) would hold its port open and show up among the child's ports.
    const int report = ::fcntl(exec_pipe[1], F_DUPFD_CLOEXEC, 3);
    ::close(exec_pipe[1]);
    if (report != 3 && ::dup3(report, 3, O_CLOEXEC) >= 0) ::close(report);
    if (::close_range(4, ~0U, 0) != 0) {
      for (int fd = 4; fd < 4096; ++fd) ::close(fd);
    }
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    const int error = errno;
    (void)!::write(3, &error, sizeof error);
    ::_exit(127);
  }
  ::close(exec_pipe[1]);
  int error = 0;
  ssize_t n;
  while ((n = ::read(exec_pipe[0], &error, sizeof error)) < 0 && errno == EINTR) {
  }
  ::close(exec_pipe[0]);
  if (n > 0) {
    running();  // reaps it
    throw std::runtime_error("cannot run " + argv.front() + ": " + std::strerror(error));
  }
}

Process::~Process() {
  if (running()) stop(SIGKILL);
}

bool Process::running() {
  if (reaped_) return false;
  if (::waitpid(pid_, &status_, WNOHANG) == pid_) reaped_ = true;
  return !reaped_;
}

int Process::stop(int signal, std::chrono::milliseconds timeout) {
  if (running()) ::kill(pid_, signal);
  if (!wait_until([this] { return !running(); }, timeout)) return -1;
  if (WIFEXITED(status_)) return WEXITSTATUS(status_);
  if (WIFSIGNALED(status_)) return 128 + WTERMSIG(status_);
  return -1;
}

Mosquitto::Mosquitto(std::filesystem::path dir, bool persistence)
    : Mosquitto(std::move(dir), [persistence] {
        Options o;
        o.persistence = persistence;
        return o;
      }()) {}

Mosquitto::Mosquitto(std::filesystem::path dir, Options options)
    : dir_(std::move(dir)), options_(std::move(options)) {
  std::filesystem::create_directories(dir_);
}

Mosquitto::~Mosquitto() {
  if (process_) process_->stop(SIGKILL);
}

void Mosquitto::enable_tls(const std::filesystem::path& ca_dir) {
  tls_dir_ = ca_dir;
  tls_ = true;
  tls_port_ = 0;  // chosen by the next start()
}

void Mosquitto::require_password(const std::string& user, const std::string& password) {
  password_file_ = dir_ / "passwords";
  const std::string cmd = "mosquitto_passwd -c -b " + password_file_.string() + " " + user + " " +
                          password + " >>" + (dir_ / "mosquitto.log").string() + " 2>&1";
  if (std::system(cmd.c_str()) != 0) throw std::runtime_error("mosquitto_passwd failed");
  // mosquitto started as root drops to its own user: it must be able to read the file.
  std::filesystem::permissions(
      password_file_, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
                          std::filesystem::perms::group_read | std::filesystem::perms::others_read);
}

bool make_test_ca(const std::filesystem::path& dir, std::string& error) {
  std::filesystem::create_directories(dir);
  const std::string d = dir.string();
  const std::string log = d + "/openssl.log";
  // The server certificate names 127.0.0.1 in its subject alternative names: clients that
  // check the host (X509_check_ip) look there, never at the CN.
  std::ofstream(d + "/san.ext") << "subjectAltName=IP:127.0.0.1\n";
  const std::string commands[] = {
      "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=outpost-test-ca -keyout " + d +
          "/ca.key -out " + d + "/ca.pem",
      "openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout " + d + "/server.key -out " +
          d + "/server.csr",
      "openssl x509 -req -in " + d + "/server.csr -CA " + d + "/ca.pem -CAkey " + d +
          "/ca.key -CAcreateserial -days 2 -extfile " + d + "/san.ext -out " + d + "/server.pem",
  };
  for (const auto& c : commands) {
    if (std::system((c + " >>" + log + " 2>&1").c_str()) != 0) {
      error = c + ": " + read_text(log);
      return false;
    }
  }
  // mosquitto started as root drops to its own user: let it read these throwaway keys.
  for (const char* f : {"/ca.key", "/server.key"}) {
    std::filesystem::permissions(
        d + f, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
                   std::filesystem::perms::group_read | std::filesystem::perms::others_read);
  }
  return true;
}

namespace {

bool holds(const std::vector<int>& ports, int port) {
  return std::find(ports.begin(), ports.end(), port) != ports.end();
}

}  // namespace

void Mosquitto::write_config() const {
  std::ofstream conf(dir_ / "mosquitto.conf");
  conf << "per_listener_settings false\n"
       << "listener " << port_ << " 127.0.0.1\n"
       << "allow_anonymous " << (password_file_.empty() ? "true" : "false") << "\n"
       << "persistence " << (options_.persistence ? "true" : "false") << "\n"
       << "persistence_location " << dir_.string() << "/\n"
       << "max_queued_messages 100000\n";
  // Started as root, mosquitto would drop to its own user once its listeners are open: the
  // kernel then hides its /proc/PID/fd (no longer dumpable), where start() sees its ports.
  if (::geteuid() == 0) conf << "user root\n";
  if (!password_file_.empty()) conf << "password_file " << password_file_.string() << "\n";
  if (tls_) {
    conf << "listener " << tls_port_ << " 127.0.0.1\n"
         << "cafile " << (tls_dir_ / "ca.pem").string() << "\n"
         << "certfile " << (tls_dir_ / "server.pem").string() << "\n"
         << "keyfile " << (tls_dir_ / "server.key").string() << "\n";
  }
  conf << options_.extra_config;
}

bool Mosquitto::launch() {
  write_config();
  const std::size_t taken_before = count_in_file(log_file(), "Address already in use");
  std::vector<std::string> argv = options_.launcher;
  argv.insert(argv.end(), {"mosquitto", "-c", (dir_ / "mosquitto.conf").string()});
  process_ = std::make_unique<Process>(argv, log_file());
  bool up = false;
  wait_until(
      [&] {
        if (!process_->running()) return true;
        const auto ports = listening_tcp_ports(process_->pid());
        up = holds(ports, port_) && (!tls_ || holds(ports, tls_port_));
        return up;
      },
      options_.start_timeout);
  if (up) return true;
  const int status = process_->stop(SIGKILL);
  process_.reset();
  if (count_in_file(log_file(), "Address already in use") > taken_before) return false;
  throw std::runtime_error("mosquitto did not start (exit status " + std::to_string(status) +
                           "): " + read_text(log_file()));
}

void Mosquitto::start() {
  // A bounded number of tries: each candidate is taken only if another broker holds it.
  constexpr int kAttempts = 20;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    if (!ports_fixed_) {
      port_ = attempt == 0 && options_.first_port ? options_.first_port : candidate_port();
    }
    if (tls_ && tls_port_ == 0) tls_port_ = candidate_port();
    if (tls_ && tls_port_ == port_) {
      tls_port_ = 0;
      continue;
    }
    if (launch()) {
      ports_fixed_ = true;
      return;
    }
    // A restart on the port the clients know: whoever took it meanwhile may let it go.
    if (ports_fixed_) std::this_thread::sleep_for(std::chrono::milliseconds(250));  // a pace
    if (tls_) tls_port_ = 0;
  }
  throw std::runtime_error("mosquitto: no free port after " + std::to_string(kAttempts) +
                           " tries: " + read_text(log_file()));
}

void Mosquitto::stop(std::chrono::milliseconds timeout) {
  if (process_) process_->stop(SIGTERM, timeout);
  process_.reset();
}

void Mosquitto::kill() {
  if (process_) process_->stop(SIGKILL);
  process_.reset();
}

void send_udp(int port, const std::string& datagram) {
  const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in addr = loopback_address(port);
  ::sendto(fd, datagram.data(), datagram.size(), 0, reinterpret_cast<sockaddr*>(&addr),
           sizeof addr);
  ::close(fd);
}

std::string http_get(int port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr = loopback_address(port);
  std::string response;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string request = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    if (::send(fd, request.data(), request.size(), 0) == static_cast<ssize_t>(request.size())) {
      char buf[4096];
      ssize_t n;
      while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) response.append(buf, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  return response;
}

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::optional<double> prometheus_sample(const std::string& text, const std::string& name) {
  const std::string key = "\n" + name + " ";
  const auto at = text.find(key);
  if (at == std::string::npos) return std::nullopt;
  return std::strtod(text.c_str() + at + key.size(), nullptr);
}

double cpu_seconds(pid_t pid) {
  const std::string stat = read_text("/proc/" + std::to_string(pid) + "/stat");
  const auto close = stat.rfind(')');  // the command name may hold spaces and parentheses
  if (close == std::string::npos) return 0;
  std::istringstream fields(stat.substr(close + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::stod(field);  // utime, stime
  }
  return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

double status_mb(pid_t pid, const std::string& field) {
  std::istringstream in(read_text("/proc/" + std::to_string(pid) + "/status"));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(field, 0) == 0) return std::strtod(line.c_str() + field.size(), nullptr) / 1024;
  }
  return 0;
}

}  // namespace outpost::test_support
