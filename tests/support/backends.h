// Test support: the collector's storage backends behind one fixture, so that a test of the
// Sink and Reader contracts runs on SQLite and on PostgreSQL alike.
//
// Instantiate a suite of TEST_P tests once per backend with the instantiation names "Sqlite" and
// "Postgres" (OUTPOST_INSTANTIATE_BACKENDS): ctest labels the Postgres ones `postgres` by that
// prefix (tests/CMakeLists.txt), and they skip, saying why, where PostgreSQL is not installed.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <ostream>
#include <string>

#include "outpost/collector/reader.h"
#include "outpost/collector/sink.h"
#include "support/postgres.h"

namespace outpost::test_support {

enum class Backend { kSqlite, kPostgres };
// How GoogleTest names a case's parameter.
inline void PrintTo(Backend b, std::ostream* out) {
  *out << (b == Backend::kSqlite ? "sqlite" : "postgres");
}

class BackendTest : public ::testing::TestWithParam<Backend> {
 protected:
  static void TearDownTestSuite() { end_suite_cluster(); }
  void SetUp() override;
  void TearDown() override;

  // The writer (created on first open) and a reader of the same store, as the tools open one.
  common::Result<std::unique_ptr<collector::Sink>, collector::SinkError> open_sink(
      uint64_t dlq_max_entries = 1000);
  common::Result<std::unique_ptr<collector::Reader>, collector::SinkError> open_reader();

  Backend backend() const { return GetParam(); }
  std::filesystem::path dir_;  // a temp dir of the test's own (both backends)
  std::string dsn_;            // postgres: the test's database

 private:
  Postgres* cluster_ = nullptr;
};

}  // namespace outpost::test_support

#define OUTPOST_INSTANTIATE_BACKENDS(suite)                                               \
  INSTANTIATE_TEST_SUITE_P(Sqlite, suite,                                                 \
                           ::testing::Values(::outpost::test_support::Backend::kSqlite)); \
  INSTANTIATE_TEST_SUITE_P(Postgres, suite,                                               \
                           ::testing::Values(::outpost::test_support::Backend::kPostgres))
