// Tests of the agent's input parser: line protocol and log lines, valid and every malformed kind.
#include "outpost/agent/line_protocol.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "outpost/common/codec.h"

namespace outpost::agent {

void PrintTo(LineError e, std::ostream* os) { *os << line_error_name(e); }

namespace {

using common::Value;

constexpr int64_t kNow = 1'700'000'000'000'000;

// The floor lowered out of the way, for the tests of syntax and of the parser's own range
// (InfluxDB's reference examples are stamped 0 and near the range's ends); the floor itself is
// tested with the default options (TimestampBeforeTheFloorIsRefusedInEachPrecision).
constexpr int64_t kNoFloor = std::numeric_limits<int64_t>::min();
constexpr LineOptions kNoFloorOptions{TimePrecision::kNanoseconds, kNoFloor};

ParsedLine must_parse(std::string_view line, const LineOptions& options = kNoFloorOptions) {
  auto r = parse_line(line, kNow, options);
  EXPECT_TRUE(r.ok()) << line << ": " << (r.ok() ? "" : r.error().detail);
  return r.ok() ? r.value() : ParsedLine{};
}

LineError must_reject(std::string_view line) {
  auto r = parse_line(line, kNow);
  EXPECT_FALSE(r.ok()) << line << " was accepted";
  return r.ok() ? LineError::kSyntax : r.error().error;
}

TEST(LineProtocol, FieldCalledValueNamesTheSeries) {
  const auto p = must_parse("temp,room=lab value=21.5 1700000000123456789");
  ASSERT_EQ(p.readings.size(), 1u);
  EXPECT_EQ(p.readings[0], (InputReading{"temp,room=lab", "", Value(21.5), 1700000000123456}));
}

TEST(LineProtocol, EveryFieldBecomesAReadingWithItsType) {
  const auto p = must_parse(
      "pump,site=a f=1.5,i=-42i,u=42u,b=true,s=\"idle now\",e=1e3,neg=-0.25,plain=7 "
      "1700000000000000000");
  ASSERT_EQ(p.readings.size(), 8u);
  EXPECT_EQ(p.readings[0].sensor, "pump,site=a.f");
  EXPECT_EQ(p.readings[0].value, Value(1.5));
  EXPECT_EQ(p.readings[1].value, Value(int64_t{-42}));
  EXPECT_EQ(p.readings[2].value, Value(int64_t{42}));
  EXPECT_EQ(p.readings[3].value, Value(true));
  EXPECT_EQ(p.readings[4].value, Value(std::string("idle now")));
  EXPECT_EQ(p.readings[5].value, Value(1000.0));
  EXPECT_EQ(p.readings[6].value, Value(-0.25));
  EXPECT_EQ(p.readings[7].value, Value(7.0));  // a plain number is a float, as in InfluxDB
  for (const auto& r : p.readings) EXPECT_EQ(r.time_us, 1700000000000000);
}

TEST(LineProtocol, BooleanSpellings) {
  for (const char* t : {"t", "T", "true", "True", "TRUE"}) {
    EXPECT_EQ(must_parse(std::string("door v=") + t).readings[0].value, Value(true)) << t;
  }
  for (const char* f : {"f", "F", "false", "False", "FALSE"}) {
    EXPECT_EQ(must_parse(std::string("door v=") + f).readings[0].value, Value(false)) << f;
  }
}

TEST(LineProtocol, MissingTimestampMeansReceiveTime) {
  EXPECT_EQ(must_parse("temp value=1").readings[0].time_us, kNow);
}

TEST(LineProtocol, TimestampPrecisions) {
  EXPECT_EQ(must_parse("t value=1 1700000000", {TimePrecision::kSeconds}).readings[0].time_us,
            1'700'000'000'000'000);
  EXPECT_EQ(
      must_parse("t value=1 1700000000123", {TimePrecision::kMilliseconds}).readings[0].time_us,
      1'700'000'000'123'000);
  EXPECT_EQ(
      must_parse("t value=1 17", {TimePrecision::kMicroseconds, kNoFloor}).readings[0].time_us, 17);
  // Nanoseconds round down, also before 1970.
  EXPECT_EQ(must_parse("t value=1 -1", {TimePrecision::kNanoseconds, kNoFloor}).readings[0].time_us,
            -1);
  EXPECT_EQ(
      must_parse("t value=1 1999", {TimePrecision::kNanoseconds, kNoFloor}).readings[0].time_us, 1);
}

TEST(LineProtocol, TimestampBeforeTheFloorIsRefusedInEachPrecision) {
  // 1999-12-31T23:59:59Z and 2000-01-01T00:00:00Z, the default floor, in each precision.
  const std::pair<TimePrecision, std::pair<const char*, const char*>> cases[] = {
      {TimePrecision::kSeconds, {"946684799", "946684800"}},
      {TimePrecision::kMilliseconds, {"946684799999", "946684800000"}},
      {TimePrecision::kMicroseconds, {"946684799999999", "946684800000000"}},
      {TimePrecision::kNanoseconds, {"946684799999999999", "946684800000000000"}},
  };
  for (const auto& [precision, times] : cases) {
    auto before = parse_line(std::string("t value=1 ") + times.first, kNow, {precision});
    ASSERT_FALSE(before.ok()) << times.first;
    EXPECT_EQ(before.error().error, LineError::kInvalidTimestamp) << times.first;
    EXPECT_NE(before.error().detail.find("before inputs.min_timestamp 2000-01-01T00:00:00.000Z"),
              std::string::npos)
        << before.error().detail;
    EXPECT_EQ(must_parse(std::string("t value=1 ") + times.second, LineOptions{precision})
                  .readings[0]
                  .time_us,
              common::kDefaultMinTimestampUs)
        << times.second;
  }
  // A line stamped 1970 (a clock never set, or seconds read as nanoseconds) is refused...
  EXPECT_EQ(must_reject("t value=1 1700000000"), LineError::kInvalidTimestamp);
  // ...unless the floor is configured lower, as for boards without a real-time clock.
  EXPECT_EQ(must_parse("t value=1 17", {TimePrecision::kSeconds, 0}).readings[0].time_us,
            17'000'000);
  // The floor is on a line's own timestamp; a line without one takes the receive time.
  EXPECT_EQ(parse_line("t value=1", 5, {}).value().readings[0].time_us, 5);
}

TEST(LineProtocol, TagsAreSortedAndUnitTagBecomesTheUnit) {
  const auto p = must_parse("temp,zone=2,unit=Cel,room=lab value=21.5");
  ASSERT_EQ(p.readings.size(), 1u);
  EXPECT_EQ(p.readings[0].sensor, "temp,room=lab,zone=2");
  EXPECT_EQ(p.readings[0].unit, "Cel");
}

TEST(LineProtocol, EscapesInNamesAndStrings) {
  // Escaped ',' and '=' are data, not the name's structure: they are percent-encoded.
  const auto p = must_parse(R"(my\,meas,tag\=k=v\,1 fi\=eld="say \"hi\" \\ ok")");
  ASSERT_EQ(p.readings.size(), 1u);
  EXPECT_EQ(p.readings[0].sensor, "my%2Cmeas,tag%3Dk=v%2C1.fi%3Deld");
  EXPECT_EQ(p.readings[0].value, Value(std::string(R"(say "hi" \ ok)")));
}

TEST(LineProtocol, QuotedStringMayContainSpacesCommasAndEquals) {
  const auto p = must_parse(R"(state msg="a b, c=d",n=1i 5000)");
  ASSERT_EQ(p.readings.size(), 2u);
  EXPECT_EQ(p.readings[0].value, Value(std::string("a b, c=d")));
  EXPECT_EQ(p.readings[1].value, Value(int64_t{1}));
  EXPECT_EQ(p.readings[1].time_us, 5);
}

TEST(LineProtocol, BlankLinesAndCommentsYieldNothing) {
  for (const char* line : {"", "   ", "# a comment", "\r", "  # indented comment"}) {
    const auto p = must_parse(line);
    EXPECT_TRUE(p.readings.empty() && !p.log) << line;
  }
}

TEST(LineProtocol, MalformedLinesAreRejectedByKind) {
  struct Case {
    std::string line;
    LineError error;
  };
  const std::vector<Case> cases = {
      {"temp", LineError::kSyntax},
      {"temp ", LineError::kSyntax},
      {"temp,room value=1", LineError::kSyntax},
      {"temp,=x value=1", LineError::kSyntax},
      {"temp value", LineError::kSyntax},
      {"temp =1", LineError::kSyntax},
      {"temp value=1 123 extra", LineError::kInvalidTimestamp},
      {",room=lab value=1", LineError::kInvalidName},
      {"temp value=", LineError::kInvalidValue},
      {"temp value=abc", LineError::kInvalidValue},
      {"temp value=1.2.3", LineError::kInvalidValue},
      {"temp value=nan", LineError::kInvalidValue},
      {"temp value=inf", LineError::kInvalidValue},
      {"temp value=1e999", LineError::kInvalidValue},
      {"temp value=0x10", LineError::kInvalidValue},
      {"temp value=+-1", LineError::kInvalidValue},
      {"temp value=99999999999999999999i", LineError::kInvalidValue},
      {"temp value=12abci", LineError::kInvalidValue},
      {"temp value=9223372036854775808u", LineError::kInvalidValue},
      {"temp value=\"unterminated", LineError::kInvalidValue},
      {"temp value=\"a\"b\"", LineError::kInvalidValue},
      {"temp value=\"" + std::string(129, 's') + "\"", LineError::kInvalidValue},
      {"temp value=\"\xff\"", LineError::kInvalidValue},
      {"temp value=1 12abc", LineError::kInvalidTimestamp},
      {"temp value=1 1.5", LineError::kInvalidTimestamp},
      {"temp value=1 99999999999999999999", LineError::kInvalidTimestamp},
      {"t,unit=" + std::string(17, 'u') + " value=1", LineError::kInvalidName},
      {"mp,unit=\t\tr f=0", LineError::kInvalidName},  // found by the fuzzer
      {std::string(70, 'm') + " value=1", LineError::kInvalidName},
      {"temp " + std::string(4100, 'x'), LineError::kTooLong},
      {std::string("temp value=1\0", 13), LineError::kSyntax},
  };
  for (const auto& c : cases) {
    auto r = parse_line(c.line, kNow);
    ASSERT_FALSE(r.ok()) << c.line.substr(0, 80) << " was accepted";
    EXPECT_EQ(r.error().error, c.error) << c.line.substr(0, 80) << ": " << r.error().detail;
    for (char ch : r.error().detail) EXPECT_TRUE(ch >= 0x20 && ch < 0x7f) << r.error().detail;
  }
  std::string many = "m ";
  for (int i = 0; i < 65; ++i) many += (i ? "," : "") + std::string("f") + std::to_string(i) + "=1";
  EXPECT_EQ(must_reject(many), LineError::kTooManyFields);
}

TEST(LineProtocol, MillisecondTimestampOverflowIsRejected) {
  auto r = parse_line("t value=1 9223372036854775807", kNow, {TimePrecision::kMilliseconds});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().error, LineError::kInvalidTimestamp);
}

// ------------------------------------------------------------------ InfluxDB's reference

// What a line should give: its readings in order, all at `time_us`.
struct Reference {
  std::string line;
  std::vector<std::pair<std::string, Value>> readings;
  int64_t time_us = kNow;
};

void expect_readings(const Reference& c, const LineOptions& options = kNoFloorOptions) {
  auto r = parse_line(c.line, kNow, options);
  ASSERT_TRUE(r.ok()) << c.line << ": " << r.error().detail;
  const auto& got = r.value().readings;
  ASSERT_EQ(got.size(), c.readings.size()) << c.line;
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].sensor, c.readings[i].first) << c.line;
    EXPECT_EQ(got[i].value, c.readings[i].second) << c.line;
    EXPECT_EQ(got[i].time_us, c.time_us) << c.line;
    EXPECT_TRUE(common::is_valid_sensor_name(got[i].sensor)) << got[i].sensor;
  }
}

