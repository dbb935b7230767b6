// libFuzzer target: the HTTP request parser on arbitrary bytes (the console and the metrics
// endpoint read what any local process sends them).
//
// Beyond "no crash, no sanitizer report", it checks properties of what the parser accepts: the
// path starts with '/', holds no NUL, header names are lower case, and parsing the same head
// again gives the same request (the parser has no hidden state).
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "outpost/common/http_server.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view head(reinterpret_cast<const char*>(data), size);
  auto parsed = outpost::common::parse_request(head);
  if (!parsed.ok()) {
    const int status = parsed.error().status;
    if (status < 400 || status > 599 || parsed.error().message.empty()) std::abort();
    return 0;
  }
  const auto& r = parsed.value();
  if (r.path.empty() || r.path.front() != '/' || r.method.empty()) std::abort();
  if (r.path.find('\0') != std::string::npos) std::abort();
  for (const auto& [name, value] : r.headers) {
    for (char c : name) {
      if (c >= 'A' && c <= 'Z') std::abort();
    }
  }
  (void)r.cookie("outpost_csrf");
  (void)r.param("sort");
  auto again = outpost::common::parse_request(head);
  if (!again.ok() || again.value().path != r.path || again.value().query != r.query ||
      again.value().headers != r.headers) {
    std::abort();
  }
  return 0;
}
