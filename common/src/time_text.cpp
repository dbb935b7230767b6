// Command-line times: RFC 3339 and friends, and "that long ago" durations.
#include "outpost/common/time_text.h"

#include <charconv>
#include <cstdio>
#include <limits>

#include "outpost/common/config.h"

namespace outpost::common {

namespace {

constexpr int64_t kUsPerSecond = 1'000'000;
constexpr int64_t kSecondsPerDay = 86'400;

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

// The inverse: year, month, day of a day count.
void civil_from_days(int64_t z, int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
}

bool leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

unsigned days_in_month(int64_t y, unsigned m) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && leap(y) ? 29 : kDays[m - 1];
}

// Reads exactly `n` digits at `pos`.
bool digits(std::string_view s, std::size_t& pos, std::size_t n, int& out) {
  if (pos + n > s.size()) return false;
  out = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const char c = s[pos + i];
    if (c < '0' || c > '9') return false;
    out = out * 10 + (c - '0');
  }
  pos += n;
  return true;
}

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// 1 to 9 digits after the point, as microseconds (digits beyond the sixth cut off).
bool fraction_us(std::string_view s, std::size_t& pos, int64_t& us) {
  std::size_t n = 0;
  us = 0;
  while (pos + n < s.size() && s[pos + n] >= '0' && s[pos + n] <= '9') {
    if (n < 6) us = us * 10 + (s[pos + n] - '0');
    ++n;
  }
  if (n == 0 || n > 9) return false;
  for (std::size_t i = n; i < 6; ++i) us *= 10;
  pos += n;
  return true;
}

std::optional<int64_t> parse_rfc3339(std::string_view s) {
  std::size_t pos = 0;
  int year, month, day;
  if (!digits(s, pos, 4, year) || pos >= s.size() || s[pos++] != '-' || !digits(s, pos, 2, month) ||
      pos >= s.size() || s[pos++] != '-' || !digits(s, pos, 2, day)) {
    return std::nullopt;
  }
  if (month < 1 || month > 12 || day < 1 ||
      static_cast<unsigned>(day) > days_in_month(year, static_cast<unsigned>(month))) {
    return std::nullopt;
  }
  const int64_t days =
      days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
  if (pos == s.size()) return days * kSecondsPerDay * kUsPerSecond;  // a date: midnight UTC
  if (s[pos] != 'T' && s[pos] != 't' && s[pos] != ' ') return std::nullopt;
  ++pos;
  int hour, minute, second;
  if (!digits(s, pos, 2, hour) || pos >= s.size() || s[pos++] != ':' ||
      !digits(s, pos, 2, minute) || pos >= s.size() || s[pos++] != ':' ||
      !digits(s, pos, 2, second)) {
    return std::nullopt;
  }
  if (hour > 23 || minute > 59 || second > 59) return std::nullopt;
  int64_t us = 0;
  if (pos < s.size() && (s[pos] == '.' || s[pos] == ',')) {
    ++pos;
    if (!fraction_us(s, pos, us)) return std::nullopt;
  }
  int64_t offset_s = 0;
  if (pos < s.size()) {
    const char sign = s[pos++];
    if (sign == 'Z' || sign == 'z') {
      if (pos != s.size()) return std::nullopt;
    } else if (sign == '+' || sign == '-') {
      int oh, om;
      if (!digits(s, pos, 2, oh)) return std::nullopt;
      if (pos < s.size() && s[pos] == ':') ++pos;
      if (!digits(s, pos, 2, om) || pos != s.size() || oh > 23 || om > 59) return std::nullopt;
      offset_s = (oh * 3600 + om * 60) * (sign == '-' ? -1 : 1);
    } else {
      return std::nullopt;
    }
  }
  const int64_t seconds = days * kSecondsPerDay + hour * 3600 + minute * 60 + second - offset_s;
  return seconds * kUsPerSecond + us;
}

std::optional<int64_t> parse_unix_seconds(std::string_view s) {
  const std::size_t dot = s.find('.');
  const std::string_view whole = s.substr(0, dot);
  if (!all_digits(whole) || whole.size() > 12) return std::nullopt;
  int64_t seconds = 0;
  std::from_chars(whole.data(), whole.data() + whole.size(), seconds);
  int64_t us = 0;
  if (dot != std::string_view::npos) {
    std::size_t pos = dot + 1;
    if (!fraction_us(s, pos, us) || pos != s.size()) return std::nullopt;
  }
  return seconds * kUsPerSecond + us;
}

}  // namespace

std::string format_time_us(int64_t unix_us) {
  if (unix_us == 0) return "-";
  int64_t seconds = unix_us / kUsPerSecond;
  int64_t us = unix_us % kUsPerSecond;
  if (us < 0) {
    us += kUsPerSecond;
    --seconds;
  }
  int64_t days = seconds / kSecondsPerDay;
  int64_t rest = seconds % kSecondsPerDay;
  if (rest < 0) {
    rest += kSecondsPerDay;
    --days;
  }
  int64_t y;
  unsigned m, d;
  civil_from_days(days, y, m, d);
  char out[48];
  std::snprintf(out, sizeof out, "%04lld-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<long long>(y),
                m, d, static_cast<int>(rest / 3600), static_cast<int>(rest / 60 % 60),
                static_cast<int>(rest % 60), static_cast<int>(us / 1000));
  return out;
}

std::optional<int64_t> parse_compound_duration_us(std::string_view text) {
  // Each part is one config-file duration (parse_duration_us: its units and bounds); the
  // units come largest first, each at most once.
  const auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
  if (text.empty()) return std::nullopt;
  int64_t total = 0;
  int64_t last_scale = std::numeric_limits<int64_t>::max();
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = pos;
    while (end < text.size() && is_digit(text[end])) ++end;
    if (end == pos) return std::nullopt;
    std::size_t unit_end = end;
    while (unit_end < text.size() && !is_digit(text[unit_end])) ++unit_end;
    const auto scale = parse_duration_us("1" + std::string(text.substr(end, unit_end - end)));
    const auto part = parse_duration_us(text.substr(pos, unit_end - pos));
    if (!scale || !part || *scale >= last_scale) return std::nullopt;
    if (total > std::numeric_limits<int64_t>::max() - *part) return std::nullopt;
    total += *part;
    last_scale = *scale;
    pos = unit_end;
  }
  return total;
}

std::optional<int64_t> parse_time_us(std::string_view text, int64_t now_us) {
  if (text.empty()) return std::nullopt;
  if (text == "now") return now_us;
  // "-1h" (the older spelling of "1h"): that long ago, too.
  const std::string_view ago = text.front() == '-' ? text.substr(1) : text;
  if (auto d = parse_compound_duration_us(ago)) {
    if (now_us < std::numeric_limits<int64_t>::min() + *d) return std::nullopt;
    return now_us - *d;
  }
  if (text.front() == '-') return std::nullopt;
  if (auto t = parse_unix_seconds(text)) return t;
  return parse_rfc3339(text);
}

std::string time_error(std::string_view flag, std::string_view text) {
  std::string out(flag);
  out += ": cannot read '";
  out += text;
  out += "' as a time; expected ";
  out += kTimeForms;
  return out;
}

}  // namespace outpost::common
