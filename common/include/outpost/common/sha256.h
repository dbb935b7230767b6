// SHA-256 (FIPS 180-4), incremental: how the collector fingerprints a payload it does not keep
// whole (an oversized message's DLQ entry names the hash of all of it). Self-contained, no
// allocation; any thread, one object per thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace outpost::common {

class Sha256 {
 public:
  using Digest = std::array<uint8_t, 32>;

  Sha256();
  // Feeds `n` more bytes; any number of calls, any sizes.
  void update(const void* data, std::size_t n);
  void update(std::string_view bytes) { update(bytes.data(), bytes.size()); }
  // The digest of everything fed. The object is spent afterwards (construct a new one).
  Digest finish();

 private:
  void block(const uint8_t* p);

  std::array<uint32_t, 8> h_;
  std::array<uint8_t, 64> buffer_{};
  std::size_t buffered_ = 0;
  uint64_t total_ = 0;  // bytes fed
};

// The digest of `bytes` in one call.
Sha256::Digest sha256(std::string_view bytes);

// Lower-case hex of a digest (64 characters).
std::string to_hex(const Sha256::Digest& digest);

}  // namespace outpost::common
