// Command-line conventions shared by all programs: --config, --log-level, --version, --help.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace outpost::common {

// Exit codes every Outpost program uses (sysexits-style where one exists).
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;       // runtime failure (broker unreachable, I/O error)
inline constexpr int kExitUsage = 2;         // bad command line
inline constexpr int kExitRejected = 3;      // a tool refused its input (e.g. a bad payload)
inline constexpr int kExitInUse = 75;        // EX_TEMPFAIL: another instance holds the store
inline constexpr int kExitConfigError = 78;  // EX_CONFIG: the configuration file is wrong

struct CommonOptions {
  std::string config_path;  // --config FILE; empty: none given
  std::string log_level;    // --log-level LEVEL; empty: take it from the config file
};

// Adds --config, --log-level and --version ("<app name> <OUTPOST_VERSION>") to `app`.
// --help is CLI11's own. `opts` must outlive parsing.
void add_common_options(CLI::App& app, CommonOptions& opts);

// Parses argv. Returns nullopt to carry on, or the exit code to leave with:
// 0 after printing --help or --version, kExitUsage after printing a usage error
// ("<error>\nRun with --help for more information.") to stderr. Never throws.
std::optional<int> parse_command_line(CLI::App& app, int argc, const char* const* argv);

}  // namespace outpost::common
