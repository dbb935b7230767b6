// A TCP relay on loopback in front of the broker, so the chaos suite can cut the network.
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <thread>

namespace outpost::chaos {

// Listens on a free 127.0.0.1 port and forwards every connection to 127.0.0.1:target_port.
// A cut behaves like `iptables -j REJECT --reject-with tcp-reset` on the broker's port: every
// open connection is reset (RST both ways, bytes not yet forwarded are lost) and new
// connections are refused until heal(). While healthy, a connection whose target refuses
// (broker down) is reset at once, so clients see the broker's state through the relay.
// A stall behaves like `iptables -j DROP`: nothing moves either way and nothing is reset, so
// clients only notice through their keepalive; connection attempts complete in the kernel's
// backlog but get no answer. heal() ends a stall: forwarding resumes, including whatever the
// clients sent meanwhile and the connections they opened (and perhaps abandoned).
// All methods may be called from any thread; forwarding runs on the relay's own thread.
class Relay {
 public:
  explicit Relay(int target_port);  // throws std::runtime_error if it cannot listen
  ~Relay();
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  int port() const { return port_; }
  std::string uri() const;
  void cut();    // returns once every connection is reset and the port refuses
  void stall();  // returns once nothing is forwarded or accepted any more
  void heal();   // ends a cut or a stall; returns once the port accepts again
  bool is_cut() const { return cut_; }

 private:
  void run();
  void wake();
  void request(int command);  // 1 cut, 2 heal, 3 stop, 4 stall; waits until the thread did it

  const int target_port_;
  int port_ = 0;
  int listen_fd_ = -1;  // owned by the relay thread
  int wake_pipe_[2] = {-1, -1};
  std::atomic<bool> cut_{false};
  bool stalled_ = false;  // relay thread only
  std::mutex mu_;
  std::atomic<int> command_{0};
  std::atomic<int> done_{0};
  std::thread thread_;
};

}  // namespace outpost::chaos
