// The console's JSON API over a fake Reader that can be told to fail: fleet order, filters and
// paging, devices and series, DLQ, replay's token and CSRF checks, the live poll, bad input.
#include "outpost/collector/console.h"

#include <gtest/gtest.h>

#include <deque>
#include <regex>

namespace outpost::collector {
namespace {

using common::HttpRequest;
using common::HttpResponse;

constexpr int64_t kNow = 1'800'000'000'000'000;  // the fake wall clock

class FakeReader final : public Reader {
 public:
  std::vector<DeviceRow> device_rows;
  std::vector<SeqLineState> lines;
  std::map<std::string, uint64_t> topics;
  std::vector<DlqRow> dlq_rows;
  std::vector<EventRow> event_rows;
  std::map<std::string, std::vector<SensorRow>> sensor_rows;
  std::vector<SeriesBucket> buckets;
  std::vector<LogRow> log_rows;
  bool fail = false;  // every call fails, as a database that cannot be read
  int device_reads = 0;
  SeriesQuery last_series;
  DlqFilter last_dlq;
  EventQuery last_events;
  LogQuery last_logs;

  // Answers for fleet_changes(), in order; when none is left, a complete read (the default)
  // given revision full_revision.
  std::deque<FleetChanges> changes;
  uint64_t full_revision = 0;
  std::vector<uint64_t> asked;  // the revisions fleet_changes() was asked for

  common::Result<FleetChanges, SinkError> fleet_changes(uint64_t revision) override {
    asked.push_back(revision);
    if (fail) return SinkError{"database is locked", true};
    if (!changes.empty()) {
      FleetChanges c = std::move(changes.front());
      changes.pop_front();
      return c;
    }
    auto all = Reader::fleet_changes(revision);
    if (all.ok()) all.value().revision = full_revision;
    return all;
  }
  common::Result<std::vector<DeviceRow>, SinkError> devices() override {
    ++device_reads;
    if (fail) return SinkError{"database is locked", true};
    return device_rows;
  }
  common::Result<std::vector<SeqLineState>, SinkError> seq_lines() override {
    if (fail) return SinkError{"database is locked", true};
    return lines;
  }
  common::Status<SinkError> query_readings(const ReadingQuery&,
                                           const std::function<void(const ReadingRow&)>&) override {
    return {};
  }
  common::Status<SinkError> query_logs(const LogQuery& q,
                                       const std::function<void(const LogRow&)>& row) override {
    last_logs = q;
    if (fail) return SinkError{"database is locked", true};
    for (const LogRow& r : log_rows) row(r);
    return {};
  }
  common::Result<std::vector<DlqRow>, SinkError> dlq(const DlqFilter& f) override {
    last_dlq = f;
    if (fail) return SinkError{"database is locked", true};
    return dlq_rows;
  }
  common::Result<uint64_t, SinkError> dlq_count(const DlqFilter&) override {
    if (fail) return SinkError{"database is locked", true};
    return dlq_rows.size() + 1000;  // more than one page holds
  }
  common::Result<std::vector<DlqBucket>, SinkError> dlq_histogram(int64_t since_us,
                                                                  int64_t bucket_us) override {
    return std::vector<DlqBucket>{
        {since_us / bucket_us * bucket_us, common::Reason::kNotDecodable, 3},
        {since_us / bucket_us * bucket_us, common::Reason::kUnroutableTopic, 1},
        {since_us / bucket_us * bucket_us + bucket_us, common::Reason::kNotDecodable, 2}};
  }
  common::Result<std::map<std::string, uint64_t>, SinkError> dlq_topics() override {
    if (fail) return SinkError{"database is locked", true};
    return topics;
  }
  common::Result<std::optional<DlqRow>, SinkError> dlq_entry(int64_t id) override {
    for (const DlqRow& r : dlq_rows) {
      if (r.id == id) return std::optional<DlqRow>(r);
    }
    return std::optional<DlqRow>();
  }
  common::Result<std::vector<EventRow>, SinkError> events(uint64_t) override { return event_rows; }
  common::Result<std::vector<EventRow>, SinkError> find_events(const EventQuery& q) override {
    last_events = q;
    std::vector<EventRow> out;
    for (const EventRow& e : event_rows) {
      if (e.id > q.after_id && (q.device.empty() || e.device == q.device)) out.push_back(e);
    }
    if (out.size() > q.limit) {
      if (q.oldest) {
        out.resize(q.limit);
      } else {
        out.erase(out.begin(), out.end() - static_cast<std::ptrdiff_t>(q.limit));
      }
    }
    return out;
  }
  common::Result<std::vector<SensorRow>, SinkError> sensors(const std::string& device) override {
    return sensor_rows[device];
  }
  common::Result<std::vector<SeriesBucket>, SinkError> series(const SeriesQuery& q) override {
    last_series = q;
    return buckets;
  }
  common::Result<std::map<common::Reason, uint64_t>, SinkError> dlq_reasons() override {
    return std::map<common::Reason, uint64_t>{{common::Reason::kNotDecodable, 5},
                                              {common::Reason::kUnroutableTopic, 1}};
  }
  common::Result<std::map<std::string, uint64_t>, SinkError> event_kinds() override {
    return std::map<std::string, uint64_t>{};
  }
  common::Result<std::map<std::string, uint64_t>, SinkError> counts() override {
    return std::map<std::string, uint64_t>{};
  }
};

DeviceRow device(std::string name, std::string site, Presence p, int64_t last_data_us) {
  DeviceRow d;
  d.device = std::move(name);
  d.site = std::move(site);
  d.presence = p;
  d.first_seen_us = kNow - 100'000'000;
  d.last_seen_us = last_data_us;
  d.last_data_us = last_data_us;
  d.readings = 10;
  return d;
}

HttpRequest get(std::string path, std::map<std::string, std::string, std::less<>> query = {}) {
  HttpRequest r;
  r.method = "GET";
  r.target = path;
  r.path = std::move(path);
  r.query = std::move(query);
  return r;
}

// The values of every "name":"value" in `json`, in order.
std::vector<std::string> strings_of(const std::string& json, const std::string& name) {
  std::vector<std::string> out;
  const std::regex re("\"" + name + "\":\"([^\"]*)\"");
  for (auto it = std::sregex_iterator(json.begin(), json.end(), re); it != std::sregex_iterator();
       ++it) {
    out.push_back((*it)[1]);
  }
  return out;
}

class ConsoleApiTest : public ::testing::Test {
 protected:
  ConsoleApiTest() { reset("console-token-0123456789"); }

