// The agent's datagram inputs (UDP and a Unix socket), read on a thread of their own.
//
// Device programs send fire-and-forget: whatever the kernel's receive buffer cannot hold
// while nobody reads is lost before the agent sees it. So reading never waits for the
// store: this thread only receives and hands each datagram to a handler (which parses
// and queues it, see InputQueue). Loss the agent cannot prevent is still made visible:
// kernel_drops() reads the kernel's drop count of each socket (SO_MEMINFO), and the
// input thread logs a warning when a datagram arrives after a drop (SO_RXQ_OVFL).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "outpost/common/result.h"

namespace outpost::agent {

class DatagramInput {
 public:
  struct Options {
    std::string udp_listen;            // "host:port" with a literal address; "" = off
    std::string unix_socket;           // datagram socket path; "" = off
    uint32_t unix_socket_mode = 0660;  // the socket file's permissions
    std::string unix_socket_group;     // its group; "" = the process's own
    // SO_RCVBUF request. net.core.rmem_max caps it unless the agent has CAP_NET_ADMIN
    // (SO_RCVBUFFORCE, as systemd-journald does); the kernel doubles what it grants.
    int receive_buffer_bytes = 16 << 20;
  };

  // Called on the input thread for every datagram. The view is valid during the call
  // only. `truncated`: the datagram was larger than the 64 KiB buffer and is cut.
  using Handler = std::function<void(std::string_view datagram, bool truncated)>;

  // Binds the sockets and asks for large receive buffers. A socket file a killed run left
  // behind (nobody reads it) is replaced; one another process still reads is refused, as is a
  // path that is not a socket. Fails, naming the socket, if one cannot be bound, or its mode
  // or group cannot be set.
  static common::Result<std::unique_ptr<DatagramInput>> open(const Options& options);

  // Stops the thread, closes the sockets and removes the Unix socket file, if the file at the
  // path is still the one it bound (never another process's socket).
  ~DatagramInput();
  DatagramInput(const DatagramInput&) = delete;
  DatagramInput& operator=(const DatagramInput&) = delete;

  // Starts the input thread; `handler` runs on it until stop(). Call once.
  void start(Handler handler);

  // Stops reading and joins the thread: the handler is not called after this returns.
  // A handler blocked in InputQueue::push must be released first (InputQueue::close).
  void stop();

  // Datagrams the kernel dropped on a full receive buffer since the sockets were
  // opened, summed over both. Any thread (one getsockopt per socket).
  uint64_t kernel_drops() const;
  // The receive buffer the kernel granted the UDP socket (0 without one), for the log.
  int udp_receive_buffer_bytes() const { return udp_rcvbuf_; }

 private:
  DatagramInput() = default;
  void run();
  // Reads what `fd` has queued, at most a bounded number of datagrams per call, without
  // waiting; returns how many it read (0 for an input that is off).
  int drain(int fd, uint32_t& last_drop_count);

  int udp_fd_ = -1;
  int unix_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: stop() writes it
  int udp_rcvbuf_ = 0;
  std::string unix_path_;
  dev_t unix_dev_ = 0;  // the socket file bound, to remove only that one
  ino_t unix_ino_ = 0;
  Handler handler_;
  std::vector<char> buffer_;
  uint32_t udp_drops_seen_ = 0;  // last cumulative SO_RXQ_OVFL value per socket
  uint32_t unix_drops_seen_ = 0;
  std::chrono::steady_clock::time_point last_drop_warning_{};
  std::thread thread_;
};

}  // namespace outpost::agent
