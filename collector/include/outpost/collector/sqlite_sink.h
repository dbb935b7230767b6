// The SQLite storage sink (the embedded default): the collector's writer. What is read back
// goes through the Reader (reader.h, sqlite_reader.h). Schema and the reasons behind it:
// docs/storage.md.
//
// One SqliteSink is one connection, used by one thread: the collector's storage thread owns
// the one it writes with; `dlq replay` and `dlq purge` open their own. WAL mode lets readers
// read while it writes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "outpost/collector/reader.h"
#include "outpost/collector/sink.h"

namespace outpost::collector {

struct SqliteOptions {
  std::string path;
  bool full_sync = false;                // synchronous=FULL instead of NORMAL
  uint64_t dlq_max_entries = 1'000'000;  // oldest entries removed beyond this, counted
  bool create = true;                    // false: fail if the file does not exist (tools)
};

class SqliteSink final : public Sink {
 public:
  // Opens (creating if allowed) the database and its schema. A file that is not a database
  // of ours fails with a clear message.
  static common::Result<std::unique_ptr<SqliteSink>, SinkError> open(const SqliteOptions& options);
  ~SqliteSink() override;
  SqliteSink(const SqliteSink&) = delete;
  SqliteSink& operator=(const SqliteSink&) = delete;

  common::Result<CommitResult, SinkError> commit(const Transaction& tx) override;
  common::Result<std::optional<JournalPosition>, SinkError> journal_position() override;
  common::Result<uint64_t, SinkError> expire(int64_t cutoff_us, int64_t dlq_cutoff_us,
                                             int64_t key_cutoff_us, uint64_t max_rows) override;

  // Also in the next commit: removes these DLQ entries (`dlq replay` moves them into storage).
  void remove_dlq_on_next_commit(std::vector<int64_t> ids);

  // Removes the DLQ entries `filter` selects (`dlq purge`: reason, topic prefix and text,
  // receive times, and at most filter.limit of them, oldest first; offset and newest_first are
  // the listing's and ignored here); returns how many went. An operator action, so here on the
  // writer and not on the Reader: it deletes rows, and the writer keeps the count its DLQ bound
  // (dlq_max_entries) is checked against.
  common::Result<uint64_t, SinkError> purge_dlq(const DlqFilter& filter);

 private:
  struct Impl;
  explicit SqliteSink(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace outpost::collector
