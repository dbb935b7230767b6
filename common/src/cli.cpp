// Command-line conventions shared by all programs.
#include "outpost/common/cli.h"

#include <iostream>

#include "outpost/common/logging.h"

namespace outpost::common {

void add_common_options(CLI::App& app, CommonOptions& opts) {
  app.set_version_flag("--version", app.get_name() + " " + OUTPOST_VERSION);
  app.add_option("-c,--config", opts.config_path, "Configuration file (TOML)")->type_name("FILE");
  app.add_option("--log-level", opts.log_level,
                 "Log level, overriding the config file: " + std::string(kLogLevelNames))
      ->type_name("LEVEL")
      ->check(
          [](const std::string& v) -> std::string {
            return parse_log_level(v) ? "" : "must be one of " + std::string(kLogLevelNames);
          },
          "LEVEL");
}

std::optional<int> parse_command_line(CLI::App& app, int argc, const char* const* argv) {
  try {
    app.parse(argc, argv);
    return std::nullopt;
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return kExitOk;
  } catch (const CLI::CallForAllHelp&) {
    std::cout << app.help("", CLI::AppFormatMode::All);
    return kExitOk;
  } catch (const CLI::CallForVersion&) {
    std::cout << app.version() << "\n";
    return kExitOk;
  } catch (const CLI::ParseError& e) {
    std::cerr << app.get_name() << ": " << e.what() << "\nRun with --help for more information.\n";
    return kExitUsage;
  }
}

}  // namespace outpost::common
