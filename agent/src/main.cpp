// outpost-agent: load config -> open store -> logging -> inputs and MQTT -> signals -> run.
#include <malloc.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iostream>
#include <optional>

#include "agent.h"
#include "outpost/agent/config.h"
#include "outpost/agent/line_protocol.h"
#include "outpost/agent/startup_pages.h"
#include "outpost/common/cli.h"
#include "outpost/common/instance_lock.h"
#include "outpost/common/sd_notify.h"

namespace {

using namespace outpost;
namespace asio = boost::asio;

// `outpost-agent send LINE...`: the lines, checked with the agent's own parser, as one datagram
// to the running agent. Datagrams carry no answer, so what exit 0 promises is bounded
// (docs/agent-input.md, "outpost-agent send"): every line is one the agent accepts (with this
// configuration's timestamp precision), and a socket the agent listens on took the datagram.

constexpr std::size_t kMaxSendBytes = 65507;  // the largest UDP payload, under the agent's 64 KiB

std::string error_text(int err) { return std::strerror(err); }

// A Unix datagram socket tells at once whether anyone reads it: ENOENT (no socket file) or
// ECONNREFUSED (a file left by an agent that is gone). A send that succeeds has put the
// datagram in the listener's queue. A full queue blocks the sender; after 2 s we give up.
std::string send_unix(const std::string& path, std::string_view datagram) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return path + ": path too long for a Unix socket";
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "socket: " + error_text(errno);
  const timeval timeout{2, 0};
  // Best effort: without the timeout a stalled agent would make send wait for ever.
  (void)::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  const ssize_t n = ::sendto(fd, datagram.data(), datagram.size(), MSG_NOSIGNAL,
                             reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  const int err = errno;
  ::close(fd);
  if (n == static_cast<ssize_t>(datagram.size())) return "";
  if (n >= 0) return path + ": datagram cut short";
  if (err == EAGAIN || err == EWOULDBLOCK) {
    return path + ": the agent's socket stayed full for 2 s (is the agent stalled?)";
  }
  if (err == ENOENT || err == ECONNREFUSED) {
    return path + ": no agent listens (" + error_text(err) + ")";
  }
  return path + ": " + error_text(err);
}

// UDP says nothing on success. Connected, the socket learns of the kernel's ICMP
// port-unreachable (nothing bound to the port) as ECONNREFUSED; on loopback that comes back at
// once, so a short wait tells a missing listener. Silence is no proof of delivery: a datagram
// that finds the agent's receive buffer full is dropped (the agent counts those drops).
std::string send_udp(const std::string& listen, std::string_view datagram) {
  const auto where = agent::parse_host_port(listen);
  if (!where) return "udp " + listen + ": inputs.udp_listen is not host:port";
  addrinfo hints{};
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (int rc =
          ::getaddrinfo(where->host.c_str(), std::to_string(where->port).c_str(), &hints, &found);
      rc != 0) {
    return "udp " + listen + ": " + ::gai_strerror(rc);
  }
  const auto describe = [](int err) {
    return err == ECONNREFUSED ? "no agent listens (" + error_text(err) + ")" : error_text(err);
  };
  std::string error;
  const int fd = ::socket(found->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = "socket: " + error_text(errno);
  } else if (::connect(fd, found->ai_addr, found->ai_addrlen) != 0 ||
             ::send(fd, datagram.data(), datagram.size(), MSG_NOSIGNAL) < 0) {
    error = describe(errno);
  } else {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 200) > 0 && (p.revents & POLLERR)) {
      int err = EIO;  // kept if SO_ERROR cannot be read
      socklen_t len = sizeof err;
      (void)::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      error = describe(err ? err : EIO);
    }
  }
  if (fd >= 0) ::close(fd);
  ::freeaddrinfo(found);
  return error.empty() ? "" : "udp " + listen + ": " + error;
}

