// outpost-agent: load config -> open store -> logging -> inputs and MQTT -> signals -> run.
#include <malloc.h>

#include <boost/asio.hpp>
#include <cstdio>
#include <functional>
#include <iostream>

#include "agent.h"
#include "outpost/agent/config.h"
#include "outpost/agent/startup_pages.h"
#include "outpost/common/cli.h"

namespace {

using namespace outpost;
namespace asio = boost::asio;

// `outpost-agent send LINE...`: one datagram to the running agent, fire and forget.
int run_send(const agent::AgentConfig& config, const std::vector<std::string>& lines) {
  std::string datagram;
  for (const auto& line : lines) datagram += line + "\n";
  asio::io_context io;
  boost::system::error_code ec;
  if (!config.unix_socket.empty()) {
    asio::local::datagram_protocol::socket s(io);
    s.open(asio::local::datagram_protocol(), ec);
    if (!ec) {
      s.send_to(asio::buffer(datagram),
                asio::local::datagram_protocol::endpoint(config.unix_socket), 0, ec);
    }
    if (!ec) return common::kExitOk;
    if (config.udp_listen.empty()) {
      std::cerr << "outpost-agent: cannot send to " << config.unix_socket << ": " << ec.message()
                << "\n";
      return common::kExitFailure;
    }
  }
  const auto where = agent::parse_host_port(config.udp_listen);
  if (!where) {
    std::cerr << "outpost-agent: inputs.udp_listen is not host:port\n";
    return common::kExitConfigError;
  }
  const asio::ip::udp::endpoint endpoint(asio::ip::make_address(where->host, ec), where->port);
  asio::ip::udp::socket s(io);
  s.open(endpoint.protocol(), ec);
  if (!ec) s.send_to(asio::buffer(datagram), endpoint, 0, ec);
  if (ec) {
    std::cerr << "outpost-agent: cannot send to udp " << config.udp_listen << ": " << ec.message()
              << "\n";
    return common::kExitFailure;
  }
  return common::kExitOk;
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

}  // namespace

int main(int argc, char** argv) {
  CLI::App app(
      "Outpost agent: accepts readings and logs fire-and-forget on datagram sockets, keeps them\n"
      "in an SQLite store-and-forward queue, and delivers them over MQTT.",
      "outpost-agent");
  common::CommonOptions common_options;
  add_common_options(app, common_options);
  auto* send = app.add_subcommand("send", "Send lines (line protocol or log lines) to the agent");
  std::vector<std::string> lines;
  send->add_option("lines", lines, "Lines to send, e.g. 'temp,room=lab value=21.5'")->required();
  app.add_subcommand("status", "Print the local queue state from the store");
  if (auto code = common::parse_command_line(app, argc, argv)) return *code;

  // 1. Configuration.
  agent::AgentConfig config;
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

  // 3. Store, inputs and MQTT.
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

  // 4. Signals, handled on the event loop.
  // SIGHUP: re-read the file; the log level is applied at once, other changes
  // need a restart (the agent says so rather than half-applying them).
  asio::signal_set hangup(io, SIGHUP);
  std::function<void()> wait_hangup = [&] {
    hangup.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      if (common_options.config_path.empty()) {
        spdlog::warn("SIGHUP: no --config file to reload");
      } else {
        auto reader = common::ConfigReader::load_file(common_options.config_path);
        agent::AgentConfig fresh;
        if (!reader.ok()) {
          spdlog::error("SIGHUP: keeping the running configuration: {}",
                        reader.error().to_string());
        } else if (auto s = agent::read_agent_config(reader.value(), fresh); !s.ok()) {
          spdlog::error("SIGHUP: keeping the running configuration: {}", s.error().to_string());
        } else {
          const std::string lvl =
              common_options.log_level.empty() ? fresh.log.level : common_options.log_level;
          spdlog::set_level(common::parse_log_level(lvl).value_or(spdlog::level::info));
          spdlog::warn("SIGHUP: log level is now {}; other settings apply after a restart", lvl);
        }
      }
      wait_hangup();
    });
  };
  wait_hangup();

  asio::signal_set signals(io, SIGTERM, SIGINT);
  signals.async_wait([&](const boost::system::error_code& ec, int signal) {
    if (ec) return;
    spdlog::info("signal {}: stopping", signal);
    hangup.cancel();
    agent.stop([&io] { io.stop(); });
  });

  // 5. Run.
  io.run();
  const auto& c = agent.counters();
  spdlog::info(
      "stopped: accepted {} readings and {} log records, rejected {} lines, acked {} messages",
      c.accepted_readings.load(), c.accepted_logs.load(), c.rejected_total(), agent.acked());
  return common::kExitOk;
}
