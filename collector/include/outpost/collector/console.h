// The web console's JSON API (docs/api.md): what /api/v1/... answers, built from a Reader, and
// the live stream's messages. Transport-free: the console server (console_server.h) routes
// requests here and sends what it returns; tests call it directly.
//
// Used by one thread at a time (the console's): it keeps the fleet in memory and, when that is
// older than a second, applies what changed since (Reader::fleet_changes: only the changed
// devices on a backend that records revisions), so that paging and filtering 100,000 devices
// reads neither the database nor every device on each request.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "outpost/collector/reader.h"
#include "outpost/common/http_response.h"
#include "outpost/common/http_server.h"
#include "outpost/common/result.h"

namespace outpost::collector {

// What a DLQ replay did with one entry.
struct ReplayOutcome {
  int64_t id = 0;
  // "stored": valid now, its batch stored and the entry removed; "duplicate": valid now, its
  // batch was already stored (the entry removed); "still_bad": fails again (kept, detail says
  // why); "not_replayable": not a message (kept); "missing": no such entry.
  std::string outcome;
  std::string detail;
};

// Replays DLQ entries by id against the writer (the same as `outpost-collector dlq replay`).
using ReplayFunction = std::function<common::Result<std::vector<ReplayOutcome>, SinkError>(
    const std::vector<int64_t>& ids)>;

struct ConsoleOptions {
  std::string token;    // "" = read-only: replay is refused
  std::string version;  // shown by /api/v1/session
  // A fleet read younger than cache_us is used as it is; one younger than stale_us is still
  // used at once, and refresh_wanted() asks the caller to read again after answering (so a
  // large fleet's page is not held up by a read); an older one is read again first.
  int64_t cache_us = 1'000'000;
  int64_t stale_us = 10'000'000;
};

// A device as the console shows it: its stored row and what the page derives from it.
struct ConsoleDevice {
  DeviceRow row;
  std::string state;  // lost, silent, gaps, dlq, offline, online, unknown (worst first)
  int rank = 0;       // the state's place in that order (0 = lost)
  uint64_t restarts = 0;
  uint64_t open_gaps = 0;          // reported data gaps whose readings are still missing
  uint64_t dlq = 0;                // its entries in the dead-letter queue
  int64_t connected_since_us = 0;  // time of its last status message; 0 = none
  bool has_status = false;
  uint64_t queue_depth = 0;  // from its last status
  uint64_t dropped = 0;      // from its last status: dropped oldest + newest + expired
  std::string agent_version;
};

// The state names, worst first: the order of the fleet page's "worst" sort.
inline constexpr std::string_view kConsoleStates[] = {"lost",    "silent", "gaps",   "dlq",
                                                      "offline", "online", "unknown"};

class ConsoleApi {
 public:
  // `now_us` is the wall clock (a parameter for tests).
  ConsoleApi(Reader& reader, ConsoleOptions options, ReplayFunction replay,
             std::function<int64_t()> now_us);

  // Answers one request under /api/v1 (any other path: 404). Never throws; a database error
  // is 503 with the reason.
  common::HttpResponse answer(const common::HttpRequest& request);

  // One poll of the live stream: ("fleet", device JSON) for every device whose row changed
  // since the last poll, ("event", event JSON) for every event stored since. The first poll
  // only remembers where things stand and returns nothing.
  std::vector<std::pair<std::string, std::string>> poll();

  // The fleet as the cache holds it (read again first when older than options.stale_us).
  common::Result<const std::vector<ConsoleDevice>*, SinkError> fleet();
  // Whether an answer used a fleet read older than options.cache_us: the caller should call
  // refresh_fleet() once it has sent the answer.
  bool refresh_wanted() const { return refresh_wanted_; }
  // Reads the fleet again now (what refresh_wanted() asks for; also the warm-up at start).
  common::Status<SinkError> refresh_fleet() { return refresh(true); }

 private:
  common::HttpResponse session(const common::HttpRequest& request);
  common::HttpResponse fleet_page(const common::HttpRequest& request);
  common::HttpResponse device(const common::HttpRequest& request, std::string_view rest);
  common::HttpResponse events(const common::HttpRequest& request);
  common::HttpResponse dlq_list(const common::HttpRequest& request);
  common::HttpResponse dlq_stats(const common::HttpRequest& request);
  common::HttpResponse dlq_entry(std::string_view id);
  common::HttpResponse replay(const common::HttpRequest& request);
  common::Status<SinkError> refresh(bool force);
  const ConsoleDevice* find(std::string_view device);

  Reader& reader_;
  ConsoleOptions options_;
  ReplayFunction replay_;
  std::function<int64_t()> now_us_;
  std::vector<ConsoleDevice> fleet_;
  std::unordered_map<std::string_view, std::size_t> index_;  // device -> position in fleet_
  int64_t refreshed_us_ = 0;
  uint64_t revision_ = 0;  // the Reader's revision of the last read (FleetChanges)
  std::unordered_map<std::string, uint64_t> dlq_of_;  // device -> its DLQ entries
  // Positions in fleet_ of the devices reads have changed since the last poll (all_changed_:
  // every device, after a complete read).
  std::vector<std::size_t> changed_;
  bool all_changed_ = true;
  bool polled_ = false;
  bool refresh_wanted_ = false;
  int64_t last_event_id_ = 0;
  std::unordered_map<std::string, uint64_t> last_sent_;  // device -> fingerprint last sent
};

// One device as the API's JSON object (the fleet page's row, /api/v1/devices/<id>).
std::string console_device_json(const ConsoleDevice& d);
// One event as the API's JSON object.
std::string console_event_json(const EventRow& e);
// The ids of a replay request's body, {"ids":[1,2,3]}; an error message for anything else.
common::Result<std::vector<int64_t>, std::string> parse_replay_ids(std::string_view body);
// Whether `a` equals `b`, in time that depends only on their lengths.
bool same_secret(std::string_view a, std::string_view b);

}  // namespace outpost::collector
