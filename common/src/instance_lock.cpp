// The exclusive lock that keeps a second instance off a store.
#include "outpost/common/instance_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

namespace outpost::common {

Result<std::unique_ptr<InstanceLock>, LockError> InstanceLock::acquire(const std::string& path,
                                                                       std::string_view what,
                                                                       std::string_view program) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return LockError{"cannot create the lock file " + path + ": " + std::strerror(errno), false};
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    char buf[32] = {};
    const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    ::close(fd);
    if (err != EWOULDBLOCK) {
      return LockError{"cannot lock " + path + ": " + std::strerror(err), false};
    }
    long pid = 0;
    const char* end = buf + (n > 0 ? n : 0);
    const bool known = std::from_chars(buf, end, pid).ec == std::errc() && pid > 0;
    return LockError{std::string(what) + " is in use by another " + std::string(program) +
                         (known ? " (pid " + std::to_string(pid) + ")" : "") + " (lock " + path +
                         ")",
                     true};
  }
  // Ours now: say who holds it. Best effort: the lock works without the pid.
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    // A full disk or a read-only file: the message of a second instance lacks the pid.
  }
  return std::unique_ptr<InstanceLock>(new InstanceLock(fd));
}

InstanceLock::~InstanceLock() { ::close(fd_); }

}  // namespace outpost::common
