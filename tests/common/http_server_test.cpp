// The local HTTP endpoint's routing: each path its handler, 404 for others, 405 for methods
// other than GET and HEAD; and one real request over loopback.
#include "outpost/common/http_server.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace outpost::common
