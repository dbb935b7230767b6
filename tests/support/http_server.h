// A minimal HTTP/1.1 server on 127.0.0.1 for tests (webhook receivers): its own thread, a
// reply chosen per request, every request recorded.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace outpost::test_support {

struct Received {
  std::chrono::steady_clock::time_point at;  // when the request had been read
  std::string target;
  std::string body;
  std::map<std::string, std::string> headers;  // names lowercased

  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

// What the server does with the n-th request: answer with `status` (and a Retry-After header
// when `retry_after` is set), or never answer.
struct Reply {
  Reply(int status_ = 200, bool hang_ = false, std::string retry_after_ = "")
      : status(status_), hang(hang_), retry_after(std::move(retry_after_)) {}
  int status;
  bool hang;
  std::string retry_after;
};

// A minimal HTTP/1.1 server on 127.0.0.1 with its own thread; records every request.
class TestHttpServer {
 public:
  explicit TestHttpServer(std::function<Reply(std::size_t)> reply);
  ~TestHttpServer();

  int port() const { return acceptor_.local_endpoint().port(); }
  std::string url(const std::string& path = "/hook") const {
    return "http://127.0.0.1:" + std::to_string(port()) + path;
  }
  std::size_t count() const {
    std::lock_guard lock(mutex_);
    return requests_.size();
  }
  std::vector<Received> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }

 private:
  struct Session;

  void accept();

  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::function<Reply(std::size_t)> reply_;
  std::vector<std::shared_ptr<Session>> hung_;  // server thread only
  mutable std::mutex mutex_;
  std::vector<Received> requests_;
  std::thread thread_;
};

}  // namespace outpost::test_support
