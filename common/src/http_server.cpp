// The programs' local HTTP endpoint: /metrics, health and status, and the collector's console
// (exact and prefix routes, request bodies, Server-Sent Events).
#include "outpost/common/http_server.h"

#include <algorithm>
#include <charconv>
#include <deque>
#include <exception>
#include <set>

namespace outpost::common {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

constexpr std::size_t kMaxHeadBytes = 8192;
constexpr std::size_t kMaxQueuedStreamBytes = 1 << 20;
constexpr auto kRequestDeadline = std::chrono::seconds(5);

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool is_token_char(char c) {
  // RFC 9110 tchar.
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

HttpResponse text_response(int status, std::string body) {
  return HttpResponse{status, "text/plain; charset=utf-8", std::move(body)};
}

std::string serialize(const HttpResponse& r, bool head) {
  std::string out = "HTTP/1.1 " + std::to_string(r.status) + " " + reason_phrase(r.status) +
                    "\r\nContent-Type: " + r.content_type +
                    "\r\nContent-Length: " + std::to_string(r.body.size()) +
                    "\r\nX-Content-Type-Options: nosniff";
  for (const auto& [name, value] : r.headers) out += "\r\n" + name + ": " + value;
  out += "\r\nConnection: close\r\n\r\n";
  if (!head) out += r.body;
  return out;
}

}  // namespace

std::optional<std::string_view> HttpRequest::header(std::string_view lower_case_name) const {
  const auto it = headers.find(lower_case_name);
  if (it == headers.end()) return std::nullopt;
  return std::string_view(it->second);
}

std::optional<std::string_view> HttpRequest::param(std::string_view name) const {
  const auto it = query.find(name);
  if (it == query.end()) return std::nullopt;
  return std::string_view(it->second);
}

std::optional<std::string> HttpRequest::cookie(std::string_view name) const {
  const auto all = header("cookie");
  if (!all) return std::nullopt;
  std::string_view rest = *all;
  while (!rest.empty()) {
    const std::size_t semi = rest.find(';');
    const std::string_view part = trim(rest.substr(0, semi));
    const std::size_t eq = part.find('=');
    if (eq != std::string_view::npos && trim(part.substr(0, eq)) == name) {
      std::string_view value = trim(part.substr(eq + 1));
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
        value = value.substr(1, value.size() - 2);
      }
      return std::string(value);
    }
    if (semi == std::string_view::npos) break;
    rest = rest.substr(semi + 1);
  }
  return std::nullopt;
}

std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) return std::nullopt;
      const int hi = hex_digit(text[i + 1]);
      const int lo = hex_digit(text[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      const char decoded = static_cast<char>(hi * 16 + lo);
      if (decoded == '\0') return std::nullopt;
      out += decoded;
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

const char* reason_phrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 415:
      return "Unsupported Media Type";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return status < 400 ? "OK" : "Error";
  }
}

