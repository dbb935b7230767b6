// The collector's SQLite database as the writer (SqliteSink) and the reader (SqliteReader)
// share it: one connection, the schema, the statement cache. Private to collector/src.
// Schema and the reasons behind it: docs/storage.md.
#pragma once

#include <sqlite3.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "outpost/collector/reader.h"
#include "outpost/collector/sink.h"
#include "outpost/common/result.h"
#include "outpost/common/sqlite.h"

namespace outpost::collector::sqlite_db {

using Statement = common::sqlite::Statement;

// Value types in readings.type: SQLite's dynamic typing keeps REAL and INTEGER apart by
// itself; the type column tells a bool from an integer.
enum ValueType : int { kDouble = 0, kInteger = 1, kBool = 2, kString = 3 };
// batches.kind.
enum BatchKind : int { kReadingsKind = 0, kLogsKind = 1 };

// One connection. WAL mode lets tools read while the collector writes.
class Database {
 public:
  // Opens (creating the file if `create`) the database and its schema. A file that is not a
  // database of ours fails with a clear message.
  static common::Result<std::unique_ptr<Database>, SinkError> open(const std::string& path,
                                                                   bool create, bool full_sync);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  sqlite3* handle() const { return db_; }
  // A statement kept prepared; nullptr if it does not prepare (error() says why).
  sqlite3_stmt* prepare(const std::string& sql) { return cache_->get(sql); }
  // `what`, with SQLite's message; transient for busy, locked, full and I/O errors.
  SinkError error(std::string_view what) const;
  // Runs statements without results (BEGIN, COMMIT, ...); false on failure (error() says why).
  bool exec(const char* sql);

 private:
  explicit Database(sqlite3* db);

  sqlite3* db_;
  std::unique_ptr<common::sqlite::StatementCache> cache_;  // finalized before db_ closes
};

// The WHERE clause a DlqFilter makes (parameters ?1..?4), and its bindings: the reader lists
// what the writer's purge removes.
std::string dlq_where(const DlqFilter& filter);
void bind_dlq(Statement& q, const DlqFilter& filter);

// seq_lines.epochs and .retired: unsigned numbers separated by spaces. split_numbers skips
// what does not parse (the column is ours, but never trusted to crash us).
std::string join_numbers(const std::vector<uint64_t>& numbers);
std::vector<uint64_t> split_numbers(std::string_view text);

}  // namespace outpost::collector::sqlite_db
