// What the programs' HTTP endpoint answers: a plain struct, so core code builds answers
// (health, status) without Asio, and the server (http_server.h) only sends them.
#pragma once

#include <string>

namespace outpost::common {

struct HttpResponse {
  int status = 200;                                        // 200, 404, 405, 503, ...
  std::string content_type = "text/plain; charset=utf-8";  // the Content-Type header
  std::string body;
};

// The Prometheus text exposition format's content type (version 0.0.4).
inline constexpr const char* kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace outpost::common
