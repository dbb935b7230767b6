// Logging set-up shared by all programs (spdlog to stderr), and rate-limited logging of bad input.
#pragma once

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace outpost::common {

class ConfigReader;

struct LogConfig {
  std::string level = "info";  // trace, debug, info, warn, error, critical, off
};

// Reads [log] level; an unknown level is a config error listing the allowed ones.
void read_log_config(ConfigReader& reader, LogConfig& out);

// Case-insensitive: trace, debug, info, warn or warning, error, critical, off.
std::optional<spdlog::level::level_enum> parse_log_level(std::string_view name);

// The names parse_log_level accepts, for help texts and errors.
inline constexpr std::string_view kLogLevelNames = "trace, debug, info, warn, error, critical, off";

// Makes spdlog's default logger write "<time> <level> <program>: <message>" to
// stderr at `level`. Call once from main() before starting threads.
void init_logging(std::string_view program, spdlog::level::level_enum level);

// Lets through at most `burst` events per `period`; the rest are counted, so a
// flood of bad input costs a counter increment, not a log line each.
//
//   if (limiter.allow(now)) spdlog::warn("bad line ({} more suppressed)",
//   limiter.take_suppressed());
//
// Not thread-safe: one per thread or guard it. Time is passed in, so tests need no sleeps.
class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  RateLimiter(int burst, Clock::duration period) : burst_(burst), period_(period) {}

  // True if this event may be logged now; false (and counted) otherwise.
  bool allow(Clock::time_point now);

  // Events refused since the last call, and resets the count.
  uint64_t take_suppressed();

 private:
  int burst_;
  Clock::duration period_;
  Clock::time_point window_start_{};
  int used_ = 0;
  uint64_t suppressed_ = 0;
};

}  // namespace outpost::common