void expect_rejected(const std::string& line, LineError error) {
  auto r = parse_line(line, kNow);
  ASSERT_FALSE(r.ok()) << line << " was accepted";
  EXPECT_EQ(r.error().error, error) << line << ": " << r.error().detail;
  for (char ch : r.error().detail) EXPECT_TRUE(ch >= 0x20 && ch < 0x7f) << r.error().detail;
}

// The examples of InfluxDB's line-protocol reference (v2 "Line protocol" and v1.8 "InfluxDB line
// protocol reference"/"tutorial"), each with what Outpost makes of it.
TEST(LineProtocolInfluxReference, SyntaxAndDataTypeExamples) {
  const std::vector<Reference> cases = {
      {"myMeasurement,tag1=value1,tag2=value2 fieldKey=\"fieldValue\" 1556813561098000000",
       {{"myMeasurement,tag1=value1,tag2=value2.fieldKey", Value(std::string("fieldValue"))}},
       1556813561098000},
      {"myMeasurement,tag1=val1,tag2=val2 field1=\"v1\",field2=1i 0000000000000000000",
       {{"myMeasurement,tag1=val1,tag2=val2.field1", Value(std::string("v1"))},
        {"myMeasurement,tag1=val1,tag2=val2.field2", Value(int64_t{1})}},
       0},
      {"measurementName fieldKey=\"field string value\" 1556813561098000000",
       {{"measurementName.fieldKey", Value(std::string("field string value"))}},
       1556813561098000},
      // Floats: the default numeric type, scientific notation.
      {"myMeasurement fieldKey=1.0", {{"myMeasurement.fieldKey", Value(1.0)}}},
      {"myMeasurement fieldKey=1", {{"myMeasurement.fieldKey", Value(1.0)}}},
      {"myMeasurement fieldKey=-1.234456e+78", {{"myMeasurement.fieldKey", Value(-1.234456e+78)}}},
      {"mymeas value=1.e+78", {{"mymeas", Value(1e78)}}},
      {"mymeas value=1.E+78", {{"mymeas", Value(1e78)}}},
      // Integers, with their limits.
      {"myMeasurement fieldKey=1i", {{"myMeasurement.fieldKey", Value(int64_t{1})}}},
      {"myMeasurement fieldKey=12485903i", {{"myMeasurement.fieldKey", Value(int64_t{12485903})}}},
      {"myMeasurement fieldKey=-12485903i",
       {{"myMeasurement.fieldKey", Value(int64_t{-12485903})}}},
      {"m v=-9223372036854775808i", {{"m.v", Value(std::numeric_limits<int64_t>::min())}}},
      {"m v=9223372036854775807i", {{"m.v", Value(std::numeric_limits<int64_t>::max())}}},
      // Unsigned integers (as far as the wire's signed 64 bits go).
      {"myMeasurement fieldKey=1u", {{"myMeasurement.fieldKey", Value(int64_t{1})}}},
      {"myMeasurement fieldKey=12485903u", {{"myMeasurement.fieldKey", Value(int64_t{12485903})}}},
      {"m v=0u", {{"m.v", Value(int64_t{0})}}},
      {"m v=9223372036854775807u", {{"m.v", Value(std::numeric_limits<int64_t>::max())}}},
      // Strings; quoted booleans are strings.
      {"myMeasurement fieldKey=\"this is a string\"",
       {{"myMeasurement.fieldKey", Value(std::string("this is a string"))}}},
      {"mymeas value=\"stringing along\"", {{"mymeas", Value(std::string("stringing along"))}}},
      {"mymeas value=\"true\"", {{"mymeas", Value(std::string("true"))}}},
      // Booleans, every spelling the reference lists.
      {"myMeasurement fieldKey=true", {{"myMeasurement.fieldKey", Value(true)}}},
      {"myMeasurement fieldKey=false", {{"myMeasurement.fieldKey", Value(false)}}},
      {"myMeasurement fieldKey=t", {{"myMeasurement.fieldKey", Value(true)}}},
      {"myMeasurement fieldKey=f", {{"myMeasurement.fieldKey", Value(false)}}},
      {"myMeasurement fieldKey=TRUE", {{"myMeasurement.fieldKey", Value(true)}}},
      {"myMeasurement fieldKey=FALSE", {{"myMeasurement.fieldKey", Value(false)}}},
      {"m a=T,b=True,c=F,d=False",
       {{"m.a", Value(true)}, {"m.b", Value(true)}, {"m.c", Value(false)}, {"m.d", Value(false)}}},
      // Timestamps: the reference's limits.
      {"myMeasurementName fieldKey=\"fieldValue\" 1556813561098000000",
       {{"myMeasurementName.fieldKey", Value(std::string("fieldValue"))}},
       1556813561098000},
      {"m v=1 -9223372036854775806", {{"m.v", Value(1.0)}}, -9223372036854776},
      {"m v=1 9223372036854775806", {{"m.v", Value(1.0)}}, 9223372036854775},
  };
  for (const auto& c : cases) expect_readings(c);
}

