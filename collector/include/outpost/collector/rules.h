// Threshold rules with hysteresis: numeric readings in, threshold events out. Pure logic, no I/O.
//
// A rule watches one sensor (on every device, or on one) and trips when the value goes past
// its threshold; it clears only once the value is back past the threshold by the hysteresis,
// so a noisy value hovering around the threshold raises one event, not one per reading.
//
//   above = 30, hysteresis = 2:  trips when value > 30, clears when value <= 28
//   below = 5,  hysteresis = 1:  trips when value < 5,  clears when value >= 6
//
// State is per (rule, device) and lives in memory only: after a collector restart every rule
// starts cleared, so a value still past its threshold trips once more.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "outpost/collector/sink.h"
#include "outpost/common/config.h"
#include "outpost/common/message.h"

namespace outpost::collector {

enum class RuleDirection { kAbove, kBelow };

// One [rules.<name>] table.
struct ThresholdRule {
  std::string name;         // the [rules.<name>] key; named in every event's detail
  std::string sensor;       // exact sensor name
  std::string device = "";  // "" = every device; else exact device id
  RuleDirection direction = RuleDirection::kAbove;
  double threshold = 0;
  double hysteresis = 0;  // cleared only once the value is back past threshold -/+ hysteresis
};

// An event a rule raised is the sink's EventItem, ready to store: the device it concerns
// (Event has no device field: the device is part of the event's topic), and event.kind, site,
// sensor, value (the reading that tripped or cleared the rule), threshold (the rule's
// threshold), time_us (the reading's) and detail, which starts with "rule <name>: ".
using RaisedEvent = EventItem;

// Evaluates readings against a fixed set of rules.
//
// Not thread-safe: one thread (the collector's storage thread) calls observe(). To change the
// rules (config reload), build a new engine; the state of the old one is lost.
class RuleEngine {
 public:
  explicit RuleEngine(std::vector<ThresholdRule> rules);

  // One numeric reading (ints and doubles; bools and strings are not passed). Appends
  // kThresholdAbove / kThresholdBelow to `out` when a rule trips for this device and
  // kThresholdCleared when it clears; appends nothing otherwise. A NaN value neither trips
  // nor clears anything. Cost when no rule names `sensor`: one hash lookup, no allocation.
  void observe(std::string_view site, std::string_view device, std::string_view sensor,
               double value, int64_t time_us, std::vector<RaisedEvent>& out);

  std::size_t rule_count() const { return rules_.size(); }

  // How many (rule, device) pairs are tripped now (for metrics and tests).
  std::size_t tripped_count() const;

 private:
  // Heterogeneous lookup, so observe() hashes the string_view without building a string.
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using StringSet = std::unordered_set<std::string, Hash, std::equal_to<>>;

  struct Entry {
    ThresholdRule rule;
    StringSet tripped;  // devices for which this rule is tripped
  };

  std::vector<Entry> rules_;
  // sensor name -> indices into rules_ of the rules that watch it.
  std::unordered_map<std::string, std::vector<std::size_t>, Hash, std::equal_to<>> by_sensor_;
};

// Reads every [rules.<name>] table into `out` (appending, in file order):
//   sensor = "temp"        required: the exact sensor name
//   device = "gw-7"        optional: only this device (default: every device)
//   above = 30.0           exactly one of above / below: the threshold and its direction
//   below = 5.0
//   hysteresis = 2.0       optional, >= 0 (default 0)
// Problems are recorded with reader.add_error naming the key; the caller's reader.finish()
// reports them (and unknown keys inside [rules.<name>]). Entries with errors are not appended.
void read_rules(common::ConfigReader& reader, std::vector<ThresholdRule>& out);

}  // namespace outpost::collector
