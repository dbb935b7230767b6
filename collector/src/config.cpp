// Reading outpost-collector's configuration.
#include "outpost/collector/config.h"

#include <cstdlib>
#include <fstream>

#include "outpost/common/limits.h"
#include "outpost/common/net.h"
#include "outpost/common/topics.h"

namespace outpost::collector {

namespace {

// A filter as an error message shows it: at most 80 bytes, a NUL as \0.
std::string shown_filter(std::string_view filter) {
  std::string out;
  for (char c : filter.substr(0, 80)) {
    if (c == '\0') {
      out += "\\0";
    } else {
      out += c;
    }
  }
  return "\"" + out + (filter.size() > 80 ? "...\"" : "\"");
}

// console.listen's form, and the token: from console.token, console.token_file or the
// environment; at least 16 characters, so that it cannot be guessed in a few tries.
void read_console_token(common::ConfigReader& r, CollectorConfig& c) {
  if (!c.console_listen.empty() && !common::parse_host_port(c.console_listen)) {
    r.add_error("console.listen", "expected host:port with an IP address, e.g. 127.0.0.1:8088");
  }
  if (!c.console_token.empty() && !c.console_token_file.empty()) {
    r.add_error("console.token_file", "give console.token or console.token_file, not both");
    return;
  }
  const char* key = "console.token";
  if (!c.console_token_file.empty()) {
    key = "console.token_file";
    std::ifstream in(c.console_token_file);
    std::string line;
    if (!in || !std::getline(in, line)) {
      r.add_error(key, "cannot read " + c.console_token_file);
      return;
    }
    if (!line.empty() && line.back() == '\r') line.pop_back();
    c.console_token = line;
  } else if (c.console_token.empty()) {
    if (const char* env = std::getenv("OUTPOST_CONSOLE_TOKEN"); env && *env) {
      key = "OUTPOST_CONSOLE_TOKEN";
      c.console_token = env;
    }
  }
  if (!c.console_token.empty() && c.console_token.size() < 16) {
    r.add_error(key,
                "the console token must be at least 16 characters (e.g. the output of "
                "`openssl rand -hex 16`)");
  }
}

}  // namespace

common::Status<common::ConfigError> read_collector_config(common::ConfigReader& r,
                                                          CollectorConfig& c) {
  common::read_mqtt_connection(r, c);
  r.read("mqtt.clean_session", c.clean_session);
  r.read("mqtt.topics", c.topics);
  r.read("mqtt.shared_group", c.shared_group);
  r.read("mqtt.catch_all", c.catch_all);
  r.read_size_bytes("mqtt.max_message_bytes", c.max_message_bytes, common::kMaxPayloadBytes,
                    16u << 20);
  r.read_size_bytes("mqtt.intake_max_bytes", c.intake_max_bytes, 64u << 10, 1u << 30);
  r.read("mqtt.publish_acks", c.publish_acks);
  r.read("mqtt.publish_events", c.publish_events);

  r.read_enum("storage.kind", c.kind,
              {{"sqlite", std::string("sqlite")}, {"postgres", std::string("postgres")}});
  r.read("storage.path", c.path);
  r.read("storage.dsn", c.dsn);
  r.read("storage.password_file", c.password_file);
  r.read("storage.journal_dir", c.journal_dir);
  r.read_duration_us("storage.commit_interval", c.commit_interval_us, 1'000, 60'000'000);
  r.read("storage.commit_max_messages", c.commit_max_messages, 1, 1'000'000);
  r.read("storage.full_sync", c.full_sync);
  r.read_duration_us("storage.retention", c.retention_us);
  r.read("storage.queue_messages", c.queue_messages, 16, 10'000'000);

  common::read_validation_options(r, "validation", c.validation);

  r.read("dlq.max_entries", c.dlq_max_entries, 1);
  r.read_duration_us("dlq.max_age", c.dlq_max_age_us);

  r.read_duration_us("events.offline_after", c.offline_after_us);
  r.read_duration_us("events.gap_grace", c.gap_grace_us);
  r.read("events.dlq_rate_per_minute", c.dlq_rate_per_minute);
  r.read("events.webhook_max_pending", c.webhook_max_pending, 1, 10'000'000);
  r.read_duration_us("events.webhook_stop_grace", c.webhook_stop_grace_us, 0, 600'000'000);
  read_rules(r, c.rules);
  read_webhooks(r, c.webhooks);

  r.read("metrics.listen", c.metrics_listen);
  r.read("console.listen", c.console_listen);
  r.read("console.token", c.console_token);
  r.read("console.token_file", c.console_token_file);
  common::read_log_config(r, c.log);

  if (c.broker.empty()) r.add_error("mqtt.broker", "must not be empty");
  if (c.client_id.empty()) r.add_error("mqtt.client_id", "must not be empty");
  if (c.kind == "sqlite" && c.path.empty()) r.add_error("storage.path", "must not be empty");
  if (c.kind == "postgres" && c.dsn.empty()) {
    r.add_error("storage.kind",
                "\"postgres\" needs storage.dsn, the database's libpq connection string");
  }
  if (!c.password_file.empty()) {
    std::ifstream in(c.password_file);
    std::string line;
    if (!in || !std::getline(in, line)) {
      r.add_error("storage.password_file", "cannot read " + c.password_file);
    } else {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      c.postgres_password = line;
    }
  } else if (const char* env = std::getenv("OUTPOST_POSTGRES_PASSWORD"); env && *env) {
    c.postgres_password = env;
  }
  if (c.topics.empty()) r.add_error("mqtt.topics", "must name at least one topic filter");
  for (std::size_t i = 0; i < c.topics.size(); ++i) {
    const std::string& t = c.topics[i];
    const std::string which = "filter " + std::to_string(i + 1) + " " + shown_filter(t) + " ";
    if (t.starts_with("$share/")) {
      r.add_error("mqtt.topics", which + "starts with $share/ (use mqtt.shared_group)");
    } else if (auto problem = common::filter_problem(t)) {
      r.add_error("mqtt.topics", which + "is not a valid MQTT topic filter: it " + *problem);
    }
  }
  if (!c.catch_all.empty()) {
    if (c.catch_all.starts_with("$share/")) {
      r.add_error("mqtt.catch_all", "starts with $share/ (use mqtt.shared_group)");
    } else if (auto problem = common::filter_problem(c.catch_all)) {
      r.add_error("mqtt.catch_all",
                  shown_filter(c.catch_all) + " is not a valid MQTT topic filter: it " + *problem);
    }
  }
  if (!c.shared_group.empty() && !common::is_valid_id(c.shared_group)) {
    r.add_error("mqtt.shared_group", "must be 1-64 characters of [A-Za-z0-9._-]");
  }
  if (!c.metrics_listen.empty() && !common::parse_host_port(c.metrics_listen)) {
    r.add_error("metrics.listen", "expected host:port with an IP address, e.g. 127.0.0.1:9109");
  }
  read_console_token(r, c);
  return r.finish();
}

std::string redacted_dsn(std::string_view dsn) {
  std::string out(dsn);
  // URI form: scheme://user:password@host...; the password may also be a ?password= parameter.
  if (out.starts_with("postgresql://") || out.starts_with("postgres://")) {
    const std::size_t start = out.find("://") + 3;
    const std::size_t at = out.find('@', start);
    const std::size_t colon = out.find(':', start);
    if (at != std::string::npos && colon != std::string::npos && colon < at) {
      out.replace(colon + 1, at - colon - 1, "***");
    }
    for (std::size_t p = out.find("password=", start); p != std::string::npos;
         p = out.find("password=", p + 1)) {
      if (p == 0 || (out[p - 1] != '?' && out[p - 1] != '&')) continue;
      const std::size_t from = p + 9;
      const std::size_t end = out.find('&', from);
      out.replace(from, (end == std::string::npos ? out.size() : end) - from, "***");
    }
    return out;
  }
  // key=value form: password = value, where value may be 'quoted with \' escapes'.
  std::size_t p = 0;
  while ((p = out.find("password", p)) != std::string::npos) {
    const bool starts_word = p == 0 || out[p - 1] == ' ' || out[p - 1] == '\t';
    std::size_t eq = p + 8;
    while (eq < out.size() && out[eq] == ' ') ++eq;
    if (!starts_word || eq >= out.size() || out[eq] != '=') {
      p += 8;
      continue;
    }
    std::size_t from = eq + 1;
    while (from < out.size() && out[from] == ' ') ++from;
    std::size_t end = from;
    if (end < out.size() && out[end] == '\'') {
      for (++end; end < out.size() && out[end] != '\''; ++end) {
        if (out[end] == '\\') ++end;
      }
      if (end < out.size()) ++end;
    } else {
      while (end < out.size() && out[end] != ' ' && out[end] != '\t') ++end;
    }
    out.replace(from, end - from, "***");
    p = from + 3;
  }
  return out;
}

bool shared_mode(const CollectorConfig& config) {
  return !config.shared_group.empty() && config.kind == "postgres";
}

std::string journal_dir_of(const CollectorConfig& config) {
  return config.journal_dir.empty() ? config.path + ".journal" : config.journal_dir;
}

std::vector<std::string> subscription_filters(const CollectorConfig& config) {
  std::vector<std::string> plain;
  if (!config.catch_all.empty()) plain.push_back(config.catch_all);
  for (const auto& t : config.topics) {
    if (config.catch_all.empty() || !common::filter_covers(config.catch_all, t)) {
      plain.push_back(t);
    }
  }
  std::vector<std::string> out;
  for (const auto& t : plain) {
    if (config.shared_group.empty()) {
      out.push_back(t);
    } else {
      auto shared = common::shared_subscription(config.shared_group, t);
      out.push_back(shared.ok() ? shared.value() : t);
    }
  }
  return out;
}

}  // namespace outpost::collector
