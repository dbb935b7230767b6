// A TCP relay on loopback through which devices that will be "cut" reach the broker, so the
// simulator can kill such a connection without any MQTT DISCONNECT: it resets both TCP
// sockets, the broker sees the connection drop and publishes the device's last will.
// (Paho does not expose its socket; closing it under Paho's feet would race its threads.)
//
// Thread-safety: open_port() and cut() may be called from any thread; one relay thread
// moves the bytes. Nothing throws.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "outpost/common/result.h"

namespace outpost::sim {

class CutRelay {
 public:
  // Relays to the broker at `broker_uri` (tcp://host:port; host a dotted IPv4 address or
  // "localhost").
  static common::Result<std::unique_ptr<CutRelay>> start(const std::string& broker_uri);
  ~CutRelay();
  CutRelay(const CutRelay&) = delete;
  CutRelay& operator=(const CutRelay&) = delete;

  // A new listening port on 127.0.0.1 for one device; each accepted connection is relayed.
  common::Result<int> open_port();
  // Resets (RST) every relayed connection accepted on `port` and stops listening on it.
  void cut(int port);

 private:
  struct Pair {
    int client = -1;
    int upstream = -1;
    int port = 0;
  };
  CutRelay(uint32_t address, int port, int wake_read, int wake_write);
  void run();
  void wake();

  uint32_t address_;  // broker IPv4, network order
  int broker_port_;
  int wake_read_;
  int wake_write_;
  std::mutex mu_;
  std::map<int, int> listeners_;  // port -> listening fd
  std::vector<Pair> pairs_;
  std::vector<int> to_cut_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace outpost::sim
