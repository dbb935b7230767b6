// Tests of the JSON rendering of decoded payloads.
#include "outpost/common/json.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace outpost::common {
namespace {

TEST(Json, ReadingBatchRendersNamesUnitsAndTypedValues) {
  ReadingBatch b;
  b.time_synced = true;
  b.sensor_names = {"temp", "door", "count", "state"};
  b.units = {"Cel"};
  b.readings = {{0, 1700000000000000, 21.37},
                {1, 1700000000000001, true},
                {2, -5, std::numeric_limits<int64_t>::min()},
                {3, 0, std::string("say \"hi\"\n")}};
  const Envelope e{1, "gw-7", 3, 42, b};
  EXPECT_EQ(to_json(e),
            "{\"v\":1,\"device\":\"gw-7\",\"epoch\":3,\"seq\":42,\"kind\":\"readings\","
            "\"synced\":true,\"readings\":["
            "{\"sensor\":\"temp\",\"t\":1700000000000000,\"value\":21.37,\"unit\":\"Cel\"},"
            "{\"sensor\":\"door\",\"t\":1700000000000001,\"value\":true},"
            "{\"sensor\":\"count\",\"t\":-5,\"value\":-9223372036854775808},"
            "{\"sensor\":\"state\",\"t\":0,\"value\":\"say \\\"hi\\\"\\n\"}]}");
}

TEST(Json, DoublesAreShortestRoundTripAndNonFiniteBecomeStrings) {
  ReadingBatch b;
  b.sensor_names = {"x"};
  b.readings = {{0, 0, 0.1 + 0.2}, {0, 0, std::nan("")}, {0, 0, -INFINITY}, {0, 0, 1e300}};
  const std::string json = to_json(Envelope{1, "d", 1, 1, b});
  EXPECT_NE(json.find("\"value\":0.30000000000000004"), std::string::npos) << json;
  EXPECT_NE(json.find("\"value\":\"NaN\""), std::string::npos);
  EXPECT_NE(json.find("\"value\":\"-Infinity\""), std::string::npos);
  EXPECT_NE(json.find("\"value\":1e+300"), std::string::npos) << json;
}

TEST(Json, ControlCharactersAreEscaped) {
  std::string out;
  append_json_string(out, std::string("a\x01\tb\\", 5));
  EXPECT_EQ(out, "\"a\\u0001\\tb\\\\\"");
}

TEST(Json, LogsStatusAckAndEventRender) {
  LogBatch logs;
  logs.records = {{10, Severity::kWarning, "disk full", {{"mount", "/data"}}}};
  EXPECT_NE(to_json(Envelope{1, "d", 1, 1, logs})
                .find("\"records\":[{\"t\":10,\"severity\":\"warning\",\"message\":\"disk "
                      "full\",\"fields\":{\"mount\":\"/data\"}}]"),
            std::string::npos);
  DeviceStatus s{DeviceState::kLost, 5, false, "0.1.0", 1, 2, 3, 4, 5, 6, 7, 8};
  const std::string status = to_json(Envelope{1, "d", 1, 1, s});
  EXPECT_NE(status.find("\"state\":\"lost\""), std::string::npos) << status;
  EXPECT_NE(status.find("\"store_resets\":8"), std::string::npos) << status;
  const std::string ack = to_json(Envelope{1, "d", 1, 1, CommitAck{{{7, 1, 9}}}});
  EXPECT_NE(ack.find("\"committed\":[{\"epoch\":7,\"first\":1,\"last\":9}]"), std::string::npos);
  const std::string event =
      to_json(Envelope{1, "d", 1, 1, Event{EventKind::kDataGap, 1, "s", "", 0, 0, "seq 5-9"}});
  EXPECT_NE(event.find("\"event\":\"data_gap\""), std::string::npos) << event;
}

TEST(Json, SensorIndexOutsideTheTableIsShownAsANumber) {
  ReadingBatch b;
  b.readings = {{7, 0, int64_t{1}}};
  EXPECT_NE(to_json(Envelope{1, "d", 1, 1, b}).find("\"sensor\":7"), std::string::npos);
}

}  // namespace
}  // namespace outpost::common
