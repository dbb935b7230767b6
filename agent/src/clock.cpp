// The machine's clocks for the agent.
#include "outpost/agent/clock.h"

#include <sys/timex.h>

#include "outpost/common/clock.h"

namespace outpost::agent {

int64_t SystemClock::wall_now_us() const { return common::wall_now_us(); }

bool SystemClock::synchronised() const {
  struct timex tx = {};
  const int state = ::adjtimex(&tx);
  return state != TIME_ERROR && (tx.status & STA_UNSYNC) == 0;
}

}  // namespace outpost::agent
