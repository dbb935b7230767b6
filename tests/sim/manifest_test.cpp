// The manifest: counting rules and the JSON shape the end-to-end suite reads.
#include "outpost/sim/manifest.h"

#include <gtest/gtest.h>

namespace outpost::sim {
namespace {

Outgoing valid(uint64_t epoch, uint64_t seq, uint32_t readings, uint32_t logs = 0,
               SendRole role = SendRole::kValid) {
  Outgoing o;
  o.role = role;
  o.epoch = epoch;
  o.seq = seq;
  o.readings = readings;
  o.logs = logs;
  return o;
}

TEST(DeviceLedger, CountsReadingsOncePerEpochSeqAndExtraSendsAsDuplicates) {
  DeviceLedger l("s", "d", DeviceMode::kDirect);
  l.record(valid(7, 1, 50));
  l.record(valid(7, 1, 50, 0, SendRole::kDuplicate));
  l.record(valid(7, 2, 50));
  l.record(valid(7, 2, 50, 0, SendRole::kDuplicate));
  l.record(valid(7, 2, 50, 0, SendRole::kDuplicate));
  l.record(valid(7, 3, 0, 4));
  EXPECT_EQ(l.readings_sent(), 100u);
  EXPECT_EQ(l.logs_sent(), 4u);
  EXPECT_EQ(l.duplicates_sent(), 3u);
  EXPECT_EQ(l.epochs(), (std::vector<EpochRange>{{7, 1, 3}}));
}

TEST(DeviceLedger, OutOfOrderSeqsMergeAndGapsSplitRangesPerEpochInBootOrder) {
  DeviceLedger l("s", "d", DeviceMode::kDirect);
  for (uint64_t seq : {2, 1, 4, 3, 6}) l.record(valid(900, seq, 1));
  for (uint64_t seq : {8, 7}) l.record(valid(5, seq, 1));  // rebooted: new epoch, seq goes on
  EXPECT_EQ(l.epochs(), (std::vector<EpochRange>{{900, 1, 4}, {900, 6, 6}, {5, 7, 8}}));
  l.record(valid(900, 5, 1));  // the gap filled late
  EXPECT_EQ(l.epochs(), (std::vector<EpochRange>{{900, 1, 6}, {5, 7, 8}}));
  EXPECT_EQ(l.readings_sent(), 8u);
}

TEST(DeviceLedger, MalformedCountedByKindStatusAndEventsSeparately) {
  DeviceLedger l("s", "d", DeviceMode::kDirect);
  Outgoing m;
  m.role = SendRole::kMalformed;
  m.malformed = MalformedKind::kNan;
  l.record(m);
  l.record(m);
  m.malformed = MalformedKind::kOversized;
  l.record(m);
  Outgoing st;
  st.role = SendRole::kStatus;
  l.record(st);
  l.add_cut();
  l.add_reboot();
  EXPECT_EQ(l.malformed(MalformedKind::kNan), 2u);
  EXPECT_EQ(l.malformed(MalformedKind::kOversized), 1u);
  EXPECT_EQ(l.malformed_total(), 3u);
  EXPECT_EQ(l.status_sent(), 1u);
  EXPECT_EQ(l.cuts(), 1u);
  EXPECT_EQ(l.reboots(), 1u);
  EXPECT_EQ(l.readings_sent(), 0u);
  EXPECT_TRUE(l.epochs().empty());
}

TEST(Manifest, JsonHasTheDocumentedShapeAndTotals) {
  Manifest m;
  m.seed = 1;
  m.started_us = 100;
  m.finished_us = 200;
  DeviceLedger a("office", "office-0001", DeviceMode::kDirect);
  a.record(valid(123, 1, 20));
  a.record(valid(123, 2, 20, 0, SendRole::kDuplicate));
  Outgoing bad;
  bad.role = SendRole::kMalformed;
  bad.malformed = MalformedKind::kTruncated;
  a.record(bad);
  DeviceLedger b("office", "office-0002", DeviceMode::kAgent);
  b.add_agent_lines(30, 2);
  m.devices = {a, b};
  const std::string json = to_json(m);
  EXPECT_EQ(json.rfind("{\"version\":1,\"seed\":1,\"started_us\":100,\"finished_us\":200,", 0), 0u)
      << json;
  EXPECT_NE(json.find("{\"site\":\"office\",\"device\":\"office-0001\",\"mode\":\"direct\","
                      "\"epochs\":[{\"epoch\":123,\"first_seq\":1,\"last_seq\":2}],"
                      "\"readings_sent\":40,\"logs_sent\":0,\"malformed\":{\"truncated\":1,"
                      "\"random_bytes\":0,\"wrong_message_type\":0,\"identity_mismatch\":0,"
                      "\"oversized\":0,\"nan\":0,\"timestamp_far_off\":0},\"duplicates_sent\":0,"
                      "\"status_sent\":0,\"cuts\":0,\"reboots\":0}"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find("\"device\":\"office-0002\",\"mode\":\"agent\",\"epochs\":[],"
                      "\"readings_sent\":30,\"logs_sent\":2,"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find("\"totals\":{\"devices\":2,\"readings_sent\":70,\"logs_sent\":2,"
                      "\"malformed\":{\"truncated\":1,"),
            std::string::npos)
      << json;
  EXPECT_EQ(json.substr(json.size() - 3), "}}\n");
}

TEST(Manifest, StringsAreEscaped) {
  Manifest m;
  m.devices = {DeviceLedger("a\"b", "c\\d\n", DeviceMode::kDirect)};
  const std::string json = to_json(m);
  EXPECT_NE(json.find("\"site\":\"a\\\"b\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"device\":\"c\\\\d\\n\""), std::string::npos) << json;
}

}  // namespace
}  // namespace outpost::sim

namespace outpost::sim {
namespace {

TEST(LedgerRecord, RoundTripsEveryCountAndRange) {
  DeviceLedger l("site", "dev-7", DeviceMode::kDirect);
  for (uint64_t seq : {1, 2, 3, 5}) l.record(valid(11, seq, 10, 1));
  l.record(valid(11, 2, 10, 0, SendRole::kDuplicate));
  l.record(valid(12, 6, 4));
  Outgoing m;
  m.role = SendRole::kMalformed;
  m.malformed = MalformedKind::kTimestampFarOff;
  l.record(m);
  l.add_reboot();
  l.add_cut();
  auto back = ledger_from_record(ledger_to_record(42, l));
  ASSERT_TRUE(back.ok()) << back.error().message;
  const auto& [index, r] = back.value();
  EXPECT_EQ(index, 42u);
  Manifest a, b;
  a.devices = {l};
  b.devices = {r};
  EXPECT_EQ(to_json(a), to_json(b));
  EXPECT_EQ(r.epochs(), (std::vector<EpochRange>{{11, 1, 3}, {11, 5, 5}, {12, 6, 6}}));
  EXPECT_EQ(r.batches_sent(), l.batches_sent());
}

TEST(LedgerRecord, GarbageIsAnErrorNotACrash) {
  EXPECT_FALSE(ledger_from_record("").ok());
  EXPECT_FALSE(ledger_from_record("1 s d direct 1 2 3").ok());
  std::string line = ledger_to_record(1, DeviceLedger("s", "d", DeviceMode::kDirect));
  EXPECT_TRUE(ledger_from_record(line).ok());
  EXPECT_FALSE(ledger_from_record(line + " 5").ok());
  line[line.size() - 1] = 'x';
  EXPECT_FALSE(ledger_from_record(line).ok());
}

}  // namespace
}  // namespace outpost::sim
