// Test support: a throwaway PostgreSQL cluster (Debian's postgresql 15 binaries) in a temp dir,
// on a loopback port of its own, that a test can stop, restart and kill.
//
// PostgreSQL refuses to run as root, and CI runs as root: then initdb and postgres run as the
// `postgres` system user the Debian package creates (setpriv, which execs, so the Process is
// the postmaster itself and a signal reaches it), in a directory made over to that user. As
// any other user they run directly. The cluster is made for speed, not durability: trust
// authentication on 127.0.0.1 only, fsync off (a killed server loses nothing
// the kernel has: commits stay synchronous), a C locale.
//
// Ports: as with mosquitto (process.h), postgres gets a candidate port and, if another process
// holds it, a new one, a bounded number of times; it is up once *this* postmaster listens and
// answers. A restart binds the same port again (the tests' connection strings hold it).
//
// initdb costs a second or two: share one cluster per test suite (PostgresSuite below) and give
// each test its own database.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "support/process.h"

namespace outpost::test_support {

class Postgres {
 public:
  // The directory with initdb and postgres (OUTPOST_POSTGRES_BIN, else Debian's
  // /usr/lib/postgresql/15/bin), or nullopt with the reason in `why` if they are not there.
  static std::optional<std::filesystem::path> find_binaries(std::string& why);

  // A cluster in `dir` (created, emptied first); nothing runs until start(). `durable`: fsync
  // and full-page writes on, as a production server (benchmarks); off by default (tests).
  explicit Postgres(std::filesystem::path dir, bool durable = false);
  ~Postgres();  // kills it if still running, removes `dir`
  Postgres(const Postgres&) = delete;
  Postgres& operator=(const Postgres&) = delete;

  // Runs initdb the first time, then starts postgres and waits until it accepts connections;
  // throws std::runtime_error with its log if it does not come up.
  void start();
  // A fast shutdown (SIGINT: sessions are ended, then it exits) and wait.
  void stop();
  // SIGKILL of the postmaster; waits until its port is free again.
  void kill();
  bool running() const { return process_ != nullptr; }
  // Settings (name=value) given to postgres after ours, from the next start().
  std::vector<std::string> extra_settings;

  int port() const { return port_; }
  pid_t pid() const;  // the postmaster's; -1 when not running
  // A libpq connection string for `database` on this cluster, as user postgres.
  std::string dsn(const std::string& database = "postgres") const;
  // Creates an empty database (FILE_COPY from template0: fast with fsync off).
  void create_database(const std::string& name);
  // Runs `sql` in `database` through libpq; returns the first column of the result's rows,
  // one per line, or throws std::runtime_error with the server's message.
  std::string sql(const std::string& database, const std::string& sql) const;
  std::filesystem::path log_file() const { return dir_ / "postgres.log"; }

 private:
  // Runs a binary (as the postgres user when we are root) to completion; its exit code.
  int run(const std::vector<std::string>& argv);
  std::vector<std::string> as_owner(std::vector<std::string> argv) const;

  std::filesystem::path dir_;
  std::filesystem::path bin_;
  int port_ = 0;
  bool initialized_ = false;
  bool durable_ = false;
  std::unique_ptr<Process> process_;
};

// The cluster shared by the test suite that is running: started on first use, ended by
// end_suite_cluster() (from TearDownTestSuite). nullptr, with the reason in `skip_reason`, if the
// binaries are absent; throws if they are there and the cluster does not come up.
Postgres* suite_cluster(std::string& skip_reason);
void end_suite_cluster();
// A new empty database on `cluster` named after the running test; returns its name.
std::string fresh_database(Postgres& cluster);

// A GoogleTest fixture base: the suite's cluster, a database of its own for each test (dsn()).
// Skips, saying why, if the binaries are absent.
class PostgresSuite : public ::testing::Test {
 protected:
  static void TearDownTestSuite() { end_suite_cluster(); }
  void SetUp() override;

  Postgres& cluster() { return *cluster_; }
  const std::string& dsn() const { return dsn_; }
  const std::string& database() const { return database_; }

 private:
  Postgres* cluster_ = nullptr;
  std::string database_;
  std::string dsn_;
};

}  // namespace outpost::test_support
