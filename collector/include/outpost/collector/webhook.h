// Webhook delivery of events: HTTP POST of one JSON object per event, signed, with retries.
//
// Each configured [webhooks.<name>] endpoint receives the events whose kind it asks for. A
// delivery is retried with exponential backoff and jitter on connection errors, timeouts,
// 5xx, 408 and 429; another 4xx (or a 1xx/3xx) gives up at once. A delivery that gives up,
// for whatever reason, is handed back to the caller (who puts it in the dead-letter queue with
// Reason::kWebhookGaveUp): nothing is silently dropped. See collector/webhooks.md.
//
// Request (HTTP/1.1, one connection per attempt; https: TLS 1.2 or later, the server's
// certificate verified against ca_file or the system's trust store, and its name against the
// URL's host; never without verification):
//   POST <path> with the body of webhook_body() and the headers
//   Content-Type: application/json
//   X-Outpost-Event: <event kind name>, e.g. threshold_above
//   X-Outpost-Delivery: <id>        the same on every attempt of one delivery: deduplicate on it
//   X-Outpost-Attempt: <n>          1 on the first attempt
//   X-Outpost-Signature: sha256=<hex HMAC-SHA256 of the body keyed with the secret>
//                                   only when the webhook has a secret
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "outpost/common/config.h"
#include "outpost/common/message.h"
#include "outpost/common/result.h"

namespace outpost::collector {

// One [webhooks.<name>] table.
struct WebhookConfig {
  std::string name;     // the [webhooks.<name>] key
  std::string url;      // http[s]://host[:port]/path
  std::string secret;   // HMAC key; "" = no signature header. Never logged
  std::string ca_file;  // https: PEM file of the CAs to trust; "" = the system's trust store
  std::vector<std::string> kinds;        // event kind names (event_kind_name); empty = all
  int64_t timeout_us = 5'000'000;        // per attempt: resolve, connect, send and response
  uint32_t max_attempts = 6;             // attempts in all, the first included (>= 1)
  int64_t initial_backoff_us = 500'000;  // wait before the first retry; doubles each retry
  int64_t max_backoff_us = 60'000'000;   // cap of the doubling
};

// Reads every [webhooks.<name>] table into `out` (appending, in file order). Keys: url
// (required), secret, ca_file (https only; must be a readable file), kinds (array of event
// kind names), timeout, max_attempts, initial_backoff, max_backoff (durations as strings:
// "5s", "500ms"). A bad url, an unknown kind or an inconsistent setting is recorded with
// reader.add_error naming the key;
// entries with errors are not appended. The secret never appears in an error.
void read_webhooks(common::ConfigReader& reader, std::vector<WebhookConfig>& out);

// The parts of an http:// or https:// URL a request needs.
struct HttpUrl {
  bool tls = false;    // https
  std::string host;    // name or address (an IPv6 address without its brackets)
  std::string port;    // "80" (http) or "443" (https) when the URL has none
  std::string target;  // path and query, "/" when the URL has none
};

// Parses http[s]://host[:port][/path][?query]. Refuses other schemes, credentials in the URL,
// an empty host and a bad port, with a message saying which.
common::Result<HttpUrl> parse_webhook_url(std::string_view url);

// The JSON body for one event, one compact object with these keys in this order:
//   {"kind":"threshold_above","device":"gw-7","site":"plant-a","time_us":1700000000000000,
//    "sensor":"temp","value":31.5,"threshold":30,"detail":"rule hot: temp above 30 ..."}
// kind is event_kind_name(); time_us is Unix microseconds; value and threshold are JSON
// numbers in shortest round-trip form, or the strings "NaN", "Infinity", "-Infinity".
// Fields an event kind does not use are still present ("" or 0). Strings per RFC 8259.
std::string webhook_body(std::string_view device, const common::Event& event);

// The wait after `failed_attempts` (>= 1) failed attempts: initial_backoff doubled per earlier
// failure, capped at max_backoff, then scaled by a factor in [0.5, 1] given by `random01`
// in [0, 1] (so a fleet of retries spreads out and never exceeds max_backoff).
int64_t retry_delay_us(const WebhookConfig& config, uint32_t failed_attempts, double random01);

// A Retry-After header (RFC 9110 10.2.3): delay-seconds ("120") or an IMF-fixdate
// ("Sun, 06 Nov 1994 08:49:37 GMT", taken relative to `now_unix_us`; a date in the past is
// 0). nullopt when the value is neither.
std::optional<int64_t> parse_retry_after_us(std::string_view value, int64_t now_unix_us);

// The wait before the next attempt when the receiver asked for `retry_after_us`: never less
// than the backoff `delay_us`, never more than max_backoff (a longer request is cut to it).
int64_t honour_retry_after_us(const WebhookConfig& config, int64_t delay_us,
                              std::optional<int64_t> retry_after_us);

// A delivery that will not be attempted again.
struct WebhookGaveUp {
  std::string webhook;  // WebhookConfig::name
  std::string url;
  std::string body;        // the JSON that was (to be) posted: enough to replay it
  uint32_t attempts = 0;   // attempts made; 0 for "queue full" and for posts after stop()
  std::string last_error;  // "HTTP 503 Service Unavailable: ...", "timed out ...", ...
};

struct WebhookStats {
  uint64_t delivered = 0;   // 2xx received
  uint64_t retried = 0;     // retries scheduled (attempts after the first)
  uint64_t gave_up = 0;     // handed to on_give_up, for any reason (queue full included)
  uint64_t queue_full = 0;  // of those, refused by post() because max_queued were pending
};

// Delivers events to webhooks on its own thread, running an asio io_context: each delivery
// is its own chain of asynchronous operations, so one slow or dead endpoint delays nobody
// else, and there is no thread per delivery. No exception escapes that thread.
class WebhookDispatcher {
 public:
  // Starts the thread. `hooks` should come from read_webhooks (a hook whose url does not
  // parse gives up each of its deliveries with the parse error). `on_give_up` receives every
  // delivery that will not be attempted again. Calls to it are serialised (never two at
  // once) and it must not block long: normally it runs on the dispatcher's thread, but for
  // "queue full" and posts after stop() it runs at once on the thread that called post().
  // It must not call post() or stop(). `max_queued` bounds the deliveries pending (queued, in
  // progress or waiting to retry) across all hooks.
  WebhookDispatcher(std::vector<WebhookConfig> hooks, std::function<void(WebhookGaveUp)> on_give_up,
                    std::size_t max_queued = 10000);
  // stop(0).
  ~WebhookDispatcher();

  WebhookDispatcher(const WebhookDispatcher&) = delete;
  WebhookDispatcher& operator=(const WebhookDispatcher&) = delete;

  // Thread-safe, never blocks on the network: queues `event` (as webhook_body) for every hook
  // whose kinds match. A delivery beyond max_queued pending goes to on_give_up at once with
  // last_error "queue full"; after stop(), with "collector stopping" (and then post() waits,
  // briefly, for any on_give_up call running on the dispatcher's thread).
  void post(std::string_view device, const common::Event& event);

  // Stops taking work, waits up to `grace` for pending deliveries (retries included) to
  // finish, then hands those still pending to on_give_up with a last_error starting
  // "collector stopping", and joins the thread. Idempotent. Call from one thread, never from
  // on_give_up. Blocks at most `grace` plus the time to cancel (and any DNS lookup in
  // progress, which cannot be interrupted).
  void stop(std::chrono::milliseconds grace);

  // A snapshot; any thread.
  WebhookStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace outpost::collector
