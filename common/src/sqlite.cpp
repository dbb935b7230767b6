// The SQLite statement wrapper (outpost/common/sqlite.h).
#include "outpost/common/sqlite.h"

#include <sqlite3.h>

namespace outpost::common::sqlite {

namespace {
// A zero-length value with no data pointer would be bound as NULL: point it at a real "".
const char* nonnull(std::string_view v) { return v.data() ? v.data() : ""; }
}  // namespace

Statement::Statement(sqlite3* db, std::string_view sql) : owned_(true) {
  if (sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &stmt_, nullptr) !=
      SQLITE_OK) {
    sqlite3_finalize(stmt_);
    stmt_ = nullptr;
  }
}

Statement::Statement(sqlite3_stmt* kept) : stmt_(kept), owned_(false) {}

Statement::~Statement() {
  if (owned_) {
    sqlite3_finalize(stmt_);
  } else if (stmt_) {
    reset();
  }
}

void Statement::bind(int i, int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
void Statement::bind(int i, uint64_t v) { sqlite3_bind_int64(stmt_, i, static_cast<int64_t>(v)); }
void Statement::bind(int i, int v) { sqlite3_bind_int(stmt_, i, v); }
void Statement::bind(int i, double v) { sqlite3_bind_double(stmt_, i, v); }
void Statement::bind(int i, std::string_view text) {
  sqlite3_bind_text(stmt_, i, nonnull(text), static_cast<int>(text.size()), SQLITE_STATIC);
}
void Statement::bind_blob(int i, std::string_view bytes) {
  sqlite3_bind_blob(stmt_, i, nonnull(bytes), static_cast<int>(bytes.size()), SQLITE_STATIC);
}
void Statement::bind_blob(int i, std::span<const uint8_t> bytes) {
  bind_blob(i, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}
void Statement::bind_null(int i) { sqlite3_bind_null(stmt_, i); }

int Statement::step() { return sqlite3_step(stmt_); }

void Statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

int64_t Statement::integer(int col) { return sqlite3_column_int64(stmt_, col); }
double Statement::real(int col) { return sqlite3_column_double(stmt_, col); }

std::string Statement::text(int col) {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
  return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)))
           : std::string();
}

std::string Statement::blob(int col) {
  const auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, col));
  return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)))
           : std::string();
}

std::vector<uint8_t> Statement::bytes(int col) {
  const auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(stmt_, col));
  return p ? std::vector<uint8_t>(p, p + sqlite3_column_bytes(stmt_, col)) : std::vector<uint8_t>();
}

bool Statement::is_null(int col) { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

StatementCache::~StatementCache() {
  for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
}

sqlite3_stmt* StatementCache::get(const std::string& sql) {
  if (auto it = statements_.find(sql); it != statements_.end()) return it->second;
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v3(db_, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr) !=
      SQLITE_OK) {
    sqlite3_finalize(stmt);
    return nullptr;
  }
  statements_.emplace(sql, stmt);
  return stmt;
}

}  // namespace outpost::common::sqlite
