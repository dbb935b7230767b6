// Webhook delivery: the asio/Beast dispatcher with retries, over http or https (configuration
// and the JSON body are webhook_config.cpp).
#include "outpost/collector/webhook.h"

#include <algorithm>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <unordered_map>
#include <utility>

#include "outpost/collector/hmac.h"
#include "outpost/common/clock.h"
#include "outpost/common/json.h"
#include "outpost/common/logging.h"

namespace outpost::collector {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using boost::system::error_code;
using tcp = asio::ip::tcp;
namespace ssl = asio::ssl;
using TlsStream = ssl::stream<tcp::socket&>;

// Event kinds are small integers; a hook's filter is a bit mask over them.
constexpr unsigned kMaxKinds = 32;
// A response body is only kept for the error message; more than this is not read.
constexpr std::size_t kMaxResponseBody = 8 * 1024;
constexpr std::size_t kMaxErrorBody = 200;

std::string milliseconds_text(int64_t us) {
  return us % 1000 == 0 ? std::to_string(us / 1000) + "ms" : std::to_string(us) + "us";
}

// Text from the network made safe for one log line or DLQ detail.
std::string printable(std::string_view text, std::size_t max) {
  std::string out;
  for (char c : text.substr(0, max)) {
    out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? ' ' : c;
  }
  if (text.size() > max) out += "...";
  return out;
}

}  // namespace

// --- Dispatcher ----------------------------------------------------------------------------

struct WebhookDispatcher::Impl {
  struct Hook {
    WebhookConfig config;
    std::optional<HttpUrl> url;  // nullopt if config.url does not parse (or its TLS set-up fails)
    std::string url_error;
    std::shared_ptr<ssl::context> tls;  // https: verifies the server against the CAs
    uint32_t kind_mask = 0;
  };

  // One event on its way to one hook, across all its attempts. Owned by the handlers of its
  // pending operations (and by `live` while started); touched on the io thread only.
  struct Delivery {
    Delivery(asio::io_context& io, const Hook& h, std::string b, common::EventKind k, std::string i)
        : hook(h),
          body(std::move(b)),
          kind(k),
          id(std::move(i)),
          resolver(io),
          socket(io),
          deadline(io),
          backoff(io) {}

    const Hook& hook;
    std::string body;
    common::EventKind kind;
    std::string id;
    uint32_t attempts = 0;
    uint64_t generation = 0;  // bumped per attempt: handlers of an older attempt do nothing
    bool done = false;
    bool timed_out = false;
    std::string phase;  // what the attempt is doing, for error messages
    std::string last_error;
    tcp::resolver resolver;
    tcp::socket socket;
    // https: the attempt's TLS layer over `socket`, new for each attempt. Every handler of an
    // attempt holds it, so it outlives the operations on it even after a new attempt began.
    std::shared_ptr<TlsStream> tls;
    asio::steady_timer deadline;  // the attempt's timeout
    asio::steady_timer backoff;   // the wait before the next attempt
    boost::beast::flat_buffer buffer;
    http::request<http::string_body> request;
    std::optional<http::response_parser<http::string_body>> parser;
  };
  using DeliveryPtr = std::shared_ptr<Delivery>;

  Impl(std::vector<WebhookConfig> configs, std::function<void(WebhookGaveUp)> give_up_fn,
       std::size_t max)
      : on_give_up(std::move(give_up_fn)), max_queued(max) {
    for (auto& config : configs) {
      Hook hook;
      if (auto url = parse_webhook_url(config.url); url.ok()) {
        hook.url = std::move(url).value();
        if (hook.url->tls) {
          if (auto context = tls_context(config.ca_file); context.ok()) {
            hook.tls = std::move(context).value();
          } else {
            hook.url.reset();
            hook.url_error = context.error().message;
          }
        }
      } else {
        hook.url_error = "bad url: " + url.error().message;
      }
      if (config.kinds.empty()) {
        hook.kind_mask = ~uint32_t{0};
      } else {
        for (const auto& name : config.kinds) {
          if (auto kind = common::event_kind_from_name(name)) {
            hook.kind_mask |= uint32_t{1} << static_cast<unsigned>(*kind);
          }
        }
      }
      hook.config = std::move(config);
      hooks.push_back(std::move(hook));
    }
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    const auto now_us = std::chrono::duration_cast<std::chrono::microseconds>(now).count();
    rng.seed(static_cast<uint64_t>(now_us) ^ reinterpret_cast<uintptr_t>(this));
    char prefix[32];
    std::snprintf(prefix, sizeof prefix, "%013llx%04x",
                  static_cast<unsigned long long>(now_us) & 0xfffffffffffffull,
                  static_cast<unsigned>(rng() & 0xffff));
    id_prefix = prefix;
  }

