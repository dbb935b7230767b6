// Tests of the shared command-line conventions.
#include "outpost/common/cli.h"

#include <gtest/gtest.h>

#include <vector>

namespace outpost::common {
namespace {

struct Parsed {
  std::optional<int> exit_code;
  std::string out;
  std::string err;
};

Parsed run(CLI::App& app, std::vector<const char*> args) {
  args.insert(args.begin(), "outpost-test");
  testing::internal::CaptureStdout();
  testing::internal::CaptureStderr();
  Parsed p;
  p.exit_code = parse_command_line(app, static_cast<int>(args.size()), args.data());
  p.out = testing::internal::GetCapturedStdout();
  p.err = testing::internal::GetCapturedStderr();
  return p;
}

TEST(Cli, ConfigAndLogLevelAreCaptured) {
  CLI::App app("test program", "outpost-test");
  CommonOptions opts;
  add_common_options(app, opts);
  const Parsed p = run(app, {"--config", "/etc/outpost/agent.toml", "--log-level", "debug"});
  EXPECT_EQ(p.exit_code, std::nullopt) << p.err;
  EXPECT_EQ(opts.config_path, "/etc/outpost/agent.toml");
  EXPECT_EQ(opts.log_level, "debug");
}

TEST(Cli, ShortConfigFlagAndDefaults) {
  CLI::App app("test program", "outpost-test");
  CommonOptions opts;
  add_common_options(app, opts);
  EXPECT_EQ(run(app, {"-c", "a.toml"}).exit_code, std::nullopt);
  EXPECT_EQ(opts.config_path, "a.toml");
  EXPECT_EQ(opts.log_level, "");
}

TEST(Cli, VersionPrintsNameAndVersionAndExitsZero) {
  CLI::App app("test program", "outpost-test");
  CommonOptions opts;
  add_common_options(app, opts);
  const Parsed p = run(app, {"--version"});
  EXPECT_EQ(p.exit_code, kExitOk);
  EXPECT_EQ(p.out, std::string("outpost-test ") + OUTPOST_VERSION + "\n");
}

TEST(Cli, HelpListsTheCommonOptionsAndExitsZero) {
  CLI::App app("test program", "outpost-test");
  CommonOptions opts;
  add_common_options(app, opts);
  const Parsed p = run(app, {"--help"});
  EXPECT_EQ(p.exit_code, kExitOk);
  for (const char* flag : {"--config", "--log-level", "--version", "--help"}) {
    EXPECT_NE(p.out.find(flag), std::string::npos) << flag;
  }
}

TEST(Cli, BadLogLevelIsAUsageErrorListingTheLevels) {
  CLI::App app("test program", "outpost-test");
  CommonOptions opts;
  add_common_options(app, opts);
  const Parsed p = run(app, {"--log-level", "loud"});
  EXPECT_EQ(p.exit_code, kExitUsage);
  EXPECT_NE(p.err.find("trace, debug, info, warn, error, critical, off"), std::string::npos)
      << p.err;
  EXPECT_NE(p.err.find("Run with --help"), std::string::npos);
}

TEST(Cli, UnknownFlagIsAUsageError) {
  CLI::App app("test program", "outpost-test");
  CommonOptions opts;
  add_common_options(app, opts);
  const Parsed p = run(app, {"--frobnicate"});
  EXPECT_EQ(p.exit_code, kExitUsage);
  EXPECT_NE(p.err.find("--frobnicate"), std::string::npos) << p.err;
}

TEST(Cli, SubcommandHelpShowsTheSubcommand) {
  CLI::App app("test program", "outpost-test");
  CommonOptions opts;
  add_common_options(app, opts);
  auto* status = app.add_subcommand("status", "Print the queue state");
  bool verbose = false;
  status->add_flag("--verbose-queue", verbose, "Show every row");
  const Parsed p = run(app, {"status", "--help"});
  EXPECT_EQ(p.exit_code, kExitOk);
  EXPECT_NE(p.out.find("--verbose-queue"), std::string::npos) << p.out;
}

}  // namespace
}  // namespace outpost::common
