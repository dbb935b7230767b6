// Test support: processes, ports, mosquitto, deadlines.
#include "support/process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
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

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    throw std::runtime_error("free_port: bind failed");
  }
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

Process::Process(std::vector<std::string> argv, const std::filesystem::path& log_file) {
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    const int log = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (log >= 0) {
      ::dup2(log, STDOUT_FILENO);
      ::dup2(log, STDERR_FILENO);
    }
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
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
    : dir_(std::move(dir)), port_(free_port()), persistence_(persistence) {
  std::filesystem::create_directories(dir_);
}

Mosquitto::~Mosquitto() {
  if (process_) process_->stop(SIGKILL);
}

void Mosquitto::enable_tls(const std::filesystem::path& ca_dir) {
  tls_dir_ = ca_dir;
  tls_port_ = free_port();
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

void Mosquitto::start() {
  const auto conf = dir_ / "mosquitto.conf";
  std::ofstream(conf) << "per_listener_settings false\n"
                      << "listener " << port_ << " 127.0.0.1\n"
                      << "allow_anonymous " << (password_file_.empty() ? "true" : "false") << "\n"
                      << "persistence " << (persistence_ ? "true" : "false") << "\n"
                      << "persistence_location " << dir_.string() << "/\n"
                      << "max_queued_messages 100000\n";
  if (!password_file_.empty()) {
    std::ofstream(conf, std::ios::app) << "password_file " << password_file_.string() << "\n";
  }
  if (tls_port_ != 0) {
    std::ofstream(conf, std::ios::app) << "listener " << tls_port_ << " 127.0.0.1\n"
                                       << "cafile " << (tls_dir_ / "ca.pem").string() << "\n"
                                       << "certfile " << (tls_dir_ / "server.pem").string() << "\n"
                                       << "keyfile " << (tls_dir_ / "server.key").string() << "\n";
  }
  process_ = std::make_unique<Process>(std::vector<std::string>{"mosquitto", "-c", conf.string()},
                                       dir_ / "mosquitto.log");
  const bool up = wait_until(
      [this] {
        const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = htons(static_cast<uint16_t>(port_));
        const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
        ::close(fd);
        return ok;
      },
      std::chrono::seconds(10));
  if (!up)
    throw std::runtime_error("mosquitto did not start: " + read_text(dir_ / "mosquitto.log"));
}

void Mosquitto::stop() {
  if (process_) process_->stop(SIGTERM);
  process_.reset();
}

void Mosquitto::kill() {
  if (process_) process_->stop(SIGKILL);
  process_.reset();
}

void send_udp(int port, const std::string& datagram) {
  const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  ::sendto(fd, datagram.data(), datagram.size(), 0, reinterpret_cast<sockaddr*>(&addr),
           sizeof addr);
  ::close(fd);
}

std::string http_get(int port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
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
