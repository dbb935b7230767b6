// SHA-256 against the FIPS 180-2 appendix test vectors, fed whole and in uneven pieces.
#include "outpost/common/sha256.h"

#include <gtest/gtest.h>

#include <string>

namespace outpost::common {
namespace {

std::string hex_of(std::string_view bytes) { return to_hex(sha256(bytes)); }

TEST(Sha256, OneBlockMessageAbcMatchesFips180Vector) {
  EXPECT_EQ(hex_of("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256, MultiBlockMessageMatchesFips180Vector) {
  EXPECT_EQ(hex_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256, MillionAsMatchesFips180Vector) {
  EXPECT_EQ(hex_of(std::string(1'000'000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, EmptyInputMatchesTheKnownDigest) {
  EXPECT_EQ(hex_of(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Sha256, PiecesOfAnySizeGiveTheSameDigestAsOneCall) {
  std::string data;
  for (int i = 0; i < 1000; ++i) data += static_cast<char>(i * 31 + 7);
  const auto whole = sha256(data);
  for (std::size_t piece : {1u, 3u, 55u, 56u, 63u, 64u, 65u, 127u, 999u}) {
    Sha256 h;
    for (std::size_t at = 0; at < data.size(); at += piece) {
      h.update(std::string_view(data).substr(at, piece));
    }
    EXPECT_EQ(to_hex(h.finish()), to_hex(whole)) << "pieces of " << piece;
  }
}

// Lengths around the padding boundary (55, 56, 64 bytes) against digests computed with
// sha256sum.
TEST(Sha256, PaddingBoundaryLengthsMatchSha256sum) {
  EXPECT_EQ(hex_of(std::string(55, 'a')),
            "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
  EXPECT_EQ(hex_of(std::string(56, 'a')),
            "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
  EXPECT_EQ(hex_of(std::string(64, 'a')),
            "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
}

}  // namespace
}  // namespace outpost::common