TEST(LineProtocolInfluxReference, TutorialExamples) {
  const std::vector<Reference> cases = {
      {"weather,location=us-midwest temperature=82 1465839830100400200",
       {{"weather,location=us-midwest.temperature", Value(82.0)}},
       1465839830100400},
      {"weather,location=us-midwest,season=summer temperature=82 1465839830100400200",
       {{"weather,location=us-midwest,season=summer.temperature", Value(82.0)}},
       1465839830100400},
      {"weather,location=us-midwest temperature=82,humidity=71 1465839830100400200",
       {{"weather,location=us-midwest.temperature", Value(82.0)},
        {"weather,location=us-midwest.humidity", Value(71.0)}},
       1465839830100400},
      {"weather,location=us-midwest temperature=82",
       {{"weather,location=us-midwest.temperature", Value(82.0)}}},
      {"weather,location=us-midwest temperature=\"too warm\"",
       {{"weather,location=us-midwest.temperature", Value(std::string("too warm"))}}},
      {"weather,location=us-midwest too_hot=true",
       {{"weather,location=us-midwest.too_hot", Value(true)}}},
      // Special characters: escaped, they are data; in the name, percent-encoded.
      {R"(weather,location=us\,midwest temperature=82 1465839830100400200)",
       {{"weather,location=us%2Cmidwest.temperature", Value(82.0)}},
       1465839830100400},
      {R"(weather,location=us-midwest temp\=rature=82 1465839830100400200)",
       {{"weather,location=us-midwest.temp%3Drature", Value(82.0)}},
       1465839830100400},
      {R"(weather,location\ place=us-midwest temperature=82 1465839830100400200)",
       {{"weather,location%20place=us-midwest.temperature", Value(82.0)}},
       1465839830100400},
      {R"(wea\,ther,location=us-midwest temperature=82 1465839830100400200)",
       {{"wea%2Cther,location=us-midwest.temperature", Value(82.0)}},
       1465839830100400},
      {R"(wea\ ther,location=us-midwest temperature=82 1465839830100400200)",
       {{"wea%20ther,location=us-midwest.temperature", Value(82.0)}},
       1465839830100400},
      {R"(weather,location=us-midwest temperature="too\"hot\"" 1465839830100400200)",
       {{"weather,location=us-midwest.temperature", Value(std::string(R"(too"hot")"))}},
       1465839830100400},
      // Backslashes in strings: "\\" is one, a lone one before anything else stays.
      {R"(weather,location=us-midwest temperature_str="too hot/cold" 1465839830100400201)",
       {{"weather,location=us-midwest.temperature_str", Value(std::string("too hot/cold"))}},
       1465839830100400},
      {R"(weather,location=us-midwest temperature_str="too hot\cold" 1465839830100400202)",
       {{"weather,location=us-midwest.temperature_str", Value(std::string(R"(too hot\cold)"))}},
       1465839830100400},
      {R"(weather,location=us-midwest temperature_str="too hot\\cold" 1465839830100400203)",
       {{"weather,location=us-midwest.temperature_str", Value(std::string(R"(too hot\cold)"))}},
       1465839830100400},
      {R"(weather,location=us-midwest temperature_str="too hot\\\cold" 1465839830100400204)",
       {{"weather,location=us-midwest.temperature_str", Value(std::string(R"(too hot\\cold)"))}},
       1465839830100400},
      {R"(weather,location=us-midwest temperature_str="too hot\\\\cold" 1465839830100400205)",
       {{"weather,location=us-midwest.temperature_str", Value(std::string(R"(too hot\\cold)"))}},
       1465839830100400},
      {R"(weather,location=us-midwest temperature_str="too hot\\\\\cold" 1465839830100400206)",
       {{"weather,location=us-midwest.temperature_str", Value(std::string(R"(too hot\\\cold)"))}},
       1465839830100400},
  };
  for (const auto& c : cases) expect_readings(c);
  // A quoted timestamp is refused ("bad timestamp").
  expect_rejected("weather,location=us-midwest temperature=82 \"1465839830100400200\"",
                  LineError::kInvalidTimestamp);
  expect_rejected("mymeas value=9 \"1466625759000000000\"", LineError::kInvalidTimestamp);
}

