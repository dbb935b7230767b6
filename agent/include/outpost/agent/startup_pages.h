// Gives back the resident pages of code and constants that only start-up used.
//
// The agent's binary is linked statically (docs/BENCHMARKS.md, "Agent memory"), so its own
// read-only segments hold all the code it runs: command line and TOML parsing, the store's
// integrity check and schema set-up, OpenSSL and Paho initialisation. Once touched, those
// pages stay in the process's page tables, and the kernel's fault-around maps up to 64 KiB
// of neighbours with every page that is touched, so they count in RSS and PSS for the
// agent's whole life. Called once start-up is over, release_startup_pages() unmaps them
// (madvise MADV_DONTNEED on the executable's non-writable PT_LOAD segments). The pages stay
// in the page cache: whatever the agent runs next faults back in at the cost of a minor
// fault, so what remains resident is the working set of the running agent.
//
// Only clean, file-backed segments are touched: writable segments, including the RELRO part
// that the loader relocated, are left alone. Under a debugger (TracerPid non-zero) nothing is
// released, because breakpoints live in privately copied code pages that this would discard.
// For the same reason, uprobes (perf probe, bpftrace) placed in the agent's code before it
// started stop firing in it after the release; place them once the agent runs.
#pragma once

#include <cstddef>

#include "outpost/common/result.h"

namespace outpost::agent {

struct ReleasedPages {
  std::size_t bytes = 0;     // size of the address ranges given back
  std::size_t segments = 0;  // read-only PT_LOAD segments of the executable
  bool traced = false;       // a debugger is attached: nothing was released
};

common::Result<ReleasedPages> release_startup_pages();

}  // namespace outpost::agent