  // A client context for one https hook: TLS 1.2 or later, the peer always verified, against
  // `ca_file` or the system's default CAs.
  static common::Result<std::shared_ptr<ssl::context>> tls_context(const std::string& ca_file) {
    try {
      auto context = std::make_shared<ssl::context>(ssl::context::tls_client);
      SSL_CTX_set_min_proto_version(context->native_handle(), TLS1_2_VERSION);
      context->set_verify_mode(ssl::verify_peer);
      if (ca_file.empty()) {
        context->set_default_verify_paths();
      } else {
        context->load_verify_file(ca_file);
      }
      return context;
    } catch (const boost::system::system_error& e) {
      return common::Error{"TLS set-up failed" +
                           (ca_file.empty() ? std::string() : " (ca_file " + ca_file + ")") + ": " +
                           e.code().message()};
    }
  }

  // --- any thread ---

  void hand_over(WebhookGaveUp gave_up) {
    ++gave_up_count;
    std::lock_guard lock(give_up_mutex);
    if (give_up_log.allow(common::RateLimiter::Clock::now())) {
      spdlog::warn("webhook {}: gave up a delivery after {} attempt(s): {} ({} similar suppressed)",
                   gave_up.webhook, gave_up.attempts, gave_up.last_error,
                   give_up_log.take_suppressed());
    }
    try {
      if (on_give_up) on_give_up(std::move(gave_up));
    } catch (const std::exception& e) {
      spdlog::error("webhook give-up handler threw: {}", e.what());
    } catch (...) {
      spdlog::error("webhook give-up handler threw");
    }
  }

  void post(std::string_view device, const common::Event& event) {
    const unsigned kind_index = static_cast<unsigned>(event.kind);
    const uint32_t bit = kind_index < kMaxKinds ? uint32_t{1} << kind_index : 0;
    std::string body;
    std::vector<WebhookGaveUp> refused;
    {
      std::lock_guard lock(post_mutex);
      for (std::size_t i = 0; i < hooks.size(); ++i) {
        if ((hooks[i].kind_mask & bit) == 0) continue;
        if (body.empty()) body = webhook_body(device, event);
        const WebhookConfig& config = hooks[i].config;
        if (!accepting) {
          refused.push_back({config.name, config.url, body, 0, "collector stopping"});
          continue;
        }
        if (pending.load() >= max_queued) {
          ++queue_full_count;
          refused.push_back({config.name, config.url, body, 0, "queue full"});
          continue;
        }
        ++pending;
        asio::post(io, [this, i, b = body, kind = event.kind, id = next_id()]() mutable {
          start(i, std::move(b), kind, std::move(id));
        });
      }
    }
    for (auto& r : refused) hand_over(std::move(r));
  }

  // Called with post_mutex held.
  std::string next_id() { return id_prefix + "-" + std::to_string(++id_counter); }

  void stop(std::chrono::milliseconds grace) {
    if (!thread.joinable()) return;
    if (std::this_thread::get_id() == thread.get_id()) {
      spdlog::error("WebhookDispatcher::stop called from its own thread; ignored");
      return;
    }
    {
      std::lock_guard lock(post_mutex);
      accepting = false;
    }
    {
      std::unique_lock lock(idle_mutex);
      idle.wait_for(lock, grace, [this] { return pending.load() == 0; });
    }
    stopping = true;
    asio::post(io, [this] { abandon_all(); });
    work.reset();
    thread.join();
  }

  void run() {
    while (true) {
      try {
        io.run();
        return;
      } catch (const std::exception& e) {
        spdlog::error("webhook dispatcher: unexpected exception: {}", e.what());
      } catch (...) {
        spdlog::error("webhook dispatcher: unexpected exception");
      }
    }
  }

  // --- the io thread ---

  void start(std::size_t hook_index, std::string body, common::EventKind kind, std::string id) {
    auto d =
        std::make_shared<Delivery>(io, hooks[hook_index], std::move(body), kind, std::move(id));
    if (stopping) {
      d->last_error = "collector stopping";
      give_up(d);
    } else if (!d->hook.url) {
      d->last_error = d->hook.url_error;
      give_up(d);
    } else {
      live.emplace(d.get(), d);
      attempt(d);
    }
  }

