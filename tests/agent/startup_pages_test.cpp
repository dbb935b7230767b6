// release_startup_pages() on this test program: its read-only segments leave the page
// tables, the program keeps running, and what it runs next comes back on demand.
#include "outpost/agent/startup_pages.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace outpost::agent {
namespace {

// Resident kilobytes of this executable's non-writable mappings (/proc/self/smaps).
long resident_code_kib() {
  char exe[PATH_MAX] = {};
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return -1;
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool ours = false;
  long kib = 0;
  while (std::getline(smaps, line)) {
    std::istringstream in(line);
    std::string range, perms, offset, dev, inode, path;
    if (line.find('-') < line.find(' ') && line.find(':') > line.find(' ')) {
      in >> range >> perms >> offset >> dev >> inode >> path;
      ours = path == exe && perms.size() >= 2 && perms[1] != 'w';
    } else if (ours && line.rfind("Rss:", 0) == 0) {
      kib += std::strtol(line.c_str() + 4, nullptr, 10);
    }
  }
  return kib;
}

int square_after_release(int x) { return x * x; }

TEST(StartupPages, ReleasesTheExecutablesReadOnlySegmentsAndTheProgramRunsOn) {
  const long before = resident_code_kib();
  ASSERT_GT(before, 0) << "this test reads /proc/self/smaps";

  auto released = release_startup_pages();
  ASSERT_TRUE(released.ok()) << released.error().message;
  if (released.value().traced) GTEST_SKIP() << "under a debugger nothing is released";

  // Code and constants: at least the text segment and one read-only data segment.
  EXPECT_GE(released.value().segments, 2u);
  EXPECT_GT(released.value().bytes, 0u);
  // Running on faults back only what is used from here on: far less than before.
  EXPECT_EQ(square_after_release(12), 144);
  const long after = resident_code_kib();
  EXPECT_LT(after, before) << "resident code before " << before << " KiB, after " << after;
}

TEST(StartupPages, CanBeCalledAgain) {
  ASSERT_TRUE(release_startup_pages().ok());
  auto again = release_startup_pages();
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(square_after_release(3), 9);
}

}  // namespace
}  // namespace outpost::agent
