// Fault decisions and malformed payload construction.
#include "outpost/sim/faults.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <span>

#include "outpost/common/codec.h"
#include "outpost/common/limits.h"

namespace outpost::sim {
namespace {

using common::Reason;

bool decodes_with(std::span<const uint8_t> bytes, Reason reason) {
  auto decoded = common::decode(bytes);
  return !decoded.ok() && decoded.error().reason == reason;
}

std::vector<uint8_t> encode_or_empty(const common::Envelope& env) {
  auto bytes = common::encode(env);
  return bytes.ok() ? std::move(bytes).value() : std::vector<uint8_t>{};
}

// Bytes that certainly do not decode: a tag of field 0, which protobuf forbids.
std::vector<uint8_t> hopeless_bytes() { return {0x00, 0xff, 0xff, 0xff}; }

}  // namespace

std::string_view malformed_kind_name(MalformedKind kind) {
  switch (kind) {
    case MalformedKind::kTruncated:
      return "truncated";
    case MalformedKind::kRandomBytes:
      return "random_bytes";
    case MalformedKind::kWrongMessageType:
      return "wrong_message_type";
    case MalformedKind::kIdentityMismatch:
      return "identity_mismatch";
    case MalformedKind::kOversized:
      return "oversized";
    case MalformedKind::kNan:
      return "nan";
    case MalformedKind::kTimestampFarOff:
      return "timestamp_far_off";
  }
  return "?";
}

std::optional<MalformedKind> malformed_kind_from_name(std::string_view name) {
  for (auto k : kAllMalformedKinds) {
    if (malformed_kind_name(k) == name) return k;
  }
  return std::nullopt;
}

Reason expected_reason(MalformedKind kind) {
  switch (kind) {
    case MalformedKind::kTruncated:
      return Reason::kNotDecodable;
    case MalformedKind::kRandomBytes:
      return Reason::kNotDecodable;
    case MalformedKind::kWrongMessageType:
      return Reason::kWrongMessageType;
    case MalformedKind::kIdentityMismatch:
      return Reason::kIdentityMismatch;
    case MalformedKind::kOversized:
      return Reason::kOversized;
    case MalformedKind::kNan:
      return Reason::kValueOutOfBounds;
    case MalformedKind::kTimestampFarOff:
      return Reason::kTimestampOutOfBounds;
  }
  return Reason::kNotDecodable;
}

common::Result<std::vector<MalformedKind>> parse_malformed_kinds(std::string_view csv) {
  std::vector<MalformedKind> kinds;
  if (csv == "all")
    return std::vector<MalformedKind>(kAllMalformedKinds.begin(), kAllMalformedKinds.end());
  while (!csv.empty()) {
    const auto comma = csv.find(',');
    const std::string_view name = csv.substr(0, comma);
    csv = comma == std::string_view::npos ? std::string_view() : csv.substr(comma + 1);
    if (name.empty()) continue;
    if (name == "all")
      return std::vector<MalformedKind>(kAllMalformedKinds.begin(), kAllMalformedKinds.end());
    auto kind = malformed_kind_from_name(name);
    if (!kind) {
      std::string valid;
      for (auto k : kAllMalformedKinds)
        valid += (valid.empty() ? "" : ", ") + std::string(malformed_kind_name(k));
      return common::Error{"unknown malformed kind \"" + std::string(name) + "\" (valid: " + valid +
                           ", or all)"};
    }
    if (std::find(kinds.begin(), kinds.end(), *kind) == kinds.end()) kinds.push_back(*kind);
  }
  if (kinds.empty()) return common::Error{"no malformed kind given"};
  return kinds;
}

BatchFaults draw_batch_faults(const FaultSettings& settings, Rng& rng) {
  // Always draw the same number of values, so one setting never shifts another's draws.
  const double m = rng.uniform();
  const uint64_t pick = rng.next();
  const double d = rng.uniform();
  const double o = rng.uniform();
  BatchFaults f;
  if (m < settings.malformed_fraction && !settings.malformed_kinds.empty()) {
    f.malformed = settings.malformed_kinds[pick % settings.malformed_kinds.size()];
  }
  f.duplicate = d < settings.duplicate_fraction;
  f.out_of_order = o < settings.out_of_order_fraction;
  return f;
}

std::string_view device_event_name(DeviceEventKind kind) {
  switch (kind) {
    case DeviceEventKind::kReboot:
      return "reboot";
    case DeviceEventKind::kStorm:
      return "storm";
    case DeviceEventKind::kCut:
      return "cut";
    case DeviceEventKind::kOffline:
      return "offline";
  }
  return "?";
}

std::vector<DeviceEvent> plan_device_events(const FaultSettings& settings, int64_t duration_us,
                                            uint64_t seed, uint32_t device_index) {
  std::vector<DeviceEvent> events;
  if (settings.reboot_every_us > 0) {
    Rng rng(derive_seed(seed, device_index, 0x5eb0));
    const double mean = static_cast<double>(settings.reboot_every_us);
    for (double t = rng.exponential(mean); t < static_cast<double>(duration_us);
         t += rng.exponential(mean)) {
      events.push_back({static_cast<int64_t>(t), DeviceEventKind::kReboot});
    }
  }
  if (settings.storm_every_us > 0) {
    Rng rng(derive_seed(seed, device_index, 0x5707));
    for (int64_t t = settings.storm_every_us; t < duration_us; t += settings.storm_every_us) {
      if (rng.chance(settings.storm_fraction)) events.push_back({t, DeviceEventKind::kStorm});
    }
  }
  {
    Rng rng(derive_seed(seed, device_index, 0xc07));
    const double u = rng.uniform();
    const auto at = static_cast<int64_t>(rng.uniform(0.2, 0.8) * static_cast<double>(duration_us));
    if (u < settings.cut_fraction) {
      events.push_back({at, DeviceEventKind::kCut});
    } else if (u < settings.cut_fraction + settings.offline_fraction) {
      events.push_back({at, DeviceEventKind::kOffline});
    }
  }
  std::stable_sort(events.begin(), events.end(),
                   [](const DeviceEvent& a, const DeviceEvent& b) { return a.at_us < b.at_us; });
  // Nothing happens to a device after it went silent.
  auto last = std::find_if(events.begin(), events.end(), [](const DeviceEvent& e) {
    return e.kind == DeviceEventKind::kCut || e.kind == DeviceEventKind::kOffline;
  });
  if (last != events.end()) events.erase(last + 1, events.end());
  return events;
}

bool in_burst(const FaultSettings& settings, int64_t offset_us) {
  if (settings.burst_every_us <= 0 || offset_us < settings.burst_every_us) return false;
  return offset_us % settings.burst_every_us < settings.burst_length_us;
}

MalformedMessage make_malformed(MalformedKind kind, const common::Envelope& valid,
                                std::string_view other_device, int64_t now_us, Rng& rng) {
  MalformedMessage out;
  switch (kind) {
    case MalformedKind::kTruncated: {
      std::vector<uint8_t> bytes = encode_or_empty(valid);
      // Cut somewhere in the second half (inside the body, which is encoded last); a cut on
      // a field boundary could still decode, so check and move the cut if needed.
      for (int attempt = 0; attempt < 16 && bytes.size() > 4; ++attempt) {
        const std::size_t cut =
            bytes.size() / 2 + rng.below(bytes.size() - bytes.size() / 2 - 1) + (attempt > 8);
        std::vector<uint8_t> cut_bytes(bytes.begin(),
                                       bytes.begin() + std::min(cut, bytes.size() - 1));
        if (decodes_with(cut_bytes, Reason::kNotDecodable)) {
          out.bytes = std::move(cut_bytes);
          return out;
        }
      }
      out.bytes = hopeless_bytes();
      return out;
    }
    case MalformedKind::kRandomBytes: {
      for (int attempt = 0; attempt < 32; ++attempt) {
        std::vector<uint8_t> bytes(16 + rng.below(240));
        for (auto& b : bytes) b = static_cast<uint8_t>(rng.next());
        if (decodes_with(bytes, Reason::kNotDecodable)) {
          out.bytes = std::move(bytes);
          return out;
        }
      }
      out.bytes = hopeless_bytes();
      return out;
    }
    case MalformedKind::kWrongMessageType: {
      common::Envelope env = valid;
      common::LogBatch logs;
      logs.time_synced = true;
      logs.records.push_back({now_us, common::Severity::kInfo, "misrouted log batch", {}});
      env.body = std::move(logs);
      out.bytes = encode_or_empty(env);
      return out;
    }
    case MalformedKind::kIdentityMismatch: {
      common::Envelope env = valid;
      env.device_id = std::string(other_device);
      out.bytes = encode_or_empty(env);
      return out;
    }
    case MalformedKind::kOversized: {
      out.bytes = encode_or_empty(valid);
      // Size alone makes it oversized; the decoder refuses before parsing.
      const std::size_t size = common::kMaxPayloadBytes + 1 + rng.below(4096);
      while (out.bytes.size() < size) out.bytes.push_back(static_cast<uint8_t>(rng.next()));
      return out;
    }
    case MalformedKind::kNan: {
      common::Envelope env = valid;
      auto& batch = std::get<common::ReadingBatch>(env.body);
      if (batch.sensor_names.empty()) batch.sensor_names.push_back("nan_sensor");
      batch.readings.push_back({0, now_us, std::numeric_limits<double>::quiet_NaN()});
      out.bytes = encode_or_empty(env);
      return out;
    }
    case MalformedKind::kTimestampFarOff: {
      common::Envelope env = valid;
      auto& batch = std::get<common::ReadingBatch>(env.body);
      batch.time_synced = true;
      const int64_t years = 2 + static_cast<int64_t>(rng.below(10));
      const int64_t shift = years * 365 * 24 * 3600LL * 1'000'000LL * (rng.chance(0.5) ? 1 : -1);
      if (batch.readings.empty()) batch.readings.push_back({0, now_us, 0.0});
      if (batch.sensor_names.empty()) batch.sensor_names.push_back("clock");
      for (auto& r : batch.readings) r.time_us = now_us + shift;
      out.bytes = encode_or_empty(env);
      return out;
    }
  }
  return out;
}

}  // namespace outpost::sim
