// What the programs' HTTP endpoint answers: a plain struct, so core code builds answers
// (health, status, the console's API) without Asio, and the server (http_server.h) only sends
// them.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace outpost::common {

struct HttpResponse {
  int status = 200;                                        // 200, 400, 403, 404, 405, 503, ...
  std::string content_type = "text/plain; charset=utf-8";  // the Content-Type header
  std::string body;
  // Further headers, sent as given (name, value): Cache-Control, Set-Cookie, ... The server
  // adds Content-Type, Content-Length and Connection itself.
  std::vector<std::pair<std::string, std::string>> headers = {};
};

// The Prometheus text exposition format's content type (version 0.0.4).
inline constexpr const char* kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace outpost::common
