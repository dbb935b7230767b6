// One running instance per store: an exclusive flock(2) on a "<file>.lock" beside what a program
// owns (the agent's store, the collector's database and journal), held for the process's life.
//
// A second instance fails at once, never waits: "<what> is in use by another <program> (pid N)"
// (the holder writes its pid into the file). The lock is on a file of its own, not on the SQLite
// file: SQLite's POSIX locks on the database are dropped when any descriptor of it closes. The
// kernel releases the lock when the holder exits, however it exits (kill -9 included); the file
// stays (removing it would let two processes lock two different files of the same name).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "outpost/common/result.h"

namespace outpost::common {

struct LockError {
  std::string message;
  bool in_use = false;  // another process holds it (else: the lock file cannot be made)
};

class InstanceLock {
 public:
  // Locks `path` (created mode 0644 if missing). `what` names the thing guarded in the error
  // ("store /var/lib/outpost/agent.db"), `program` the program that holds it.
  static Result<std::unique_ptr<InstanceLock>, LockError> acquire(const std::string& path,
                                                                  std::string_view what,
                                                                  std::string_view program);
  ~InstanceLock();  // releases the lock; the file stays
  InstanceLock(const InstanceLock&) = delete;
  InstanceLock& operator=(const InstanceLock&) = delete;

 private:
  explicit InstanceLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace outpost::common
