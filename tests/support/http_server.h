// A minimal HTTP/1.1 (or https) server on 127.0.0.1 for tests (webhook receivers): its own
// thread, a reply chosen per request, every request recorded.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
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

// The server's certificate chain and key (PEM files), for https.
struct TlsFiles {
  std::string certificate;
  std::string key;
};

// A minimal HTTP/1.1 server on 127.0.0.1 with its own thread; records every request. With
// `tls`, it speaks https only (a client that fails the handshake is never recorded).
class TestHttpServer {
 public:
  explicit TestHttpServer(std::function<Reply(std::size_t)> reply,
                          std::optional<TlsFiles> tls = std::nullopt);
  ~TestHttpServer();

  int port() const { return acceptor_.local_endpoint().port(); }
  std::string url(const std::string& path = "/hook", const std::string& host = "127.0.0.1") const {
    return std::string(tls_ ? "https://" : "http://") + host + ":" + std::to_string(port()) + path;
  }
  // TLS handshakes that failed (the client gave up on the certificate, for example).
  std::size_t failed_handshakes() const {
    std::lock_guard lock(mutex_);
    return failed_handshakes_;
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
  template <typename Stream>
  void serve(std::shared_ptr<Session> s, Stream& stream);

  boost::asio::io_context io_;
  std::unique_ptr<boost::asio::ssl::context> tls_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::function<Reply(std::size_t)> reply_;
  std::vector<std::shared_ptr<Session>> hung_;  // server thread only
  mutable std::mutex mutex_;
  std::vector<Received> requests_;
  std::size_t failed_handshakes_ = 0;
  std::thread thread_;
};

}  // namespace outpost::test_support