  void reset(std::string token) {
    ConsoleOptions options;
    options.token = std::move(token);
    options.version = "test";
    api_ = std::make_unique<ConsoleApi>(
        reader_, options,
        [this](const std::vector<int64_t>& ids)
            -> common::Result<std::vector<ReplayOutcome>, SinkError> {
          replayed_ = ids;
          std::vector<ReplayOutcome> out;
          for (int64_t id : ids) out.push_back({id, id == 7 ? "still_bad" : "stored", ""});
          return out;
        },
        [this] { return now_; });
  }

  // A fleet of one device in each state.
  void fleet_of_each_state() {
    reader_.device_rows = {
        device("d-online", "north", Presence::kOnline, kNow - 1'000'000),
        device("d-lost", "north", Presence::kLost, kNow - 50'000'000),
        device("d-offline", "south", Presence::kOffline, kNow - 70'000'000),
        device("d-silent", "south", Presence::kSilent, kNow - 30'000'000),
        device("d-gaps", "north", Presence::kOnline, kNow - 2'000'000),
        device("d-dlq", "south", Presence::kOnline, kNow - 3'000'000),
        device("d-unknown", "east", Presence::kUnknown, 0),
    };
    SeqLineState gaps;
    gaps.device = "d-gaps";
    gaps.epochs = {1, 2, 3};
    gaps.holes = {SeqHole{5, 6, 3, kNow - 20'000'000, kNow - 10'000'000},
                  SeqHole{9, 9, 3, kNow - 1'000'000, 0}};  // not reported yet: not open
    reader_.lines = {gaps};
    reader_.topics = {{"outpost/v1/south/d-dlq/data", 2},
                      {"outpost/v1/south/d-dlq/logs", 1},
                      {"not/an/outpost/topic", 4}};
  }

