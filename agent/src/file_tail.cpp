// Following log files through rotation.
#include "outpost/agent/file_tail.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace outpost::agent {

FileTail::FileTail(std::string path, bool from_beginning, std::optional<TailPosition> saved)
    : path_(std::move(path)), from_beginning_(from_beginning), saved_(saved) {
  open_current(true);
}

FileTail::~FileTail() {
  if (fd_ >= 0) ::close(fd_);
}

bool FileTail::open_current(bool initial) {
  const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st = {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return false;
  }
  uint64_t start = 0;
  if (initial && saved_) {
    // Same file as last run: resume, unless it was truncated below our position.
    if (saved_->inode == st.st_ino && saved_->offset <= static_cast<uint64_t>(st.st_size)) {
      start = saved_->offset;
    }
  } else if (initial && !from_beginning_) {
    start = static_cast<uint64_t>(st.st_size);
  }
  saved_.reset();
  if (::lseek(fd, static_cast<off_t>(start), SEEK_SET) < 0) start = 0;
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
  inode_ = st.st_ino;
  offset_ = start;
  partial_.clear();
  return true;
}

void FileTail::read_available(std::vector<std::string>& lines) {
  char buf[65536];
  while (true) {
    const ssize_t n = ::read(fd_, buf, sizeof buf);
    if (n <= 0) return;
    std::size_t start = 0;
    for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i) {
      if (buf[i] != '\n') continue;
      partial_.append(buf + start, i - start);
      offset_ += partial_.size() + 1;
      if (!partial_.empty() && partial_.back() == '\r') partial_.pop_back();
      lines.push_back(std::move(partial_));
      partial_.clear();
      start = i + 1;
    }
    partial_.append(buf + start, static_cast<std::size_t>(n) - start);
  }
}

std::vector<std::string> FileTail::poll() {
  std::vector<std::string> lines;
  if (fd_ < 0) {
    // Not there yet (or was missing at start): a new file is read from its beginning.
    if (!open_current(saved_.has_value())) return lines;
  }
  struct stat open_st = {};
  if (::fstat(fd_, &open_st) == 0 &&
      static_cast<uint64_t>(open_st.st_size) < offset_ + partial_.size()) {
    // Truncated in place (copytruncate): start again from the top.
    ::lseek(fd_, 0, SEEK_SET);
    offset_ = 0;
    partial_.clear();
  }
  read_available(lines);
  struct stat path_st = {};
  const bool exists = ::stat(path_.c_str(), &path_st) == 0;
  if (exists && path_st.st_ino != inode_) {
    // Rotated by rename: the old file is fully read above; a partial last line
    // will never be completed, so hand it out as it is.
    if (!partial_.empty()) {
      lines.push_back(std::move(partial_));
      partial_.clear();
    }
    if (open_current(false)) read_available(lines);
  }
  return lines;
}

}  // namespace outpost::agent
