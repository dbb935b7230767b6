// A minimal HTTP/1.1 server for the programs' local endpoint: /metrics, /healthz, /readyz,
// /status, each GET <path> answered by a handler.
//
// Runs on the io_context's thread; handlers are called there too. One request per
// connection, requests over 8 KiB or slower than 5 s are dropped: it serves a scraper or a
// probe on the local machine, not the internet. An unknown path is 404, a method other than
// GET or HEAD is 405 (with Allow).
#pragma once

#include <boost/asio.hpp>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "outpost/common/http_response.h"
#include "outpost/common/result.h"

namespace outpost::common {

class HttpServer {
 public:
  using Handler = std::function<HttpResponse()>;

  explicit HttpServer(boost::asio::io_context& io);

  // Answers GET and HEAD of `path` (the query string is ignored) with `handler`. Before listen().
  void route(std::string path, Handler handler);
  // `path` answered with Prometheus text exposition from `body`.
  void route_metrics(std::string path, std::function<std::string()> body);

  // The answer to one request: the route's, 404 for an unknown path, 405 for another method.
  // What each connection sends; public for tests.
  HttpResponse answer(std::string_view method, std::string_view target) const;

  // Binds and starts accepting. Fails with a clear message if the port is taken.
  common::Status<> listen(const std::string& host, uint16_t port);
  // The port bound by listen() (the kernel's choice when it was given 0); 0 before.
  uint16_t port() const;
  void close();

 private:
  void accept();

  boost::asio::io_context& io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::map<std::string, Handler, std::less<>> routes_;
};

}  // namespace outpost::common
