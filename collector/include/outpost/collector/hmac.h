// HMAC-SHA256 (OpenSSL) for signing webhook bodies.
#pragma once

#include <string>
#include <string_view>

namespace outpost::collector {

// The HMAC-SHA256 of `message` keyed with `key`, as 64 lowercase hex digits. Any thread;
// never throws. Returns "" only if OpenSSL itself fails (out of memory).
std::string hmac_sha256_hex(std::string_view key, std::string_view message);

}  // namespace outpost::collector
