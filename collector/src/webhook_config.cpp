// Webhook configuration, URL parsing, the JSON body and the retry schedule: pure functions,
// in the collector's core library (the dispatcher, with its I/O, is webhook.cpp).
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <ctime>
#include <filesystem>
#include <string>

#include "outpost/collector/webhook.h"
#include "outpost/common/json.h"

namespace outpost::collector {
namespace {

void append_key(std::string& out, std::string_view key) {
  out += out.size() > 1 ? ",\"" : "\"";
  out += key;
  out += "\":";
}

std::string milliseconds_text(int64_t us) {
  return us % 1000 == 0 ? std::to_string(us / 1000) + "ms" : std::to_string(us) + "us";
}

std::string known_kind_names() {
  std::string names;
  for (common::EventKind kind : common::kAllEventKinds) {
    names += names.empty() ? "" : ", ";
    names += common::event_kind_name(kind);
  }
  return names;
}

}  // namespace

// --- Configuration -------------------------------------------------------------------------

common::Result<HttpUrl> parse_webhook_url(std::string_view url) {
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) {
    return common::Error{"expected a URL such as \"http://host:8080/path\""};
  }
  std::string scheme(url.substr(0, scheme_end));
  std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (scheme != "http" && scheme != "https") {
    return common::Error{"unsupported scheme \"" + scheme + "\": use http:// or https://"};
  }
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return common::Error{"the URL contains a space or a control character"};
    }
  }
  std::string_view rest = url.substr(scheme_end + 3);
  const auto authority_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, authority_end);
  std::string_view target =
      authority_end == std::string_view::npos ? std::string_view() : rest.substr(authority_end);
  if (const auto hash = target.find('#'); hash != std::string_view::npos) {
    target = target.substr(0, hash);  // a fragment is never sent
  }
  if (authority.find('@') != std::string_view::npos) {
    return common::Error{"credentials in the URL are not supported (set \"secret\" to sign)"};
  }
  HttpUrl out;
  out.tls = scheme == "https";
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return common::Error{"unterminated IPv6 address"};
    out.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return common::Error{"expected ':' after the IPv6 address"};
      port = after.substr(1);
      if (port.empty()) return common::Error{"empty port"};
    }
  } else {
    const auto colon = authority.find(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      if (port.empty()) return common::Error{"empty port"};
    }
  }
  if (out.host.empty()) return common::Error{"the URL has no host"};
  if (!port.empty()) {
    unsigned value = 0;
    const auto r = std::from_chars(port.data(), port.data() + port.size(), value);
    if (r.ec != std::errc() || r.ptr != port.data() + port.size() || value == 0 || value > 65535) {
      return common::Error{"bad port \"" + std::string(port) + "\": expected 1 to 65535"};
    }
    out.port = std::to_string(value);
  } else {
    out.port = out.tls ? "443" : "80";
  }
  out.target = target.empty() ? "/" : std::string(target);
  if (out.target.front() == '?') out.target.insert(0, "/");
  return out;
}

