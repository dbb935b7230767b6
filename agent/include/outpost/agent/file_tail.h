// Following a log file through rotation (rename or truncate), from a saved position.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace outpost::agent {

struct TailPosition {
  uint64_t inode = 0;
  uint64_t offset = 0;  // bytes of complete lines consumed
};

// Polled, not event-driven: poll() reads whatever was appended since the last call.
// One thread; never throws; a missing file is simply waited for.
class FileTail {
 public:
  // `saved`: the position persisted by a previous run (same inode: resume there;
  // different inode: the file was rotated meanwhile, start the new one at 0).
  // Without one, start at the beginning or at the end of the current file.
  FileTail(std::string path, bool from_beginning, std::optional<TailPosition> saved);
  ~FileTail();
  FileTail(const FileTail&) = delete;
  FileTail& operator=(const FileTail&) = delete;

  // Complete lines appended since the last poll, without their '\n'. After a
  // rotation by rename, the rest of the old file is read first; after a truncation,
  // reading restarts at 0. A partial last line waits for its '\n' (or, on rotation,
  // is returned as it is).
  std::vector<std::string> poll();

  // Where the next run should resume: the inode and the end of the last line returned.
  TailPosition position() const { return {inode_, offset_}; }
  const std::string& path() const { return path_; }

 private:
  // Opens the file now at path_; `initial`: this is the first open (saved position or
  // start_at apply), otherwise a rotated-in file, read from 0.
  bool open_current(bool initial);
  void read_available(std::vector<std::string>& lines);

  std::string path_;
  bool from_beginning_;
  std::optional<TailPosition> saved_;
  int fd_ = -1;
  uint64_t inode_ = 0;
  uint64_t offset_ = 0;  // end of the last complete line handed out
  std::string partial_;  // bytes after offset_ without a '\n' yet
};

}  // namespace outpost::agent
