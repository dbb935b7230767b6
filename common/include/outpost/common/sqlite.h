// The one SQLite statement wrapper of the agent's store, the collector's storage and the tests
// that read those files: binding, stepping and reading columns with one rule for empty values.
//
// The empty-value rule: an empty TEXT or BLOB is bound as a zero-length value ('' or x''),
// never as NULL, even when the view has no data pointer (a default std::string_view); a NULL
// or zero-length column reads back as an empty string. So NOT NULL columns accept empty
// strings, and a round trip of "" gives "". is_null() tells NULL apart where it matters.
//
// The library (outpost::common_sqlite) compiles against sqlite3.h but links no SQLite: each
// program links its own (the agent a static libsqlite3.a, the collector the shared one). This
// header declares SQLite's handles only, so including it does not bring sqlite3.h in.
// Not thread-safe: a statement belongs to the thread of its connection.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

struct sqlite3;
struct sqlite3_stmt;

namespace outpost::common::sqlite {

// A prepared statement: either owned (prepared for one use, finalized when it goes) or
// borrowed from a StatementCache (reset and unbound when it goes, so that a statement left
// mid-step holds no read snapshot open, which would stop WAL checkpoints).
class Statement {
 public:
  // Prepares `sql` for one use; !ok() if it does not prepare (the connection's errmsg says why).
  Statement(sqlite3* db, std::string_view sql);
  // Borrows a statement kept prepared elsewhere; nullptr gives a statement that is !ok().
  explicit Statement(sqlite3_stmt* kept);
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  bool ok() const { return stmt_ != nullptr; }
  sqlite3_stmt* get() const { return stmt_; }

  // Parameters count from 1. Text and blobs are bound without a copy: the bytes must stay
  // alive and unchanged until the statement is stepped for the last time or reset.
  void bind(int i, int64_t v);
  void bind(int i, uint64_t v);  // stored as its int64 bit pattern
  void bind(int i, int v);
  void bind(int i, double v);
  void bind(int i, std::string_view text);        // empty: '' (never NULL)
  void bind_blob(int i, std::string_view bytes);  // empty: x'' (never NULL)
  void bind_blob(int i, std::span<const uint8_t> bytes);
  void bind_null(int i);

  // sqlite3_step's result code: SQLITE_ROW, SQLITE_DONE or an error.
  int step();
  // Ready to run again, with no parameter bound.
  void reset();

  // Columns count from 0; call only after step() returned SQLITE_ROW.
  int64_t integer(int col);
  double real(int col);
  std::string text(int col);            // NULL or empty: ""
  std::string blob(int col);            // NULL or empty: ""
  std::vector<uint8_t> bytes(int col);  // blob(), as bytes
  bool is_null(int col);

 private:
  sqlite3_stmt* stmt_ = nullptr;
  bool owned_ = false;
};

// Statements a connection keeps prepared (SQLITE_PREPARE_PERSISTENT), keyed by their text:
// parsing SQL on every call showed in profiles. Finalizes them when it goes, which must be
// before the connection closes.
class StatementCache {
 public:
  explicit StatementCache(sqlite3* db) : db_(db) {}
  ~StatementCache();
  StatementCache(const StatementCache&) = delete;
  StatementCache& operator=(const StatementCache&) = delete;

  // The statement for `sql`, prepared on first use; nullptr if it does not prepare.
  sqlite3_stmt* get(const std::string& sql);

 private:
  sqlite3* db_;
  std::unordered_map<std::string, sqlite3_stmt*> statements_;
};

}  // namespace outpost::common::sqlite