  void attempt(const DeliveryPtr& d) {
    ++d->attempts;
    const uint64_t gen = ++d->generation;
    d->timed_out = false;
    const HttpUrl& url = *d->hook.url;
    d->phase = "resolving " + url.host;
    d->deadline.expires_after(std::chrono::microseconds(d->hook.config.timeout_us));
    d->deadline.async_wait([d, gen](const error_code& ec) {
      if (ec || d->done || gen != d->generation) return;
      d->timed_out = true;
      d->resolver.cancel();
      error_code ignored;
      d->socket.close(ignored);
    });
    d->resolver.async_resolve(
        url.host, url.port,
        [this, d, gen](const error_code& ec, const tcp::resolver::results_type& endpoints) {
          if (!proceed(d, gen, ec)) return;
          d->phase = "connecting to " + d->hook.url->host + ":" + d->hook.url->port;
          asio::async_connect(d->socket, endpoints,
                              [this, d, gen](const error_code& ec, const tcp::endpoint&) {
                                if (!proceed(d, gen, ec)) return;
                                if (d->hook.tls) {
                                  handshake(d, gen);
                                } else {
                                  send(d, gen, d->socket, nullptr);
                                }
                              });
        });
  }

  void handshake(const DeliveryPtr& d, uint64_t gen) {
    const HttpUrl& url = *d->hook.url;
    d->phase = "in the TLS handshake with " + url.host + ":" + url.port;
    auto tls = std::make_shared<TlsStream>(d->socket, *d->hook.tls);
    d->tls = tls;
    error_code ec;
    asio::ip::make_address(url.host, ec);
    if (ec && !SSL_set_tlsext_host_name(tls->native_handle(), url.host.c_str())) {  // SNI
      failed(d, d->phase + ": cannot set the server name", true);
      return;
    }
    tls->set_verify_callback(ssl::host_name_verification(url.host));
    tls->async_handshake(ssl::stream_base::client, [this, d, gen, tls](const error_code& ec) {
      if (!proceed(d, gen, ec)) return;
      send(d, gen, *tls, tls);
    });
  }

  // Writes the request and reads the response on `stream` (the socket, or the TLS layer that
  // `keep` holds alive).
  template <typename Stream>
  void send(const DeliveryPtr& d, uint64_t gen, Stream& stream, std::shared_ptr<TlsStream> keep) {
    const HttpUrl& url = *d->hook.url;
    d->phase = "sending the request";
    auto& req = d->request;
    req = {};
    req.method(http::verb::post);
    req.target(url.target);
    req.version(11);
    const std::string host =
        url.host.find(':') == std::string::npos ? url.host : "[" + url.host + "]";  // IPv6
    const bool default_port = url.port == (url.tls ? "443" : "80");
    req.set(http::field::host, default_port ? host : host + ":" + url.port);
    req.set(http::field::user_agent, "outpost-collector/" OUTPOST_VERSION);
    req.set(http::field::content_type, "application/json");
    req.set("X-Outpost-Event", std::string(common::event_kind_name(d->kind)));
    req.set("X-Outpost-Delivery", d->id);
    req.set("X-Outpost-Attempt", std::to_string(d->attempts));
    if (!d->hook.config.secret.empty()) {
      req.set("X-Outpost-Signature", "sha256=" + hmac_sha256_hex(d->hook.config.secret, d->body));
    }
    req.keep_alive(false);
    req.body() = d->body;
    req.prepare_payload();
    http::async_write(
        stream, req, [this, d, gen, &stream, keep](const error_code& ec, std::size_t) {
          if (!proceed(d, gen, ec)) return;
          d->phase = "waiting for the response";
          d->buffer.clear();
          d->parser.emplace();
          d->parser->body_limit(kMaxResponseBody);
          http::async_read(stream, d->buffer, *d->parser,
                           [this, d, gen, keep](error_code ec, std::size_t) {
                             (void)keep;  // the TLS layer lives until the response is read
                             // A large body does not matter: the status line decides.
                             if (ec == http::error::body_limit && d->parser->is_header_done()) {
                               ec = {};
                             }
                             if (!proceed(d, gen, ec)) return;
                             on_response(d);
                           });
        });
  }

  // True if the attempt may go on; otherwise handles the error (if the attempt is current).
  bool proceed(const DeliveryPtr& d, uint64_t gen, const error_code& ec) {
    if (d->done || gen != d->generation) return false;
    if (!ec) return true;
    if (d->timed_out) {
      failed(d, "timed out after " + milliseconds_text(d->hook.config.timeout_us) + " " + d->phase,
             true);
    } else {
      failed(d, d->phase + ": " + ec.message(), true);
    }
    return false;
  }

  void on_response(const DeliveryPtr& d) {
    const auto& response = d->parser->get();
    const unsigned status = response.result_int();
    end_attempt(*d);
    if (status >= 200 && status < 300) {
      d->done = true;
      ++delivered_count;
      finish(d);
      return;
    }
    std::string error = "HTTP " + std::to_string(status);
    const auto reason = response.reason();
    if (!reason.empty()) error += " " + printable({reason.data(), reason.size()}, 60);
    if (!response.body().empty()) error += ": " + printable(response.body(), kMaxErrorBody);
    const bool retryable = status >= 500 || status == 408 || status == 429;
    if (!retryable) error += " (permanent: not retried)";
    std::optional<int64_t> retry_after;
    if (const auto field = response.find(http::field::retry_after); field != response.end()) {
      const auto value = field->value();
      retry_after = parse_retry_after_us({value.data(), value.size()}, common::wall_now_us());
    }
    failed(d, std::move(error), retryable, retry_after);
  }