TEST(LineProtocolInfluxReference, SpecialCharacterExamples) {
  const std::vector<Reference> cases = {
      {R"(my\ Measurement fieldKey="string value")",
       {{"my%20Measurement.fieldKey", Value(std::string("string value"))}}},
      {R"(myMeasurement fieldKey="\"string\" within a string")",
       {{"myMeasurement.fieldKey", Value(std::string(R"("string" within a string)"))}}},
      {"myMeasurement,tagKey=\xf0\x9f\x8d\xad fieldKey=\"Launch \xf0\x9f\x9a\x80\" "
       "1556813561098000000",
       {{"myMeasurement,tagKey=%F0%9F%8D%AD.fieldKey",
         Value(std::string("Launch \xf0\x9f\x9a\x80"))}},
       1556813561098000},
      {"myMeasurement fieldKey=\"Launch \xf0\x9f\x9a\x80\"",
       {{"myMeasurement.fieldKey", Value(std::string("Launch \xf0\x9f\x9a\x80"))}}},
      // The v1 reference's point, element by element (whole, see below): the measurement keeps
      // its quotes, "\e" is a backslash and an e, only '"' needed escaping in the string.
      {"\"measurement\\ with\\ quo\xe2\x9a\xa1\xef\xb8\x8f"
       "es\\ and\\ emoji\" value=1",
       {{"\"measurement%20with%20quo%E2%9A%A1%EF%B8%8Fes%20and%20emoji\"", Value(1.0)}}},
      {"m,tag\\ key\\ with\\ sp\xf0\x9f\x9a\x80"
       "ces=v value=1",
       {{"m,tag%20key%20with%20sp%F0%9F%9A%80ces=v", Value(1.0)}}},
      {R"(m,k=tag\,value\,with"commas" value=1)",
       {{R"(m,k=tag%2Cvalue%2Cwith"commas")", Value(1.0)}}},
      {"m field_k\\ey=\"string field value, only \\\" need be esc\xf0\x9f\x8d\xad"
       "ped\"",
       {{R"(m.field_k\ey)",
         Value(std::string("string field value, only \" need be esc\xf0\x9f\x8d\xad"
                           "ped"))}}},
  };
  for (const auto& c : cases) expect_readings(c);

  // Valid line protocol whose sensor name, once encoded, is over the wire's 64 bytes: refused
  // whole (never cut), counted as invalid_name, the detail saying how long it would be.
  const std::pair<std::string, std::string> too_long[] = {
      {"\"measurement\\ with\\ quo\xe2\x9a\xa1\xef\xb8\x8f"
       "es\\ and\\ emoji\",tag\\ key\\ with\\ "
       "sp\xf0\x9f\x9a\x80"
       "ces=tag\\,value\\,with\"commas\" field_k\\ey=\"string field value, only "
       "\\\" need be esc\xf0\x9f\x8d\xad"
       "ped\"",
       "124 bytes"},
      {R"(myMeasurement,tag\ Key1=tag\ Value1,tag\ Key2=tag\ Value2 fieldKey=100)", "70 bytes"},
  };
  for (const auto& [line, size] : too_long) {
    auto r = parse_line(line, kNow);
    ASSERT_FALSE(r.ok()) << line;
    EXPECT_EQ(r.error().error, LineError::kInvalidName) << r.error().detail;
    EXPECT_NE(r.error().detail.find(size), std::string::npos) << r.error().detail;
  }
}

