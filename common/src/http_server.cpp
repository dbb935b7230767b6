// The programs' local HTTP endpoint: /metrics, health and status.
#include "outpost/common/http_server.h"

#include <memory>

namespace outpost::common {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

constexpr std::size_t kMaxRequestBytes = 8192;

const char* reason_phrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 503:
      return "Service Unavailable";
    default:
      return status < 400 ? "OK" : "Error";
  }
}

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const HttpServer& server)
      : socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        request_(kMaxRequestBytes),
        server_(server) {}

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
    const HttpResponse r = server_.answer(method, target);
    response_ = "HTTP/1.1 " + std::to_string(r.status) + " " + reason_phrase(r.status) +
                "\r\nContent-Type: " + r.content_type +
                "\r\nContent-Length: " + std::to_string(r.body.size()) +
                (r.status == 405 ? "\r\nAllow: GET, HEAD" : "") + "\r\nConnection: close\r\n\r\n" +
                (method == "HEAD" ? "" : r.body);
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
  const HttpServer& server_;
  std::string response_;
};

}  // namespace

HttpServer::HttpServer(asio::io_context& io) : io_(io), acceptor_(io) {}

void HttpServer::route(std::string path, Handler handler) {
  routes_[std::move(path)] = std::move(handler);
}

void HttpServer::route_metrics(std::string path, std::function<std::string()> body) {
  route(std::move(path), [body = std::move(body)] {
    return HttpResponse{200, kPrometheusContentType, body()};
  });
}

HttpResponse HttpServer::answer(std::string_view method, std::string_view target) const {
  if (method != "GET" && method != "HEAD") {
    return HttpResponse{405, "text/plain; charset=utf-8", "only GET and HEAD\n"};
  }
  const std::string_view path = target.substr(0, target.find('?'));
  if (const auto it = routes_.find(path); it != routes_.end()) return it->second();
  std::string known;
  for (const auto& [p, handler] : routes_) known += (known.empty() ? "" : ", ") + p;
  return HttpResponse{404, "text/plain; charset=utf-8",
                      "not found; this server answers " + known + "\n"};
}

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

uint16_t HttpServer::port() const {
  boost::system::error_code ec;
  const auto endpoint = acceptor_.local_endpoint(ec);
  return ec ? 0 : endpoint.port();
}

void HttpServer::close() {
  boost::system::error_code ec;
  acceptor_.close(ec);
}

void HttpServer::accept() {
  acceptor_.async_accept([this](const boost::system::error_code& ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (!ec) std::make_shared<Session>(std::move(socket), *this)->start();
    accept();
  });
}

}  // namespace outpost::common