int run_send(const agent::AgentConfig& config, const std::vector<std::string>& lines) {
  std::string datagram;
  for (const auto& line : lines) datagram += line + "\n";
  if (datagram.size() > kMaxSendBytes) {
    std::cerr << "outpost-agent: nothing sent: " << datagram.size()
              << " bytes, more than one datagram carries (" << kMaxSendBytes << ")\n";
    return common::kExitRejected;
  }
  const auto now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const auto parsed = agent::parse_datagram(datagram, now_us, config.line);
  if (!parsed.rejected.empty()) {
    for (const auto& r : parsed.rejected) {
      std::cerr << "outpost-agent: line " << r.line_number << " refused ("
                << agent::line_error_name(r.rejection.error) << "): " << r.rejection.detail << "\n";
    }
    std::cerr << "outpost-agent: nothing sent\n";
    return common::kExitRejected;
  }
  if (parsed.accepted.empty()) {
    std::cerr << "outpost-agent: nothing sent: every line is blank or a comment\n";
    return common::kExitRejected;
  }
  std::vector<std::string> errors;
  if (!config.unix_socket.empty()) {
    std::string error = send_unix(config.unix_socket, datagram);
    if (error.empty()) return common::kExitOk;
    errors.push_back(std::move(error));
  }
  if (!config.udp_listen.empty()) {
    std::string error = send_udp(config.udp_listen, datagram);
    if (error.empty()) return common::kExitOk;
    errors.push_back(std::move(error));
  }
  std::cerr << "outpost-agent: nothing sent: ";
  for (std::size_t i = 0; i < errors.size(); ++i) std::cerr << (i ? "; " : "") << errors[i];
  std::cerr << "\n";
  return common::kExitFailure;
}

// `outpost-agent status`: the local queue as the store holds it.
int run_status(const agent::AgentConfig& config) {
  if (!std::filesystem::exists(config.store.path)) {
    std::cerr << "outpost-agent: no store at " << config.store.path << "\n";
    return common::kExitFailure;
  }
  auto store = agent::Store::open(config.store, 0);
  if (!store.ok()) {
    std::cerr << "outpost-agent: " << store.error().message << "\n";
    return common::kExitFailure;
  }
  auto stats = store.value()->stats();
  if (!stats.ok()) {
    std::cerr << "outpost-agent: " << stats.error().message << "\n";
    return common::kExitFailure;
  }
  const auto& s = stats.value();
  const auto now = std::chrono::duration_cast<std::chrono::microseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  std::printf("store            %s\n", config.store.path.c_str());
  std::printf("queued items     %llu\n", static_cast<unsigned long long>(s.queued_items));
  std::printf("unacked messages %llu\n", static_cast<unsigned long long>(s.outbox_messages));
  std::printf("bytes            %llu of %llu\n", static_cast<unsigned long long>(s.bytes),
              static_cast<unsigned long long>(config.store.max_bytes));
  if (s.oldest_time_us) {
    std::printf("oldest item age  %.1f s\n", static_cast<double>(now - *s.oldest_time_us) / 1e6);
  } else {
    std::printf("oldest item age  -\n");
  }
  std::printf("last sequence    %llu\n",
              static_cast<unsigned long long>(store.value()->last_seq()));
  std::printf("dropped oldest   %llu\n", static_cast<unsigned long long>(s.dropped_oldest));
  std::printf("dropped newest   %llu\n", static_cast<unsigned long long>(s.dropped_newest));
  std::printf("dropped expired  %llu\n", static_cast<unsigned long long>(s.dropped_expired));
  std::printf("store resets     %u\n", s.store_resets);
  return common::kExitOk;
}

