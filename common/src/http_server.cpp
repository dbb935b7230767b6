// The metrics endpoint's HTTP server.
#include "outpost/common/http_server.h"

#include <memory>

namespace outpost::common {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

constexpr std::size_t kMaxRequestBytes = 8192;

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const std::string& path, const HttpServer::Handler& handler)
      : socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        request_(kMaxRequestBytes),
        path_(path),
        handler_(handler) {}

  void start() {
    auto self = shared_from_this();
    timer_.expires_after(std::chrono::seconds(5));
    timer_.async_wait([self](const boost::system::error_code& ec) {
      if (!ec) self->socket_.close();
    });
    asio::async_read_until(socket_, request_, "\r\n\r\n",
                           [self](const boost::system::error_code& ec, std::size_t) {
                             if (ec) {
                               self->timer_.cancel();
                               return;
                             }
                             self->respond();
                           });
  }

 private:
  void respond() {
    std::istream in(&request_);
    std::string method, target, version;
    in >> method >> target >> version;
    std::string status = "200 OK";
    std::string body;
    std::string type = "text/plain; version=0.0.4; charset=utf-8";
    if (method != "GET" && method != "HEAD") {
      status = "405 Method Not Allowed";
      body = "only GET\n";
      type = "text/plain";
    } else if (target != path_) {
      status = "404 Not Found";
      body = "metrics are at " + path_ + "\n";
      type = "text/plain";
    } else {
      body = handler_();
    }
    response_ = "HTTP/1.1 " + status + "\r\nContent-Type: " + type +
                "\r\nContent-Length: " + std::to_string(body.size()) +
                "\r\nConnection: close\r\n\r\n" + (method == "HEAD" ? "" : body);
    auto self = shared_from_this();
    asio::async_write(socket_, asio::buffer(response_),
                      [self](const boost::system::error_code&, std::size_t) {
                        boost::system::error_code ignored;
                        self->socket_.shutdown(tcp::socket::shutdown_both, ignored);
                        self->timer_.cancel();
                      });
  }

  tcp::socket socket_;
  asio::steady_timer timer_;
  asio::streambuf request_;
  const std::string& path_;
  const HttpServer::Handler& handler_;
  std::string response_;
};

}  // namespace

HttpServer::HttpServer(asio::io_context& io, std::string path, Handler handler)
    : io_(io), acceptor_(io), path_(std::move(path)), handler_(std::move(handler)) {}

common::Status<> HttpServer::listen(const std::string& host, uint16_t port) {
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  if (ec) return common::Error{"metrics: bad address " + host};
  const tcp::endpoint endpoint(address, port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return common::Error{"cannot serve metrics on " + host + ":" + std::to_string(port) + ": " +
                         ec.message()};
  }
  accept();
  return {};
}

void HttpServer::close() {
  boost::system::error_code ec;
  acceptor_.close(ec);
}

void HttpServer::accept() {
  acceptor_.async_accept([this](const boost::system::error_code& ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (!ec) std::make_shared<Session>(std::move(socket), path_, handler_)->start();
    accept();
  });
}

}  // namespace outpost::common
