// The decoder's seed corpus as a regression suite: each file's name says its fate.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>

#include "outpost/common/codec.h"
#include "seeds.h"

namespace outpost::common {
namespace {

const std::filesystem::path kCorpusDir =
    std::filesystem::path(OUTPOST_TEST_DATA_DIR) / "fuzz" / "corpus" / "decode";

std::vector<uint8_t> read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

std::map<std::string, std::vector<uint8_t>> committed_corpus() {
  std::map<std::string, std::vector<uint8_t>> out;
  for (const auto& entry : std::filesystem::directory_iterator(kCorpusDir)) {
    out[entry.path().filename().string()] = read_file(entry.path());
  }
  return out;
}

std::optional<PayloadKind> kind_named(std::string_view name) {
  for (auto k : {PayloadKind::kReadings, PayloadKind::kLogs, PayloadKind::kStatus,
                 PayloadKind::kAck, PayloadKind::kEvent}) {
    if (payload_kind_name(k) == name) return k;
  }
  return std::nullopt;
}

TEST(Corpus, EveryCommittedSeedMeetsTheFateItsNameStates) {
  const auto corpus = committed_corpus();
  ASSERT_GE(corpus.size(), 10u) << "corpus missing at " << kCorpusDir;
  for (const auto& [name, bytes] : corpus) {
    const auto first = name.find('-');
    const auto second = name.find('-', first + 1);
    ASSERT_NE(second, std::string::npos) << name << ": expected <fate>-<kind|reason>-<what>.bin";
    const std::string fate = name.substr(0, first);
    const std::string what = name.substr(first + 1, second - first - 1);
    if (fate == "valid") {
      auto kind = kind_named(what);
      ASSERT_TRUE(kind) << name << ": unknown payload kind " << what;
      auto r = decode_and_validate(bytes, {*kind, seeds::kTopicDevice, seeds::kReceiveTimeUs}, {});
      EXPECT_TRUE(r.ok()) << name << ": " << (r.ok() ? "" : r.error().detail);
    } else if (fate == "reject") {
      auto reason = reason_from_name(what);
      ASSERT_TRUE(reason) << name << ": unknown reason " << what;
      auto r = decode_and_validate(
          bytes, {PayloadKind::kReadings, seeds::kTopicDevice, seeds::kReceiveTimeUs}, {});
      ASSERT_FALSE(r.ok()) << name << " was accepted";
      EXPECT_EQ(reason_name(r.error().reason), what) << name << ": " << r.error().detail;
    } else {
      ADD_FAILURE() << name << ": fate must be 'valid' or 'reject'";
    }
  }
}

TEST(Corpus, CommittedCorpusMatchesTheSeedDefinitions) {
  // Regenerate with: build/tests/make_corpus tests/fuzz/corpus/decode
  const auto corpus = committed_corpus();
  for (const auto& seed : seeds::all_seeds()) {
    auto it = corpus.find(seed.file_name);
    ASSERT_NE(it, corpus.end()) << seed.file_name << " missing from " << kCorpusDir;
    EXPECT_EQ(it->second, seed.bytes) << seed.file_name << " differs from seeds.cpp";
  }
}

TEST(Corpus, SeedsCoverEveryPayloadReason) {
  std::set<std::string> covered;
  for (const auto& seed : seeds::all_seeds()) {
    if (seed.file_name.starts_with("reject-")) {
      covered.insert(seed.file_name.substr(7, seed.file_name.find('-', 7) - 7));
    }
  }
  for (Reason r : kAllReasons) {
    // A topic's fault, a webhook's and the store's, not a payload's.
    if (r == Reason::kUnroutableTopic || r == Reason::kWebhookGaveUp ||
        r == Reason::kStorageRejected) {
      continue;
    }
    EXPECT_TRUE(covered.count(std::string(reason_name(r)))) << reason_name(r);
  }
}

}  // namespace
}  // namespace outpost::common
