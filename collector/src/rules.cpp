// Threshold rules with hysteresis, and reading them from [rules.<name>] tables.
#include "outpost/collector/rules.h"

#include <cmath>
#include <sstream>
#include <utility>

namespace outpost::collector {
namespace {

std::string number(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

// Where a tripped rule clears: back past the threshold by the hysteresis.
double clear_level(const ThresholdRule& rule) {
  return rule.direction == RuleDirection::kAbove ? rule.threshold - rule.hysteresis
                                                 : rule.threshold + rule.hysteresis;
}

bool trips(const ThresholdRule& rule, double value) {
  return rule.direction == RuleDirection::kAbove ? value > rule.threshold : value < rule.threshold;
}

bool clears(const ThresholdRule& rule, double value) {
  return rule.direction == RuleDirection::kAbove ? value <= clear_level(rule)
                                                 : value >= clear_level(rule);
}

std::string trip_detail(const ThresholdRule& rule) {
  const bool above = rule.direction == RuleDirection::kAbove;
  return "rule " + rule.name + ": " + rule.sensor + (above ? " above " : " below ") +
         number(rule.threshold) + " (clears at " + (above ? "<= " : ">= ") +
         number(clear_level(rule)) + ")";
}

std::string clear_detail(const ThresholdRule& rule) {
  const bool above = rule.direction == RuleDirection::kAbove;
  return "rule " + rule.name + ": " + rule.sensor + " back " + (above ? "<= " : ">= ") +
         number(clear_level(rule)) + " (threshold " + number(rule.threshold) + ")";
}

}  // namespace

RuleEngine::RuleEngine(std::vector<ThresholdRule> rules) {
  rules_.reserve(rules.size());
  for (auto& rule : rules) {
    by_sensor_[rule.sensor].push_back(rules_.size());
    rules_.push_back(Entry{std::move(rule), {}});
  }
}

void RuleEngine::observe(std::string_view site, std::string_view device, std::string_view sensor,
                         double value, int64_t time_us, std::vector<RaisedEvent>& out) {
  if (by_sensor_.empty()) return;  // no rules configured: not even a hash
  const auto found = by_sensor_.find(sensor);
  if (found == by_sensor_.end()) return;  // the hot path: most sensors have no rule
  if (std::isnan(value)) return;
  for (const std::size_t index : found->second) {
    Entry& entry = rules_[index];
    const ThresholdRule& rule = entry.rule;
    if (!rule.device.empty() && rule.device != device) continue;
    const auto tripped = entry.tripped.find(device);
    common::EventKind kind;
    std::string detail;
    if (tripped == entry.tripped.end()) {
      if (!trips(rule, value)) continue;
      entry.tripped.emplace(device);
      kind = rule.direction == RuleDirection::kAbove ? common::EventKind::kThresholdAbove
                                                     : common::EventKind::kThresholdBelow;
      detail = trip_detail(rule);
    } else {
      if (!clears(rule, value)) continue;
      entry.tripped.erase(tripped);
      kind = common::EventKind::kThresholdCleared;
      detail = clear_detail(rule);
    }
    common::Event event;
    event.kind = kind;
    event.time_us = time_us;
    event.site = std::string(site);
    event.sensor = rule.sensor;
    event.value = value;
    event.threshold = rule.threshold;
    event.detail = std::move(detail);
    out.push_back(RaisedEvent{std::string(device), std::move(event)});
  }
}

std::size_t RuleEngine::tripped_count() const {
  std::size_t n = 0;
  for (const auto& entry : rules_) n += entry.tripped.size();
  return n;
}

void read_rules(common::ConfigReader& reader, std::vector<ThresholdRule>& out) {
  for (const std::string& name : reader.table_keys("rules")) {
    const std::string table = "rules." + name;
    const std::string prefix = table + ".";
    const std::size_t errors_before = reader.errors().size();
    if (name.find('.') != std::string::npos) {
      reader.add_error(table, "a rule name may not contain '.'");
      continue;
    }
    ThresholdRule rule;
    rule.name = name;
    if (!reader.has(prefix + "sensor")) {
      reader.add_error(table, "missing required key \"sensor\" (the sensor this rule watches)");
    }
    reader.read(prefix + "sensor", rule.sensor);
    if (reader.has(prefix + "sensor") && rule.sensor.empty() &&
        reader.errors().size() == errors_before) {
      reader.add_error(prefix + "sensor", "must not be empty");
    }
    reader.read(prefix + "device", rule.device);

    const bool above = reader.has(prefix + "above");
    const bool below = reader.has(prefix + "below");
    if (above && below) {
      reader.add_error(prefix + "below",
                       "set either \"above\" or \"below\", not both (one rule, one direction)");
    } else if (!above && !below) {
      reader.add_error(table, "missing the threshold: set \"above\" or \"below\"");
    } else if (above) {
      rule.direction = RuleDirection::kAbove;
      reader.read(prefix + "above", rule.threshold);
    } else {
      rule.direction = RuleDirection::kBelow;
      reader.read(prefix + "below", rule.threshold);
    }

    if (reader.has(prefix + "hysteresis")) {
      double hysteresis = 0;
      const std::size_t before = reader.errors().size();
      reader.read(prefix + "hysteresis", hysteresis);
      if (reader.errors().size() == before) {
        if (hysteresis < 0) {
          reader.add_error(prefix + "hysteresis", "must be >= 0, got " + number(hysteresis));
        } else {
          rule.hysteresis = hysteresis;
        }
      }
    }
    if (reader.errors().size() == errors_before) out.push_back(std::move(rule));
  }
}

}  // namespace outpost::collector
