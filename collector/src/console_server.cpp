// The console's thread: page files, /api/v1 (console.h), and the live stream fed by polls.
#include "console_server.h"

#include <spdlog/spdlog.h>

#include <boost/asio.hpp>
#include <thread>
#include <vector>

#include "console_assets.h"
#include "outpost/collector/console.h"
#include "outpost/common/clock.h"
#include "outpost/common/http_server.h"
#include "outpost/common/json.h"
#include "outpost/common/net.h"
#include "storage.h"
#include "tools.h"

namespace outpost::collector {
namespace {

namespace asio = boost::asio;
using common::HttpRequest;
using common::HttpResponse;

// The page runs under this policy: its own files only, no inline script or style.
constexpr const char* kPagePolicy =
    "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'";
constexpr auto kPollEvery = std::chrono::seconds(1);
constexpr int kKeepAliveEvery = 15;  // polls between keep-alive comments
constexpr int64_t kReopenAfterUs = 5'000'000;

void page_headers(HttpResponse& r) {
  r.headers.emplace_back("Content-Security-Policy", kPagePolicy);
  r.headers.emplace_back("X-Frame-Options", "DENY");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
}

}  // namespace

struct ConsoleServer::State {
  explicit State(const CollectorConfig& c) : config(c), server(io), timer(io) {}

  // The reader and the API over it, opened when first needed and again after a failure (the
  // database may not be there yet, or PostgreSQL restarting).
  ConsoleApi* api() {
    if (api_) return api_.get();
    const int64_t now = common::wall_now_us();
    if (now - last_open_us < kReopenAfterUs && last_open_us != 0) return nullptr;
    last_open_us = now;
    auto opened = open_reader(config);
    if (!opened.ok()) {
      open_error = opened.error().message;
      spdlog::warn("console: cannot read the database: {}", open_error);
      return nullptr;
    }
    reader = std::move(opened).value();
    ConsoleOptions options;
    options.token = config.console_token;
    options.version = OUTPOST_VERSION;
    api_ = std::make_unique<ConsoleApi>(
        *reader, options,
        [this](const std::vector<int64_t>& ids) {
          return replay_dlq_entries(config, *reader, ids);
        },
        [] { return common::wall_now_us(); });
    return api_.get();
  }

  HttpResponse answer(const HttpRequest& req) {
    ConsoleApi* a = api();
    if (!a) {
      std::string body = "{\"error\":";
      common::append_json_string(body, "the database cannot be read yet: " + open_error);
      return HttpResponse{503, "application/json", body + "}\n", {{"Retry-After", "5"}}};
    }
    HttpResponse r = a->answer(req);
    if (a->refresh_wanted()) {
      // Answered from a fleet read a few seconds old: read it again once this answer is out.
      asio::post(io, [this] {
        if (api_ && api_->refresh_wanted()) (void)api_->refresh_fleet();
      });
    }
    if (r.status == 503) {
      // A reader that failed may hold a broken connection: open a fresh one next time.
      api_.reset();
      reader.reset();
    }
    return r;
  }

  // The next poll a second after this one, or later when a poll takes long (a large fleet):
  // the console thread never spends more than half its time polling.
  void poll(std::chrono::steady_clock::duration after = kPollEvery) {
    timer.expires_after(after);
    timer.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      std::erase_if(streams, [](const auto& s) { return !s->open(); });
      std::chrono::steady_clock::duration took{};
      if (!streams.empty()) {
        if (ConsoleApi* a = api()) {
          const auto start = std::chrono::steady_clock::now();
          for (const auto& [event, data] : a->poll()) {
            for (const auto& s : streams) s->send(event, data);
          }
          took = std::chrono::steady_clock::now() - start;
        }
        if (++ticks % kKeepAliveEvery == 0) {
          for (const auto& s : streams) s->comment("keep-alive");
        }
      }
      poll(std::max<std::chrono::steady_clock::duration>(kPollEvery, 2 * took));
    });
  }

  const CollectorConfig& config;
  asio::io_context io;
  common::HttpServer server;
  asio::steady_timer timer;
  std::unique_ptr<Reader> reader;
  std::unique_ptr<ConsoleApi> api_;
  std::string open_error;
  int64_t last_open_us = 0;
  std::vector<std::shared_ptr<common::HttpEventStream>> streams;
  uint64_t ticks = 0;
  std::string address;
  std::thread thread;
};

ConsoleServer::ConsoleServer(std::unique_ptr<State> state) : state_(std::move(state)) {}

ConsoleServer::~ConsoleServer() {
  State& s = *state_;
  asio::post(s.io, [&s] {
    s.timer.cancel();
    for (const auto& stream : s.streams) stream->close();
    s.streams.clear();
    s.server.close();
    s.io.stop();
  });
  if (s.thread.joinable()) s.thread.join();
}

std::string ConsoleServer::address() const { return state_->address; }

common::Result<std::unique_ptr<ConsoleServer>> ConsoleServer::start(const CollectorConfig& config) {
  auto state = std::make_unique<State>(config);
  State& s = *state;
  for (const ConsoleAsset& asset : console_assets()) {
    const auto respond = [&asset] {
      HttpResponse r{200,
                     std::string(asset.content_type),
                     std::string(asset.body),
                     {{"Cache-Control", "no-cache"}}};
      page_headers(r);
      return r;
    };
    s.server.route(std::string(asset.path), respond);
    if (asset.path == "/index.html") s.server.route("/", respond);
  }
  const auto api = [&s](const HttpRequest& req) { return s.answer(req); };
  s.server.route_prefix("GET", "/api/v1/", api);
  s.server.route_prefix("POST", "/api/v1/", api);
  s.server.route_stream("/api/v1/stream", [&s](std::shared_ptr<common::HttpEventStream> stream) {
    stream->comment("outpost console stream: events fleet, event");
    s.streams.push_back(std::move(stream));
  });

  const auto where = common::parse_host_port(config.console_listen);
  if (!where) return common::Error{"console.listen: bad address " + config.console_listen};
  if (auto l = s.server.listen(where->host, where->port); !l.ok()) {
    return common::Error{"console: " + l.error().message};
  }
  const bool v6 = where->host.find(':') != std::string::npos;
  s.address = (v6 ? "[" + where->host + "]" : where->host) + ":" + std::to_string(s.server.port());
  s.poll();
  // The first fleet read before anyone asks, so that the first page does not wait for it.
  asio::post(s.io, [&s] {
    if (ConsoleApi* a = s.api()) (void)a->refresh_fleet();
  });
  s.thread = std::thread([&s] {
    try {
      s.io.run();
    } catch (const std::exception& e) {
      spdlog::error("console: stopped after an unexpected error: {}", e.what());
    }
  });
  return std::unique_ptr<ConsoleServer>(new ConsoleServer(std::move(state)));
}

}  // namespace outpost::collector