  HttpRequest replay_request(std::string body = R"({"ids":[3,7]})") {
    HttpRequest r;
    r.method = "POST";
    r.path = "/api/v1/dlq/replay";
    r.target = r.path;
    r.headers = {{"authorization", "Bearer console-token-0123456789"},
                 {"x-csrf-token", "abc123"},
                 {"cookie", "outpost_csrf=abc123"},
                 {"content-type", "application/json"},
                 {"host", "127.0.0.1:8088"},
                 {"origin", "http://127.0.0.1:8088"}};
    r.body = std::move(body);
    return r;
  }

  FakeReader reader_;
  int64_t now_ = kNow;
  std::vector<int64_t> replayed_;
  std::unique_ptr<ConsoleApi> api_;
};

TEST_F(ConsoleApiTest, TheFleetComesWorstFirstWithCountsOfEveryState) {
  fleet_of_each_state();
  const HttpResponse r = api_->answer(get("/api/v1/fleet"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(strings_of(r.body, "device"),
            (std::vector<std::string>{"d-lost", "d-silent", "d-gaps", "d-dlq", "d-offline",
                                      "d-online", "d-unknown"}));
  EXPECT_NE(r.body.find(R"("counts":{"lost":1,"silent":1,"gaps":1,"dlq":1,"offline":1,)"
                        R"("online":1,"unknown":1})"),
            std::string::npos)
      << r.body;
  EXPECT_NE(r.body.find(R"("total":7)"), std::string::npos);
  // A device's DLQ entries are counted from the topics that name it; a reported gap whose
  // readings are still missing is open, one not reported yet is not; restarts from epochs.
  EXPECT_NE(r.body.find(R"("device":"d-dlq")"), std::string::npos);
  EXPECT_NE(r.body.find(R"("open_gaps":1,"dlq":0)"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find(R"("restarts":2)"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find(R"("open_gaps":0,"dlq":3)"), std::string::npos) << r.body;
}

TEST_F(ConsoleApiTest, TheFleetFiltersByStateSiteAndNameAndPages) {
  fleet_of_each_state();
  HttpResponse r = api_->answer(get("/api/v1/fleet", {{"state", "lost,offline,online"}}));
  EXPECT_EQ(strings_of(r.body, "device"),
            (std::vector<std::string>{"d-lost", "d-offline", "d-online"}));
  EXPECT_NE(r.body.find(R"("total":3)"), std::string::npos);
  // The counts stay those of the whole fleet, whatever the filter.
  EXPECT_NE(r.body.find(R"("silent":1)"), std::string::npos);

  r = api_->answer(get("/api/v1/fleet", {{"site", "south"}, {"q", "D-O"}}));
  EXPECT_EQ(strings_of(r.body, "device"), (std::vector<std::string>{"d-offline"}));

  r = api_->answer(get("/api/v1/fleet", {{"sort", "device"}, {"offset", "2"}, {"limit", "2"}}));
  EXPECT_EQ(strings_of(r.body, "device"), (std::vector<std::string>{"d-lost", "d-offline"}));
  EXPECT_NE(r.body.find(R"("total":7,"offset":2,"limit":2)"), std::string::npos) << r.body;

  r = api_->answer(get("/api/v1/fleet", {{"offset", "100"}}));
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(strings_of(r.body, "device").empty());
}

TEST_F(ConsoleApiTest, SortsOnTimesNewestFirstUnlessAskedOtherwise) {
  fleet_of_each_state();
  HttpResponse r = api_->answer(get("/api/v1/fleet", {{"sort", "last_data"}, {"limit", "3"}}));
  EXPECT_EQ(strings_of(r.body, "device"),
            (std::vector<std::string>{"d-online", "d-gaps", "d-dlq"}));
  r = api_->answer(get("/api/v1/fleet", {{"sort", "last_data"}, {"order", "asc"}, {"limit", "2"}}));
  EXPECT_EQ(strings_of(r.body, "device"), (std::vector<std::string>{"d-unknown", "d-offline"}));
  r = api_->answer(get("/api/v1/fleet", {{"sort", "site"}, {"order", "desc"}, {"limit", "3"}}));
  EXPECT_EQ(strings_of(r.body, "device"),
            (std::vector<std::string>{"d-dlq", "d-offline", "d-silent"}));
}

TEST_F(ConsoleApiTest, BadParametersAreClear400sNamingTheParameter) {
  fleet_of_each_state();
  const std::pair<std::map<std::string, std::string, std::less<>>, std::string> cases[] = {
      {{{"state", "lost,asleep"}}, "asleep"}, {{{"sort", "colour"}}, "sort"},
      {{{"order", "up"}}, "order"},           {{{"limit", "0"}}, "limit"},
      {{{"limit", "5000"}}, "limit"},         {{{"limit", "ten"}}, "limit"},
      {{{"offset", "-1"}}, "offset"},         {{{"offset", "1e3"}}, "offset"},
  };
  for (const auto& [query, word] : cases) {
    const HttpResponse r = api_->answer(get("/api/v1/fleet", query));
    EXPECT_EQ(r.status, 400) << word;
    EXPECT_NE(r.body.find(word), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("\"error\""), std::string::npos) << r.body;
  }
  EXPECT_EQ(api_->answer(get("/api/v1/nothing")).status, 404);
  EXPECT_EQ(api_->answer(get("/api/v1/devices/d-online/nothing")).status, 404);
  HttpRequest post = get("/api/v1/fleet");
  post.method = "POST";
  const HttpResponse r = api_->answer(post);
  EXPECT_EQ(r.status, 405);
  ASSERT_EQ(r.headers.size(), 2u);
  EXPECT_EQ(r.headers[1].first, "Allow");
}

TEST_F(ConsoleApiTest, AFleetReadIsReusedForASecondThenServedWhileItIsReadAgain) {
  fleet_of_each_state();
  api_->answer(get("/api/v1/fleet"));
  api_->answer(get("/api/v1/fleet", {{"sort", "site"}}));
  EXPECT_EQ(reader_.device_reads, 1);
  EXPECT_FALSE(api_->refresh_wanted());
  // Older than a second: answered from it at once, and the caller asked to read again after.
  now_ += 1'000'001;
  EXPECT_EQ(api_->answer(get("/api/v1/fleet")).status, 200);
  EXPECT_EQ(reader_.device_reads, 1);
  EXPECT_TRUE(api_->refresh_wanted());
  ASSERT_TRUE(api_->refresh_fleet().ok());
  EXPECT_EQ(reader_.device_reads, 2);
  EXPECT_FALSE(api_->refresh_wanted());
  // A poll within the second uses the same read.
  api_->poll();
  EXPECT_EQ(reader_.device_reads, 2);
  // Older than ten seconds: read again before answering.
  now_ += 10'000'001;
  api_->answer(get("/api/v1/fleet"));
  EXPECT_EQ(reader_.device_reads, 3);
}

TEST_F(ConsoleApiTest, ADeviceHasItsFactsSensorsAndStatusCounters) {
  fleet_of_each_state();
  reader_.device_rows[0].epoch = 18'446'744'073'709'551'000u;
  reader_.device_rows[0].last_status =
      R"({"v":1,"device":"d-online","kind":"status","state":"online","t":1799999990000000,)"
      R"("synced":true,"agent_version":"0.9.1","uptime_s":5,"queue_depth":42,"queue_bytes":9,)"
      R"("dropped_oldest":1,"dropped_newest":2,"dropped_expired":3,"rejected_input":0,)"
      R"("store_resets":0})";
  reader_.sensor_rows["d-online"] = {{"temp", "Cel", 10}, {"door", "", 4}};
  const HttpResponse r = api_->answer(get("/api/v1/devices/d-online"));
  ASSERT_EQ(r.status, 200) << r.body;
  // The epoch is an id, as text: JavaScript numbers would round it.
  EXPECT_NE(r.body.find(R"("epoch":"18446744073709551000")"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find(R"("connected_since_us":1799999990000000)"), std::string::npos);
  EXPECT_NE(r.body.find(R"("queue_depth":42,"dropped":6,"agent_version":"0.9.1")"),
            std::string::npos)
      << r.body;
  EXPECT_NE(r.body.find(R"("sensors":[{"sensor":"temp","unit":"Cel","readings":10},)"),
            std::string::npos)
      << r.body;
  // A device without a status has no queue depth or drops to show: null, not 0.
  const HttpResponse lost = api_->answer(get("/api/v1/devices/d-lost"));
  EXPECT_NE(lost.body.find(R"("queue_depth":null,"dropped":null)"), std::string::npos);
  EXPECT_NE(lost.body.find(R"("connected_since_us":null)"), std::string::npos);

  const HttpResponse none = api_->answer(get("/api/v1/devices/nobody"));
  EXPECT_EQ(none.status, 404);
  EXPECT_NE(none.body.find("nobody"), std::string::npos);
}

TEST_F(ConsoleApiTest, ADeviceStoredSinceTheCacheWasReadIsFoundAtOnce) {
  fleet_of_each_state();
  api_->answer(get("/api/v1/fleet"));
  reader_.device_rows.push_back(device("d-new", "east", Presence::kOnline, kNow));
  EXPECT_EQ(api_->answer(get("/api/v1/devices/d-new")).status, 200);
}

TEST_F(ConsoleApiTest, ASeriesAsksTheReaderForBucketsAndChecksItsSpan) {
  fleet_of_each_state();
  reader_.sensor_rows["d-online"] = {{"temp", "Cel", 10}};
  reader_.buckets = {{kNow - 3'600'000'000, 1.5, 2.5, 2.0, 4}, {kNow - 60'000'000, -1, 1, 0, 2}};
  HttpResponse r = api_->answer(get("/api/v1/devices/d-online/series", {{"sensor", "temp"}}));
  ASSERT_EQ(r.status, 200) << r.body;
  // By default the last hour in 300 buckets.
  EXPECT_EQ(reader_.last_series.until_us, kNow);
  EXPECT_EQ(reader_.last_series.since_us, kNow - 3'600'000'000);
  EXPECT_EQ(reader_.last_series.buckets, 300u);
  EXPECT_NE(r.body.find(R"("unit":"Cel")"), std::string::npos);
  EXPECT_NE(r.body.find(R"("bucket_us":12000001)"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find(R"({"t_us":1799996400000000,"min":1.5,"max":2.5,"mean":2,"count":4})"),
            std::string::npos)
      << r.body;

  r = api_->answer(get("/api/v1/devices/d-online/series",
                       {{"sensor", "temp"}, {"from", "100"}, {"to", "199"}, {"points", "10"}}));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(reader_.last_series.since_us, 100);
  EXPECT_EQ(reader_.last_series.buckets, 10u);
  EXPECT_NE(r.body.find(R"("bucket_us":10)"), std::string::npos) << r.body;

  EXPECT_EQ(api_->answer(get("/api/v1/devices/d-online/series")).status, 400);
  EXPECT_EQ(api_->answer(get("/api/v1/devices/d-online/series",
                             {{"sensor", "temp"}, {"from", "200"}, {"to", "100"}}))
                .status,
            400);
  EXPECT_EQ(
      api_->answer(get("/api/v1/devices/d-online/series", {{"sensor", "temp"}, {"points", "301"}}))
          .status,
      400);
  EXPECT_EQ(api_->answer(get("/api/v1/devices/d-online/series", {{"sensor", "humidity"}})).status,
            404);
}

TEST_F(ConsoleApiTest, ADevicesEventsAndLogsComeNewestFirst) {
  fleet_of_each_state();
  for (int64_t id = 1; id <= 5; ++id) {
    EventRow e;
    e.id = id;
    e.device = id % 2 ? "d-online" : "d-lost";
    e.event.kind = common::EventKind::kDeviceOnline;
    e.event.time_us = kNow - 10 + id;
    reader_.event_rows.push_back(e);
  }
  HttpResponse r = api_->answer(get("/api/v1/devices/d-online/events", {{"limit", "2"}}));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(reader_.last_events.device, "d-online");
  EXPECT_FALSE(reader_.last_events.oldest);
  const std::regex ids("\"id\":(\\d+)");
  std::vector<std::string> seen;
  for (auto it = std::sregex_iterator(r.body.begin(), r.body.end(), ids);
       it != std::sregex_iterator(); ++it) {
    seen.push_back((*it)[1]);
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"5", "3"}));
  EXPECT_NE(r.body.find(R"("kind":"device_online")"), std::string::npos);

  LogRow a;
  a.time_us = 1;
  a.message = "older";
  a.severity = common::Severity::kWarning;
  a.fields = {{"k", "v"}};
  LogRow b = a;
  b.time_us = 2;
  b.message = "newer";
  reader_.log_rows = {a, b};
  r = api_->answer(get("/api/v1/devices/d-online/logs"));
  ASSERT_EQ(r.status, 200);
  EXPECT_TRUE(reader_.last_logs.latest);
  EXPECT_EQ(reader_.last_logs.limit, 100u);
  EXPECT_EQ(strings_of(r.body, "message"), (std::vector<std::string>{"newer", "older"}));
  EXPECT_NE(r.body.find(R"("severity":"warning")"), std::string::npos);
  EXPECT_NE(r.body.find(R"("fields":{"k":"v"})"), std::string::npos);
  EXPECT_EQ(api_->answer(get("/api/v1/devices/d-online/logs", {{"limit", "0"}})).status, 400);
}

TEST_F(ConsoleApiTest, TheDlqIsPagedNewestFirstWithItsTotal) {
  DlqRow e;
  e.id = 12;
  e.received_us = kNow;
  e.topic = "outpost/v1/s/d/data";
  e.payload = std::string("\x01\x02\xff", 3);
  e.reason = common::Reason::kNotDecodable;
  e.detail = "truncated";
  reader_.dlq_rows = {e};
  HttpResponse r = api_->answer(
      get("/api/v1/dlq", {{"reason", "not_decodable"}, {"topic", "s/d"}, {"offset", "100"}}));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(reader_.last_dlq.newest_first);
  EXPECT_EQ(reader_.last_dlq.offset, 100u);
  EXPECT_EQ(reader_.last_dlq.limit, 100u);
  EXPECT_EQ(reader_.last_dlq.topic_contains, "s/d");
  EXPECT_EQ(reader_.last_dlq.reason, common::Reason::kNotDecodable);
  EXPECT_NE(r.body.find(R"("total":1001)"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find(R"("reason":"not_decodable")"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find(R"("size":3)"), std::string::npos);
  EXPECT_EQ(r.body.find("payload_hex"), std::string::npos);

  r = api_->answer(get("/api/v1/dlq/12"));
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.body.find(R"("payload_hex":"0102ff")"), std::string::npos) << r.body;
  EXPECT_EQ(api_->answer(get("/api/v1/dlq/13")).status, 404);
  EXPECT_EQ(api_->answer(get("/api/v1/dlq/twelve")).status, 400);
  EXPECT_EQ(api_->answer(get("/api/v1/dlq/-1")).status, 400);
  EXPECT_EQ(api_->answer(get("/api/v1/dlq", {{"reason", "cosmic_rays"}})).status, 400);
}

TEST_F(ConsoleApiTest, DlqStatsGroupReasonsByBucket) {
  const HttpResponse r =
      api_->answer(get("/api/v1/dlq/stats", {{"bucket", "3600"}, {"since", "7200000000"}}));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find(R"("reasons":{"not_decodable":5,"unroutable_topic":1})"), std::string::npos)
      << r.body;
  EXPECT_NE(r.body.find(R"("buckets":[{"t_us":7200000000,"counts":{"not_decodable":3,)"
                        R"("unroutable_topic":1}},{"t_us":10800000000,"counts":{)"
                        R"("not_decodable":2}}])"),
            std::string::npos)
      << r.body;
  EXPECT_EQ(api_->answer(get("/api/v1/dlq/stats", {{"bucket", "1"}})).status, 400);
}

TEST_F(ConsoleApiTest, TheSessionSaysWhetherReplayIsPossibleAndSetsTheCsrfCookieOnce) {
  HttpResponse r = api_->answer(get("/api/v1/session"));
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.body.find(R"("read_only":false)"), std::string::npos);
  bool cookie = false;
  for (const auto& [name, value] : r.headers) {
    if (name == "Set-Cookie") {
      cookie = true;
      EXPECT_TRUE(std::regex_match(value, std::regex("outpost_csrf=[0-9a-f]{32}; Path=/; "
                                                     "SameSite=Strict")))
          << value;
    }
  }
  EXPECT_TRUE(cookie);
  HttpRequest again = get("/api/v1/session");
  again.headers["cookie"] = "outpost_csrf=abc123";
  for (const auto& [name, value] : api_->answer(again).headers) EXPECT_NE(name, "Set-Cookie");

  reset("");
  EXPECT_NE(api_->answer(get("/api/v1/session")).body.find(R"("read_only":true)"),
            std::string::npos);
}

TEST_F(ConsoleApiTest, ReplayNeedsTheTokenTheCsrfTokenAndTheSameOrigin) {
  HttpResponse r = api_->answer(replay_request());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(replayed_, (std::vector<int64_t>{3, 7}));
  EXPECT_NE(r.body.find(R"({"id":3,"outcome":"stored","detail":""})"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find(R"("summary":{"still_bad":1,"stored":1})"), std::string::npos) << r.body;

  const auto refused = [&](HttpRequest req, int status) {
    replayed_.clear();
    const HttpResponse answer = api_->answer(req);
    EXPECT_EQ(answer.status, status) << answer.body;
    EXPECT_TRUE(replayed_.empty()) << answer.body;
  };
  HttpRequest req = replay_request();
  req.headers["authorization"] = "Bearer console-token-0123456788";
  refused(req, 403);
  req.headers.erase("authorization");
  refused(req, 403);
  req = replay_request();
  req.headers["x-csrf-token"] = "abc124";
  refused(req, 403);
  req.headers.erase("x-csrf-token");
  refused(req, 403);
  req = replay_request();
  req.headers.erase("cookie");
  refused(req, 403);
  req = replay_request();
  req.headers["origin"] = "http://evil.example";
  refused(req, 403);
  req = replay_request();
  req.headers["content-type"] = "text/plain";
  refused(req, 415);
  refused(replay_request(R"({"ids":"all"})"), 400);
  refused(replay_request(R"({"ids":[]})"), 400);
  refused(replay_request(R"({"ids":[1,-2]})"), 400);
  refused(replay_request(R"({"ids":[1]} trailing)"), 400);
  HttpRequest as_get = replay_request();
  as_get.method = "GET";
  refused(as_get, 405);

  reset("");
  refused(replay_request(), 403);
  EXPECT_NE(api_->answer(replay_request()).body.find("read-only"), std::string::npos);
}

TEST_F(ConsoleApiTest, ParsesReplayIdsStrictly) {
  EXPECT_EQ(parse_replay_ids(" { \"ids\" : [ 1 , 22,333 ] } \n").value(),
            (std::vector<int64_t>{1, 22, 333}));
  for (const char* bad : {"", "{}", "[1]", R"({"ids":[1,]})", R"({"ids":[1 2]})",
                          R"({"ids":[99999999999999999999]})", R"({"id":[1]})", "{\"ids\":[1"}) {
    EXPECT_FALSE(parse_replay_ids(bad).ok()) << bad;
  }
  std::string many = R"({"ids":[)";
  for (int i = 1; i <= 1001; ++i) many += std::to_string(i) + (i < 1001 ? "," : "]}");
  EXPECT_FALSE(parse_replay_ids(many).ok());
}

TEST_F(ConsoleApiTest, ComparesSecretsByValue) {
  EXPECT_TRUE(same_secret("abc", "abc"));
  EXPECT_FALSE(same_secret("abc", "abd"));
  EXPECT_FALSE(same_secret("abc", "abcd"));
}

TEST_F(ConsoleApiTest, PollSendsChangedDevicesAndNewEventsOnly) {
  fleet_of_each_state();
  EventRow old;
  old.id = 4;
  old.device = "d-online";
  old.event.kind = common::EventKind::kDeviceOnline;
  reader_.event_rows = {old};
  EXPECT_TRUE(
      (now_ += 1'000'001, api_->poll()).empty());  // the first poll only learns where things stand
  EXPECT_TRUE((now_ += 1'000'001, api_->poll()).empty());  // nothing changed

  reader_.device_rows[0].presence = Presence::kSilent;
  EventRow fresh = old;
  fresh.id = 5;
  fresh.event.kind = common::EventKind::kDeviceOffline;
  fresh.event.detail = "silent for 2 s";
  reader_.event_rows.push_back(fresh);
  const auto sent = (now_ += 1'000'001, api_->poll());
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0].first, "fleet");
  EXPECT_NE(sent[0].second.find(R"("device":"d-online","site":"north","state":"silent")"),
            std::string::npos)
      << sent[0].second;
  EXPECT_EQ(sent[1].first, "event");
  EXPECT_NE(sent[1].second.find(R"("id":5,"kind":"device_offline")"), std::string::npos)
      << sent[1].second;
  EXPECT_NE(sent[1].second.find(R"("detail":"silent for 2 s")"), std::string::npos);
  EXPECT_TRUE((now_ += 1'000'001, api_->poll()).empty());
}

// A backend that records revisions hands over only what changed: the console applies it in
// place (a new device joins, a DLQ change moves the counts of devices whose rows did not
// change) and a poll looks at those devices only.
TEST_F(ConsoleApiTest, ChangesSinceTheLastReadAreAppliedInPlaceAndPolledAlone) {
  constexpr const char* kLongName = "d-with-a-name-longer-than-inline";
  fleet_of_each_state();
  reader_.full_revision = 10;
  EXPECT_TRUE((now_ += 1'000'001, api_->poll()).empty());  // a complete read; learns the fleet
  ASSERT_EQ(reader_.asked, (std::vector<uint64_t>{0}));

  FleetChanges moved;
  moved.complete = false;
  moved.revision = 11;
  moved.devices = {device("d-online", "north", Presence::kSilent, kNow - 1'000'000),
                   device("d-new", "west", Presence::kOnline, kNow),
                   device(kLongName, "west", Presence::kOnline, kNow)};
  reader_.changes.push_back(moved);
  auto sent = (now_ += 1'000'001, api_->poll());
  EXPECT_EQ(reader_.asked.back(), 10u);
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_NE(sent[0].second.find(R"("device":"d-online","site":"north","state":"silent")"),
            std::string::npos)
      << sent[0].second;
  EXPECT_NE(sent[1].second.find(R"("device":"d-new","site":"west","state":"online")"),
            std::string::npos)
      << sent[1].second;
  const HttpResponse page = api_->answer(get("/api/v1/fleet", {{"sort", "device"}}));
  EXPECT_NE(page.body.find(R"("fleet":9)"), std::string::npos) << page.body;
  EXPECT_EQ(api_->answer(get("/api/v1/devices/d-new")).status, 200);
  EXPECT_EQ(api_->answer(get("/api/v1/devices/d-gaps")).status, 200) << "the others are kept";

  // The DLQ changed, no device row did: d-dlq's entries went, d-online has one now.
  FleetChanges dlq;
  dlq.complete = false;
  dlq.revision = 12;
  dlq.dlq_topics = std::map<std::string, uint64_t>{{"outpost/v1/north/d-online/data", 1}};
  reader_.changes.push_back(dlq);
  sent = (now_ += 1'000'001, api_->poll());
  EXPECT_EQ(reader_.asked.back(), 11u);
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_NE(sent[0].second.find(R"("device":"d-online")"), std::string::npos) << sent[0].second;
  EXPECT_NE(sent[0].second.find(R"("dlq":1)"), std::string::npos) << sent[0].second;
  EXPECT_NE(sent[1].second.find(R"("device":"d-dlq","site":"south","state":"online")"),
            std::string::npos)
      << sent[1].second;

  // A device changed in place is still found by its name (one too long to be stored inline).
  FleetChanges again;
  again.complete = false;
  again.revision = 12;
  again.devices = {device(kLongName, "west", Presence::kSilent, kNow - 1'000'000)};
  reader_.changes.push_back(again);
  sent = (now_ += 1'000'001, api_->poll());
  ASSERT_EQ(sent.size(), 1u);
  const HttpResponse one = api_->answer(get(std::string("/api/v1/devices/") + kLongName));
  EXPECT_EQ(one.status, 200);
  EXPECT_NE(one.body.find(R"("state":"silent")"), std::string::npos) << one.body;

  // Nothing changed: nothing sent, and the whole fleet was read only the first time.
  FleetChanges none;
  none.complete = false;
  none.revision = 12;
  reader_.changes.push_back(none);
  EXPECT_TRUE((now_ += 1'000'001, api_->poll()).empty());
  EXPECT_EQ(reader_.asked.back(), 12u);
  EXPECT_EQ(reader_.device_reads, 1);
}

TEST_F(ConsoleApiTest, ADatabaseThatCannotBeReadIs503WithTheReason) {
  reader_.fail = true;
  for (const char* path : {"/api/v1/fleet", "/api/v1/devices/x", "/api/v1/dlq"}) {
    const HttpResponse r = api_->answer(get(path));
    EXPECT_EQ(r.status, 503) << path;
    EXPECT_NE(r.body.find("database is locked"), std::string::npos) << r.body;
  }
  EXPECT_TRUE(api_->poll().empty());
}

}  // namespace
}  // namespace outpost::collector
