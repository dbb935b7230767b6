// Logging set-up shared by all programs (spdlog to stderr), and rate-limited logging of bad input.
#pragma once

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdint>
#include <memory>
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
// stderr at `level`; when stderr is the journal (stderr_is_journal()), "<N><level> <message>"
// instead: the syslog priority the journal files the line under (journal_priority()), and
// neither the time nor the program, which the journal records itself. Call once from main()
// before starting threads.
void init_logging(std::string_view program, spdlog::level::level_enum level);

// How lines are laid out: for a terminal or a file, or for the journal (above).
enum class LogTarget { kPlain, kJournal };
// The formatter init_logging() gives the logger for `target`.
std::unique_ptr<spdlog::formatter> make_log_formatter(LogTarget target);

// The sd-daemon prefix of a line at `level`: "<7>" trace and debug, "<6>" info, "<4>" warn,
// "<3>" error, "<2>" critical.
std::string_view journal_priority(spdlog::level::level_enum level);

// Whether `journal_stream` (JOURNAL_STREAM as systemd sets it: "<device>:<inode>", decimal)
// names the file with this device and inode.
bool journal_stream_matches(std::string_view journal_stream, uint64_t device, uint64_t inode);

// Whether fd 2 is the journal's stream: $JOURNAL_STREAM names what fstat(2) sees. A service
// whose stderr was redirected elsewhere (or a child that inherited the variable) gets false.
bool stderr_is_journal();

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