void read_webhooks(common::ConfigReader& reader, std::vector<WebhookConfig>& out) {
  for (const std::string& name : reader.table_keys("webhooks")) {
    const std::string table = "webhooks." + name;
    const std::string prefix = table + ".";
    const std::size_t errors_before = reader.errors().size();
    if (name.find('.') != std::string::npos) {
      reader.add_error(table, "a webhook name may not contain '.'");
      continue;
    }
    WebhookConfig hook;
    hook.name = name;
    bool plain_http = false;
    if (!reader.has(prefix + "url")) {
      reader.add_error(table, "missing required key \"url\" (http[s]://host:port/path)");
    } else {
      const std::size_t before = reader.errors().size();
      reader.read(prefix + "url", hook.url);
      if (reader.errors().size() == before) {
        if (auto parsed = parse_webhook_url(hook.url); !parsed.ok()) {
          reader.add_error(prefix + "url", parsed.error().message);
        } else {
          plain_http = !parsed.value().tls;
        }
      }
    }
    reader.read(prefix + "secret", hook.secret);
    if (reader.has(prefix + "ca_file")) {
      const std::size_t before = reader.errors().size();
      reader.read(prefix + "ca_file", hook.ca_file);
      if (reader.errors().size() == before) {
        std::error_code ec;
        if (plain_http) {
          reader.add_error(prefix + "ca_file", "applies to https:// URLs only");
        } else if (!std::filesystem::is_regular_file(hook.ca_file, ec)) {
          reader.add_error(prefix + "ca_file", "no such file: " + hook.ca_file);
        } else if (::access(hook.ca_file.c_str(), R_OK) != 0) {
          reader.add_error(prefix + "ca_file", "cannot read " + hook.ca_file);
        }
      }
    }
    {
      const std::size_t before = reader.errors().size();
      reader.read(prefix + "kinds", hook.kinds);
      if (reader.errors().size() == before) {
        for (const std::string& kind : hook.kinds) {
          if (!common::event_kind_from_name(kind)) {
            reader.add_error(prefix + "kinds", "unknown event kind \"" + kind +
                                                   "\"; expected some of " + known_kind_names());
          }
        }
      }
    }
    reader.read_duration_us(prefix + "timeout", hook.timeout_us, 1'000, 600'000'000);
    reader.read(prefix + "max_attempts", hook.max_attempts, 1, 1000);
    reader.read_duration_us(prefix + "initial_backoff", hook.initial_backoff_us, 1'000,
                            86'400'000'000);
    reader.read_duration_us(prefix + "max_backoff", hook.max_backoff_us, 1'000, 86'400'000'000);
    if (reader.errors().size() == errors_before && hook.max_backoff_us < hook.initial_backoff_us) {
      reader.add_error(
          prefix + "max_backoff",
          "must be at least initial_backoff (" + milliseconds_text(hook.initial_backoff_us) + ")");
    }
    if (reader.errors().size() == errors_before) out.push_back(std::move(hook));
  }
}

std::string webhook_body(std::string_view device, const common::Event& event) {
  std::string out = "{";
  append_key(out, "kind");
  common::append_json_string(out, common::event_kind_name(event.kind));
  append_key(out, "device");
  common::append_json_string(out, device);
  append_key(out, "site");
  common::append_json_string(out, event.site);
  append_key(out, "time_us");
  out += std::to_string(event.time_us);
  append_key(out, "sensor");
  common::append_json_string(out, event.sensor);
  append_key(out, "value");
  common::append_json_value(out, common::Value{event.value});
  append_key(out, "threshold");
  common::append_json_value(out, common::Value{event.threshold});
  append_key(out, "detail");
  common::append_json_string(out, event.detail);
  out += '}';
  return out;
}

int64_t retry_delay_us(const WebhookConfig& config, uint32_t failed_attempts, double random01) {
  int64_t base = std::max<int64_t>(config.initial_backoff_us, 1);
  for (uint32_t i = 1; i < failed_attempts && base < config.max_backoff_us; ++i) {
    base = base > config.max_backoff_us / 2 ? config.max_backoff_us : base * 2;
  }
  base = std::min(base, std::max<int64_t>(config.max_backoff_us, 1));
  const double factor = 0.5 + 0.5 * std::clamp(random01, 0.0, 1.0);
  return std::max<int64_t>(1, static_cast<int64_t>(static_cast<double>(base) * factor));
}

std::optional<int64_t> parse_retry_after_us(std::string_view value, int64_t now_unix_us) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    int64_t seconds = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (ec == std::errc::result_out_of_range) return INT64_MAX;
    if (ec != std::errc() || end != value.data() + value.size()) return std::nullopt;
    return seconds > INT64_MAX / 1'000'000 ? INT64_MAX : seconds * 1'000'000;
  }
  // IMF-fixdate, the one date form senders must use: "Sun, 06 Nov 1994 08:49:37 GMT".
  const std::string text(value);
  std::tm tm{};
  const char* end = ::strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  const int64_t at_us = static_cast<int64_t>(::timegm(&tm)) * 1'000'000;
  return std::max<int64_t>(0, at_us - now_unix_us);
}

int64_t honour_retry_after_us(const WebhookConfig& config, int64_t delay_us,
                              std::optional<int64_t> retry_after_us) {
  if (!retry_after_us) return delay_us;
  return std::max(delay_us, std::min(*retry_after_us, std::max<int64_t>(config.max_backoff_us, 1)));
}

}  // namespace outpost::collector
