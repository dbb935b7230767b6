// Times as people type and read them on the command line: the tools print every time as
// format_time_us() does, and every --since/--until reads it back with parse_time_us().
// Pure functions of their arguments (the caller passes "now"); no I/O, never throw.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace outpost::common {

// RFC 3339 in UTC with milliseconds, "2026-12-01T20:31:05.123Z"; "-" for 0 (never set).
std::string format_time_us(int64_t unix_us);

// "1h", "30m", "90s", "2d", "500ms", "1h30m", "2d12h": whole numbers, each with a unit
// (d, h, m, s, ms, us), larger units first, each unit at most once. nullopt otherwise or on
// overflow. Unlike parse_duration_us (config files), a compound form is accepted.
std::optional<int64_t> parse_compound_duration_us(std::string_view text);

// A point in time on the command line, as Unix microseconds:
//   2026-12-01T20:31:05.123Z         RFC 3339, 1 to 9 fraction digits (beyond the
//   2026-12-01T21:31:05.123+01:00    microsecond cut off), offset Z or +/-HH:MM (or +/-HHMM);
//   2026-12-01T20:31:05              without an offset: UTC (a space for the T, too);
//   2026-12-01                       midnight UTC;
//   1764621065                       Unix seconds (also with a fraction, 1764621065.5);
//   1h, 30m, 1h30m, -1h              a duration: that long before `now_us`;
//   now                              `now_us`.
// nullopt for anything else, or a date or time that does not exist (2026-02-29, 24:00:00).
std::optional<int64_t> parse_time_us(std::string_view text, int64_t now_us);

// The accepted forms in one line, for --help and for errors ("--since: cannot read ...").
inline constexpr std::string_view kTimeForms =
    "2026-12-01T20:31:05.123Z, 2026-12-01T21:31:05+01:00, 2026-12-01, Unix seconds, or a "
    "duration before now: 90s, 30m, 1h30m, 2d";

// The error for a flag whose time did not parse: "--since: cannot read '...' as a time;
// expected <kTimeForms>".
std::string time_error(std::string_view flag, std::string_view text);

}  // namespace outpost::common
