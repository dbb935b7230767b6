// Tests of webhook delivery against HTTP servers running in-process on 127.0.0.1.
#include "outpost/collector/webhook.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include "outpost/collector/hmac.h"
#include "support/http_server.h"
#include "support/process.h"

namespace outpost::collector {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using boost::system::error_code;
using std::chrono::milliseconds;
using test_support::Received;
using test_support::Reply;
using test_support::TestHttpServer;
using test_support::wait_until;
using tcp = asio::ip::tcp;

constexpr milliseconds kWait(3000);  // deadline for conditions that should hold in a few ms

Reply fail_first(std::size_t n, std::size_t failures, int status = 500) {
  return n < failures ? Reply{status, false} : Reply{200, false};
}

// Collects what on_give_up receives, from any thread.
class GaveUpLog {
 public:
  std::function<void(WebhookGaveUp)> callback() {
    return [this](WebhookGaveUp g) {
      std::lock_guard lock(mutex_);
      entries_.push_back(std::move(g));
    };
  }
  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return entries_.size();
  }
  std::vector<WebhookGaveUp> entries() const {
    std::lock_guard lock(mutex_);
    return entries_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<WebhookGaveUp> entries_;
};

WebhookConfig hook(std::string name, std::string url) {
  WebhookConfig c;
  c.name = std::move(name);
  c.url = std::move(url);
  c.timeout_us = 2'000'000;
  c.max_attempts = 6;
  c.initial_backoff_us = 5'000;
  c.max_backoff_us = 20'000;
  return c;
}

common::Event event(common::EventKind kind = common::EventKind::kThresholdAbove) {
  common::Event e;
  e.kind = kind;
  e.time_us = 1'700'000'000'000'000;
  e.site = "plant-a";
  e.sensor = "temp";
  e.value = 31.5;
  e.threshold = 30;
  e.detail = "rule hot";
  return e;
}

// --- pure parts ---

TEST(HmacSha256, MatchesRfc4231TestCase2) {
  EXPECT_EQ(hmac_sha256_hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(WebhookBody, HasTheDocumentedKeysInOrder) {
  EXPECT_EQ(webhook_body("gw-7", event()),
            R"({"kind":"threshold_above","device":"gw-7","site":"plant-a",)"
            R"("time_us":1700000000000000,"sensor":"temp","value":31.5,"threshold":30,)"
            R"("detail":"rule hot"})");
}

TEST(WebhookBody, EscapesTextAndWritesNonFiniteNumbersAsStrings) {
  common::Event e = event();
  e.value = std::numeric_limits<double>::infinity();
  e.threshold = std::nan("");
  e.detail = "say \"hi\"\n";
  const std::string body = webhook_body("gw-7", e);
  EXPECT_NE(body.find(R"("value":"Infinity","threshold":"NaN")"), std::string::npos) << body;
  EXPECT_NE(body.find(R"("detail":"say \"hi\"\n")"), std::string::npos) << body;
}

TEST(RetryDelay, DoublesFromInitialUpToMaxWithJitterBetweenHalfAndFull) {
  WebhookConfig c;
  c.initial_backoff_us = 500'000;
  c.max_backoff_us = 3'000'000;
  EXPECT_EQ(retry_delay_us(c, 1, 1.0), 500'000);
  EXPECT_EQ(retry_delay_us(c, 2, 1.0), 1'000'000);
  EXPECT_EQ(retry_delay_us(c, 3, 1.0), 2'000'000);
  EXPECT_EQ(retry_delay_us(c, 4, 1.0), 3'000'000);
  EXPECT_EQ(retry_delay_us(c, 100, 1.0), 3'000'000);
  EXPECT_EQ(retry_delay_us(c, 1, 0.0), 250'000);
  EXPECT_EQ(retry_delay_us(c, 100, 0.0), 1'500'000);
}

TEST(RetryAfter, ParsesDelaySecondsAndImfDatesRelativeToNow) {
  // 1994-11-06T08:49:37Z
  const int64_t date_us = 784111777LL * 1'000'000;
  EXPECT_EQ(parse_retry_after_us("120", 0), 120'000'000);
  EXPECT_EQ(parse_retry_after_us(" 0 ", 0), 0);
  EXPECT_EQ(parse_retry_after_us("Sun, 06 Nov 1994 08:49:37 GMT", date_us - 5'000'000), 5'000'000);
  EXPECT_EQ(parse_retry_after_us("Sun, 06 Nov 1994 08:49:37 GMT", date_us + 1), 0);
  EXPECT_EQ(parse_retry_after_us("99999999999999999999999", 0), INT64_MAX);
  for (const char* bad : {"", "soon", "-5", "1.5", "12 s", "Sun, 06 Nov 1994 08:49:37 CET",
                          "Sunday, 06-Nov-94 08:49:37 GMT"}) {
    EXPECT_EQ(parse_retry_after_us(bad, 0), std::nullopt) << bad;
  }
}

TEST(RetryAfter, LengthensTheBackoffUpToMaxBackoffButNeverShortensIt) {
  WebhookConfig config;
  config.max_backoff_us = 10'000'000;
  EXPECT_EQ(honour_retry_after_us(config, 400'000, std::nullopt), 400'000);
  EXPECT_EQ(honour_retry_after_us(config, 400'000, 3'000'000), 3'000'000);
  EXPECT_EQ(honour_retry_after_us(config, 400'000, 0), 400'000);
  EXPECT_EQ(honour_retry_after_us(config, 400'000, 3'600'000'000), 10'000'000);
}

TEST(ParseWebhookUrl, SplitsHostPortAndTargetWithDefaults) {
  auto u = parse_webhook_url("http://hooks.example.com/outpost?x=1");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u.value().host, "hooks.example.com");
  EXPECT_EQ(u.value().port, "80");
  EXPECT_EQ(u.value().target, "/outpost?x=1");
  auto v = parse_webhook_url("http://[::1]:8080");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v.value().host, "::1");
  EXPECT_EQ(v.value().port, "8080");
  EXPECT_EQ(v.value().target, "/");
}

TEST(ParseWebhookUrl, HttpsUsesTlsAndPort443ByDefault) {
  auto u = parse_webhook_url("HTTPS://hooks.example.com/x");
  ASSERT_TRUE(u.ok());
  EXPECT_TRUE(u.value().tls);
  EXPECT_EQ(u.value().port, "443");
  auto v = parse_webhook_url("https://10.0.0.5:8443/in");
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v.value().tls);
  EXPECT_EQ(v.value().port, "8443");
  EXPECT_FALSE(parse_webhook_url("http://h/x").value().tls);
}

TEST(ParseWebhookUrl, RefusesCredentialsBadPortsAndOtherSchemes) {
  EXPECT_FALSE(parse_webhook_url("http://user:pw@host/x").ok());
  EXPECT_FALSE(parse_webhook_url("http://host:0/x").ok());
  EXPECT_FALSE(parse_webhook_url("http://host:99999/x").ok());
  EXPECT_FALSE(parse_webhook_url("http://host:80x/x").ok());
  EXPECT_FALSE(parse_webhook_url("ftp://host/x").ok());
  EXPECT_FALSE(parse_webhook_url("http:///x").ok());
  EXPECT_FALSE(parse_webhook_url("hooks.example.com").ok());
}

// --- config ---

struct Parsed {
  std::vector<WebhookConfig> hooks;
  std::string error;  // finish()'s first error, "" if none
};

Parsed parse(std::string_view text) {
  auto r = common::ConfigReader::parse_string(text, "collector.toml");
  EXPECT_TRUE(r.ok());
  Parsed p;
  if (!r.ok()) return p;
  read_webhooks(r.value(), p.hooks);
  if (auto s = r.value().finish(); !s.ok()) p.error = s.error().to_string();
  return p;
}

TEST(ReadWebhooks, ReadsEveryKeyAndKeepsDefaultsForTheRest) {
  auto p = parse(R"(
[webhooks.ops]
url = "http://10.0.0.5:8080/outpost"
secret = "s3cret"
kinds = ["threshold_above", "device_offline"]
timeout = "2s"
max_attempts = 3
initial_backoff = "100ms"
max_backoff = "10s"

[webhooks.audit]
url = "http://audit.local/in"
)");
  EXPECT_EQ(p.error, "");
  ASSERT_EQ(p.hooks.size(), 2u);
  const WebhookConfig& ops = p.hooks[0];
  EXPECT_EQ(ops.name, "ops");
  EXPECT_EQ(ops.url, "http://10.0.0.5:8080/outpost");
  EXPECT_EQ(ops.secret, "s3cret");
  EXPECT_EQ(ops.kinds, (std::vector<std::string>{"threshold_above", "device_offline"}));
  EXPECT_EQ(ops.timeout_us, 2'000'000);
  EXPECT_EQ(ops.max_attempts, 3u);
  EXPECT_EQ(ops.initial_backoff_us, 100'000);
  EXPECT_EQ(ops.max_backoff_us, 10'000'000);
  const WebhookConfig& audit = p.hooks[1];
  EXPECT_EQ(audit.name, "audit");
  EXPECT_TRUE(audit.kinds.empty());
  EXPECT_EQ(audit.timeout_us, 5'000'000);
  EXPECT_EQ(audit.max_attempts, 6u);
  EXPECT_EQ(audit.initial_backoff_us, 500'000);
  EXPECT_EQ(audit.max_backoff_us, 60'000'000);
}

TEST(ReadWebhooks, HttpsUrlWithAndWithoutCaFile) {
  auto p = parse("[webhooks.y]\nurl = \"https://hooks.example.com/x\"\n");
  EXPECT_EQ(p.error, "");
  ASSERT_EQ(p.hooks.size(), 1u);
  EXPECT_EQ(p.hooks[0].ca_file, "");
  auto q = parse("[webhooks.y]\nurl = \"https://h/x\"\nca_file = \"/etc/hostname\"\n");
  EXPECT_EQ(q.error, "");
  ASSERT_EQ(q.hooks.size(), 1u);
  EXPECT_EQ(q.hooks[0].ca_file, "/etc/hostname");
}

TEST(ReadWebhooks, CaFileMustExistAndGoesWithHttpsOnly) {
  auto missing = parse("[webhooks.y]\nurl = \"https://h/x\"\nca_file = \"/nonexistent/ca.pem\"\n");
  EXPECT_TRUE(missing.hooks.empty());
  EXPECT_EQ(missing.error.rfind("collector.toml:3:", 0), 0u) << missing.error;
  EXPECT_NE(missing.error.find("webhooks.y.ca_file: no such file: /nonexistent/ca.pem"),
            std::string::npos)
      << missing.error;
  auto plain = parse("[webhooks.y]\nurl = \"http://h/x\"\nca_file = \"/etc/hostname\"\n");
  EXPECT_TRUE(plain.hooks.empty());
  EXPECT_NE(plain.error.find("webhooks.y.ca_file: applies to https:// URLs only"),
            std::string::npos)
      << plain.error;
}

TEST(ReadWebhooks, UnknownEventKindIsAnErrorListingTheKnownOnes) {
  auto p = parse("[webhooks.y]\nurl = \"http://h/x\"\nkinds = [\"threshold_abvoe\"]\n");
  EXPECT_TRUE(p.hooks.empty());
  EXPECT_NE(p.error.find("webhooks.y.kinds: unknown event kind \"threshold_abvoe\""),
            std::string::npos)
      << p.error;
  EXPECT_NE(p.error.find("threshold_above"), std::string::npos) << p.error;
}

TEST(ReadWebhooks, MissingUrlZeroAttemptsAndUnknownKeysAreErrors) {
  EXPECT_NE(parse("[webhooks.y]\nsecret = \"x\"\n").error.find("webhooks.y: missing required key"),
            std::string::npos);
  EXPECT_NE(parse("[webhooks.y]\nurl = \"http://h/\"\nmax_attempts = 0\n")
                .error.find("webhooks.y.max_attempts"),
            std::string::npos);
  EXPECT_NE(parse("[webhooks.y]\nurl = \"http://h/\"\ntimeot = \"1s\"\n")
                .error.find("webhooks.y.timeot: unknown key"),
            std::string::npos);
  EXPECT_NE(parse("[webhooks.y]\nurl = \"http://h/\"\ninitial_backoff = \"2s\"\nmax_backoff = "
                  "\"1s\"\n")
                .error.find("webhooks.y.max_backoff: must be at least"),
            std::string::npos);
}

// --- delivery ---

TEST(WebhookDispatcher, FailsTwiceThenSucceedsDeliveringOnceWithAValidSignature) {
  TestHttpServer server([](std::size_t n) { return fail_first(n, 2); });
  GaveUpLog gave_up;
  WebhookConfig config = hook("ops", server.url("/in"));
  config.secret = "s3cret";
  WebhookDispatcher dispatcher({config}, gave_up.callback());
  dispatcher.post("gw-7", event());
  ASSERT_TRUE(wait_until([&] { return dispatcher.stats().delivered == 1; }, kWait));
  dispatcher.stop(milliseconds(0));

  EXPECT_EQ(dispatcher.stats().retried, 2u);
  EXPECT_EQ(dispatcher.stats().gave_up, 0u);
  EXPECT_EQ(gave_up.size(), 0u);
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 3u);
  const Received& last = requests.back();
  EXPECT_EQ(last.target, "/in");
  EXPECT_EQ(last.body, webhook_body("gw-7", event()));
  EXPECT_EQ(last.header("content-type"), "application/json");
  EXPECT_EQ(last.header("x-outpost-event"), "threshold_above");
  EXPECT_EQ(last.header("x-outpost-attempt"), "3");
  EXPECT_EQ(last.header("x-outpost-signature"), "sha256=" + hmac_sha256_hex("s3cret", last.body));
  EXPECT_NE(last.header("x-outpost-signature"), "sha256=" + hmac_sha256_hex("wrong", last.body));
  // One delivery, one id across its attempts: the receiver can deduplicate on it.
  EXPECT_FALSE(last.header("x-outpost-delivery").empty());
  for (const auto& r : requests) {
    EXPECT_EQ(r.header("x-outpost-delivery"), last.header("x-outpost-delivery"));
  }
}

// A test CA and a server certificate for 127.0.0.1 (IP SAN only), made once per process.
const std::filesystem::path& test_ca() {
  static const std::filesystem::path dir = [] {
    auto d = std::filesystem::temp_directory_path() /
             ("outpost_webhook_tls_" + std::to_string(::getpid()));
    std::string error;
    if (!test_support::make_test_ca(d, error)) ADD_FAILURE() << error;
    return d;
  }();
  return dir;
}

test_support::TlsFiles server_tls() {
  return {(test_ca() / "server.pem").string(), (test_ca() / "server.key").string()};
}

TEST(WebhookDispatcher, HttpsDeliversSignedToAServerTheCaFileVouchesFor) {
  TestHttpServer server([](std::size_t n) { return fail_first(n, 1); }, server_tls());
  GaveUpLog gave_up;
  WebhookConfig config = hook("ops", server.url("/in"));
  ASSERT_EQ(config.url.rfind("https://127.0.0.1:", 0), 0u);
  config.secret = "s3cret";
  config.ca_file = (test_ca() / "ca.pem").string();
  WebhookDispatcher dispatcher({config}, gave_up.callback());
  dispatcher.post("gw-7", event());
  ASSERT_TRUE(wait_until([&] { return dispatcher.stats().delivered == 1; }, kWait))
      << (gave_up.size() ? gave_up.entries()[0].last_error : "");
  dispatcher.stop(milliseconds(0));
  EXPECT_EQ(dispatcher.stats().retried, 1u);
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[1].target, "/in");
  EXPECT_EQ(requests[1].body, webhook_body("gw-7", event()));
  EXPECT_EQ(requests[1].header("host"), "127.0.0.1:" + std::to_string(server.port()));
  EXPECT_EQ(requests[1].header("x-outpost-signature"),
            "sha256=" + hmac_sha256_hex("s3cret", requests[1].body));
  EXPECT_EQ(server.failed_handshakes(), 0u);
}

TEST(WebhookDispatcher, HttpsToAServerNoTrustedCaVouchesForSendsNothingAndGivesUp) {
  TestHttpServer server([](std::size_t) { return Reply{200, false}; }, server_tls());
  GaveUpLog gave_up;
  WebhookConfig config = hook("ops", server.url("/in"));  // the system's CAs: test CA unknown
  config.max_attempts = 2;
  WebhookDispatcher dispatcher({config}, gave_up.callback());
  dispatcher.post("gw-7", event());
  ASSERT_TRUE(wait_until([&] { return gave_up.size() == 1; }, kWait));
  const WebhookGaveUp g = gave_up.entries()[0];
  EXPECT_EQ(g.attempts, 2u);
  EXPECT_NE(g.last_error.find("TLS handshake"), std::string::npos) << g.last_error;
  EXPECT_NE(g.last_error.find("certificate verify failed"), std::string::npos) << g.last_error;
  EXPECT_EQ(server.count(), 0u);  // the body never left
  EXPECT_EQ(dispatcher.stats().delivered, 0u);
}

TEST(WebhookDispatcher, HttpsChecksTheHostNameAgainstTheCertificate) {
  // Trusted CA, but the certificate names 127.0.0.1 only, and the URL says localhost.
  TestHttpServer server([](std::size_t) { return Reply{200, false}; }, server_tls());
  GaveUpLog gave_up;
  WebhookConfig config = hook("ops", server.url("/in", "localhost"));
  config.ca_file = (test_ca() / "ca.pem").string();
  config.max_attempts = 1;
  WebhookDispatcher dispatcher({config}, gave_up.callback());
  dispatcher.post("gw-7", event());
  ASSERT_TRUE(wait_until([&] { return gave_up.size() == 1; }, kWait));
  EXPECT_NE(gave_up.entries()[0].last_error.find("certificate verify failed"), std::string::npos)
      << gave_up.entries()[0].last_error;
  EXPECT_EQ(server.count(), 0u);
}

TEST(WebhookDispatcher, HttpsHookWithAnUnusableCaFileGivesUpEachDeliveryWithTheReason) {
  const auto bad = std::filesystem::temp_directory_path() /
                   ("outpost_webhook_badca_" + std::to_string(::getpid()) + ".pem");
  { std::ofstream(bad) << "not a certificate\n"; }
  GaveUpLog gave_up;
  WebhookConfig config = hook("ops", "https://127.0.0.1:9/in");
  config.ca_file = bad.string();
  WebhookDispatcher dispatcher({config}, gave_up.callback());
  dispatcher.post("gw-7", event());
  ASSERT_TRUE(wait_until([&] { return gave_up.size() == 1; }, kWait));
  EXPECT_NE(gave_up.entries()[0].last_error.find("TLS set-up failed (ca_file " + bad.string()),
            std::string::npos)
      << gave_up.entries()[0].last_error;
  EXPECT_EQ(gave_up.entries()[0].attempts, 0u);
  std::filesystem::remove(bad);
}

TEST(WebhookDispatcher, WithoutSecretThereIsNoSignatureAndEachDeliveryHasItsOwnId) {
  TestHttpServer server([](std::size_t) { return Reply{204, false}; });
  GaveUpLog gave_up;
  WebhookDispatcher dispatcher({hook("ops", server.url())}, gave_up.callback());
  dispatcher.post("gw-1", event());
  dispatcher.post("gw-2", event());
  ASSERT_TRUE(wait_until([&] { return dispatcher.stats().delivered == 2; }, kWait));
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].header("x-outpost-signature"), "");
  EXPECT_NE(requests[0].header("x-outpost-delivery"), requests[1].header("x-outpost-delivery"));
}

TEST(WebhookDispatcher, AlwaysFailingEndpointGivesUpAfterMaxAttemptsWithTheBody) {
  TestHttpServer server([](std::size_t) { return Reply{503, false}; });
  GaveUpLog gave_up;
  WebhookConfig config = hook("ops", server.url());
  config.max_attempts = 3;
  WebhookDispatcher dispatcher({config}, gave_up.callback());
  dispatcher.post("gw-7", event());
  ASSERT_TRUE(wait_until([&] { return gave_up.size() == 1; }, kWait));
  const WebhookGaveUp g = gave_up.entries()[0];
  EXPECT_EQ(g.webhook, "ops");
  EXPECT_EQ(g.url, config.url);
  EXPECT_EQ(g.body, webhook_body("gw-7", event()));
  EXPECT_EQ(g.attempts, 3u);
  EXPECT_NE(g.last_error.find("HTTP 503"), std::string::npos) << g.last_error;
  EXPECT_EQ(server.count(), 3u);
  const WebhookStats s = dispatcher.stats();
  EXPECT_EQ(s.retried, 2u);
  EXPECT_EQ(s.gave_up, 1u);
  EXPECT_EQ(s.delivered, 0u);
}

TEST(WebhookDispatcher, ClientErrorGivesUpAtOnceWithoutRetrying) {
  TestHttpServer server([](std::size_t) { return Reply{400, false}; });
  GaveUpLog gave_up;
  WebhookDispatcher dispatcher({hook("ops", server.url())}, gave_up.callback());
  dispatcher.post("gw-7", event());
  ASSERT_TRUE(wait_until([&] { return gave_up.size() == 1; }, kWait));
  EXPECT_EQ(gave_up.entries()[0].attempts, 1u);
  EXPECT_NE(gave_up.entries()[0].last_error.find("HTTP 400"), std::string::npos);
  EXPECT_EQ(dispatcher.stats().retried, 0u);
  EXPECT_EQ(server.count(), 1u);
}

TEST(WebhookDispatcher, TooManyRequestsIsRetried) {
  TestHttpServer server([](std::size_t n) { return fail_first(n, 1, 429); });
  GaveUpLog gave_up;
  WebhookDispatcher dispatcher({hook("ops", server.url())}, gave_up.callback());
  dispatcher.post("gw-7", event());
  ASSERT_TRUE(wait_until([&] { return dispatcher.stats().delivered == 1; }, kWait));
  EXPECT_EQ(dispatcher.stats().retried, 1u);
  EXPECT_EQ(server.count(), 2u);
}

TEST(WebhookDispatcher, RetryAfterFromTheReceiverIsWaitedFor) {
  TestHttpServer server([](std::size_t n) {
    return n == 0 ? Reply{503, false, "1"} : Reply{200, false, ""};
  });
  GaveUpLog gave_up;
  WebhookConfig config = hook("ops", server.url());
  config.max_backoff_us = 5'000'000;  // Retry-After is honoured up to max_backoff
  WebhookDispatcher dispatcher({config}, gave_up.callback());
  dispatcher.post("gw-7", event());
  ASSERT_TRUE(wait_until([&] { return dispatcher.stats().delivered == 1; }, kWait));
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 2u);
  // The hook's own backoff is a few milliseconds; the receiver asked for a second.
  EXPECT_GE(requests[1].at - requests[0].at, std::chrono::milliseconds(990));
}

TEST(WebhookDispatcher, ServerThatNeverAnswersTimesOutThenTheRetrySucceeds) {
  TestHttpServer server([](std::size_t n) { return n == 0 ? Reply{0, true} : Reply{200, false}; });
  GaveUpLog gave_up;
  WebhookConfig config = hook("ops", server.url());
  config.timeout_us = 300'000;
  WebhookDispatcher dispatcher({config}, gave_up.callback());
  dispatcher.post("gw-7", event());
  ASSERT_TRUE(wait_until([&] { return dispatcher.stats().delivered == 1; }, kWait));
  EXPECT_EQ(dispatcher.stats().retried, 1u);
  EXPECT_EQ(server.count(), 2u);
  EXPECT_EQ(gave_up.size(), 0u);
}

TEST(WebhookDispatcher, TimeoutsUntilMaxAttemptsGiveUpNamingTheTimeout) {
  TestHttpServer server([](std::size_t) { return Reply{0, true}; });
  GaveUpLog gave_up;
  WebhookConfig config = hook("ops", server.url());
  config.timeout_us = 50'000;
  config.max_attempts = 2;
  WebhookDispatcher dispatcher({config}, gave_up.callback());
  dispatcher.post("gw-7", event());
  ASSERT_TRUE(wait_until([&] { return gave_up.size() == 1; }, kWait));
  EXPECT_EQ(gave_up.entries()[0].attempts, 2u);
  EXPECT_NE(gave_up.entries()[0].last_error.find("timed out after 50ms"), std::string::npos)
      << gave_up.entries()[0].last_error;
}

TEST(WebhookDispatcher, ConnectionRefusedIsRetriedThenGivenUp) {
  GaveUpLog gave_up;
  const test_support::RefusingPort nobody;
  WebhookConfig config = hook("ops", "http://127.0.0.1:" + std::to_string(nobody.port()) + "/x");
  config.max_attempts = 2;
  WebhookDispatcher dispatcher({config}, gave_up.callback());
  dispatcher.post("gw-7", event());
  ASSERT_TRUE(wait_until([&] { return gave_up.size() == 1; }, kWait));
  EXPECT_EQ(gave_up.entries()[0].attempts, 2u);
  EXPECT_NE(gave_up.entries()[0].last_error.find("connecting to 127.0.0.1"), std::string::npos)
      << gave_up.entries()[0].last_error;
  EXPECT_EQ(dispatcher.stats().retried, 1u);
}

TEST(WebhookDispatcher, KindsFilterSendsOnlyTheKindsAHookAskedFor) {
  TestHttpServer server([](std::size_t) { return Reply{200, false}; });
  GaveUpLog gave_up;
  WebhookConfig only_above = hook("above", server.url("/above"));
  only_above.kinds = {"threshold_above"};
  WebhookConfig all = hook("all", server.url("/all"));
  WebhookDispatcher dispatcher({only_above, all}, gave_up.callback());
  dispatcher.post("gw-7", event(common::EventKind::kThresholdCleared));
  dispatcher.post("gw-7", event(common::EventKind::kThresholdAbove));
  ASSERT_TRUE(wait_until([&] { return dispatcher.stats().delivered == 3; }, kWait));
  dispatcher.stop(milliseconds(0));
  std::multiset<std::string> seen;
  for (const auto& r : server.requests()) seen.insert(r.target + " " + r.header("x-outpost-event"));
  EXPECT_EQ(seen, (std::multiset<std::string>{"/above threshold_above", "/all threshold_above",
                                              "/all threshold_cleared"}));
}

TEST(WebhookDispatcher, SlowHookDoesNotDelayOthers) {
  TestHttpServer slow([](std::size_t) { return Reply{0, true}; });
  TestHttpServer fast([](std::size_t) { return Reply{200, false}; });
  GaveUpLog gave_up;
  WebhookConfig slow_hook = hook("slow", slow.url());
  slow_hook.timeout_us = 60'000'000;
  WebhookDispatcher dispatcher({slow_hook, hook("fast", fast.url())}, gave_up.callback());
  for (int i = 0; i < 5; ++i) dispatcher.post("gw-7", event());
  ASSERT_TRUE(wait_until([&] { return dispatcher.stats().delivered == 5; }, kWait));
  // The fast hook finished all five while none of the slow ones has; the slow hook's five
  // requests reach its server on their own schedule, all waiting there at once.
  EXPECT_TRUE(wait_until([&] { return slow.count() == 5; }, kWait)) << slow.count();
  EXPECT_EQ(gave_up.size(), 0u);
  dispatcher.stop(milliseconds(0));
  ASSERT_EQ(gave_up.size(), 5u);
  EXPECT_EQ(gave_up.entries()[0].webhook, "slow");
}

TEST(WebhookDispatcher, StopHandsPendingDeliveriesToOnGiveUp) {
  TestHttpServer server([](std::size_t) { return Reply{500, false}; });
  GaveUpLog gave_up;
  WebhookConfig config = hook("ops", server.url());
  config.initial_backoff_us = 60'000'000;  // the retry would come long after stop()
  config.max_backoff_us = 60'000'000;
  WebhookDispatcher dispatcher({config}, gave_up.callback());
  dispatcher.post("gw-7", event());
  ASSERT_TRUE(wait_until([&] { return dispatcher.stats().retried == 1; }, kWait));
  EXPECT_EQ(gave_up.size(), 0u);
  dispatcher.stop(milliseconds(0));
  ASSERT_EQ(gave_up.size(), 1u);
  const WebhookGaveUp g = gave_up.entries()[0];
  EXPECT_EQ(g.last_error.rfind("collector stopping", 0), 0u) << g.last_error;
  EXPECT_NE(g.last_error.find("HTTP 500"), std::string::npos) << g.last_error;
  EXPECT_EQ(g.attempts, 1u);
  EXPECT_EQ(g.body, webhook_body("gw-7", event()));
  // After stop, posts are refused the same way rather than lost.
  dispatcher.post("gw-8", event());
  ASSERT_EQ(gave_up.size(), 2u);
  EXPECT_EQ(gave_up.entries()[1].last_error, "collector stopping");
  EXPECT_EQ(gave_up.entries()[1].attempts, 0u);
}

TEST(WebhookDispatcher, StopWithGraceLetsDeliveriesInProgressFinish) {
  TestHttpServer server([](std::size_t) { return Reply{200, false}; });
  GaveUpLog gave_up;
  WebhookDispatcher dispatcher({hook("ops", server.url())}, gave_up.callback());
  for (int i = 0; i < 3; ++i) dispatcher.post("gw-7", event());
  dispatcher.stop(kWait);
  EXPECT_EQ(dispatcher.stats().delivered, 3u);
  EXPECT_EQ(gave_up.size(), 0u);
}

TEST(WebhookDispatcher, BeyondMaxQueuedTheDeliveryIsHandedBackAtOnce) {
  TestHttpServer server([](std::size_t) { return Reply{0, true}; });
  GaveUpLog gave_up;
  WebhookDispatcher dispatcher({hook("ops", server.url())}, gave_up.callback(), 2);
  for (int i = 0; i < 3; ++i) dispatcher.post("gw-7", event());
  // The third is refused in post() itself, before anything reaches the server.
  ASSERT_EQ(gave_up.size(), 1u);
  EXPECT_EQ(gave_up.entries()[0].last_error, "queue full");
  EXPECT_EQ(gave_up.entries()[0].attempts, 0u);
  EXPECT_EQ(dispatcher.stats().queue_full, 1u);
  EXPECT_EQ(dispatcher.stats().gave_up, 1u);
  dispatcher.stop(milliseconds(0));
  EXPECT_EQ(gave_up.size(), 3u);
}

TEST(WebhookDispatcher, HookWithAnUnusableUrlGivesUpEachDeliveryWithTheReason) {
  GaveUpLog gave_up;
  WebhookDispatcher dispatcher({hook("bad", "ftp://hooks.example.com/x")}, gave_up.callback());
  dispatcher.post("gw-7", event());
  ASSERT_TRUE(wait_until([&] { return gave_up.size() == 1; }, kWait));
  EXPECT_EQ(gave_up.entries()[0].attempts, 0u);
  EXPECT_NE(gave_up.entries()[0].last_error.find("bad url"), std::string::npos);
}

TEST(WebhookDispatcher, AThrowingGiveUpHandlerDoesNotStopDeliveries) {
  TestHttpServer server([](std::size_t n) {
    return n == 0 ? Reply{400, false} : Reply{200, false};
  });
  std::atomic<int> calls{0};
  WebhookDispatcher dispatcher({hook("ops", server.url())}, [&](WebhookGaveUp) {
    ++calls;
    throw std::runtime_error("DLQ full");
  });
  dispatcher.post("gw-7", event());
  ASSERT_TRUE(wait_until([&] { return calls.load() == 1; }, kWait));
  dispatcher.post("gw-7", event());
  ASSERT_TRUE(wait_until([&] { return dispatcher.stats().delivered == 1; }, kWait));
}

}  // namespace
}  // namespace outpost::collector
