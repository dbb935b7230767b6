// The console's page files, built into the binary from collector/console/ (no CDN, nothing
// fetched at run time): cmake/embed_files.cmake generates their definition.
#pragma once

#include <span>
#include <string_view>

namespace outpost::collector {

struct ConsoleAsset {
  std::string_view path;          // "/index.html", "/app.js", "/vendor/uPlot.iife.min.js", ...
  std::string_view content_type;  // from the extension
  std::string_view body;
};

std::span<const ConsoleAsset> console_assets();

}  // namespace outpost::collector
