// `--check-config` of outpost-agent and outpost-collector, run as an operator runs it: a good
// configuration prints the effective one (defaults included, no secret) and exits 0; a missing
// file, a directory that takes no files or a bad dsn exits 78 naming file:line, key and path;
// nothing is created either way. The printed configuration reads back to itself, and two of
// them compared name the keys a SIGHUP reports as changed.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "outpost/agent/config.h"
#include "outpost/collector/config.h"
#include "outpost/collector/config_check.h"
#include "outpost/common/config_check.h"

namespace outpost {
namespace {

namespace fs = std::filesystem;

struct ToolRun {
  int code = -1;
  std::string out, err;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::size_t entries(const fs::path& dir) {
  return static_cast<std::size_t>(std::distance(fs::directory_iterator(dir), {}));
}

class CheckConfig : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("outpost_check_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "out");
    fs::create_directories(dir_ / "data");
    fs::permissions(dir_, fs::perms::all);  // an unprivileged run (below) reads it
    std::ofstream(dir_ / "ca.pem") << "-----BEGIN CERTIFICATE-----\n";
    std::ofstream(dir_ / "pgpass") << "pg-s3cret\n";
  }
  void TearDown() override {
    std::error_code ec;
    fs::permissions(dir_ / "data", fs::perms::all, ec);
    fs::remove_all(dir_);
  }

  fs::path write(const std::string& name, const std::string& text) {
    const fs::path p = dir_ / name;
    std::ofstream(p) << text;
    fs::permissions(p, fs::perms::all);
    return p;
  }

  // Runs `bin args`; `as_nobody` runs it as uid/gid 65534 (so a directory's mode counts even
  // when the tests run as root).
  ToolRun run(const std::string& bin, const std::string& args, bool as_nobody = false) {
    const fs::path out = dir_ / "out" / "stdout", err = dir_ / "out" / "stderr";
    std::string prefix;
    if (as_nobody && ::geteuid() == 0) {
      prefix = "setpriv --reuid=65534 --regid=65534 --clear-groups -- ";
    }
    const std::string cmd =
        prefix + bin + " " + args + " >'" + out.string() + "' 2>'" + err.string() + "'";
    const int status = std::system(cmd.c_str());
    ToolRun r;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
  }
  ToolRun agent(const fs::path& config, bool as_nobody = false) {
    return run(OUTPOST_AGENT_BIN, "--check-config --config '" + config.string() + "'", as_nobody);
  }
  ToolRun collector(const fs::path& config, bool as_nobody = false) {
    return run(OUTPOST_COLLECTOR_BIN, "--check-config --config '" + config.string() + "'",
               as_nobody);
  }

  std::string agent_config(const std::string& mqtt_extra = "") const {
    return "[device]\nsite = \"lab\"\nid = \"gw-1\"\n"
           "[inputs]\nudp_listen = \"127.0.0.1:18094\"\nunix_socket = \"" +
           (dir_ / "data" / "agent.sock").string() +
           "\"\n"
           "[store]\npath = \"" +
           (dir_ / "data" / "agent.db").string() +
           "\"\n"
           "[mqtt]\nbroker = \"ssl://127.0.0.1:8883\"\nusername = \"gw-1\"\n"
           "password = \"mqtt-s3cret\"\n" +
           mqtt_extra;
  }
  std::string collector_config(const std::string& storage, const std::string& mqtt_extra = "") {
    return "[mqtt]\nbroker = \"tcp://127.0.0.1:1883\"\npassword = \"mqtt-s3cret\"\n" + mqtt_extra +
           "[storage]\n" + storage +
           "[webhooks.ops]\nurl = \"http://127.0.0.1:9/hook\"\nsecret = \"hook-s3cret\"\n"
           "[rules.hot]\nsensor = \"temp\"\nabove = 30\nhysteresis = 0.5\n";
  }
  std::string sqlite_storage() const {
    return "path = \"" + (dir_ / "data" / "c.db").string() + "\"\n";
  }

