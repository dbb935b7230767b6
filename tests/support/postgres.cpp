// Test support: a throwaway PostgreSQL cluster.
#include "support/postgres.h"

#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace outpost::test_support {

namespace fs = std::filesystem;

namespace {

std::string read_log(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

std::optional<fs::path> Postgres::find_binaries(std::string& why) {
  const char* env = std::getenv("OUTPOST_POSTGRES_BIN");
  const fs::path bin = env && *env ? fs::path(env) : fs::path("/usr/lib/postgresql/15/bin");
  if (!fs::exists(bin / "initdb") || !fs::exists(bin / "postgres")) {
    why = "PostgreSQL binaries not found in " + bin.string() +
          " (apt-get install postgresql, or set OUTPOST_POSTGRES_BIN)";
    return std::nullopt;
  }
  if (::geteuid() == 0 && !::getpwnam("postgres")) {
    why = "running as root and there is no postgres user to run PostgreSQL as";
    return std::nullopt;
  }
  return bin;
}

Postgres::Postgres(fs::path dir, bool durable) : dir_(std::move(dir)), durable_(durable) {
  std::string why;
  auto bin = find_binaries(why);
  if (!bin) throw std::runtime_error(why);
  bin_ = *bin;
  fs::remove_all(dir_);
  fs::create_directories(dir_);
  if (::geteuid() == 0) {
    const passwd* pw = ::getpwnam("postgres");
    if (::chown(dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
      throw std::runtime_error("cannot give " + dir_.string() + " to the postgres user");
    }
  }
}

Postgres::~Postgres() {
  if (process_) kill();
  std::error_code ec;
  if (!std::getenv("OUTPOST_KEEP_PG")) fs::remove_all(dir_, ec);
}

std::vector<std::string> Postgres::as_owner(std::vector<std::string> argv) const {
  // setpriv execs (the Process is the program itself); --pdeathsig: a test that dies
  // (a crash, an abort under a sanitizer) takes its cluster with it rather than leaving it
  // running.
  std::vector<std::string> out = {"setpriv", "--pdeathsig", "SIGKILL"};
  if (::geteuid() == 0) {
    out.insert(out.end(), {"--reuid=postgres", "--regid=postgres", "--init-groups"});
  }
  out.push_back("--");
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

int Postgres::run(const std::vector<std::string>& argv) {
  Process p(as_owner(argv), dir_ / "setup.log");
  return p.stop(0, std::chrono::seconds(120));  // signal 0: none, only wait for the exit
}

void Postgres::start() {
  if (process_) return;
  if (!initialized_) {
    // initdb once per machine and user into a template (made aside, then renamed into place:
    // tests running in parallel race harmlessly), then a copy of it per cluster: a copy takes
    // a tenth of initdb's time, and every ctest case is a process with a cluster of its own.
    const fs::path tmpl =
        fs::temp_directory_path() / ("outpost_pg_template_" + std::to_string(::geteuid()) + "_" +
                                     bin_.parent_path().filename().string());
    if (!fs::exists(tmpl / "data" / "PG_VERSION")) {
      const fs::path aside = dir_ / "template";
      fs::create_directories(aside);
      if (::geteuid() == 0) {
        const passwd* pw = ::getpwnam("postgres");
        if (::chown(aside.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
          throw std::runtime_error("cannot give " + aside.string() + " to the postgres user");
        }
      }
      const int rc =
          run({(bin_ / "initdb").string(), "-D", (aside / "data").string(), "-A", "trust", "-U",
               "postgres", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"});
      if (rc != 0) {
        throw std::runtime_error("initdb failed (" + std::to_string(rc) + "):\n" +
                                 read_log(dir_ / "setup.log"));
      }
      std::error_code ec;
      fs::rename(aside, tmpl, ec);  // fails if another test was first: its template is as good
      fs::remove_all(aside, ec);
    }
    const int rc = run({"cp", "-a", (tmpl / "data").string(), (dir_ / "data").string()});
    if (rc != 0) {
      throw std::runtime_error("cannot copy the cluster template " + tmpl.string() + ":\n" +
                               read_log(dir_ / "setup.log"));
    }
    initialized_ = true;
  }
  const bool fixed = port_ != 0;
  for (int attempt = 0; attempt < 10; ++attempt) {
    if (!fixed) port_ = candidate_port();
    const std::size_t taken_before = count_in_file(log_file(), "Address already in use");
    std::vector<std::string> settings = {"listen_addresses=127.0.0.1",
                                         "unix_socket_directories=" + dir_.string(),
                                         "fsync=off",
                                         "full_page_writes=off",
                                         "shared_buffers=32MB",
                                         "max_connections=40",
                                         "log_min_messages=warning"};
    if (durable_) settings.erase(settings.begin() + 2, settings.begin() + 4);
    settings.insert(settings.end(), extra_settings.begin(), extra_settings.end());
    std::vector<std::string> argv = {(bin_ / "postgres").string(), "-D", (dir_ / "data").string(),
                                     "-p", std::to_string(port_)};
    for (const auto& setting : settings) {
      argv.push_back("-c");
      argv.push_back(setting);
    }
    process_ = std::make_unique<Process>(as_owner(argv), log_file());
    const std::string conninfo = dsn() + " connect_timeout=2";
    const bool up = wait_until(
        [&] {
          if (!process_->running()) return true;
          const auto ports = listening_tcp_ports(process_->pid());
          return std::find(ports.begin(), ports.end(), port_) != ports.end() &&
                 PQping(conninfo.c_str()) == PQPING_OK;
        },
        std::chrono::seconds(60));
    if (up && process_->running()) return;
    const bool taken = count_in_file(log_file(), "Address already in use") > taken_before;
    process_->stop(SIGKILL);
    process_.reset();
    if (!taken || fixed) {
      // After a kill, the old backends may still hold shared memory for a moment: try again.
      if (count_in_file(log_file(), "pre-existing shared memory block") > 0 && attempt < 9) {
        wait_until([] { return false; }, std::chrono::milliseconds(200));
        continue;
      }
      throw std::runtime_error("postgres did not come up on port " + std::to_string(port_) + ":\n" +
                               read_log(log_file()));
    }
  }
  throw std::runtime_error("postgres found no free port:\n" + read_log(log_file()));
}

pid_t Postgres::pid() const { return process_ ? process_->pid() : -1; }

void Postgres::stop() {
  if (!process_) return;
  process_->stop(SIGINT, std::chrono::seconds(30));
  process_.reset();
}

void Postgres::kill() {
  if (!process_) return;
  process_->stop(SIGKILL);
  process_.reset();
  // The backends notice their postmaster is gone and exit; until then they hold the port.
  wait_until(
      [&] {
        const std::string conninfo = dsn() + " connect_timeout=1";
        return PQping(conninfo.c_str()) == PQPING_NO_RESPONSE;
      },
      std::chrono::seconds(10));
}

std::string Postgres::dsn(const std::string& database) const {
  return "host=127.0.0.1 port=" + std::to_string(port_) + " user=postgres dbname=" + database;
}

void Postgres::create_database(const std::string& name) {
  sql("postgres", "CREATE DATABASE " + name + " TEMPLATE template0 STRATEGY FILE_COPY");
}

std::string Postgres::sql(const std::string& database, const std::string& text) const {
  PGconn* conn = PQconnectdb(dsn(database).c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string message = PQerrorMessage(conn);
    PQfinish(conn);
    throw std::runtime_error("cannot connect to " + database + ": " + message);
  }
  PQsetNoticeProcessor(
      conn, [](void*, const char*) {}, nullptr);  // "does not exist, skipping"
  PGresult* r = PQexec(conn, text.c_str());
  const auto status = PQresultStatus(r);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    std::string message = PQresultErrorMessage(r);
    PQclear(r);
    PQfinish(conn);
    throw std::runtime_error(text + ": " + message);
  }
  std::string out;
  for (int i = 0; i < PQntuples(r); ++i) {
    if (i) out += '\n';
    out += PQgetvalue(r, i, 0);
  }
  PQclear(r);
  PQfinish(conn);
  return out;
}

namespace {
std::unique_ptr<Postgres> shared_cluster;
}

Postgres* suite_cluster(std::string& skip_reason) {
  if (!shared_cluster) {
    if (!Postgres::find_binaries(skip_reason)) return nullptr;
    const auto* suite = ::testing::UnitTest::GetInstance()->current_test_suite();
    std::string name = suite ? suite->name() : "suite";
    for (char& c : name) {
      if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
    }
    shared_cluster = std::make_unique<Postgres>(
        fs::temp_directory_path() / ("outpost_pg_" + std::to_string(::getpid()) + "_" + name));
  }
  // A test that stopped the cluster leaves it to the next to start again.
  if (!shared_cluster->running()) shared_cluster->start();
  return shared_cluster.get();
}

void end_suite_cluster() { shared_cluster.reset(); }

std::string fresh_database(Postgres& cluster) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = "t";
  for (char c : std::string(info->test_suite_name()) + "_" + info->name()) {
    name += std::isalnum(static_cast<unsigned char>(c))
                ? static_cast<char>(std::tolower(static_cast<unsigned char>(c)))
                : '_';
  }
  if (name.size() > 60) name = "t" + name.substr(name.size() - 59);
  cluster.sql("postgres", "DROP DATABASE IF EXISTS " + name);
  cluster.create_database(name);
  return name;
}

void PostgresSuite::SetUp() {
  std::string why;
  cluster_ = suite_cluster(why);
  if (!cluster_) GTEST_SKIP() << why;
  database_ = fresh_database(*cluster_);
  dsn_ = cluster_->dsn(database_);
}

}  // namespace outpost::test_support
