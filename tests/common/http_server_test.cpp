// The local HTTP endpoint: the request parser (good requests and every kind of bad one),
// routing (exact, prefix, 404, 405 with Allow), and real requests over loopback: bodies, limits,
// headers, and Server-Sent Events streams.
#include "outpost/common/http_server.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "support/process.h"

namespace outpost::common {
namespace {

class HttpRouting : public ::testing::Test {
 protected:
  HttpRouting() : server_(io_) {
    server_.route_metrics("/metrics", [] { return std::string("x_total 1\n"); });
    server_.route("/healthz", [this] {
      return HttpResponse{healthy_ ? 200 : 503, "text/plain", "h\n"};
    });
  }
  boost::asio::io_context io_;
  HttpServer server_;
  std::atomic<bool> healthy_{true};
};

TEST_F(HttpRouting, EachPathGetsItsHandler) {
  auto r = server_.answer("GET", "/metrics");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "x_total 1\n");
  EXPECT_EQ(r.content_type, kPrometheusContentType);
  EXPECT_EQ(server_.answer("GET", "/healthz").status, 200);
  healthy_ = false;
  EXPECT_EQ(server_.answer("GET", "/healthz").status, 503);
  EXPECT_EQ(server_.answer("HEAD", "/metrics").status, 200);
}

TEST_F(HttpRouting, QueryStringIsIgnored) {
  EXPECT_EQ(server_.answer("GET", "/metrics?x=1").body, "x_total 1\n");
}

TEST_F(HttpRouting, UnknownPathIs404AndNamesThePaths) {
  const auto r = server_.answer("GET", "/metric");
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(r.body.find("/healthz, /metrics"), std::string::npos) << r.body;
  EXPECT_EQ(server_.answer("GET", "/").status, 404);
  EXPECT_EQ(server_.answer("GET", "/metrics/").status, 404);
}

TEST_F(HttpRouting, OtherMethodsAre405) {
  for (const char* method : {"POST", "PUT", "DELETE", "get", ""}) {
    EXPECT_EQ(server_.answer(method, "/metrics").status, 405) << method;
  }
}

TEST_F(HttpRouting, RealRequestsOverLoopback) {
  ASSERT_TRUE(server_.listen("127.0.0.1", 0).ok());
  const int port = server_.port();
  ASSERT_GT(port, 0);
  std::thread loop([this] { io_.run(); });
  const std::string ok = test_support::http_get(port, "/metrics");
  const std::string missing = test_support::http_get(port, "/nope");
  healthy_ = false;  // read on the io thread: the next request sees it
  const std::string sick = test_support::http_get(port, "/healthz");
  boost::asio::post(io_, [this] {
    server_.close();
    io_.stop();
  });
  loop.join();
  EXPECT_TRUE(ok.starts_with("HTTP/1.1 200 OK\r\n")) << ok;
  EXPECT_NE(ok.find("\r\n\r\nx_total 1\n"), std::string::npos) << ok;
  EXPECT_NE(ok.find("Content-Type: text/plain; version=0.0.4"), std::string::npos) << ok;
  EXPECT_TRUE(missing.starts_with("HTTP/1.1 404 Not Found\r\n")) << missing;
  EXPECT_TRUE(sick.starts_with("HTTP/1.1 503 Service Unavailable\r\n")) << sick;
}

TEST(HttpParse, ReadsMethodPathQueryHeadersAndCookies) {
  auto r = parse_request(
      "GET /api/v1/devices/d%201/series?sensor=temp+1&from=1&from=2&empty=&flag HTTP/1.1\r\n"
      "Host: 127.0.0.1:8088\r\nX-Thing:   spaced  \r\nCookie: a=1\r\ncookie: "
      "outpost_csrf=\"abc\"\r\n"
      "Accept: a\r\nAccept: b\r\n\r\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  const HttpRequest& q = r.value();
  EXPECT_EQ(q.method, "GET");
  EXPECT_EQ(q.path, "/api/v1/devices/d 1/series");
  EXPECT_EQ(q.param("sensor"), "temp 1");
  EXPECT_EQ(q.param("from"), "2");  // the last of a repeated name
  EXPECT_EQ(q.param("empty"), "");
  EXPECT_EQ(q.param("flag"), "");
  EXPECT_FALSE(q.param("missing"));
  EXPECT_EQ(q.header("host"), "127.0.0.1:8088");
  EXPECT_EQ(q.header("x-thing"), "spaced");
  EXPECT_EQ(q.header("accept"), "a, b");
  EXPECT_EQ(q.cookie("a"), "1");
  EXPECT_EQ(q.cookie("outpost_csrf"), "abc");
  EXPECT_FALSE(q.cookie("b"));
  // A '+' in the path is a plus; bare LF line ends are taken.
  auto plus = parse_request("POST /a+b HTTP/1.0\nContent-Length: 12\n\n");
  ASSERT_TRUE(plus.ok());
  EXPECT_EQ(plus.value().path, "/a+b");
  EXPECT_EQ(plus.value().header("content-length"), "12");
}

TEST(HttpParse, EachKindOfBadRequestHasItsStatusAndAClearMessage) {
  const std::pair<const char*, int> cases[] = {
      {"GET /\r\n\r\n", 400},
      {"GET  / HTTP/1.1\r\n\r\n", 400},
      {"GET / HTTP/1.1 extra\r\n\r\n", 400},
      {"G(T / HTTP/1.1\r\n\r\n", 400},
      {"GET / HTTP/2\r\n\r\n", 505},
      {"GET / FTP/1.0\r\n\r\n", 400},
      {"GET http://example.com/ HTTP/1.1\r\n\r\n", 400},
      {"GET /%zz HTTP/1.1\r\n\r\n", 400},
      {"GET /%4 HTTP/1.1\r\n\r\n", 400},
      {"GET /a%00b HTTP/1.1\r\n\r\n", 400},
      {"GET /?q=%g0 HTTP/1.1\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nno colon\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\n: empty name\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 501},
      {"POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\n", 400},
      {"", 400},
  };
  for (const auto& [text, status] : cases) {
    auto r = parse_request(text);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.error().status, status) << text;
    EXPECT_FALSE(r.error().message.empty()) << text;
  }
}

TEST(HttpParse, PercentDecoding) {
  EXPECT_EQ(percent_decode("%41b+c", true), "Ab c");
  EXPECT_EQ(percent_decode("%41b+c", false), "Ab+c");
  EXPECT_EQ(percent_decode("%e2%9c%93", false), "\xe2\x9c\x93");
  EXPECT_FALSE(percent_decode("%", false));
  EXPECT_FALSE(percent_decode("%4", false));
  EXPECT_FALSE(percent_decode("%zz", false));
  EXPECT_FALSE(percent_decode("%00", false));
  EXPECT_STREQ(reason_phrase(413), "Content Too Large");
  EXPECT_STREQ(reason_phrase(431), "Request Header Fields Too Large");
}

HttpRequest request(std::string method, std::string target) {
  auto r = parse_request(method + " " + target + " HTTP/1.1\r\n\r\n");
  return r.value();
}

TEST(HttpDispatch, ExactRoutesWinOverPrefixesAndTheLongestPrefixWins) {
  boost::asio::io_context io;
  HttpServer server(io);
  const auto says = [](std::string what) {
    return [what](const HttpRequest& r) { return HttpResponse{200, "text/plain", what + r.path}; };
  };
  server.route_prefix("GET", "/api/", says("api:"));
  server.route_prefix("GET", "/api/v1/", says("v1:"));
  server.route_prefix("POST", "/api/v1/", says("post:"));
  server.route("GET", "/api/v1/session", says("session:"));
  EXPECT_EQ(server.answer(request("GET", "/api/v1/session")).body, "session:/api/v1/session");
  EXPECT_EQ(server.answer(request("GET", "/api/v1/fleet")).body, "v1:/api/v1/fleet");
  EXPECT_EQ(server.answer(request("GET", "/api/v2")).body, "api:/api/v2");
  EXPECT_EQ(server.answer(request("POST", "/api/v1/x")).body, "post:/api/v1/x");
  EXPECT_EQ(server.answer(request("HEAD", "/api/v1/x")).status, 200);
  // A prefix route needs something after the prefix.
  EXPECT_EQ(server.answer(request("GET", "/api/")).status, 404);
  const HttpResponse r = server.answer(request("DELETE", "/api/v1/x"));
  EXPECT_EQ(r.status, 405);
  ASSERT_EQ(r.headers.size(), 1u);
  EXPECT_EQ(r.headers[0].first, "Allow");
  EXPECT_EQ(r.headers[0].second, "GET, HEAD, POST");
  const HttpResponse s = server.answer(request("POST", "/api/v1/session"));
  EXPECT_EQ(s.status, 405);
  EXPECT_EQ(s.headers[0].second, "GET, HEAD");
}

TEST(HttpDispatch, AHandlerThatThrowsIs500AndNothingElse) {
  boost::asio::io_context io;
  HttpServer server(io);
  server.route("GET", "/boom",
               [](const HttpRequest&) -> HttpResponse { throw std::runtime_error("kaboom"); });
  const HttpResponse r = server.answer(request("GET", "/boom"));
  EXPECT_EQ(r.status, 500);
  EXPECT_NE(r.body.find("kaboom"), std::string::npos);
}

// A connected client socket to 127.0.0.1:port whose reads give up after 200 ms.
int connect_to(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr = test_support::loopback_address(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{0, 200'000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

// Sends `text` and reads until the server closes (at most 10 s).
std::string round_trip(int port, const std::string& text) {
  const int fd = connect_to(port);
  if (fd < 0) return "";
  std::string out;
  if (::send(fd, text.data(), text.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(text.size())) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    char buf[4096];
    while (std::chrono::steady_clock::now() < deadline) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n == 0) break;
      if (n > 0) out.append(buf, static_cast<std::size_t>(n));
    }
  }
  ::close(fd);
  return out;
}

class HttpOverLoopback : public ::testing::Test {
 protected:
  HttpOverLoopback() : server_(io_) {}
  void start() {
    ASSERT_TRUE(server_.listen("127.0.0.1", 0).ok());
    port_ = server_.port();
    loop_ = std::thread([this] { io_.run(); });
  }
  ~HttpOverLoopback() override {
    boost::asio::post(io_, [this] {
      server_.close();
      io_.stop();
    });
    if (loop_.joinable()) loop_.join();
  }
  boost::asio::io_context io_;
  HttpServer server_;
  std::thread loop_;
  int port_ = 0;
};

TEST_F(HttpOverLoopback, APostBodyReachesItsHandlerAndHeadersAreSent) {
  server_.route("POST", "/echo", [](const HttpRequest& r) {
    return HttpResponse{200,
                        "application/json",
                        "[" + r.body + "]",
                        {{"Set-Cookie", "k=v; Path=/"}, {"Cache-Control", "no-store"}}};
  });
  start();
  const std::string r = round_trip(
      port_, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n{\"ids\":[1]}");
  EXPECT_TRUE(r.starts_with("HTTP/1.1 200 OK\r\n")) << r;
  EXPECT_NE(r.find("\r\nSet-Cookie: k=v; Path=/\r\n"), std::string::npos) << r;
  EXPECT_NE(r.find("\r\nCache-Control: no-store\r\n"), std::string::npos) << r;
  EXPECT_NE(r.find("\r\nX-Content-Type-Options: nosniff\r\n"), std::string::npos) << r;
  EXPECT_TRUE(r.ends_with("\r\n\r\n[{\"ids\":[1]}]")) << r;
}

TEST_F(HttpOverLoopback, LimitsAndBadRequestsAreAnsweredAndTheServerGoesOn) {
  server_.route("POST", "/p", [](const HttpRequest&) { return HttpResponse{200, "t", "ok"}; });
  server_.set_body_limit(100);
  start();
  EXPECT_TRUE(round_trip(port_, "POST /p HTTP/1.1\r\nContent-Length: 101\r\n\r\n")
                  .starts_with("HTTP/1.1 413 "));
  EXPECT_TRUE(round_trip(port_, "GET /" + std::string(9000, 'a') + " HTTP/1.1\r\n\r\n")
                  .starts_with("HTTP/1.1 431 "));
  EXPECT_TRUE(round_trip(port_, "GET /%zz HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 400 "));
  EXPECT_TRUE(round_trip(port_, "GET / HTTP/3\r\n\r\n").starts_with("HTTP/1.1 505 "));
  EXPECT_TRUE(round_trip(port_, "POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
                  .starts_with("HTTP/1.1 501 "));
  // A body sent in pieces after the head is waited for.
  const int fd = connect_to(port_);
  ASSERT_GE(fd, 0);
  const std::string head = "POST /p HTTP/1.1\r\nContent-Length: 4\r\n\r\nab";
  ASSERT_EQ(::send(fd, head.data(), head.size(), 0), static_cast<ssize_t>(head.size()));
  ASSERT_EQ(::send(fd, "cd", 2, 0), 2);
  std::string out;
  ASSERT_TRUE(test_support::wait_until(
      [&] {
        char buf[512];
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n > 0) out.append(buf, static_cast<std::size_t>(n));
        return out.ends_with("ok");
      },
      std::chrono::seconds(5)))
      << out;
  ::close(fd);
  EXPECT_TRUE(round_trip(port_, "POST /p HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
                  .starts_with("HTTP/1.1 200 "));
}

TEST_F(HttpOverLoopback, AnEventStreamSendsInOrderAndSeesTheClientLeave) {
  std::shared_ptr<HttpEventStream> stream;
  std::atomic<bool> got{false};
  server_.route_stream(
      "/stream",
      [&](std::shared_ptr<HttpEventStream> s) {
        s->send("fleet", "{\"a\":1}");
        s->send("event", "line1\nline2");
        s->comment("keep-alive");
        stream = std::move(s);
        got = true;
      },
      1);
  start();
  const int fd = connect_to(port_);
  ASSERT_GE(fd, 0);
  const std::string req = "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(::send(fd, req.data(), req.size(), 0), static_cast<ssize_t>(req.size()));
  std::string seen;
  const std::string want =
      "event: fleet\ndata: {\"a\":1}\n\nevent: event\ndata: line1\ndata: line2\n\n: keep-alive\n\n";
  ASSERT_TRUE(test_support::wait_until(
      [&] {
        char buf[4096];
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n > 0) seen.append(buf, static_cast<std::size_t>(n));
        return seen.find(want) != std::string::npos;
      },
      std::chrono::seconds(5)))
      << seen;
  EXPECT_TRUE(seen.starts_with("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n")) << seen;
  EXPECT_EQ(seen.find("Content-Length"), std::string::npos);
  // A second stream is over the limit of one.
  EXPECT_TRUE(round_trip(port_, req).starts_with("HTTP/1.1 503 "));
  // The client leaves: the stream closes, and sending to it does nothing.
  ::close(fd);
  ASSERT_TRUE(test_support::wait_until(
      [&] {
        std::atomic<bool> open{true};
        std::atomic<bool> done{false};
        boost::asio::post(io_, [&] {
          open = stream->open();
          done = true;
        });
        while (!done) std::this_thread::yield();
        return !open;
      },
      std::chrono::seconds(5)));
  boost::asio::post(io_, [&] { stream->send("fleet", "after"); });
  // Its place is free again.
  const int again = connect_to(port_);
  ASSERT_GE(again, 0);
  ASSERT_EQ(::send(again, req.data(), req.size(), 0), static_cast<ssize_t>(req.size()));
  std::string second;
  EXPECT_TRUE(test_support::wait_until(
      [&] {
        char buf[4096];
        const ssize_t n = ::recv(again, buf, sizeof buf, 0);
        if (n > 0) second.append(buf, static_cast<std::size_t>(n));
        return second.find("event: fleet") != std::string::npos;
      },
      std::chrono::seconds(5)))
      << second;
  ::close(again);
}

}  // namespace
}  // namespace outpost::common