common::Result<HttpRequest, HttpParseError> parse_request(std::string_view head) {
  const auto fail = [](int status, std::string message) {
    return HttpParseError{status, std::move(message)};
  };
  // Lines end in CRLF or a bare LF; the head ends at the first empty line.
  std::vector<std::string_view> lines;
  std::size_t at = 0;
  bool ended = false;
  while (at < head.size()) {
    const std::size_t nl = head.find('\n', at);
    if (nl == std::string_view::npos) return fail(400, "the request head does not end");
    std::string_view line = head.substr(at, nl - at);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    at = nl + 1;
    if (line.empty()) {
      if (lines.empty()) continue;  // blank lines before the request line are allowed
      ended = true;
      break;
    }
    lines.push_back(line);
  }
  if (!ended || lines.empty()) return fail(400, "the request head does not end");

  HttpRequest r;
  const std::string_view first = lines.front();
  const std::size_t sp1 = first.find(' ');
  const std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : first.find(' ', sp1 + 1);
  if (sp1 == std::string_view::npos || sp2 == std::string_view::npos ||
      first.find(' ', sp2 + 1) != std::string_view::npos) {
    return fail(400, "bad request line: expected METHOD /path HTTP/1.1");
  }
  const std::string_view method = first.substr(0, sp1);
  const std::string_view target = first.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = first.substr(sp2 + 1);
  if (method.empty() || !std::all_of(method.begin(), method.end(), is_token_char)) {
    return fail(400, "bad request line: bad method");
  }
  if (!version.starts_with("HTTP/")) return fail(400, "bad request line: bad version");
  if (version != "HTTP/1.1" && version != "HTTP/1.0") {
    return fail(505, "only HTTP/1.0 and HTTP/1.1 are spoken here");
  }
  if (target.empty() || target.front() != '/') {
    return fail(400, "bad request target: it must be a path starting with /");
  }
  for (char c : target) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return fail(400, "bad request target: control character");
    }
  }
  r.method = std::string(method);
  r.target = std::string(target);
  const std::size_t q = target.find('?');
  const std::string_view raw_path = target.substr(0, q);
  auto path = percent_decode(raw_path.substr(0, raw_path.find('#')), false);
  if (!path) return fail(400, "bad request target: bad percent-escape in the path");
  r.path = std::move(*path);
  if (q != std::string_view::npos) {
    std::string_view rest = target.substr(q + 1);
    rest = rest.substr(0, rest.find('#'));
    while (!rest.empty()) {
      const std::size_t amp = rest.find('&');
      const std::string_view pair = rest.substr(0, amp);
      if (!pair.empty()) {
        const std::size_t eq = pair.find('=');
        auto name = percent_decode(pair.substr(0, eq), true);
        auto value = percent_decode(eq == std::string_view::npos ? "" : pair.substr(eq + 1), true);
        if (!name || !value) return fail(400, "bad query: bad percent-escape");
        r.query[std::move(*name)] = std::move(*value);
      }
      if (amp == std::string_view::npos) break;
      rest = rest.substr(amp + 1);
    }
  }

  for (std::size_t i = 1; i < lines.size(); ++i) {
    const std::string_view line = lines[i];
    if (line.front() == ' ' || line.front() == '\t') {
      return fail(400, "bad header: folded header lines are not accepted");
    }
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      return fail(400, "bad header line: expected Name: value");
    }
    const std::string_view raw_name = line.substr(0, colon);
    if (!std::all_of(raw_name.begin(), raw_name.end(), is_token_char)) {
      return fail(400, "bad header name");
    }
    std::string name(raw_name);
    std::transform(name.begin(), name.end(), name.begin(), lower);
    const std::string_view value = trim(line.substr(colon + 1));
    for (char c : value) {
      if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) {
        return fail(400, "bad header value: control character");
      }
    }
    auto [it, fresh] = r.headers.try_emplace(name, value);
    if (!fresh) {
      if (name == "content-length" && it->second != value) {
        return fail(400, "two different Content-Length headers");
      }
      if (name != "content-length") it->second += (name == "cookie" ? "; " : ", ");
      if (name != "content-length") it->second += value;
    }
  }
  if (r.headers.count("transfer-encoding")) {
    return fail(501, "chunked bodies are not supported; send Content-Length");
  }
  if (const auto length = r.header("content-length")) {
    uint64_t n = 0;
    const auto [end, ec] = std::from_chars(length->data(), length->data() + length->size(), n);
    if (length->empty() || ec != std::errc() || end != length->data() + length->size()) {
      return fail(400, "bad Content-Length");
    }
  }
  return r;
}

// ---------- routes ----------

struct HttpServer::Route {
  std::map<std::string, RequestHandler, std::less<>> methods;  // "GET" also answers HEAD
  StreamHandler stream;                                        // set for a stream route
  std::size_t max_streams = 0;
};

namespace {

// One open event stream: writes queued text in order, notices the client going away.
class EventStream final : public HttpEventStream, public std::enable_shared_from_this<EventStream> {
 public:
  EventStream(tcp::socket socket, std::shared_ptr<std::size_t> open_count)
      : socket_(std::move(socket)), open_count_(std::move(open_count)) {
    ++*open_count_;
  }
  ~EventStream() override {
    if (!closed_) --*open_count_;
  }

  void begin() {
    queue(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n"
        "X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n");
    watch();
  }

  void send(std::string_view event, std::string_view data) override {
    std::string text = "event: " + std::string(event) + "\n";
    std::size_t at = 0;
    for (;;) {
      const std::size_t nl = data.find('\n', at);
      text += "data: " + std::string(data.substr(at, nl - at)) + "\n";
      if (nl == std::string_view::npos) break;
      at = nl + 1;
    }
    queue(std::move(text) + "\n");
  }

