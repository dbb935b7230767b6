// Test support: the storage backends behind one fixture.
#include "support/backends.h"

#include <unistd.h>

#include "outpost/collector/postgres.h"
#include "outpost/collector/sqlite_reader.h"
#include "outpost/collector/sqlite_sink.h"

namespace outpost::test_support {

namespace fs = std::filesystem;
using collector::Reader;
using collector::Sink;
using collector::SinkError;

void BackendTest::SetUp() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = std::string(info->test_suite_name()) + "_" + info->name();
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  dir_ = fs::temp_directory_path() / ("outpost_store_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(dir_);
  fs::create_directories(dir_);
  if (backend() == Backend::kPostgres) {
    std::string why;
    cluster_ = suite_cluster(why);
    if (!cluster_) GTEST_SKIP() << why;
    dsn_ = cluster_->dsn(fresh_database(*cluster_));
  }
}

void BackendTest::TearDown() { fs::remove_all(dir_); }

common::Result<std::unique_ptr<Sink>, SinkError> BackendTest::open_sink(uint64_t dlq_max_entries) {
  if (backend() == Backend::kPostgres) {
    auto s = collector::PostgresSink::open(collector::PostgresOptions{dsn_, "", dlq_max_entries});
    if (!s.ok()) return s.error();
    return std::unique_ptr<Sink>(std::move(s).value());
  }
  auto s = collector::SqliteSink::open(
      collector::SqliteOptions{(dir_ / "c.db").string(), false, dlq_max_entries, true});
  if (!s.ok()) return s.error();
  return std::unique_ptr<Sink>(std::move(s).value());
}

common::Result<std::unique_ptr<Reader>, SinkError> BackendTest::open_reader() {
  if (backend() == Backend::kPostgres) {
    auto r = collector::PostgresReader::open(collector::PostgresOptions{dsn_, "", 1000});
    if (!r.ok()) return r.error();
    return std::unique_ptr<Reader>(std::move(r).value());
  }
  auto r = collector::SqliteReader::open((dir_ / "c.db").string());
  if (!r.ok()) return r.error();
  return std::unique_ptr<Reader>(std::move(r).value());
}

}  // namespace outpost::test_support
