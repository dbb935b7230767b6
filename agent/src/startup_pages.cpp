#include "outpost/agent/startup_pages.h"

#include <elf.h>
#include <link.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace outpost::agent {

namespace {

struct Range {
  uintptr_t begin = 0;
  uintptr_t end = 0;
};

// The executable's read-only PT_LOAD segments, page-aligned. dl_iterate_phdr reports the
// main program first (its dlpi_name is empty).
int collect_read_only(dl_phdr_info* info, size_t, void* data) {
  auto* ranges = static_cast<std::vector<Range>*>(data);
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || (ph.p_flags & PF_W) != 0 || ph.p_memsz == 0) continue;
    const uintptr_t start = info->dlpi_addr + ph.p_vaddr;
    // The file maps whole pages; a segment never shares a page with a writable one.
    ranges->push_back({start & ~(page - 1), (start + ph.p_memsz + page - 1) & ~(page - 1)});
  }
  return 1;  // the main program only
}

bool traced() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("TracerPid:", 0) == 0) return std::stol(line.substr(10)) != 0;
  }
  return false;
}

}  // namespace

common::Result<ReleasedPages> release_startup_pages() {
  ReleasedPages released;
  if (traced()) {
    released.traced = true;
    return released;
  }
  std::vector<Range> ranges;
  ::dl_iterate_phdr(collect_read_only, &ranges);
  for (const Range& r : ranges) {
    if (::madvise(reinterpret_cast<void*>(r.begin), r.end - r.begin, MADV_DONTNEED) != 0) {
      return common::Error{std::string("madvise(MADV_DONTNEED) on the agent's code: ") +
                           std::strerror(errno)};
    }
    released.bytes += r.end - r.begin;
    ++released.segments;
  }
  return released;
}

}  // namespace outpost::agent