TEST(LineProtocolInfluxReference, CommentsBlankLinesAndWhitespace) {
  // '#' at the start of a line is a comment, so no measurement can begin with it.
  for (const char* line : {"# This is a comment", "#cpu value=1", "   ", "\t", ""}) {
    const auto p = must_parse(line);
    EXPECT_TRUE(p.readings.empty() && !p.log) << line;
  }
  const auto r = parse_datagram(
      "# This is a comment\nmyMeasurement fieldKey=\"string value\" 1556813561098000000\n", kNow);
  ASSERT_EQ(r.accepted.size(), 1u);
  EXPECT_TRUE(r.rejected.empty());
  // One or more spaces between the sections, blanks before and after the line.
  expect_readings({"cpu  value=1   1000000", {{"cpu", Value(1.0)}}, 1000});
  expect_readings({"  cpu,host=a value=1 1000000 \t ", {{"cpu,host=a", Value(1.0)}}, 1000});
  expect_readings({"cpu value=1 \t", {{"cpu", Value(1.0)}}});
  expect_readings({"cpu value=1\r", {{"cpu", Value(1.0)}}});
  expect_readings({"cpu s=\"two  spaces \" ", {{"cpu.s", Value(std::string("two  spaces "))}}});
}

TEST(LineProtocolInfluxReference, FloatNotations) {
  const std::vector<Reference> cases = {
      {"m v=1e6", {{"m.v", Value(1e6)}}},
      {"m v=-1.5E-3", {{"m.v", Value(-1.5e-3)}}},
      {"m v=.5", {{"m.v", Value(0.5)}}},
      {"m v=5.", {{"m.v", Value(5.0)}}},
      {"m v=-0", {{"m.v", Value(-0.0)}}},
      {"m v=007", {{"m.v", Value(7.0)}}},
      {"m v=1E+2", {{"m.v", Value(100.0)}}},
      {"m v=+1.5", {{"m.v", Value(1.5)}}},
      {"m v=4.9e-324", {{"m.v", Value(4.9e-324)}}},
      // Too small for a double: InfluxDB (Go's ParseFloat) reads it as zero.
      {"m v=1e-999", {{"m.v", Value(0.0)}}},
      {"m v=-1e-999", {{"m.v", Value(-0.0)}}},
      {"m v=0.0000001e-400", {{"m.v", Value(0.0)}}},
  };
  for (const auto& c : cases) expect_readings(c);
  EXPECT_TRUE(std::signbit(std::get<double>(must_parse("m v=-1e-999").readings.at(0).value)));
}

// What InfluxDB refuses, Outpost refuses, each counted under a reason.
TEST(LineProtocolInfluxReference, WhatInfluxRefusesIsRefusedWithAReason) {
  const std::pair<std::string, LineError> cases[] = {
      // Missing parts.
      {"cpu", LineError::kSyntax},
      {"cpu,host=a", LineError::kSyntax},
      {"cpu,host=a ", LineError::kSyntax},
      {",host=a value=1", LineError::kInvalidName},
      {"cpu,=a value=1", LineError::kSyntax},
      {"cpu,host= value=1", LineError::kSyntax},
      {"cpu,host value=1", LineError::kSyntax},
      {"cpu,host=a, value=1", LineError::kSyntax},
      {"cpu =1", LineError::kSyntax},
      {"cpu value", LineError::kSyntax},
      {"cpu value=1,", LineError::kSyntax},
      {"cpu value=1,,b=2", LineError::kSyntax},
      {"cpu value=", LineError::kInvalidValue},
      {"cpu value=,b=1", LineError::kInvalidValue},
      // Tags.
      {"cpu,a=1,a=2 value=1", LineError::kSyntax},
      {"cpu,b=1,a=2,b=3 value=1", LineError::kSyntax},
      {"cpu,unit=Cel,unit=K value=1", LineError::kSyntax},
      {"cpu,a=b=c value=1", LineError::kSyntax},
      // Quotes.
      {"cpu s=\"abc", LineError::kInvalidValue},
      {R"(cpu s="abc\")", LineError::kInvalidValue},
      {"cpu s=\"a b,c=d", LineError::kInvalidValue},
      {"cpu s=\"a\"b", LineError::kInvalidValue},
      // Numbers.
      {"cpu v=9223372036854775808i", LineError::kInvalidValue},
      {"cpu v=-9223372036854775809i", LineError::kInvalidValue},
      {"cpu v=18446744073709551616u", LineError::kInvalidValue},
      {"cpu v=-1u", LineError::kInvalidValue},
      {"cpu v=1.5i", LineError::kInvalidValue},
      {"cpu v=1e3i", LineError::kInvalidValue},
      {"cpu v=+1i", LineError::kInvalidValue},
      {"cpu v=i", LineError::kInvalidValue},
      {"cpu v=1e", LineError::kInvalidValue},
      {"cpu v=.", LineError::kInvalidValue},
      {"cpu v=-", LineError::kInvalidValue},
      {"cpu v=1_000", LineError::kInvalidValue},
      {"cpu v=NaN", LineError::kInvalidValue},
      {"cpu v=nan", LineError::kInvalidValue},
      {"cpu v=Inf", LineError::kInvalidValue},
      {"cpu v=-inf", LineError::kInvalidValue},
      {"cpu v=1e309", LineError::kInvalidValue},
      {"cpu v=-1e309", LineError::kInvalidValue},
      {"cpu v=tRUE", LineError::kInvalidValue},
      {"cpu v=yes", LineError::kInvalidValue},
      {"cpu v='x'", LineError::kInvalidValue},
      // Timestamps: integers within +-(2^63 - 2) ns, nothing after them.
      {"cpu v=1 1.5", LineError::kInvalidTimestamp},
      {"cpu v=1 +15", LineError::kInvalidTimestamp},
      {"cpu v=1 -", LineError::kInvalidTimestamp},
      {"cpu v=1 1e9", LineError::kInvalidTimestamp},
      {"cpu v=1 9223372036854775807", LineError::kInvalidTimestamp},
      {"cpu v=1 -9223372036854775807", LineError::kInvalidTimestamp},
      {"cpu v=1 -9223372036854775808", LineError::kInvalidTimestamp},
      {"cpu v=1 123 456", LineError::kInvalidTimestamp},
  };
  for (const auto& [line, error] : cases) expect_rejected(line, error);
}