  // `retry_after`: what the receiver asked for in a Retry-After header, if anything.
  void failed(const DeliveryPtr& d, std::string error, bool retryable,
              std::optional<int64_t> retry_after = std::nullopt) {
    end_attempt(*d);
    d->last_error = std::move(error);
    if (!retryable || d->attempts >= d->hook.config.max_attempts) {
      give_up(d);
      return;
    }
    ++retried_count;
    const int64_t delay =
        honour_retry_after_us(d->hook.config,
                              retry_delay_us(d->hook.config, d->attempts,
                                             std::uniform_real_distribution<double>(0, 1)(rng)),
                              retry_after);
    spdlog::debug("webhook {}: attempt {} of delivery {} failed ({}); retrying in {}",
                  d->hook.config.name, d->attempts, d->id, d->last_error, milliseconds_text(delay));
    d->backoff.expires_after(std::chrono::microseconds(delay));
    d->backoff.async_wait([this, d](const error_code& ec) {
      if (ec || d->done) return;
      attempt(d);
    });
  }

  // Ends the current attempt's I/O; its late handlers see a new generation and do nothing.
  static void end_attempt(Delivery& d) {
    ++d.generation;
    error_code ignored;
    d.deadline.cancel();
    d.resolver.cancel();
    d.socket.shutdown(tcp::socket::shutdown_both, ignored);
    d.socket.close(ignored);
  }

  void give_up(const DeliveryPtr& d) {
    end_attempt(*d);
    d->backoff.cancel();
    d->done = true;
    hand_over({d->hook.config.name, d->hook.config.url, d->body, d->attempts, d->last_error});
    finish(d);
  }

  void finish(const DeliveryPtr& d) {
    live.erase(d.get());
    if (pending.fetch_sub(1) == 1) {
      { std::lock_guard lock(idle_mutex); }
      idle.notify_all();
    }
  }

  void abandon_all() {
    std::vector<DeliveryPtr> remaining;
    for (auto& [ptr, d] : live) remaining.push_back(d);
    for (auto& d : remaining) {
      if (d->done) continue;
      d->last_error = d->last_error.empty()
                          ? "collector stopping"
                          : "collector stopping (last error: " + d->last_error + ")";
      give_up(d);
    }
  }

  std::vector<Hook> hooks;
  std::function<void(WebhookGaveUp)> on_give_up;
  const std::size_t max_queued;

  std::atomic<uint64_t> delivered_count{0};
  std::atomic<uint64_t> retried_count{0};
  std::atomic<uint64_t> gave_up_count{0};
  std::atomic<uint64_t> queue_full_count{0};
  std::atomic<std::size_t> pending{0};  // posted and not yet finished
  std::atomic<bool> stopping{false};    // grace is over: give up whatever is left

  std::mutex post_mutex;  // guards accepting, id_counter, and posting to io
  bool accepting = true;
  uint64_t id_counter = 0;
  std::string id_prefix;

  std::mutex give_up_mutex;  // serialises on_give_up and guards give_up_log
  common::RateLimiter give_up_log{10, std::chrono::seconds(10)};

  std::mutex idle_mutex;
  std::condition_variable idle;

  asio::io_context io{1};
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  std::mt19937_64 rng;                              // io thread only (after construction)
  std::unordered_map<Delivery*, DeliveryPtr> live;  // io thread only
  std::thread thread;
};

WebhookDispatcher::WebhookDispatcher(std::vector<WebhookConfig> hooks,
                                     std::function<void(WebhookGaveUp)> on_give_up,
                                     std::size_t max_queued)
    : impl_(std::make_unique<Impl>(std::move(hooks), std::move(on_give_up), max_queued)) {
  impl_->thread = std::thread([impl = impl_.get()] { impl->run(); });
}

WebhookDispatcher::~WebhookDispatcher() { stop(std::chrono::milliseconds(0)); }

void WebhookDispatcher::post(std::string_view device, const common::Event& event) {
  impl_->post(device, event);
}

void WebhookDispatcher::stop(std::chrono::milliseconds grace) { impl_->stop(grace); }

WebhookStats WebhookDispatcher::stats() const {
  return WebhookStats{impl_->delivered_count.load(), impl_->retried_count.load(),
                      impl_->gave_up_count.load(), impl_->queue_full_count.load()};
}

}  // namespace outpost::collector
