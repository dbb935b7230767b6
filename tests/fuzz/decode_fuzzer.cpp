// libFuzzer target: the payload decoder and validator on arbitrary bytes.
//
// Beyond "no crash, no sanitizer report", it checks a property: whatever the
// decoder accepts, the encoder can write back, and decoding that again gives
// the same bytes once more (the encoding of a decoded payload is canonical).
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>

#include "outpost/common/codec.h"
#include "outpost/common/json.h"

namespace {

using outpost::common::Expectation;
using outpost::common::PayloadKind;

constexpr int64_t kReceiveTimeUs = 1'700'000'000'000'000;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> bytes(data, size);
  auto decoded = outpost::common::decode(bytes);
  if (!decoded.ok()) return 0;

  // Validation must hold up against any decoded envelope, for every topic kind.
  for (auto kind : {PayloadKind::kReadings, PayloadKind::kLogs, PayloadKind::kStatus,
                    PayloadKind::kAck, PayloadKind::kEvent}) {
    (void)outpost::common::validate(decoded.value(), Expectation{kind, "dev-1", kReceiveTimeUs},
                                    {});
  }

  // Rendering is how decoded data reaches people and webhooks: it must cope too.
  const std::string json = outpost::common::to_json(decoded.value());
  if (json.empty() || json.front() != '{' || json.back() != '}') std::abort();

  auto once = outpost::common::encode(decoded.value());
  if (!once.ok()) std::abort();  // decoded, so within every bound: must re-encode
  auto again = outpost::common::decode(once.value());
  if (!again.ok()) std::abort();
  auto twice = outpost::common::encode(again.value());
  if (!twice.ok() || twice.value() != once.value()) std::abort();
  return 0;
}