// `outpost-agent --check-config`: every error, not just the first, then the effective config.
int run_check_config(const std::string& path) {
  auto reader = path.empty() ? common::ConfigReader::parse_string("", "(defaults)")
                             : common::ConfigReader::load_file(path);
  if (!reader.ok()) {
    std::cerr << "outpost-agent: " << reader.error().to_string() << "\n";
    return common::kExitConfigError;
  }
  common::ConfigReader& r = reader.value();
  agent::AgentConfig config;
  auto loaded = agent::read_agent_config(r, config);
  if (loaded.ok()) {
    agent::check_agent_environment(r, config);
    loaded = r.finish();
  }
  if (!loaded.ok()) {
    auto errors = r.errors();
    std::stable_sort(errors.begin(), errors.end(), [](const auto& a, const auto& b) {
      return std::pair(a.line, a.column) < std::pair(b.line, b.column);
    });
    for (const auto& e : errors) std::cerr << "outpost-agent: " << e.to_string() << "\n";
    return common::kExitConfigError;
  }
  std::cout << "# outpost-agent " << OUTPOST_VERSION << ": effective configuration of "
            << (path.empty() ? "the defaults" : path) << "\n"
            << agent::effective_agent_config(config);
  return common::kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app(
      "Outpost agent: accepts readings and logs fire-and-forget on datagram sockets, keeps them\n"
      "in an SQLite store-and-forward queue, and delivers them over MQTT.",
      "outpost-agent");
  common::CommonOptions common_options;
  add_common_options(app, common_options);
  auto* send = app.add_subcommand(
      "send", "Send lines (line protocol or log lines) to the running agent as one datagram");
  std::vector<std::string> lines;
  send->add_option("lines", lines, "Lines to send, e.g. 'temp,room=lab value=21.5'")->required();
  send->footer(
      "Each line is first checked with the agent's own parser (timestamps in this config's\n"
      "inputs.timestamp_precision); if any is refused, none is sent. The datagram goes to\n"
      "inputs.unix_socket, or to inputs.udp_listen if the socket is off or nobody reads it.\n"
      "Exit status:\n"
      "  0  every line is valid and a socket the agent listens on took the datagram\n"
      "     (a datagram carries no answer: not proof that the agent stored it)\n"
      "  1  nothing sent: no agent listens on the socket or the UDP port\n"
      "  2  bad command line\n"
      "  3  nothing sent: a line was refused (line number, reason and detail on stderr)\n"
      " 78  the configuration file is wrong\n");
  app.footer(
      "Exit status of the agent itself: 0 after SIGTERM/SIGINT, 1 if it cannot start (store,\n"
      "sockets, metrics port), 2 bad command line, 75 another outpost-agent uses the store\n"
      "(<store.path>.lock), 78 the configuration file is wrong.");
  app.add_subcommand("status", "Print the local queue state from the store");
  bool check_config = false;
  app.add_flag("--check-config", check_config,
               "Load and check the configuration as a start would, and that the files and\n"
               "directories it names are usable; print the effective configuration (every key,\n"
               "defaults included, the password redacted) as TOML and exit 0, or print the\n"
               "errors (file:line: key: message) and exit 78. Creates and changes nothing.");
  if (auto code = common::parse_command_line(app, argc, argv)) return *code;

  // 1. Configuration.
  agent::AgentConfig config;
  if (check_config) return run_check_config(common_options.config_path);
  if (!common_options.config_path.empty()) {
    auto reader = common::ConfigReader::load_file(common_options.config_path);
    if (!reader.ok()) {
      std::cerr << "outpost-agent: " << reader.error().to_string() << "\n";
      return common::kExitConfigError;
    }
    if (auto s = agent::read_agent_config(reader.value(), config); !s.ok()) {
      std::cerr << "outpost-agent: " << s.error().to_string() << "\n";
      return common::kExitConfigError;
    }
  } else {
    agent::finish_agent_defaults(config);
  }
  if (app.got_subcommand("send")) return run_send(config, lines);
  if (app.got_subcommand("status")) return run_status(config);

  // 2. Logging.
  const std::string level =
      common_options.log_level.empty() ? config.log.level : common_options.log_level;
  common::init_logging("outpost-agent",
                       common::parse_log_level(level).value_or(spdlog::level::info));

  // A fixed threshold keeps big blocks (a burst's queue) in mmap, so they go back to the
  // system when freed. glibc would otherwise raise it to the largest block freed, keep
  // such blocks on the heap and leave the agent at ~20 MB RSS after a 200,000-reading
  // burst instead of ~11 MB (docs/BENCHMARKS.md).
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);

  // 3. Store, inputs and MQTT. One agent per store: a second one stops here, before it
  // touches the store or the first one's sockets.
  auto lock = common::InstanceLock::acquire(config.store.path + ".lock",
                                            "store " + config.store.path, "outpost-agent");
  if (!lock.ok()) {
    spdlog::critical("{}", lock.error().message);
    return lock.error().in_use ? common::kExitInUse : common::kExitFailure;
  }
  asio::io_context io;
  agent::Agent agent(config, io);
  if (auto s = agent.start(); !s.ok()) {
    spdlog::critical("{}", s.error().message);
    return common::kExitFailure;
  }
  spdlog::info("outpost-agent {} started: device {} at site {}, broker {}", OUTPOST_VERSION,
               config.device_id, config.site, config.broker);
  // Start-up code (option and TOML parsing, the store's checks, library set-up) leaves the
  // page tables; what the running agent uses comes back on demand (startup_pages.h).
  if (auto released = agent::release_startup_pages(); !released.ok()) {
    spdlog::warn("{}", released.error().message);
  } else {
    spdlog::debug("released {} KiB of start-up code and constants ({} segments{})",
                  released.value().bytes / 1024, released.value().segments,
                  released.value().traced ? ", skipped: traced" : "");
  }

  // 4. systemd (Type=notify): READY=1 below, once the signals are handled (the store is open
  // and the inputs are bound); then a turn a second with the status line and the watchdog's
  // ping, which the io loop's heartbeat gates (/healthz's check): a stuck loop stops the pings.
  // All no-ops without NOTIFY_SOCKET.
  auto notifier = common::SdNotifier::from_environment();
  common::NotifyLoop notify_loop(notifier);
  std::string reload_note;  // said in the status line while the last reload failed
  const auto status_line = [&](const common::HealthReport& report) {
    return common::status_summary(report, config.broker) + reload_note;
  };
  asio::steady_timer notify_timer(io);
  std::function<void()> schedule_notify = [&] {
    notify_timer.expires_after(notify_loop.period());
    notify_timer.async_wait([&](const boost::system::error_code& ec) {
      if (ec) return;
      const auto report = agent.health();
      notify_loop.turn(report, status_line(report), common::NotifyLoop::Clock::now());
      schedule_notify();
    });
  };

  // 5. Signals, handled on the event loop.
  // SIGHUP: re-read and check the whole file as a start would. A file that does not load
  // leaves everything as it runs; one that does has its log level applied at once, and every
  // other changed setting is named as waiting for a restart (never half-applied).
  const auto reload = [&] {
    const std::string& path = common_options.config_path;
    notifier.reloading("reloading " + (path.empty() ? std::string("(no file)") : path));
    if (path.empty()) {
      spdlog::warn("SIGHUP: no --config file to reload");
      notify_loop.ready(status_line(agent.health()));
      return;
    }
    auto reader = common::ConfigReader::load_file(path);
    agent::AgentConfig fresh;
    std::vector<std::string> errors;
    if (!reader.ok()) {
      errors.push_back(reader.error().to_string());
    } else if (auto s = agent::read_agent_config(reader.value(), fresh); !s.ok()) {
      for (const auto& e : reader.value().errors()) errors.push_back(e.to_string());
      if (errors.empty()) errors.push_back(s.error().to_string());
    }
    if (!errors.empty()) {
      for (const auto& e : errors) spdlog::error("SIGHUP: {}", e);
      spdlog::error("SIGHUP: {} has errors: keeping the running configuration", path);
      reload_note = "; the last reload failed: running the previous configuration (see the log)";
      notify_loop.ready(status_line(agent.health()));
      return;
    }
    reload_note.clear();
    auto changed = agent::changed_agent_settings(config, fresh);
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
    notify_loop.ready(status_line(agent.health()));
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

  asio::signal_set signals(io, SIGTERM, SIGINT);
  signals.async_wait([&](const boost::system::error_code& ec, int signal) {
    if (ec) return;
    spdlog::info("signal {}: stopping", signal);
    notifier.stopping("stopping: delivering what is ready, keeping the rest in the store");
    hangup.cancel();
    notify_timer.cancel();
    agent.stop([&io] { io.stop(); });
  });

  // Ready once the signal handlers are in place: systemd may send SIGHUP from now on.
  notify_loop.ready(status_line(agent.health()));
  if (notify_loop.active()) schedule_notify();

  // 6. Run.
  io.run();
  const auto& c = agent.counters();
  spdlog::info(
      "stopped: accepted {} readings and {} log records, rejected {} lines, acked {} messages",
      c.accepted_readings.load(), c.accepted_logs.load(), c.rejected_total(), agent.acked());
  return common::kExitOk;
}