// Where the wire is narrower than InfluxDB, a valid line is refused, never cut or rounded.
TEST(LineProtocolInfluxReference, WhatTheWireCannotCarryIsRefusedNotCut) {
  expect_rejected("cpu v=18446744073709551615u", LineError::kInvalidValue);  // InfluxDB's max
  expect_rejected("cpu v=9223372036854775808u", LineError::kInvalidValue);
  expect_rejected("cpu s=\"" + std::string(129, 'x') + "\"", LineError::kInvalidValue);
  expect_rejected("cpu s=\"bell\x07\"", LineError::kInvalidValue);
  expect_rejected("cpu s=\"\xc3\x28\"", LineError::kInvalidValue);  // not UTF-8
  expect_rejected("cpu " + std::string(4093, 'x') + "=1", LineError::kTooLong);
  std::string many = "m ";
  for (int i = 0; i < 65; ++i) many += (i ? ",f" : "f") + std::to_string(i) + "=1";
  expect_rejected(many, LineError::kTooManyFields);
  expect_readings(
      {"cpu s=\"" + std::string(128, 'x') + "\"", {{"cpu.s", Value(std::string(128, 'x'))}}});
}

TEST(LineProtocolInfluxReference, TimestampRangeInEachPrecision) {
  struct Case {
    TimePrecision precision;
    std::string max;      // the largest InfluxDB accepts
    std::string too_big;  // one more
    int64_t max_us;
    int64_t min_us;  // of -max (nanoseconds round down)
  };
  const Case cases[] = {
      {TimePrecision::kNanoseconds, "9223372036854775806", "9223372036854775807", 9223372036854775,
       -9223372036854776},
      {TimePrecision::kMicroseconds, "9223372036854775", "9223372036854776", 9223372036854775,
       -9223372036854775},
      {TimePrecision::kMilliseconds, "9223372036854", "9223372036855", 9223372036854000,
       -9223372036854000},
      {TimePrecision::kSeconds, "9223372036", "9223372037", 9223372036000000, -9223372036000000},
  };
  for (const auto& c : cases) {
    const LineOptions options{c.precision, kNoFloor};
    expect_readings({"m v=1 " + c.max, {{"m.v", Value(1.0)}}, c.max_us}, options);
    expect_readings({"m v=1 -" + c.max, {{"m.v", Value(1.0)}}, c.min_us}, options);
    for (const std::string& t : {c.too_big, "-" + c.too_big}) {
      auto r = parse_line("m v=1 " + t, kNow, options);
      ASSERT_FALSE(r.ok()) << t;
      EXPECT_EQ(r.error().error, LineError::kInvalidTimestamp) << t;
    }
  }
}

TEST(LineProtocolInfluxReference, DuplicateFieldKeysTheLastWins) {
  // InfluxDB keeps one value per field and point: the last one given.
  expect_readings({"m a=1,b=2,a=3", {{"m.a", Value(3.0)}, {"m.b", Value(2.0)}}});
  expect_readings({"m value=1,value=\"two\"", {{"m", Value(std::string("two"))}}});
  expect_readings({R"(m a\ b=1,a\ b=2i)", {{"m.a%20b", Value(int64_t{2})}}});
}

TEST(LineProtocolInfluxReference, TagOrderDoesNotMatter) {
  const std::string want = "m,a=1,b=x%20y,c=3";
  for (const char* line : {R"(m,a=1,b=x\ y,c=3 value=1)", R"(m,c=3,b=x\ y,a=1 value=1)",
                           R"(m,b=x\ y,unit=K,c=3,a=1 value=1)"}) {
    const auto p = must_parse(line);
    ASSERT_EQ(p.readings.size(), 1u) << line;
    EXPECT_EQ(p.readings[0].sensor, want) << line;
  }
}

TEST(LineProtocolInfluxReference, InfluxReservedKeysAreOrdinaryNamesHere) {
  // InfluxDB refuses a "time" tag, drops "time" fields and discards points keyed "_field" or
  // "_measurement": those are its own columns. Outpost's names have no such columns.
  expect_readings({"_m,time=now,_field=f _measurement=1,time=2",
                   {{"_m,_field=f,time=now._measurement", Value(1.0)},
                    {"_m,_field=f,time=now.time", Value(2.0)}}});
}

// ------------------------------------------------------------------ sensor names

TEST(LineNames, PlainLinesKeepTheirNames) {
  const std::pair<const char*, const char*> cases[] = {
      {"temp,room=lab value=21.5", "temp,room=lab"},
      {"cpu,host=a.example.com,cpu=cpu-total usage_idle=97",
       "cpu,cpu=cpu-total,host=a.example.com.usage_idle"},
      {"disk,path=/data used%=5", "disk,path=/data.used%"},
      {"m,t=100% value=1", "m,t=100%"},
      {"m,t=%zz value=1", "m,t=%zz"},
      {"a=b value=1", "a=b"},  // '=' needs no escaping in a measurement
      {"m\"q,t='v' value=1", "m\"q,t='v'"},
  };
  for (const auto& [line, sensor] : cases) {
    const auto p = must_parse(line);
    ASSERT_EQ(p.readings.size(), 1u) << line;
    EXPECT_EQ(p.readings[0].sensor, sensor) << line;
  }
}

