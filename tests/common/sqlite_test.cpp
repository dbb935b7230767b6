// The SQLite statement wrapper: the empty-value rule, owned and borrowed statements, the cache.
#include "outpost/common/sqlite.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

namespace outpost::common::sqlite {
namespace {

class SqliteWrapper : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(sqlite3_open(":memory:", &db_), SQLITE_OK);
    ASSERT_EQ(
        sqlite3_exec(db_,
                     "CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT NOT NULL, b BLOB NOT NULL,"
                     " n)",
                     nullptr, nullptr, nullptr),
        SQLITE_OK);
  }
  void TearDown() override { sqlite3_close(db_); }

  // Inserts one row and returns its id (0 if the insert failed).
  int64_t insert(std::string_view s, std::string_view b) {
    Statement q(db_, "INSERT INTO t (s, b) VALUES (?, ?)");
    if (!q.ok()) return 0;
    q.bind(1, s);
    q.bind_blob(2, b);
    if (q.step() != SQLITE_DONE) return 0;
    return sqlite3_last_insert_rowid(db_);
  }

  sqlite3* db_ = nullptr;
};

TEST_F(SqliteWrapper, AnEmptyTextWithoutADataPointerIsStoredAsEmptyTextNotNull) {
  const std::string_view no_data;  // data() == nullptr: raw SQLite would bind NULL
  ASSERT_EQ(no_data.data(), nullptr);
  const int64_t id = insert(no_data, "x");
  ASSERT_NE(id, 0) << "a NOT NULL column refused the empty text: " << sqlite3_errmsg(db_);
  Statement q(db_, "SELECT typeof(s), length(s), s FROM t WHERE id = ?");
  q.bind(1, id);
  ASSERT_EQ(q.step(), SQLITE_ROW);
  EXPECT_EQ(q.text(0), "text");
  EXPECT_EQ(q.integer(1), 0);
  EXPECT_EQ(q.text(2), "");
  EXPECT_FALSE(q.is_null(2));
}

TEST_F(SqliteWrapper, AnEmptyBlobIsStoredAsAZeroLengthBlobAndReadsBackEmpty) {
  const int64_t id = insert("x", std::string_view());
  ASSERT_NE(id, 0) << "a NOT NULL column refused the empty blob: " << sqlite3_errmsg(db_);
  Statement q(db_, "SELECT typeof(b), b, b FROM t WHERE id = ?");
  q.bind(1, id);
  ASSERT_EQ(q.step(), SQLITE_ROW);
  EXPECT_EQ(q.text(0), "blob");
  EXPECT_EQ(q.blob(1), "");  // SQLite hands back no pointer for a zero-length blob
  EXPECT_TRUE(q.bytes(2).empty());
  EXPECT_FALSE(q.is_null(1));
}

TEST_F(SqliteWrapper, ANullColumnReadsBackEmptyAndIsNullTellsItApart) {
  ASSERT_NE(insert("x", "y"), 0);
  Statement q(db_, "SELECT n, n, n FROM t");
  ASSERT_EQ(q.step(), SQLITE_ROW);
  EXPECT_EQ(q.text(0), "");
  EXPECT_EQ(q.blob(1), "");
  EXPECT_TRUE(q.is_null(2));
}

TEST_F(SqliteWrapper, TextAndBlobsRoundTripWithEmbeddedZeroBytes) {
  const std::string text("a\0b", 3);
  const std::string bytes("\x00\xff\x00", 3);
  const int64_t id = insert(text, bytes);
  ASSERT_NE(id, 0);
  Statement q(db_, "SELECT s, b, b FROM t WHERE id = ?");
  q.bind(1, id);
  ASSERT_EQ(q.step(), SQLITE_ROW);
  EXPECT_EQ(q.text(0), text);
  EXPECT_EQ(q.blob(1), bytes);
  EXPECT_EQ(q.bytes(2), (std::vector<uint8_t>{0x00, 0xff, 0x00}));
}

TEST_F(SqliteWrapper, NumbersRoundTripAndUint64KeepsItsBitPattern) {
  Statement q(db_, "SELECT ?1, ?2, ?3, ?4");
  q.bind(1, int64_t{-5});
  q.bind(2, std::numeric_limits<uint64_t>::max());
  q.bind(3, 7);
  q.bind(4, 2.5);
  ASSERT_EQ(q.step(), SQLITE_ROW);
  EXPECT_EQ(q.integer(0), -5);
  EXPECT_EQ(static_cast<uint64_t>(q.integer(1)), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(q.integer(2), 7);
  EXPECT_EQ(q.real(3), 2.5);
}

TEST_F(SqliteWrapper, SqlThatDoesNotPrepareGivesAStatementThatIsNotOk) {
  Statement q(db_, "SELECT FROM nowhere");
  EXPECT_FALSE(q.ok());
  StatementCache cache(db_);
  EXPECT_EQ(cache.get("SELECT FROM nowhere"), nullptr);
  Statement borrowed(cache.get("SELECT FROM nowhere"));
  EXPECT_FALSE(borrowed.ok());
}

TEST_F(SqliteWrapper, ABorrowedStatementIsResetAndUnboundWhenItGoes) {
  StatementCache cache(db_);
  sqlite3_stmt* kept = cache.get("SELECT ?1 IS NULL, ?1");
  ASSERT_NE(kept, nullptr);
  EXPECT_EQ(cache.get("SELECT ?1 IS NULL, ?1"), kept);  // prepared once
  {
    Statement q(kept);
    q.bind(1, int64_t{42});
    ASSERT_EQ(q.step(), SQLITE_ROW);
    EXPECT_EQ(q.integer(0), 0);
    EXPECT_EQ(q.integer(1), 42);
    // Left mid-result: the next user must still find it ready.
  }
  Statement again(kept);
  ASSERT_EQ(again.step(), SQLITE_ROW);
  EXPECT_EQ(again.integer(0), 1) << "the last user's binding survived";
}

}  // namespace
}  // namespace outpost::common::sqlite
