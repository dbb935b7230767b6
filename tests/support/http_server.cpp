// The test HTTP server (http_server.h).
#include "support/http_server.h"

#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cctype>

namespace outpost::test_support {

namespace asio = boost::asio;
namespace http = boost::beast::http;
namespace ssl = asio::ssl;
using boost::system::error_code;
using tcp = asio::ip::tcp;

struct TestHttpServer::Session {
  explicit Session(tcp::socket s) : socket(std::move(s)) {}
  tcp::socket socket;
  std::unique_ptr<ssl::stream<tcp::socket&>> tls;
  boost::beast::flat_buffer buffer;
  http::request<http::string_body> request;
  http::response<http::string_body> response;
};

TestHttpServer::TestHttpServer(std::function<Reply(std::size_t)> reply, std::optional<TlsFiles> tls)
    : acceptor_(io_, tcp::endpoint(asio::ip::address_v4::loopback(), 0)), reply_(std::move(reply)) {
  if (tls) {
    tls_ = std::make_unique<ssl::context>(ssl::context::tls_server);
    tls_->use_certificate_chain_file(tls->certificate);
    tls_->use_private_key_file(tls->key, ssl::context::pem);
  }
  accept();
  thread_ = std::thread([this] { io_.run(); });
}
TestHttpServer::~TestHttpServer() {
  io_.stop();
  thread_.join();
}

void TestHttpServer::accept() {
  acceptor_.async_accept([this](error_code ec, tcp::socket socket) {
    if (ec) return;
    auto s = std::make_shared<Session>(std::move(socket));
    if (tls_) {
      s->tls = std::make_unique<ssl::stream<tcp::socket&>>(s->socket, *tls_);
      s->tls->async_handshake(ssl::stream_base::server, [this, s](error_code ec) {
        if (ec) {
          std::lock_guard lock(mutex_);
          ++failed_handshakes_;
          return;
        }
        serve(s, *s->tls);
      });
    } else {
      serve(s, s->socket);
    }
    accept();
  });
}

template <typename Stream>
void TestHttpServer::serve(std::shared_ptr<Session> s, Stream& stream) {
  http::async_read(stream, s->buffer, s->request, [this, s, &stream](error_code ec, std::size_t) {
    if (ec) return;
    Received r;
    r.at = std::chrono::steady_clock::now();
    r.target = std::string(s->request.target());
    r.body = s->request.body();
    for (const auto& field : s->request) {
      std::string name(field.name_string());
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      r.headers[name] = std::string(field.value());
    }
    std::size_t n;
    {
      std::lock_guard lock(mutex_);
      n = requests_.size();
      requests_.push_back(std::move(r));
    }
    const Reply reply = reply_(n);
    if (reply.hang) {
      hung_.push_back(s);  // keep the connection open, say nothing
      return;
    }
    s->response.result(static_cast<unsigned>(reply.status));
    s->response.version(11);
    if (!reply.retry_after.empty()) s->response.set(http::field::retry_after, reply.retry_after);
    if (reply.status != 204) s->response.body() = reply.status < 300 ? "ok" : "nope";
    s->response.keep_alive(false);
    s->response.prepare_payload();
    http::async_write(stream, s->response, [s](error_code, std::size_t) {
      error_code ignored;
      s->socket.shutdown(tcp::socket::shutdown_send, ignored);
    });
  });
}

}  // namespace outpost::test_support
