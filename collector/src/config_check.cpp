// The collector's --check-config: the environment its configuration names, the effective config.
#include "outpost/collector/config_check.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "outpost/common/config_check.h"

namespace outpost::collector {

void check_collector_environment(common::ConfigReader& r, const CollectorConfig& c) {
  common::check_mqtt_files(r, c);
  common::check_readable_file(r, "storage.password_file", c.password_file);
  common::check_readable_file(r, "console.token_file", c.console_token_file);
  for (const WebhookConfig& hook : c.webhooks) {
    common::check_readable_file(r, "webhooks." + common::toml_key(hook.name) + ".ca_file",
                                hook.ca_file);
  }
  if (c.kind == "sqlite") {
    common::check_writable_dir(r, "storage.path", common::parent_dir(c.path));
    struct stat st {};
    if (::stat(c.path.c_str(), &st) == 0 && ::access(c.path.c_str(), R_OK | W_OK) != 0) {
      r.add_error("storage.path", "cannot write " + c.path + ": " + std::strerror(errno));
    }
  }
  // The journal directory is created at start when missing (its parent must take it).
  const std::string journal = journal_dir_of(c);
  const char* key = c.journal_dir.empty() ? "storage.path" : "storage.journal_dir";
  struct stat st {};
  const bool exists = ::stat(journal.c_str(), &st) == 0;
  const std::string dir = exists ? journal : common::parent_dir(journal);
  // Beside the SQLite database (the default): that directory was checked above, once is enough.
  if (c.kind == "sqlite" && !exists && dir == common::parent_dir(c.path)) return;
  common::check_writable_dir(r, key, dir);
}

std::string effective_collector_config(const CollectorConfig& c) {
  common::TomlWriter w;
  w.section("mqtt");
  common::write_mqtt_connection(w, c);
  w.boolean("clean_session", c.clean_session);
  w.strings("topics", c.topics);
  w.string("shared_group", c.shared_group);
  w.string("catch_all", c.catch_all);
  w.size("max_message_bytes", c.max_message_bytes);
  w.size("intake_max_bytes", c.intake_max_bytes);
  w.boolean("publish_acks", c.publish_acks);
  w.boolean("publish_events", c.publish_events);

  w.section("storage");
  w.string("kind", c.kind);
  w.string("path", c.path);
  w.string("dsn", redacted_dsn(c.dsn));
  w.string("password_file", c.password_file);
  w.string("journal_dir", c.journal_dir);
  w.duration("commit_interval", c.commit_interval_us);
  w.integer("commit_max_messages", c.commit_max_messages);
  w.boolean("full_sync", c.full_sync);
  w.duration("retention", c.retention_us);
  w.integer("queue_messages", c.queue_messages);

  w.section("validation");
  common::write_validation_options(w, c.validation);

  w.section("dlq");
  w.integer("max_entries", static_cast<int64_t>(c.dlq_max_entries));
  w.duration("max_age", c.dlq_max_age_us);

  w.section("events");
  w.duration("offline_after", c.offline_after_us);
  w.duration("gap_grace", c.gap_grace_us);
  w.integer("dlq_rate_per_minute", c.dlq_rate_per_minute);
  w.integer("webhook_max_pending", c.webhook_max_pending);
  w.duration("webhook_stop_grace", c.webhook_stop_grace_us);

  for (const ThresholdRule& rule : c.rules) {
    w.section("rules." + common::toml_key(rule.name));
    w.string("sensor", rule.sensor);
    w.string("device", rule.device);
    w.number(rule.direction == RuleDirection::kAbove ? "above" : "below", rule.threshold);
    w.number("hysteresis", rule.hysteresis);
  }
  for (const WebhookConfig& hook : c.webhooks) {
    w.section("webhooks." + common::toml_key(hook.name));
    w.string("url", hook.url);
    w.secret("secret", hook.secret);
    if (!hook.ca_file.empty()) w.string("ca_file", hook.ca_file);  // https only
    w.strings("kinds", hook.kinds);
    w.duration("timeout", hook.timeout_us);
    w.integer("max_attempts", hook.max_attempts);
    w.duration("initial_backoff", hook.initial_backoff_us);
    w.duration("max_backoff", hook.max_backoff_us);
  }

  w.section("metrics");
  w.string("listen", c.metrics_listen);
  w.section("console");
  w.string("listen", c.console_listen);
  if (!c.console_token_file.empty()) {
    w.string("token_file", c.console_token_file);
  } else {
    w.secret("token", c.console_token);
  }
  w.section("log");
  w.string("level", c.log.level);
  return w.take();
}

std::vector<std::string> changed_collector_settings(const CollectorConfig& running,
                                                    const CollectorConfig& reloaded) {
  auto changed = common::changed_settings(effective_collector_config(running),
                                          effective_collector_config(reloaded));
  const auto also = [&](bool differs, std::string key) {
    if (differs && std::find(changed.begin(), changed.end(), key) == changed.end()) {
      changed.push_back(std::move(key));
    }
  };
  // Redacted in the effective configuration: compared here.
  also(running.password != reloaded.password, "mqtt.password");
  also(running.dsn != reloaded.dsn, "storage.dsn");
  also(running.postgres_password != reloaded.postgres_password, "storage.password_file");
  also(running.console_token != reloaded.console_token, "console.token");
  for (const WebhookConfig& hook : reloaded.webhooks) {
    for (const WebhookConfig& old : running.webhooks) {
      if (old.name == hook.name) {
        also(old.secret != hook.secret, "webhooks." + common::toml_key(hook.name) + ".secret");
      }
    }
  }
  return changed;
}

}  // namespace outpost::collector
