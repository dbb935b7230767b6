// Test support: Prometheus' own linter (`promtool check metrics`, Debian package prometheus) run
// on a metrics page, so a test fails on any name, type or HELP line Prometheus objects to.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

namespace outpost::test_support {

inline constexpr const char* kPromtool = "/usr/bin/promtool";

inline bool have_promtool() { return ::access(kPromtool, X_OK) == 0; }

// What promtool says about `text`: "" when it passes, else its exit code and output.
// Call only when have_promtool().
inline std::string promtool_problems(const std::string& text) {
  namespace fs = std::filesystem;
  static int n = 0;
  const fs::path base =
      fs::temp_directory_path() /
      ("outpost_promtool_" + std::to_string(::getpid()) + "_" + std::to_string(n++));
  const fs::path in = base.string() + ".txt", out = base.string() + ".out";
  std::ofstream(in) << text;
  const std::string cmd =
      std::string(kPromtool) + " check metrics <'" + in.string() + "' >'" + out.string() + "' 2>&1";
  const int status = std::system(cmd.c_str());
  std::stringstream said;
  said << std::ifstream(out).rdbuf();
  fs::remove(in);
  fs::remove(out);
  if (status == 0 && said.str().empty()) return "";
  return "promtool exit status " + std::to_string(status) + ":\n" + said.str();
}

}  // namespace outpost::test_support