  void comment(std::string_view text) override { queue(": " + std::string(text) + "\n\n"); }
  bool open() const override { return !closed_; }
  void close() override {
    if (closed_) return;
    closed_ = true;
    --*open_count_;
    pending_.clear();
    boost::system::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

 private:
  // A read that only ends when the client goes away (it sends nothing more).
  void watch() {
    auto self = shared_from_this();
    socket_.async_read_some(asio::buffer(sink_),
                            [self](const boost::system::error_code& ec, std::size_t) {
                              if (ec) {
                                self->close();
                              } else {
                                self->watch();
                              }
                            });
  }

  void queue(std::string text) {
    if (closed_) return;
    queued_bytes_ += text.size();
    if (queued_bytes_ > kMaxQueuedStreamBytes) {
      close();  // a client that does not read: let it reconnect and start afresh
      return;
    }
    pending_.push_back(std::move(text));
    if (!writing_) write_next();
  }

  void write_next() {
    if (closed_ || pending_.empty()) {
      writing_ = false;
      return;
    }
    writing_ = true;
    auto self = shared_from_this();
    asio::async_write(socket_, asio::buffer(pending_.front()),
                      [self](const boost::system::error_code& ec, std::size_t) {
                        if (self->closed_) return;
                        if (ec) {
                          self->close();
                          return;
                        }
                        self->queued_bytes_ -= self->pending_.front().size();
                        self->pending_.pop_front();
                        self->write_next();
                      });
  }

  tcp::socket socket_;
  std::shared_ptr<std::size_t> open_count_;
  std::deque<std::string> pending_;
  std::size_t queued_bytes_ = 0;
  bool writing_ = false;
  bool closed_ = false;
  char sink_[256];
};

}  // namespace

// One connection: read the head, then the body, answer, close.
class HttpServerSession : public std::enable_shared_from_this<HttpServerSession> {
 public:
  HttpServerSession(tcp::socket socket, HttpServer& server)
      : socket_(std::move(socket)), timer_(socket_.get_executor()), server_(server) {}

  void start() {
    auto self = shared_from_this();
    timer_.expires_after(kRequestDeadline);
    timer_.async_wait([self](const boost::system::error_code& ec) {
      if (!ec) {
        boost::system::error_code ignored;
        self->socket_.close(ignored);
      }
    });
    read_head();
  }

 private:
  void read_head() {
    auto self = shared_from_this();
    socket_.async_read_some(
        asio::buffer(chunk_), [self](const boost::system::error_code& ec, std::size_t n) {
          if (ec) {
            self->timer_.cancel();
            return;
          }
          self->data_.append(self->chunk_, n);
          std::size_t end = self->data_.find("\r\n\r\n");
          std::size_t skip = 4;
          if (const std::size_t lf = self->data_.find("\n\n"); lf < end) {
            end = lf;
            skip = 2;
          }
          if (end == std::string::npos) {
            if (self->data_.size() > kMaxHeadBytes) {
              self->finish(text_response(431, "the request head is over 8 KiB\n"), false);
            } else {
              self->read_head();
            }
            return;
          }
          if (end + skip > kMaxHeadBytes) {
            self->finish(text_response(431, "the request head is over 8 KiB\n"), false);
            return;
          }
          self->parsed(end + skip);
        });
  }

  void parsed(std::size_t head_size) {
    auto request = parse_request(std::string_view(data_).substr(0, head_size));
    if (!request.ok()) {
      finish(text_response(request.error().status, request.error().message + "\n"), false);
      return;
    }
    request_ = std::move(request).value();
    data_.erase(0, head_size);
    std::size_t length = 0;
    if (const auto cl = request_.header("content-length")) {
      uint64_t n = 0;
      std::from_chars(cl->data(), cl->data() + cl->size(), n);
      if (n > server_.body_limit_) {
        finish(text_response(413, "the request body is over " +
                                      std::to_string(server_.body_limit_) + " bytes\n"),
               false);
        return;
      }
      length = static_cast<std::size_t>(n);
    }
    if (server_.is_stream(request_)) {
      timer_.cancel();
      server_.open_stream(request_, std::move(socket_));
      return;
    }
    read_body(length);
  }

  void read_body(std::size_t length) {
    if (data_.size() >= length) {
      request_.body = data_.substr(0, length);
      finish(server_.answer(request_), request_.method == "HEAD");
      return;
    }
    auto self = shared_from_this();
    socket_.async_read_some(asio::buffer(chunk_),
                            [self, length](const boost::system::error_code& ec, std::size_t n) {
                              if (ec) {
                                self->timer_.cancel();
                                return;
                              }
                              self->data_.append(self->chunk_, n);
                              self->read_body(length);
                            });
  }

