// Logging set-up and the rate limiter for bad-input logging.
#include "outpost/common/logging.h"

#include <spdlog/sinks/stdout_sinks.h>

#include <algorithm>
#include <cctype>

#include "outpost/common/config.h"

namespace outpost::common {

std::optional<spdlog::level::level_enum> parse_log_level(std::string_view name) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  using L = spdlog::level::level_enum;
  static constexpr std::pair<std::string_view, L> kLevels[] = {
      {"trace", L::trace},  {"debug", L::debug}, {"info", L::info},         {"warn", L::warn},
      {"warning", L::warn}, {"error", L::err},   {"critical", L::critical}, {"off", L::off},
  };
  for (const auto& [n, level] : kLevels) {
    if (n == lower) return level;
  }
  return std::nullopt;
}

void read_log_config(ConfigReader& reader, LogConfig& out) {
  std::string level = out.level;
  reader.read("log.level", level);
  if (level == out.level) return;
  if (!parse_log_level(level)) {
    reader.add_error("log.level",
                     "expected one of " + std::string(kLogLevelNames) + ", got \"" + level + "\"");
    return;
  }
  out.level = level;
}

void init_logging(std::string_view program, spdlog::level::level_enum level) {
  auto logger = spdlog::stderr_logger_mt(std::string(program));
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ %n: %v");
  logger->set_level(level);
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(std::move(logger));
}

bool RateLimiter::allow(Clock::time_point now) {
  if (now - window_start_ >= period_) {
    window_start_ = now;
    used_ = 0;
  }
  if (used_ < burst_) {
    ++used_;
    return true;
  }
  ++suppressed_;
  return false;
}

uint64_t RateLimiter::take_suppressed() { return std::exchange(suppressed_, 0); }

}  // namespace outpost::common