TEST(LineNames, EscapedSpacesCommasEqualsAndUtf8ArePercentEncoded) {
  const std::pair<const char*, const char*> cases[] = {
      {R"(env,room=lab\ 1 temp=19.25)", "env,room=lab%201.temp"},
      {R"(temp\ room value=1)", "temp%20room"},
      {"m,site=K\xc3\xb6ln value=1", "m,site=K%C3%B6ln"},
      {"m,t=tab\there value=1", "m,t=tab%09here"},
      {"m,t=\xff value=1", "m,t=%FF"},          // not UTF-8: encoded all the same
      {R"(m,t=a%20b value=1)", "m,t=a%2520b"},  // a '%' that would read as an encoding
      {R"(m,t=100%2 value=1)", "m,t=100%2"},
  };
  for (const auto& [line, sensor] : cases) {
    const auto p = must_parse(line);
    ASSERT_EQ(p.readings.size(), 1u) << line;
    EXPECT_EQ(p.readings[0].sensor, sensor) << line;
  }
}

TEST(LineNames, BackslashesFollowInfluxRulesPerElement) {
  const std::pair<const char*, const char*> cases[] = {
      // In names a backslash escapes only the element's own characters.
      {R"(m,t=a\\b value=1)", R"(m,t=a\\b)"},
      {R"(m,t=a\b value=1)", R"(m,t=a\b)"},
      {R"(m\=x value=1)", R"(m\=x)"},  // a measurement does not escape '='
      {R"(m,t=a\\\ b value=1)", R"(m,t=a\\%20b)"},
      {R"(m,t=a\\,u\=b value=1)", R"(m,t=a\%2Cu%3Db)"},
      {R"(m,t=x\ value=1)", "m,t=x%20value=1"},  // escaped space, so no field set
  };
  for (const auto& [line, sensor] : cases) {
    auto r = parse_line(line, kNow);
    if (std::string_view(sensor).ends_with("value=1")) {
      EXPECT_FALSE(r.ok()) << line;
      continue;
    }
    ASSERT_TRUE(r.ok()) << line << ": " << r.error().detail;
    EXPECT_EQ(r.value().readings.at(0).sensor, sensor) << line;
  }
  // The unit tag is unescaped, not encoded: it is UTF-8 text, not a name.
  const auto p = must_parse(R"(t,unit=deg\ C value=1)");
  EXPECT_EQ(p.readings.at(0).sensor, "t");
  EXPECT_EQ(p.readings.at(0).unit, "deg C");
}

TEST(LineNames, LinesThatUsedToCollideGetDifferentNames) {
  const std::pair<const char*, const char*> pairs[] = {
      {R"(m,t=a\,u\=b value=1)", "m,t=a,u=b value=1"},
      {R"(a\,b=c value=1)", "a,b=c value=1"},
      {R"(m,t=a\ b value=1)", R"(m,t=a%20b value=1)"},
      {R"(m,k\=v=x value=1)", R"(m,k=v\=x value=1)"},
  };
  for (const auto& [a, b] : pairs) {
    const auto pa = must_parse(a);
    const auto pb = parse_line(b, kNow);
    ASSERT_EQ(pa.readings.size(), 1u) << a;
    if (pb.ok()) {
      EXPECT_NE(pa.readings[0].sensor, pb.value().readings.at(0).sensor) << a << " / " << b;
    }
  }
}

TEST(LineNames, SixtyFourBytesFitSixtyFiveAreRefused) {
  expect_readings({std::string(60, 'm') + " abc=1", {{std::string(60, 'm') + ".abc", Value(1.0)}}});
  expect_rejected(std::string(60, 'm') + " abcd=1", LineError::kInvalidName);
  // Encoding counts: 20 escaped spaces are 60 bytes.
  std::string spaces, encoded;
  for (int i = 0; i < 20; ++i) {
    spaces += "\\ ";
    encoded += "%20";
  }
  expect_readings({"m" + spaces + "abc value=1", {{"m" + encoded + "abc", Value(1.0)}}});
  expect_rejected("m" + spaces + "abcd value=1", LineError::kInvalidName);
  // However many tags it takes.
  std::string tags = "m";
  for (int i = 0; i < 40; ++i) tags += ",t" + std::to_string(i) + "=v";
  expect_rejected(tags + " value=1", LineError::kInvalidName);
  expect_rejected(tags + " value=1 1 2", LineError::kInvalidName);
}