  void finish(const HttpResponse& r, bool head) {
    response_ = serialize(r, head);
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
  HttpServer& server_;
  char chunk_[4096];
  std::string data_;
  HttpRequest request_;
  std::string response_;
};

HttpServer::HttpServer(asio::io_context& io)
    : io_(io), acceptor_(io), open_streams_(std::make_shared<std::size_t>(0)) {}

HttpServer::~HttpServer() = default;

void HttpServer::route(std::string path, Handler handler) {
  route("GET", std::move(path),
        [handler = std::move(handler)](const HttpRequest&) { return handler(); });
}

void HttpServer::route_metrics(std::string path, std::function<std::string()> body) {
  route(std::move(path), [body = std::move(body)] {
    return HttpResponse{200, kPrometheusContentType, body()};
  });
}

void HttpServer::route(std::string method, std::string path, RequestHandler handler) {
  auto& r = routes_[std::move(path)];
  if (!r) r = std::make_shared<Route>();
  r->methods[std::move(method)] = std::move(handler);
}

void HttpServer::route_prefix(std::string method, std::string prefix, RequestHandler handler) {
  auto& r = prefixes_[std::move(prefix)];
  if (!r) r = std::make_shared<Route>();
  r->methods[std::move(method)] = std::move(handler);
}

void HttpServer::route_stream(std::string path, StreamHandler handler, std::size_t max_streams) {
  auto& r = routes_[std::move(path)];
  if (!r) r = std::make_shared<Route>();
  r->stream = std::move(handler);
  r->max_streams = max_streams;
}

void HttpServer::set_body_limit(std::size_t bytes) { body_limit_ = bytes; }

const HttpServer::Route* HttpServer::find(std::string_view path) const {
  if (const auto it = routes_.find(path); it != routes_.end()) return it->second.get();
  const Route* best = nullptr;
  std::size_t best_length = 0;
  for (const auto& [prefix, route] : prefixes_) {
    if (path.size() > prefix.size() && path.starts_with(prefix) && prefix.size() >= best_length) {
      best = route.get();
      best_length = prefix.size();
    }
  }
  return best;
}

bool HttpServer::is_stream(const HttpRequest& request) const {
  const auto it = routes_.find(request.path);
  return it != routes_.end() && it->second->stream && request.method == "GET";
}

void HttpServer::open_stream(const HttpRequest& request, tcp::socket socket) {
  const Route& r = *routes_.find(request.path)->second;
  if (*open_streams_ >= r.max_streams) {
    auto text = std::make_shared<std::string>(
        serialize(text_response(503, "too many open event streams; try again later\n"), false));
    auto s = std::make_shared<tcp::socket>(std::move(socket));
    asio::async_write(*s, asio::buffer(*text),
                      [s, text](const boost::system::error_code&, std::size_t) {
                        boost::system::error_code ignored;
                        s->shutdown(tcp::socket::shutdown_both, ignored);
                      });
    return;
  }
  auto stream = std::make_shared<EventStream>(std::move(socket), open_streams_);
  stream->begin();
  streams_.push_back(stream);
  std::erase_if(streams_, [](const std::weak_ptr<HttpEventStream>& w) {
    const auto s = w.lock();
    return !s || !s->open();
  });
  try {
    r.stream(stream);
  } catch (const std::exception&) {
    stream->close();
  }
}

HttpResponse HttpServer::answer(const HttpRequest& request) const {
  const Route* r = find(request.path);
  if (!r) {
    std::string known;
    for (const auto& [p, route] : routes_) known += (known.empty() ? "" : ", ") + p;
    return text_response(404, "not found; this server answers " + known + "\n");
  }
  std::string_view method = request.method;
  if (method == "HEAD") method = "GET";
  const auto it = r->methods.find(method);
  if (it == r->methods.end()) {
    std::set<std::string> allowed;
    for (const auto& [m, handler] : r->methods) {
      allowed.insert(m);
      if (m == "GET") allowed.insert("HEAD");
    }
    if (r->stream) allowed.insert({"GET", "HEAD"});
    std::string allow;
    for (const auto& m : allowed) allow += (allow.empty() ? "" : ", ") + m;
    HttpResponse out = text_response(405, "this path takes " + allow + "\n");
    out.headers.emplace_back("Allow", allow);
    return out;
  }
  try {
    return it->second(request);
  } catch (const std::exception& e) {
    return text_response(500, std::string("internal error: ") + e.what() + "\n");
  } catch (...) {
    return text_response(500, "internal error\n");
  }
}

HttpResponse HttpServer::answer(std::string_view method, std::string_view target) const {
  auto request = parse_request("GET " + std::string(target) + " HTTP/1.1\r\n\r\n");
  if (!request.ok()) {
    return text_response(request.error().status, request.error().message + "\n");
  }
  request.value().method = std::string(method);
  return answer(request.value());
}

common::Status<> HttpServer::listen(const std::string& host, uint16_t port) {
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  if (ec) return common::Error{"bad address " + host};
  const tcp::endpoint endpoint(address, port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return common::Error{"cannot listen on " + host + ":" + std::to_string(port) + ": " +
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
  for (const auto& w : streams_) {
    if (const auto s = w.lock()) s->close();
  }
  streams_.clear();
}

void HttpServer::accept() {
  acceptor_.async_accept([this](const boost::system::error_code& ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (!ec) std::make_shared<HttpServerSession>(std::move(socket), *this)->start();
    if (acceptor_.is_open()) accept();
  });
}

}  // namespace outpost::common