  fs::path dir_;
};

TEST_F(CheckConfig, AgentGoodConfigPrintsEveryKeyWithoutTheSecretAndCreatesNothing) {
  const auto config =
      write("agent.toml", agent_config("ca_file = \"" + (dir_ / "ca.pem").string() + "\"\n"));
  const ToolRun r = agent(config);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.find("mqtt-s3cret"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("password = \"(redacted)\"\n"), std::string::npos) << r.out;
  // Defaults the file does not set are printed too.
  for (const char* line :
       {"[batch]\n", "max_readings = 500\n", "flush_interval = \"200ms\"\n",
        "max_bytes = \"64MiB\"\n", "data_delivery = \"end_to_end\"\n", "level = \"info\"\n",
        "min_timestamp = 2000-01-01T00:00:00.000Z\n", "site = \"lab\"\n"}) {
    EXPECT_NE(r.out.find(line), std::string::npos) << line << " missing from\n" << r.out;
  }
  EXPECT_EQ(entries(dir_ / "data"), 0u) << "no store, no socket";
  // What it prints is a configuration that checks and prints the same.
  const auto again = write("again.toml", r.out);
  const ToolRun r2 = agent(again);
  ASSERT_EQ(r2.code, 0) << r2.err;
  EXPECT_EQ(r2.out.substr(r2.out.find('\n')), r.out.substr(r.out.find('\n')));
}

TEST_F(CheckConfig, AgentMissingCaFileNamesKeyLineAndFile) {
  const auto missing = (dir_ / "no-such-ca.pem").string();
  const auto config = write("agent.toml", agent_config("ca_file = \"" + missing + "\"\n"));
  const ToolRun r = agent(config);
  EXPECT_EQ(r.code, 78);
  EXPECT_NE(r.err.find("agent.toml:13:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("mqtt.ca_file: cannot read " + missing), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST_F(CheckConfig, AgentStoreDirectoryMissingOrUnwritable) {
  std::string text = agent_config();
  const std::string data = (dir_ / "data").string();
  text.replace(text.find(data + "/agent.db"), data.size(), (dir_ / "gone").string());
  ToolRun r = agent(write("gone.toml", text));
  EXPECT_EQ(r.code, 78);
  EXPECT_NE(r.err.find("store.path: directory " + (dir_ / "gone").string()), std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(dir_ / "gone"));

  fs::permissions(dir_ / "data", fs::perms::owner_read | fs::perms::owner_exec |
                                     fs::perms::group_read | fs::perms::group_exec |
                                     fs::perms::others_read | fs::perms::others_exec);
  r = agent(write("ro.toml", agent_config()), /*as_nobody=*/true);
  EXPECT_EQ(r.code, 78);
  EXPECT_NE(r.err.find("store.path: cannot create files in " + data), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("inputs.unix_socket: cannot create files in " + data), std::string::npos)
      << r.err;
}

TEST_F(CheckConfig, AgentSyntaxErrorsAreReportedAsAtStart) {
  const ToolRun r = agent(write("bad.toml", "[store]\nflush_interval = \"fast\"\nbogus = 1\n"));
  EXPECT_EQ(r.code, 78);
  EXPECT_NE(r.err.find("bad.toml:2:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("bad.toml:3:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("store.bogus: unknown key"), std::string::npos) << r.err;
}

TEST_F(CheckConfig, CollectorGoodSqliteConfigRedactsAndCreatesNothing) {
  const auto config = write("c.toml", collector_config(sqlite_storage()));
  const ToolRun r = collector(config);
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* secret : {"mqtt-s3cret", "hook-s3cret"}) {
    EXPECT_EQ(r.out.find(secret), std::string::npos) << secret << " in\n" << r.out;
  }
  for (const char* line :
       {"[webhooks.ops]\n", "secret = \"(redacted)\"\n", "[rules.hot]\n", "above = 30.0\n",
        "commit_interval = \"100ms\"\n", "retention = \"30d\"\n",
        "max_message_bytes = \"512KiB\"\n", "listen = \"127.0.0.1:9109\"\n"}) {
    EXPECT_NE(r.out.find(line), std::string::npos) << line << " missing from\n" << r.out;
  }
  EXPECT_EQ(entries(dir_ / "data"), 0u) << "no database, no journal";
  const ToolRun r2 = collector(write("again.toml", r.out));
  ASSERT_EQ(r2.code, 0) << r2.err;
  EXPECT_EQ(r2.out.substr(r2.out.find('\n')), r.out.substr(r.out.find('\n')));
}

TEST_F(CheckConfig, CollectorPostgresDsnPasswordRedactedAndSyntaxChecked) {
  const auto good =
      write("pg.toml",
            collector_config("kind = \"postgres\"\ndsn = \"host=127.0.0.1 port=1 dbname=outpost "
                             "user=outpost password=dsn-s3cret\"\npassword_file = \"" +
                             (dir_ / "pgpass").string() + "\"\njournal_dir = \"" +
                             (dir_ / "data" / "journal").string() + "\"\n"));
  ToolRun r = collector(good);  // port 1: nothing answers, and nothing is asked
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* secret : {"dsn-s3cret", "pg-s3cret", "mqtt-s3cret"}) {
    EXPECT_EQ(r.out.find(secret), std::string::npos) << secret << " in\n" << r.out;
  }
  EXPECT_NE(r.out.find("password=***"), std::string::npos) << r.out;
  EXPECT_EQ(entries(dir_ / "data"), 0u);

  r = collector(
      write("badpg.toml", collector_config("kind = \"postgres\"\ndsn = \"host=db dbname\"\n")));
  EXPECT_EQ(r.code, 78);
  EXPECT_NE(r.err.find("badpg.toml:6:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("storage.dsn: "), std::string::npos) << r.err;
}

TEST_F(CheckConfig, CollectorMissingCaFileAndUnwritableDatabaseDirectory) {
  const auto missing = (dir_ / "absent-ca.pem").string();
  ToolRun r = collector(
      write("ca.toml", collector_config(sqlite_storage(), "ca_file = \"" + missing + "\"\n")));
  EXPECT_EQ(r.code, 78);
  EXPECT_NE(r.err.find("ca.toml:4:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("mqtt.ca_file: cannot read " + missing), std::string::npos) << r.err;

  fs::permissions(dir_ / "data", fs::perms::owner_read | fs::perms::owner_exec |
                                     fs::perms::group_read | fs::perms::group_exec |
                                     fs::perms::others_read | fs::perms::others_exec);
  r = collector(write("ro.toml", collector_config(sqlite_storage())), /*as_nobody=*/true);
  EXPECT_EQ(r.code, 78);
  EXPECT_NE(r.err.find("storage.path: cannot create files in " + (dir_ / "data").string()),
            std::string::npos)
      << r.err;
}

// The journal beside the database (the default) lives in the directory checked for the database:
// a missing directory is one error, not one for each.
TEST_F(CheckConfig, CollectorMissingDatabaseDirectoryIsOneError) {
  const auto absent = (dir_ / "absent").string();
  const ToolRun r =
      collector(write("absent.toml", collector_config("path = \"" + absent + "/c.db\"\n")));
  EXPECT_EQ(r.code, 78);
  const std::string error = "storage.path: directory " + absent;
  const auto first = r.err.find(error);
  ASSERT_NE(first, std::string::npos) << r.err;
  EXPECT_EQ(r.err.find(error, first + 1), std::string::npos) << r.err;
}

// The printers cover every key the loaders read: a non-default value of each survives the trip.
TEST(EffectiveConfig, AgentNonDefaultsReadBack) {
  auto reader = common::ConfigReader::parse_string(
      "[device]\nsite = \"s1\"\nid = \"d1\"\n[inputs]\nudp_listen = \"\"\n"
      "unix_socket = \"/tmp/x.sock\"\nunix_socket_mode = \"0600\"\ntimestamp_precision = \"ms\"\n"
      "min_timestamp = 1990-01-01T00:00:00Z\n[store]\npath = \"/tmp/a.db\"\nfull_sync = true\n"
      "max_bytes = 1000000\nmax_age = \"2h\"\npolicy = \"drop_newest\"\nflush_interval = "
      "\"1500us\"\n[batch]\nmax_readings = 7\nmax_records = 9\nmax_bytes = \"2KiB\"\n"
      "max_delay = \"3s\"\n[mqtt]\nbroker = \"mqtts://h:1\"\nclient_id = \"c\"\n"
      "keepalive = \"9s\"\nreconnect_min = \"20ms\"\nreconnect_max = \"2m\"\n"
      "verify_hostname = false\nmax_inflight = 3\ndata_delivery = \"at_least_once\"\n"
      "logs_delivery = \"fire_and_forget\"\nstatus_interval = \"2m\"\nack_timeout = \"7s\"\n"
      "max_awaiting_ack = 5\n[tail]\nfiles = [\"/var/log/a\", \"/var/log/\\\"b\\\"\"]\n"
      "start_at = \"beginning\"\ninterval = \"500ms\"\nseverity = \"warn\"\n[system]\n"
      "interval = \"0s\"\ndisk_paths = []\n[metrics]\nlisten = \"\"\n[log]\nlevel = \"debug\"\n",
      "a.toml");
  ASSERT_TRUE(reader.ok());
  agent::AgentConfig c;
  auto loaded = agent::read_agent_config(reader.value(), c);
  ASSERT_TRUE(loaded.ok()) << loaded.error().to_string();
  const std::string printed = agent::effective_agent_config(c);
  auto again = common::ConfigReader::parse_string(printed, "printed.toml");
  ASSERT_TRUE(again.ok()) << again.error().to_string() << "\n" << printed;
  agent::AgentConfig c2;
  auto s = agent::read_agent_config(again.value(), c2);
  ASSERT_TRUE(s.ok()) << s.error().to_string() << "\n" << printed;
  EXPECT_EQ(agent::effective_agent_config(c2), printed);
  EXPECT_NE(printed.find("max_bytes = 1000000\n"), std::string::npos) << printed;
  EXPECT_NE(printed.find("flush_interval = \"1500us\"\n"), std::string::npos) << printed;
  EXPECT_NE(printed.find("unix_socket_mode = \"0600\"\n"), std::string::npos) << printed;
  EXPECT_NE(printed.find("min_timestamp = 1990-01-01T00:00:00.000Z\n"), std::string::npos);
}

TEST(EffectiveConfig, CollectorNonDefaultsReadBack) {
  auto reader = common::ConfigReader::parse_string(
      "[mqtt]\nclean_session = true\ntopics = [\"a/+/b\"]\nshared_group = \"g\"\n"
      "catch_all = \"\"\nmax_message_bytes = \"1MiB\"\npublish_acks = false\n"
      "publish_events = false\nusername = \"u\"\n[storage]\nkind = \"postgres\"\n"
      "dsn = \"postgresql://u:pw@h/db\"\njournal_dir = \"/tmp/j\"\ncommit_interval = \"5ms\"\n"
      "commit_max_messages = 10\nfull_sync = true\nretention = \"0s\"\nqueue_messages = 99\n"
      "[validation]\nmax_future_skew = \"1m\"\nmax_past_age = \"1d\"\n"
      "check_unsynced_timestamps = true\nmin_timestamp = 2001-02-03T04:05:06Z\n"
      "max_unsynced_future_skew = \"2d\"\nallow_non_finite = true\n[dlq]\nmax_entries = 5\n"
      "max_age = \"1h\"\n[events]\noffline_after = \"0s\"\ngap_grace = \"1s\"\n"
      "dlq_rate_per_minute = 4\nwebhook_max_pending = 3\nwebhook_stop_grace = \"2s\"\n"
      "[rules.\"cold room\"]\nsensor = \"t\"\ndevice = \"d\"\nbelow = -2.5\n"
      "[webhooks.ops]\nurl = \"https://h/x\"\nkinds = [\"data_gap\"]\ntimeout = \"1s\"\n"
      "max_attempts = 2\ninitial_backoff = \"10ms\"\nmax_backoff = \"20ms\"\n"
      "[metrics]\nlisten = \"\"\n[log]\nlevel = \"warn\"\n",
      "c.toml");
  ASSERT_TRUE(reader.ok());
  collector::CollectorConfig c;
  auto s = collector::read_collector_config(reader.value(), c);
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  const std::string printed = collector::effective_collector_config(c);
  EXPECT_EQ(printed.find(":pw@"), std::string::npos) << printed;
  auto again = common::ConfigReader::parse_string(printed, "printed.toml");
  ASSERT_TRUE(again.ok()) << again.error().to_string() << "\n" << printed;
  collector::CollectorConfig c2;
  s = collector::read_collector_config(again.value(), c2);
  ASSERT_TRUE(s.ok()) << s.error().to_string() << "\n" << printed;
  EXPECT_EQ(collector::effective_collector_config(c2), printed);
  EXPECT_NE(printed.find("[rules.\"cold room\"]\nsensor = \"t\"\ndevice = \"d\"\nbelow = -2.5\n"),
            std::string::npos)
      << printed;
}

// What a SIGHUP reports: the keys that differ between the running configuration and the file's.
agent::AgentConfig agent_config(const std::string& text) {
  auto reader = common::ConfigReader::parse_string(text, "a.toml");
  EXPECT_TRUE(reader.ok());
  agent::AgentConfig c;
  if (!reader.ok()) return c;
  auto s = agent::read_agent_config(reader.value(), c);
  EXPECT_TRUE(s.ok()) << s.error().to_string();
  return c;
}

collector::CollectorConfig collector_config(const std::string& text) {
  auto reader = common::ConfigReader::parse_string(text, "c.toml");
  EXPECT_TRUE(reader.ok());
  collector::CollectorConfig c;
  if (!reader.ok()) return c;
  auto s = collector::read_collector_config(reader.value(), c);
  EXPECT_TRUE(s.ok()) << s.error().to_string();
  return c;
}

using Keys = std::vector<std::string>;

TEST(ReloadChanges, AgentNamesEachChangedKeyAndAChangedPassword) {
  const std::string base = "[device]\nsite = \"lab\"\nid = \"gw\"\n[mqtt]\npassword = \"one\"\n";
  const auto running = agent_config(base);
  EXPECT_EQ(agent::changed_agent_settings(running, agent_config(base)), Keys{});
  EXPECT_EQ(agent::changed_agent_settings(
                running, agent_config(base + "broker = \"tcp://other:1883\"\n[log]\nlevel = "
                                             "\"debug\"\n[tail]\nfiles = [\"/var/log/x\"]\n")),
            (Keys{"log.level", "mqtt.broker", "tail.files"}));
  EXPECT_EQ(agent::changed_agent_settings(
                running, agent_config("[device]\nsite = \"lab\"\nid = \"gw\"\n[mqtt]\npassword "
                                      "= \"two\"\n")),
            Keys{"mqtt.password"});
}

TEST(ReloadChanges, CollectorNamesRulesSectionsAndSecrets) {
  const std::string base =
      "[storage]\nkind = \"postgres\"\ndsn = \"postgresql://u:pw@h/db\"\n"
      "journal_dir = \"/tmp/j\"\n[rules.hot]\nsensor = \"t\"\nabove = 30.0\n"
      "[webhooks.ops]\nurl = \"https://h/x\"\nsecret = \"s1\"\n[console]\ntoken = "
      "\"token-one-0123456789\"\n";
  const auto running = collector_config(base);
  EXPECT_EQ(collector::changed_collector_settings(running, collector_config(base)), Keys{});
  std::string changed = base;
  changed.replace(changed.find("above = 30.0"), 12, "above = 31.0");
  changed.replace(changed.find(":pw@"), 4, ":pw2@");
  changed.replace(changed.find("\"s1\""), 4, "\"s2\"");
  changed.replace(changed.find("token-one"), 9, "token-two");
  changed += "[rules.cold]\nsensor = \"t\"\nbelow = 2.0\n";
  EXPECT_EQ(collector::changed_collector_settings(running, collector_config(changed)),
            (Keys{"rules.cold", "rules.hot.above", "storage.dsn", "console.token",
                  "webhooks.ops.secret"}));
  // A rule gone is named too.
  EXPECT_EQ(collector::changed_collector_settings(collector_config(base + "[rules.cold]\nsensor = "
                                                                          "\"t\"\nbelow = 2.0\n"),
                                                  running),
            Keys{"rules.cold"});
}

TEST(ReloadChanges, TextThatIsNotTomlCountsAsAChange) {
  EXPECT_EQ(common::changed_settings("a = 1\n", "[broken\n"),
            Keys{"(the effective configuration)"});
  EXPECT_EQ(common::changed_settings("[s]\na = 1\nb = [1, 2]\n", "[s]\na = 1\nb = [1, 3]\n"),
            Keys{"s.b"});
}

}  // namespace
}  // namespace outpost
