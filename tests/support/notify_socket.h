// Test support: an AF_UNIX datagram socket standing in for systemd's notification socket
// (NOTIFY_SOCKET), read on a thread of its own so that a sender never finds it full.
#pragma once

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace outpost::test_support {

class NotifySocket {
 public:
  // Bound at `path` (a file), or, when `abstract`, at the abstract name `path` (no file).
  // Throws std::runtime_error if it cannot bind.
  explicit NotifySocket(const std::string& path, bool abstract = false);
  ~NotifySocket();
  NotifySocket(const NotifySocket&) = delete;
  NotifySocket& operator=(const NotifySocket&) = delete;

  // As NOTIFY_SOCKET spells it: the path, or "@name".
  const std::string& address() const { return address_; }

  // Every datagram received so far, in order.
  std::vector<std::string> messages();
  // Waits up to `timeout` for a datagram, received at index `from` or later, for which `match`
  // holds; its index, or nullopt.
  std::optional<std::size_t> wait_for(const std::function<bool(const std::string&)>& match,
                                      std::size_t from, std::chrono::milliseconds timeout);
  // Waits for a datagram from index `from` on that has `line` as one of its lines.
  std::optional<std::size_t> wait_for_line(const std::string& line, std::size_t from,
                                           std::chrono::milliseconds timeout);
  // How many datagrams from index `from` on have `line` as one of their lines.
  std::size_t count_line(const std::string& line, std::size_t from = 0);

 private:
  void read_loop();

  int fd_ = -1;
  std::string address_;
  std::string path_;  // the file to remove, "" when abstract
  std::mutex mutex_;
  std::condition_variable arrived_;
  std::vector<std::string> messages_;
  bool stop_ = false;
  std::thread reader_;
};

// Whether `message` (KEY=value lines) has `line` as one of its lines.
bool has_line(const std::string& message, const std::string& line);
// The value of `key` in `message` ("STATUS" -> what follows "STATUS="), nullopt if absent.
std::optional<std::string> value_of(const std::string& message, const std::string& key);

}  // namespace outpost::test_support
