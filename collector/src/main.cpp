// outpost-collector: load config -> open store and journal -> logging -> MQTT and storage
// threads -> metrics endpoint -> signals -> run. Subcommands are the operator tools.
#include <algorithm>
#include <boost/asio.hpp>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <iostream>
#include <optional>
#include <unordered_map>

#include "collector.h"
#include "console_server.h"
#include "outpost/collector/config_check.h"
#include "outpost/common/cli.h"
#include "outpost/common/clock.h"
#include "outpost/common/http_server.h"
#include "outpost/common/instance_lock.h"
#include "outpost/common/net.h"
#include "outpost/common/sd_notify.h"
#include "outpost/common/time_text.h"
#include "pg_dsn.h"
#include "storage.h"
#include "tools.h"

namespace {

using namespace outpost;
namespace asio = boost::asio;

using common::wall_now_us;

// `outpost-collector --check-config`: every error, not just the first, then the effective config.
int run_check_config(const std::string& path, const std::string& db_path) {
  auto reader = path.empty() ? common::ConfigReader::parse_string("", "(defaults)")
                             : common::ConfigReader::load_file(path);
  if (!reader.ok()) {
    std::cerr << "outpost-collector: " << reader.error().to_string() << "\n";
    return common::kExitConfigError;
  }
  common::ConfigReader& r = reader.value();
  collector::CollectorConfig config;
  auto loaded = collector::read_collector_config(r, config);
  if (loaded.ok()) {
    if (!db_path.empty() && collector::uses_postgres(config)) {
      r.add_error("storage.kind", "is \"postgres\": --db (an SQLite file) does not apply");
    } else if (!db_path.empty()) {
      config.path = db_path;
    }
    if (collector::uses_postgres(config)) {
      if (auto problem = collector::dsn_problem(config.dsn)) r.add_error("storage.dsn", *problem);
    }
    collector::check_collector_environment(r, config);
    loaded = r.finish();
  }
  if (!loaded.ok()) {
    auto errors = r.errors();
    std::stable_sort(errors.begin(), errors.end(), [](const auto& a, const auto& b) {
      return std::pair(a.line, a.column) < std::pair(b.line, b.column);
    });
    for (const auto& e : errors) std::cerr << "outpost-collector: " << e.to_string() << "\n";
    return common::kExitConfigError;
  }
  std::cout << "# outpost-collector " << OUTPOST_VERSION << ": effective configuration of "
            << (path.empty() ? "the defaults" : path) << "\n"
            << collector::effective_collector_config(config);
  return common::kExitOk;
}

// The configuration a SIGHUP reloads, checked as a start checks it (and the dsn's syntax), with
// --db applied again; every error, or none.
std::vector<std::string> reload_config(const std::string& path, const std::string& db_path,
                                       collector::CollectorConfig& out) {
  auto reader = common::ConfigReader::load_file(path);
  if (!reader.ok()) return {reader.error().to_string()};
  std::vector<std::string> errors;
  if (auto s = collector::read_collector_config(reader.value(), out); !s.ok()) {
    for (const auto& e : reader.value().errors()) errors.push_back(e.to_string());
    if (errors.empty()) errors.push_back(s.error().to_string());
    return errors;
  }
  if (collector::uses_postgres(out)) {
    if (!db_path.empty()) {
      errors.push_back(path +
                       ": storage.kind is \"postgres\": --db (an SQLite file) does not apply");
    }
    if (auto problem = collector::dsn_problem(out.dsn)) {
      errors.push_back(path + ": storage.dsn: " + *problem);
    }
  } else if (!db_path.empty()) {
    out.path = db_path;
  }
  return errors;
}

// Waits up to `wait` for SIGTERM or SIGINT; returns the signal, or 0 if none came. For the
// start-up, before any thread or Asio signal handler exists: the two are blocked only while
// waiting, and one that came while they were blocked is taken at the next wait.
int wait_for_stop_signal(std::chrono::seconds wait) {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  sigset_t before;
  pthread_sigmask(SIG_BLOCK, &stop, &before);
  const timespec timeout{static_cast<time_t>(wait.count()), 0};
  int signal = -1;
  while ((signal = sigtimedwait(&stop, nullptr, &timeout)) < 0 && errno == EINTR) {
  }
  pthread_sigmask(SIG_SETMASK, &before, nullptr);
  return signal > 0 ? signal : 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app(
      "Outpost collector: subscribes to the fleet's topics, validates and stores readings and\n"
      "logs in SQLite or PostgreSQL exactly once, raises events, and keeps a dead-letter queue.\n"
      "Without a subcommand it runs the service.",
      "outpost-collector");
  app.require_subcommand(0, 1);
  app.footer(
      "Exit status of the service: 0 after SIGTERM/SIGINT, 1 if it cannot start (database,\n"
      "journal, metrics port), 2 bad command line, 75 another outpost-collector uses the SQLite\n"
      "database or the journal (<file>.lock beside each), 78 the configuration file is wrong.");
  common::CommonOptions common_options;
  add_common_options(app, common_options);
  std::string db_path;
  app.add_option("--db", db_path, "SQLite database (overrides storage.path)");
  bool check_config = false;
  app.add_flag("--check-config", check_config,
               "Load and check the configuration as a start would, and what it names: TLS and\n"
               "password files readable, the database's and the journal's directories writable\n"
               "(PostgreSQL: the dsn's syntax, no connection); print the effective configuration\n"
               "(every key, defaults included, secrets redacted) as TOML and exit 0, or print the\n"
               "errors (file:line: key: message) and exit 78. Creates and changes nothing.");

  collector::QueryArgs query;
  std::string since, until;
  auto* q = app.add_subcommand("query", "Print stored readings");
  q->add_option("--device", query.query.device, "Device id (default: all)");
  q->add_option("--sensor", query.query.sensor, "Sensor name (default: all)");
  const std::string time_help =
      ": a time as the tools print it (2026-12-01T20:31:05.123Z, with an offset such as\n"
      "+01:00, or without a fraction), a date (2026-12-01, UTC), Unix seconds, or a duration\n"
      "before now (90s, 30m, 1h30m, 2d)";
  q->add_option("--since", since, "Readings from" + time_help)->type_name("TIME");
  q->add_option("--until", until, "Readings until (same forms as --since)")->type_name("TIME");
  q->add_option("--limit", query.query.limit, "At most this many readings");
  q->add_option("--format", query.format, "table, csv or json")
      ->check(CLI::IsMember({"table", "csv", "json"}));

  collector::LogsArgs logs;
  std::string logs_severity;
  auto* lg = app.add_subcommand("logs", "Print stored log records");
  lg->add_option("--device", logs.query.device, "Device id (default: all)");
  lg->add_option(
        "--severity", logs_severity,
        "At least this severe: trace, debug, info, notice, warning, error, critical (or 1-7)")
      ->type_name("LEVEL");
  lg->add_option("--contains", logs.query.contains,
                 "Only messages containing this text (ASCII case ignored)")
      ->type_name("TEXT");
  lg->add_option("--since", since, "Records from" + time_help)->type_name("TIME");
  lg->add_option("--until", until, "Records until (same forms as --since)")->type_name("TIME");
  lg->add_option("--limit", logs.query.limit, "At most this many records");
  lg->add_option("--format", logs.format, "table, csv or json")
      ->check(CLI::IsMember({"table", "csv", "json"}));

  std::string devices_format = "table";
  auto* dv = app.add_subcommand("devices", "List the fleet: state, last seen, readings, gaps");
  dv->add_option("--format", devices_format, "table or json")
      ->check(CLI::IsMember({"table", "json"}));

  uint64_t events_limit = 50;
  auto* ev = app.add_subcommand("events", "Print the most recent events");
  ev->add_option("--limit", events_limit, "How many (default 50)");

  app.add_subcommand("summary", "Counts of what is stored, duplicates, gaps, DLQ by reason");

  collector::DlqArgs dlq;
  std::string dlq_reason;
  auto* dl = app.add_subcommand("dlq", "Inspect, replay or purge the dead-letter queue");
  dl->require_subcommand(1);
  auto add_filters = [&](CLI::App* sub) {
    sub->add_option("--reason", dlq_reason, "Only this reason, e.g. not_decodable");
    sub->add_option("--topic", dlq.filter.topic_prefix, "Only topics starting with this");
    sub->add_option("--since", since, "Received from" + time_help)->type_name("TIME");
    sub->add_option("--until", until, "Received until (same forms as --since)")->type_name("TIME");
    sub->add_option("--limit", dlq.filter.limit, "At most this many entries");
  };
  auto* dl_list = dl->add_subcommand("list", "List entries");
  add_filters(dl_list);
  auto* dl_show = dl->add_subcommand("show", "Show one entry, its bytes and what decodes");
  dl_show->add_option("id", dlq.id, "Entry id")->required();
  auto* dl_replay = dl->add_subcommand(
      "replay", "Validate entries again (e.g. after a config change); store what now passes");
  add_filters(dl_replay);
  auto* dl_purge = dl->add_subcommand("purge", "Remove entries");
  add_filters(dl_purge);
  dl_purge->add_flag("--all", dlq.yes, "Confirm removing every entry when no filter is given");

  std::string tail_format = "text";
  uint64_t tail_count = 0;
  auto* tl = app.add_subcommand("tail", "Follow the fleet's messages live, decoded");
  tl->add_option("--format", tail_format, "text or json")->check(CLI::IsMember({"text", "json"}));
  tl->add_option("--count", tail_count, "Stop after this many messages");

  if (auto code = common::parse_command_line(app, argc, argv)) return *code;

  // 1. Configuration.
  if (check_config) return run_check_config(common_options.config_path, db_path);
  collector::CollectorConfig config;
  if (!common_options.config_path.empty()) {
    auto reader = common::ConfigReader::load_file(common_options.config_path);
    if (!reader.ok()) {
      std::cerr << "outpost-collector: " << reader.error().to_string() << "\n";
      return common::kExitConfigError;
    }
    if (auto s = collector::read_collector_config(reader.value(), config); !s.ok()) {
      std::cerr << "outpost-collector: " << s.error().to_string() << "\n";
      return common::kExitConfigError;
    }
  }
  if (!db_path.empty()) {
    if (collector::uses_postgres(config)) {
      std::cerr << "outpost-collector: --db names an SQLite file, but "
                << common_options.config_path
                << " stores in PostgreSQL (storage.kind = \"postgres\"): leave --db out\n";
      return common::kExitUsage;
    }
    config.path = db_path;
  }

  auto parse_times = [&](int64_t& from, int64_t& to) -> bool {
    const int64_t now = wall_now_us();  // one "now" for both ends
    if (!since.empty()) {
      auto t = common::parse_time_us(since, now);
      if (!t) {
        std::cerr << "outpost-collector: " << common::time_error("--since", since) << "\n";
        return false;
      }
      from = *t;
    }
    if (!until.empty()) {
      auto t = common::parse_time_us(until, now);
      if (!t) {
        std::cerr << "outpost-collector: " << common::time_error("--until", until) << "\n";
        return false;
      }
      to = *t;
    }
    return true;
  };
  if (q->parsed()) {
    if (!parse_times(query.query.since_us, query.query.until_us)) return common::kExitUsage;
    return collector::run_query(config, query);
  }
  if (lg->parsed()) {
    if (!parse_times(logs.query.since_us, logs.query.until_us)) return common::kExitUsage;
    if (!logs_severity.empty()) {
      auto s = collector::parse_severity(logs_severity);
      if (!s) {
        std::cerr << "outpost-collector: --severity: unknown severity '" << logs_severity
                  << "'; expected trace, debug, info, notice, warning, error or critical "
                     "(or 1 to 7)\n";
        return common::kExitUsage;
      }
      logs.query.min_severity = *s;
    }
    return collector::run_logs(config, logs);
  }
  if (dv->parsed()) return collector::run_devices(config, devices_format);
  if (ev->parsed()) return collector::run_events(config, events_limit);
  if (app.got_subcommand("summary")) return collector::run_summary(config);
  if (tl->parsed()) return collector::run_tail(config, tail_format, tail_count);
  if (dl->parsed()) {
    if (!parse_times(dlq.filter.since_us, dlq.filter.until_us)) return common::kExitUsage;
    if (!dlq_reason.empty()) {
      dlq.filter.reason = common::reason_from_name(dlq_reason);
      if (!dlq.filter.reason) {
        std::cerr << "outpost-collector: --reason: unknown reason '" << dlq_reason
                  << "' (see docs/wire-format.md)\n";
        return common::kExitUsage;
      }
    }
    dlq.action = dl_show->parsed()     ? collector::DlqAction::kShow
                 : dl_replay->parsed() ? collector::DlqAction::kReplay
                 : dl_purge->parsed()  ? collector::DlqAction::kPurge
                                       : collector::DlqAction::kList;
    return collector::run_dlq(config, dlq);
  }

  // 2. Logging.
  const std::string level =
      common_options.log_level.empty() ? config.log.level : common_options.log_level;
  common::init_logging("outpost-collector",
                       common::parse_log_level(level).value_or(spdlog::level::info));

  // systemd (Type=notify): all no-ops without NOTIFY_SOCKET.
  auto notifier = common::SdNotifier::from_environment();

  // 3. Store and journal. The database file is created if missing, its directory is not:
  // a missing one is most likely a typo or a step of the installation not done.
  std::error_code fs_error;
  if (const auto dir = std::filesystem::absolute(config.path, fs_error).parent_path();
      !collector::uses_postgres(config) && !fs_error &&
      !std::filesystem::is_directory(dir, fs_error)) {
    spdlog::critical(
        "storage.path: cannot create the database {}: directory {} does not exist (create it, "
        "e.g. install -d -o <user> {})",
        config.path, dir.string(), dir.string());
    return common::kExitFailure;
  }
  // One collector per SQLite database and per journal: a second one stops before it opens them.
  std::vector<std::unique_ptr<common::InstanceLock>> locks;
  std::vector<std::pair<std::string, std::string>> guarded;  // lock file, what it guards
  if (!collector::uses_postgres(config)) {
    guarded.emplace_back(config.path + ".lock", "database " + config.path);
  }
  const std::string journal_dir = collector::journal_dir_of(config);
  guarded.emplace_back(journal_dir + ".lock", "journal " + journal_dir);
  for (const auto& [file, what] : guarded) {
    auto lock = common::InstanceLock::acquire(file, what, "outpost-collector");
    if (!lock.ok()) {
      spdlog::critical("{}", lock.error().message);
      return lock.error().in_use ? common::kExitInUse : common::kExitFailure;
    }
    locks.push_back(std::move(lock).value());
  }
  // A PostgreSQL server that does not answer yet (booting, restarting) is waited for, with
  // backoff; what cannot work (a bad dsn, a newer schema) stops here. SIGTERM or SIGINT while
  // waiting stops the collector as it would later: exit 0, nothing was taken in.
  auto sink = collector::open_sink(config);
  for (std::chrono::seconds wait{1}; !sink.ok() && sink.error().transient;
       wait = std::min(wait * 2, std::chrono::seconds(30))) {
    spdlog::warn("{}; retrying in {} s", sink.error().message, wait.count());
    // Not ready yet, and not failed: waiting is what the collector is meant to do here, so the
    // start's timeout is pushed past the next attempt.
    notifier.extend_timeout(
        std::chrono::duration_cast<std::chrono::microseconds>(wait + std::chrono::seconds(30)));
    notifier.status("waiting for the database: " + sink.error().message);
    if (const int signal = wait_for_stop_signal(wait); signal != 0) {
      spdlog::info("signal {} while waiting for the database: stopping", signal);
      return common::kExitOk;
    }
    sink = collector::open_sink(config);
  }
  if (!sink.ok()) {
    spdlog::critical("{}", sink.error().message);
    return common::kExitFailure;
  }
  auto journal = collector::Journal::open(journal_dir, config.full_sync);
  if (!journal.ok()) {
    spdlog::critical("{}", journal.error().message);
    return common::kExitFailure;
  }

  // 4. Metrics endpoint and signals on the main thread's event loop.
  asio::io_context io;
  // What the database remembers of each device seeds the fleet's presence and gap tracking.
  auto reader = collector::open_reader(config);
  if (!reader.ok()) {
    spdlog::critical("{}", reader.error().message);
    return common::kExitFailure;
  }
  auto devices = reader.value()->devices();
  auto lines = reader.value()->seq_lines();
  reader.value().reset();
  if (!devices.ok() || !lines.ok()) {
    spdlog::critical("{}", devices.ok() ? lines.error().message : devices.error().message);
    return common::kExitFailure;
  }
  // The sequence lines (holes open and reported) seed gap detection: docs/events.md.
  std::unordered_map<std::string, collector::DeviceRow*> by_name;
  for (auto& d : devices.value()) by_name[d.device] = &d;
  for (auto& line : lines.value()) {
    if (auto it = by_name.find(line.device); it != by_name.end()) {
      it->second->seq_line = std::move(line);
    }
  }
  collector::Collector service(config, std::move(sink.value()), std::move(journal.value()),
                               std::move(devices.value()), collector::open_fleet_store(config));
  common::HttpServer metrics(io);
  metrics.route_metrics("/metrics", [&service] { return service.metrics_text(); });
  metrics.route("/healthz", [&service] { return common::healthz(service.health()); });
  metrics.route("/readyz", [&service] { return common::readyz(service.health()); });
  metrics.route("/status", [&service] { return common::status_json(service.health()); });
  if (!config.metrics_listen.empty()) {
    const auto where = common::parse_host_port(config.metrics_listen);
    if (auto s = metrics.listen(where->host, where->port); !s.ok()) {
      spdlog::critical("metrics: {}", s.error().message);
      return common::kExitFailure;
    }
  }

  // The web console, on a thread of its own with its own database reader.
  std::unique_ptr<collector::ConsoleServer> console;
  if (!config.console_listen.empty()) {
    auto started = collector::ConsoleServer::start(config);
    if (!started.ok()) {
      spdlog::critical("{}", started.error().message);
      return common::kExitFailure;
    }
    console = std::move(started).value();
    spdlog::info("console on http://{}/ ({})", console->address(),
                 config.console_token.empty() ? "read-only: no console token"
                                              : "DLQ replay with the console token");
  }

  // 5. MQTT and storage threads.
  if (auto s = service.start(); !s.ok()) {
    spdlog::critical("{}", s.error().message);
    return common::kExitFailure;
  }
  spdlog::info("outpost-collector {} started: database {}, broker {}, metrics {}", OUTPOST_VERSION,
               collector::storage_name(config), config.broker,
               config.metrics_listen.empty() ? "off" : config.metrics_listen);

  // Ready for systemd now that the storage is open and the threads run; the broker may still
  // be on its way (the status line says so). Then a turn a second: the status line, and the
  // watchdog's ping while the storage loop's heartbeat (/healthz's check) is fresh.
  common::NotifyLoop notify_loop(notifier);
  std::string reload_note;  // said in the status line while the last reload failed
  const auto status_line = [&](common::HealthReport report) {
    // "connecting to" already says what the subscription check would.
    report.ready.erase(std::remove_if(report.ready.begin(), report.ready.end(),
                                      [](const auto& c) { return c.name == "subscribed"; }),
                       report.ready.end());
    return common::status_summary(report, config.broker) + reload_note;
  };
  asio::steady_timer notify_timer(io);
  std::function<void()> schedule_notify = [&] {
    notify_timer.expires_after(notify_loop.period());
    notify_timer.async_wait([&](const boost::system::error_code& ec) {
      if (ec) return;
      const auto report = service.health();
      notify_loop.turn(report, status_line(report), common::NotifyLoop::Clock::now());
      schedule_notify();
    });
  };
  asio::signal_set signals(io, SIGTERM, SIGINT);
  signals.async_wait([&](const boost::system::error_code& ec, int signal) {
    if (ec) return;
    spdlog::info("signal {}: draining and stopping", signal);
    notifier.stopping("stopping: committing what is queued");
    notify_timer.cancel();
    metrics.close();
    io.stop();
  });
  // SIGHUP: re-read and check the whole file as a start would. A file with errors leaves
  // everything as it runs; a good one has its log level applied at once, and every other
  // changed setting is named as waiting for a restart (the threads hold their own copies, and
  // half a configuration is worse than the old one).
  const auto reload = [&] {
    const std::string& path = common_options.config_path;
    notifier.reloading("reloading " + (path.empty() ? std::string("(no file)") : path));
    if (path.empty()) {
      spdlog::warn("SIGHUP: no --config file to reload");
      notify_loop.ready(status_line(service.health()));
      return;
    }
    collector::CollectorConfig fresh;
    if (const auto errors = reload_config(path, db_path, fresh); !errors.empty()) {
      for (const auto& e : errors) spdlog::error("SIGHUP: {}", e);
      spdlog::error("SIGHUP: {} has errors: keeping the running configuration", path);
      reload_note = "; the last reload failed: running the previous configuration (see the log)";
      notify_loop.ready(status_line(service.health()));
      return;
    }
    reload_note.clear();
    auto changed = collector::changed_collector_settings(config, fresh);
    const auto level_at = std::find(changed.begin(), changed.end(), "log.level");
    std::string applied = "nothing changed that applies at once";
    std::optional<spdlog::level::level_enum> level;
    if (level_at != changed.end()) {
      changed.erase(level_at);
      config.log = fresh.log;
      if (common_options.log_level.empty()) {
        level = common::parse_log_level(config.log.level).value_or(spdlog::level::info);
        applied = "log level is now " + config.log.level;
      } else {
        applied = "log level stays " + common_options.log_level + " (--log-level)";
      }
    }
    // Said at the level in force when the reload was asked for, then the new one applies.
    if (changed.empty()) {
      spdlog::info("SIGHUP: reloaded {}: {}", path, applied);
    } else {
      spdlog::warn(
          "SIGHUP: reloaded {}: {}; changed but applied only after a restart (still running "
          "with the previous values): {}",
          path, applied, fmt::join(changed, ", "));
    }
    if (level) spdlog::set_level(*level);
    notify_loop.ready(status_line(service.health()));
  };
  asio::signal_set hangup(io, SIGHUP);
  std::function<void()> wait_hangup = [&] {
    hangup.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      reload();
      wait_hangup();
    });
  };
  wait_hangup();

  // Ready once the signal handlers are in place: systemd may send SIGHUP from now on.
  notify_loop.ready(status_line(service.health()));
  if (notify_loop.active()) schedule_notify();

  // 6. Run until a signal, then drain.
  io.run();
  console.reset();
  service.stop();
  const auto& c = service.counters();
  spdlog::info(
      "stopped: received {} messages, stored {} readings and {} log records, {} duplicates, "
      "{} dead-lettered",
      c.received.load(), c.readings_stored.load(), c.logs_stored.load(), c.duplicates.load(),
      c.dlq.load());
  return common::kExitOk;
}
