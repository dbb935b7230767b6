// A minimal HTTP/1.1 server for the metrics endpoint: GET <path> answered by a handler.
//
// Runs on the io_context's thread; the handler is called there too. One request per
// connection, requests over 8 KiB or slower than 5 s are dropped: it serves a scraper
// on the local machine, not the internet.
#pragma once

#include <boost/asio.hpp>
#include <functional>
#include <string>

#include "outpost/common/result.h"

namespace outpost::common {

class HttpServer {
 public:
  using Handler = std::function<std::string()>;  // returns the body for GET `path`

  HttpServer(boost::asio::io_context& io, std::string path, Handler handler);

  // Binds and starts accepting. Fails with a clear message if the port is taken.
  common::Status<> listen(const std::string& host, uint16_t port);
  void close();

 private:
  void accept();

  boost::asio::io_context& io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::string path_;
  Handler handler_;
};

}  // namespace outpost::common
