// A simulated device: sensors -> batches -> encoded messages, with per-batch faults.
#include "outpost/sim/device.h"

#include <algorithm>

#include "outpost/common/codec.h"
#include "outpost/common/limits.h"

namespace outpost::sim {

std::vector<std::string> expand_sensor_names(const std::vector<SensorSpec>& sensors) {
  std::vector<std::string> names;
  for (const auto& s : sensors) {
    if (s.count == 1) {
      names.push_back(s.name);
    } else {
      for (uint32_t i = 0; i < s.count; ++i) names.push_back(s.name + "." + std::to_string(i));
    }
  }
  return names;
}

DeviceModel::DeviceModel(DeviceIdentity identity, const DeviceSettings& settings, uint64_t run_seed,
                         std::string other_device)
    : identity_(std::move(identity)),
      settings_(&settings),
      other_device_(std::move(other_device)),
      names_(expand_sensor_names(settings.sensors)),
      log_gen_(derive_seed(run_seed, identity_.index, 0x109)),
      epoch_rng_(derive_seed(run_seed, identity_.index, 0xe90c)),
      fault_rng_(derive_seed(run_seed, identity_.index, 0xfa17)),
      malformed_rng_(derive_seed(run_seed, identity_.index, 0xbad)) {
  uint32_t k = 0;
  for (const auto& s : settings.sensors) {
    for (uint32_t i = 0; i < s.count; ++i, ++k) {
      units_.push_back(s.unit.empty() ? std::string(default_unit(s.kind)) : s.unit);
      signals_.emplace_back(s.kind, derive_seed(run_seed, identity_.index, 0x5e50000 + k), s.wrap);
    }
  }
  // Units are optional per sensor; drop trailing empty ones (the wire format allows shorter).
  while (!units_.empty() && units_.back().empty()) units_.pop_back();
  // Devices start at different points of their log rhythm, so slow rates still show up.
  log_credit_ = Rng(derive_seed(run_seed, identity_.index, 0x10c)).uniform();
  if (settings.faults.clock_skew_us > 0) {
    Rng skew(derive_seed(run_seed, identity_.index, 0x5c3));
    const auto max = static_cast<double>(settings.faults.clock_skew_us);
    skew_us_ = static_cast<int64_t>(skew.uniform(-max, max));
  }
}

void DeviceModel::boot(int64_t now_us) {
  epoch_ = epoch_rng_.next();
  if (epoch_ == 0) epoch_ = 1;
  boot_time_us_ = now_us;
}

void DeviceModel::tick(int64_t now_us, double t_s, std::vector<Outgoing>& out) {
  const int64_t device_time = now_us + skew_us_;
  for (uint32_t i = 0; i < signals_.size(); ++i) {
    pending_readings_.push_back({i, device_time, signals_[i].next(t_s)});
    if (pending_readings_.size() >= settings_->batch_size) seal_readings(now_us, out);
  }
  log_credit_ += settings_->logs_per_minute * std::max(0.0, t_s - last_t_s_) / 60.0;
  last_t_s_ = t_s;
  while (log_credit_ >= 1.0) {
    log_credit_ -= 1.0;
    pending_logs_.push_back(log_gen_.next(device_time));
    if (pending_logs_.size() >= settings_->max_log_batch) seal_logs(out);
  }
}

void DeviceModel::flush(int64_t now_us, std::vector<Outgoing>& out) {
  if (!pending_readings_.empty()) seal_readings(now_us, out);
  if (!pending_logs_.empty()) seal_logs(out);
  for (auto& o : held_) out.push_back(std::move(o));
  held_.clear();
}

Outgoing DeviceModel::status(common::DeviceState state, int64_t now_us) const {
  common::DeviceStatus s;
  s.state = state;
  s.time_us = now_us + skew_us_;
  s.time_synced = time_synced();
  s.agent_version = "outpost-sim";
  s.uptime_s = static_cast<uint64_t>(std::max<int64_t>(0, now_us - boot_time_us_) / 1'000'000);
  Outgoing o;
  o.topic_kind = common::PayloadKind::kStatus;
  o.role = SendRole::kStatus;
  o.retained = true;
  o.epoch = epoch_;
  auto bytes = common::encode(
      common::Envelope{common::kSchemaVersion, identity_.device_id, epoch_, 0, std::move(s)});
  o.bytes = std::make_shared<const std::vector<uint8_t>>(bytes.ok() ? std::move(bytes).value()
                                                                    : std::vector<uint8_t>{});
  return o;
}

void DeviceModel::seal_readings(int64_t now_us, std::vector<Outgoing>& out) {
  common::ReadingBatch batch;
  batch.time_synced = time_synced();
  batch.sensor_names = names_;
  batch.units = units_;
  batch.readings = std::move(pending_readings_);
  pending_readings_.clear();
  const auto n = static_cast<uint32_t>(batch.readings.size());
  emit(common::Envelope{common::kSchemaVersion, identity_.device_id, epoch_, 0, std::move(batch)},
       n, 0, now_us, out);
  // Logs travel with the data they were written beside.
  if (!pending_logs_.empty()) seal_logs(out);
}

void DeviceModel::seal_logs(std::vector<Outgoing>& out) {
  common::LogBatch batch;
  batch.time_synced = time_synced();
  batch.records = std::move(pending_logs_);
  pending_logs_.clear();
  const auto n = static_cast<uint32_t>(batch.records.size());
  const int64_t now_us = batch.records.empty() ? 0 : batch.records.back().time_us - skew_us_;
  emit(common::Envelope{common::kSchemaVersion, identity_.device_id, epoch_, 0, std::move(batch)},
       0, n, now_us, out);
}

void DeviceModel::emit(common::Envelope env, uint32_t readings, uint32_t logs, int64_t now_us,
                       std::vector<Outgoing>& out) {
  const BatchFaults faults = draw_batch_faults(settings_->faults, fault_rng_);
  if (faults.malformed) {
    common::ReadingBatch sample;
    sample.time_synced = time_synced();
    sample.sensor_names.push_back(names_.empty() ? std::string("sensor") : names_.front());
    sample.readings.push_back({0, now_us + skew_us_, 1.0});
    const common::Envelope valid{common::kSchemaVersion, identity_.device_id, epoch_,
                                 next_malformed_seq_++, std::move(sample)};
    MalformedMessage m =
        make_malformed(*faults.malformed, valid, other_device_, now_us, malformed_rng_);
    Outgoing o;
    o.topic_kind = m.topic_kind;
    o.role = SendRole::kMalformed;
    o.epoch = epoch_;
    o.seq = valid.seq;
    o.malformed = *faults.malformed;
    o.bytes = std::make_shared<const std::vector<uint8_t>>(std::move(m.bytes));
    out.push_back(std::move(o));
  }

  const common::PayloadKind kind = env.kind();
  env.seq = next_seq_++;
  auto bytes = common::encode(env);
  // Generated batches respect every bound (sensor count and batch size are checked when the
  // scenario loads), so this cannot fail; if it did, the seq is skipped, never reused.
  if (!bytes.ok()) return;
  Outgoing o;
  o.topic_kind = kind;
  o.role = SendRole::kValid;
  o.epoch = env.epoch;
  o.seq = env.seq;
  o.readings = readings;
  o.logs = logs;
  o.bytes = std::make_shared<const std::vector<uint8_t>>(std::move(bytes).value());
  std::vector<Outgoing> group{o};
  if (faults.duplicate) {
    o.role = SendRole::kDuplicate;
    group.push_back(o);
  }
  if (!held_.empty()) {
    for (auto& g : group) out.push_back(std::move(g));
    for (auto& h : held_) out.push_back(std::move(h));
    held_.clear();
  } else if (faults.out_of_order) {
    held_ = std::move(group);
  } else {
    for (auto& g : group) out.push_back(std::move(g));
  }
}

}  // namespace outpost::sim
