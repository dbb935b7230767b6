// A minimal HTTP/1.1 server for the programs' local endpoints: /metrics, /healthz, /readyz,
// /status, and the collector's web console (its JSON API, its page and its event stream).
//
// Runs on the io_context's thread; handlers are called there too. One request per
// connection (Connection: close). A request head over 8 KiB, a body over the server's body
// limit or a request slower than 5 s is refused or dropped: it serves an operator's browser,
// a scraper or a probe, not the internet. An unknown path is 404, a method the path does not
// take is 405 (with Allow), a malformed request 400.
#pragma once

#include <boost/asio.hpp>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "outpost/common/http_response.h"
#include "outpost/common/result.h"

namespace outpost::common {

// One request as parse_request() read it.
struct HttpRequest {
  std::string method;  // as sent: "GET", "POST", ...
  std::string target;  // as sent: "/api/v1/fleet?sort=site"
  std::string path;    // target's path, percent-decoded: "/api/v1/devices/d 1"
  // target's query, each name and value percent-decoded ('+' is a space); a name given twice
  // keeps its last value.
  std::map<std::string, std::string, std::less<>> query;
  // header names lower-cased, values with surrounding blanks trimmed; repeated names joined
  // with ", " (Cookie with "; ").
  std::map<std::string, std::string, std::less<>> headers;
  std::string body;  // Content-Length bytes (empty without one)

  // The header's value, or nullopt.
  std::optional<std::string_view> header(std::string_view lower_case_name) const;
  // The query parameter's value, or nullopt.
  std::optional<std::string_view> param(std::string_view name) const;
  // One cookie of the Cookie header, or nullopt.
  std::optional<std::string> cookie(std::string_view name) const;
};

// Why a request head could not be read; `status` is what to answer (400, 413, 501, 505).
struct HttpParseError {
  int status = 400;
  std::string message;  // for the answer's body: "bad request line", ...
};

// Parses a request head: the request line and the headers, up to and including the blank
// line ("\r\n\r\n"; a bare "\n" is accepted as a line end). The body is not read here: the
// head's Content-Length says how long it is. Pure: the request parser that the fuzzer drives.
common::Result<HttpRequest, HttpParseError> parse_request(std::string_view head);

// "%41b+c" -> "Ab c" when `plus_is_space`; nullopt for a bad escape ("%4", "%zz") or a
// decoded NUL.
std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space);

// The reason phrase sent with a status code: "OK", "Bad Request", "Forbidden", ...
const char* reason_phrase(int status);

// An open Server-Sent Events response (text/event-stream). Handed to a stream route's handler;
// whoever keeps it sends events through it. Used on the server's io_context thread only.
class HttpEventStream {
 public:
  virtual ~HttpEventStream() = default;
  // Queues one event ("event: <name>\ndata: <data>\n\n"; a multi-line `data` becomes several
  // data lines). Dropped when the stream is closed, and the stream closed when the client
  // reads so slowly that more than 1 MiB waits.
  virtual void send(std::string_view event, std::string_view data) = 0;
  // Queues a comment line (": <text>\n\n"), the keep-alive that also finds a gone client.
  virtual void comment(std::string_view text) = 0;
  // False once the client went away or the stream was closed.
  virtual bool open() const = 0;
  virtual void close() = 0;
};

class HttpServerSession;

class HttpServer {
 public:
  using Handler = std::function<HttpResponse()>;
  using RequestHandler = std::function<HttpResponse(const HttpRequest&)>;
  using StreamHandler = std::function<void(std::shared_ptr<HttpEventStream>)>;

  explicit HttpServer(boost::asio::io_context& io);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Answers GET and HEAD of `path` (the query string is ignored) with `handler`. Before listen().
  void route(std::string path, Handler handler);
  // `path` answered with Prometheus text exposition from `body`.
  void route_metrics(std::string path, std::function<std::string()> body);
  // Answers `method` ("GET" also answers HEAD; "POST", ...) of exactly `path`.
  void route(std::string method, std::string path, RequestHandler handler);
  // Answers `method` of every path that starts with `prefix` (e.g. "/api/v1/devices/") and has
  // more after it; an exact route of the same path wins, a longer prefix wins over a shorter.
  void route_prefix(std::string method, std::string prefix, RequestHandler handler);
  // A GET of `path` opens an event stream: the server answers 200 with text/event-stream and
  // hands the open stream to `handler`. At most `max_streams` are open at once (more: 503).
  void route_stream(std::string path, StreamHandler handler, std::size_t max_streams = 16);
  // Largest request body taken (Content-Length); more is answered 413. Default 64 KiB.
  void set_body_limit(std::size_t bytes);

  // The answer to one complete request: the route's; 404 for an unknown path; 405 (with an
  // Allow header) for a method the path does not take. Stream routes are not answered here.
  // What each connection sends; public for tests.
  HttpResponse answer(const HttpRequest& request) const;
  // As above, for a request given by method and target only (no headers, no body).
  HttpResponse answer(std::string_view method, std::string_view target) const;

  // Binds and starts accepting. Fails with a clear message if the port is taken.
  common::Status<> listen(const std::string& host, uint16_t port);
  // The port bound by listen() (the kernel's choice when it was given 0); 0 before.
  uint16_t port() const;
  // Stops accepting and closes the open event streams.
  void close();

 private:
  friend class HttpServerSession;
  struct Route;
  void accept();
  // The route of `path`: its exact one, else the longest prefix route; null if none.
  const Route* find(std::string_view path) const;
  bool is_stream(const HttpRequest& request) const;
  void open_stream(const HttpRequest& request, boost::asio::ip::tcp::socket socket);

  boost::asio::io_context& io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::map<std::string, std::shared_ptr<Route>, std::less<>> routes_;
  std::map<std::string, std::shared_ptr<Route>, std::less<>> prefixes_;
  std::size_t body_limit_ = 64 * 1024;
  std::vector<std::weak_ptr<HttpEventStream>> streams_;
  std::shared_ptr<std::size_t> open_streams_;  // streams open now (shared with each stream)
};

}  // namespace outpost::common