// Percent-decoding (WHATWG's lenient form: a '%' not followed by two hex digits is itself).
std::string percent_decode(std::string_view s) {
  const auto hex = [](char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string lp_escape(std::string_view s, bool is_measurement) {
  std::string out;
  for (char c : s) {
    if (c == ',' || c == ' ' || (c == '=' && !is_measurement)) out += '\\';
    out += c;
  }
  return out;
}

TEST(LineNames, DecodingTheNameGivesBackEveryElement) {
  // Random elements over the characters that matter; the name must split on its ',' '=' and
  // last '.', and each part percent-decode to the element: so different lines, different names.
  std::mt19937 rng(20240611);
  const std::string alphabet = "ab.%0F9z ,=\\\"'#:\t\xc3\xa9\xff";
  const auto element = [&](std::size_t max) {
    std::string s;
    const std::size_t n = 1 + rng() % max;
    for (std::size_t i = 0; i < n; ++i) s += alphabet[rng() % alphabet.size()];
    return s;
  };
  std::map<std::string, std::string> seen;  // name -> line
  int checked = 0;
  for (int round = 0; round < 3000; ++round) {
    const std::string measurement = element(6);
    std::vector<std::pair<std::string, std::string>> tags;
    for (std::size_t t = rng() % 3; t > 0; --t) tags.emplace_back(element(4), element(4));
    std::string field = element(4);
    std::erase(field, '.');  // so that the name's last '.' is the field's
    const auto bad = [](const std::string& e) { return e.empty() || e.back() == '\\'; };
    bool skip = bad(measurement) || bad(field) || field == "value" || measurement[0] == '#' ||
                measurement[0] == '\t' || field[0] == '\t' ||
                measurement.find(':') != std::string::npos;
    std::set<std::string> keys;
    for (const auto& [k, v] : tags)
      skip = skip || bad(k) || bad(v) || k == "unit" || !keys.insert(k).second;
    if (skip) continue;
    std::string line = lp_escape(measurement, true);
    for (const auto& [k, v] : tags) line += "," + lp_escape(k, false) + "=" + lp_escape(v, false);
    line += " " + lp_escape(field, false) + "=1i";
    auto r = parse_line(line, kNow);
    if (!r.ok()) {
      ASSERT_EQ(r.error().error, LineError::kInvalidName) << line << ": " << r.error().detail;
      continue;  // too long once encoded
    }
    const std::string& name = r.value().readings.at(0).sensor;
    ASSERT_TRUE(common::is_valid_sensor_name(name)) << name;
    const std::size_t dot = name.rfind('.');
    ASSERT_NE(dot, std::string::npos) << name;
    EXPECT_EQ(percent_decode(name.substr(dot + 1)), field) << line;
    std::vector<std::string> parts;
    std::size_t start = 0;
    const std::string series = name.substr(0, dot);
    for (std::size_t c; (c = series.find(',', start)) != std::string::npos; start = c + 1) {
      parts.push_back(series.substr(start, c - start));
    }
    parts.push_back(series.substr(start));
    ASSERT_EQ(parts.size(), tags.size() + 1) << line << " -> " << name;
    EXPECT_EQ(percent_decode(parts[0]), measurement) << line;
    std::sort(tags.begin(), tags.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    std::set<std::pair<std::string, std::string>> want(tags.begin(), tags.end()), got;
    for (std::size_t i = 1; i < parts.size(); ++i) {
      const std::size_t eq = parts[i].find('=');
      ASSERT_NE(eq, std::string::npos) << name;
      EXPECT_EQ(parts[i].find('=', eq + 1), std::string::npos) << name;
      got.emplace(percent_decode(parts[i].substr(0, eq)), percent_decode(parts[i].substr(eq + 1)));
    }
    EXPECT_EQ(got, want) << line;
    const auto [it, fresh] = seen.emplace(name, line);
    if (!fresh) {
      EXPECT_EQ(it->second, line) << "two lines, one name: " << name;
    }
    ++checked;
  }
  EXPECT_GT(checked, 500);  // the generator must not skip nearly everything
}

TEST(LogLines, SeverityMessageAndKeyValues) {
  const auto p = must_parse("warn: disk almost full | mount=/data dev=sda1");
  ASSERT_TRUE(p.log);
  EXPECT_TRUE(p.readings.empty());
  EXPECT_EQ(p.log->severity, common::Severity::kWarning);
  EXPECT_EQ(p.log->message, "disk almost full");
  EXPECT_EQ(p.log->time_us, kNow);
  EXPECT_EQ(p.log->fields, (std::vector<common::LogField>{{"mount", "/data"}, {"dev", "sda1"}}));
}

TEST(LogLines, EverySeverityNameCaseInsensitive) {
  using S = common::Severity;
  const std::pair<const char*, S> names[] = {
      {"trace", S::kTrace},   {"DEBUG", S::kDebug},     {"Info", S::kInfo},
      {"notice", S::kNotice}, {"warning", S::kWarning}, {"err", S::kError},
      {"error", S::kError},   {"crit", S::kCritical},   {"CRITICAL", S::kCritical}};
  for (const auto& [name, severity] : names) {
    const auto p = must_parse(std::string(name) + ": something happened");
    ASSERT_TRUE(p.log) << name;
    EXPECT_EQ(p.log->severity, severity) << name;
  }
}

TEST(LogLines, BarWithoutKeyValuesBelongsToTheMessage) {
  const auto p = must_parse("info: piping a | b into c");
  ASSERT_TRUE(p.log);
  EXPECT_EQ(p.log->message, "piping a | b into c");
  EXPECT_TRUE(p.log->fields.empty());
}

TEST(LogLines, Malformed) {
  EXPECT_EQ(must_reject("error: "), LineError::kSyntax);
  EXPECT_EQ(must_reject("error:  | k=v"), LineError::kSyntax);
  EXPECT_EQ(must_reject("info: " + std::string(1025, 'm')), LineError::kInvalidValue);
  EXPECT_EQ(must_reject("info: m | a=1 b=2 c=3 d=4 e=5 f=6 g=7 h=8 i=9"),
            LineError::kTooManyFields);
  EXPECT_EQ(must_reject("info: m | k=" + std::string(129, 'v')), LineError::kInvalidValue);
  EXPECT_EQ(must_reject("info: bell\x07"), LineError::kInvalidValue);
}

TEST(LogLines, UnknownSeverityIsLineProtocol) {
  // "loud:" is not a severity, so this is read (and refused) as line protocol.
  EXPECT_EQ(must_reject("loud: something"), LineError::kSyntax);
}

TEST(Datagram, BadLinesAreReportedAndTheRestCarryOn) {
  const auto r = parse_datagram(
      "temp value=1\nbroken\r\n\n# comment\nwarn: hot\nhum value=2 1000\r\ntemp value=x", kNow,
      kNoFloorOptions);
  ASSERT_EQ(r.accepted.size(), 3u);
  EXPECT_EQ(r.accepted[0].readings[0].sensor, "temp");
  EXPECT_TRUE(r.accepted[1].log);
  EXPECT_EQ(r.accepted[2].readings[0].time_us, 1);
  ASSERT_EQ(r.rejected.size(), 2u);
  EXPECT_EQ(r.rejected[0].line_number, 2u);
  EXPECT_EQ(r.rejected[0].rejection.error, LineError::kSyntax);
  EXPECT_EQ(r.rejected[1].line_number, 7u);
  EXPECT_EQ(r.rejected[1].rejection.error, LineError::kInvalidValue);
}

TEST(Datagram, EmptyAndTrailingNewline) {
  EXPECT_TRUE(parse_datagram("", kNow).accepted.empty());
  const auto r = parse_datagram("a value=1\n", kNow);
  EXPECT_EQ(r.accepted.size(), 1u);
  EXPECT_TRUE(r.rejected.empty());
}

TEST(LineErrors, NamesAreUnique) {
  std::set<std::string_view> names;
  for (auto e : kAllLineErrors) EXPECT_TRUE(names.insert(line_error_name(e)).second);
}

}  // namespace
}  // namespace outpost::agent
