// Logging set-up and the rate limiter for bad-input logging.
#include "outpost/common/logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>

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

namespace {

// "%*": the line's journal priority.
class PriorityFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    const std::string_view p = journal_priority(msg.level);
    dest.append(p.data(), p.data() + p.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<PriorityFlag>();
  }
};

}  // namespace

std::string_view journal_priority(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
    case spdlog::level::debug:
      return "<7>";
    case spdlog::level::info:
      return "<6>";
    case spdlog::level::warn:
      return "<4>";
    case spdlog::level::err:
      return "<3>";
    case spdlog::level::critical:
      return "<2>";
    default:
      return "<6>";  // off: never logged
  }
}

bool journal_stream_matches(std::string_view text, uint64_t device, uint64_t inode) {
  const auto colon = text.find(':');
  if (colon == std::string_view::npos) return false;
  const auto number = [](std::string_view part, uint64_t& out) {
    const auto [at, ec] = std::from_chars(part.data(), part.data() + part.size(), out);
    return !part.empty() && ec == std::errc() && at == part.data() + part.size();
  };
  uint64_t dev = 0, ino = 0;
  return number(text.substr(0, colon), dev) && number(text.substr(colon + 1), ino) &&
         dev == device && ino == inode;
}

bool stderr_is_journal() {
  const char* stream = std::getenv("JOURNAL_STREAM");
  struct stat st {};
  if (!stream || ::fstat(2, &st) != 0) return false;
  return journal_stream_matches(stream, static_cast<uint64_t>(st.st_dev),
                                static_cast<uint64_t>(st.st_ino));
}

std::unique_ptr<spdlog::formatter> make_log_formatter(LogTarget target) {
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  if (target == LogTarget::kJournal) {
    formatter->add_flag<PriorityFlag>('*').set_pattern("%*%-5l %v");
  } else {
    formatter->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ %n: %v");
  }
  return formatter;
}

void init_logging(std::string_view program, spdlog::level::level_enum level) {
  auto logger = spdlog::stderr_logger_mt(std::string(program));
  logger->set_formatter(
      make_log_formatter(stderr_is_journal() ? LogTarget::kJournal : LogTarget::kPlain));
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
