// A minimal protobuf writer for tests: payloads our own encoder would never produce.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace outpost::test_support {

struct ProtoWriter {
  std::vector<uint8_t> bytes;

  ProtoWriter& varint(uint64_t v) {
    while (v >= 0x80) {
      bytes.push_back(static_cast<uint8_t>(v | 0x80));
      v >>= 7;
    }
    bytes.push_back(static_cast<uint8_t>(v));
    return *this;
  }
  ProtoWriter& tag(uint32_t field, uint32_t wire) { return varint(field << 3 | wire); }
  ProtoWriter& uint(uint32_t field, uint64_t v) { return tag(field, 0).varint(v); }
  ProtoWriter& len(uint32_t field, const std::vector<uint8_t>& b) {
    tag(field, 2).varint(b.size());
    bytes.insert(bytes.end(), b.begin(), b.end());
    return *this;
  }
  ProtoWriter& str(uint32_t field, std::string_view s) {
    return len(field, std::vector<uint8_t>(s.begin(), s.end()));
  }
};

}  // namespace outpost::test_support
