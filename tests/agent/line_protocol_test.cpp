// Tests of the agent's input parser: line protocol and log lines, valid and every malformed kind.
#include "outpost/agent/line_protocol.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

namespace outpost::agent {

void PrintTo(LineError e, std::ostream* os) { *os << line_error_name(e); }

namespace {

using common::Value;

constexpr int64_t kNow = 1'700'000'000'000'000;

ParsedLine must_parse(std::string_view line, const LineOptions& options = {}) {
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
  EXPECT_EQ(must_parse("t value=1 17", {TimePrecision::kMicroseconds}).readings[0].time_us, 17);
  // Nanoseconds round down, also before 1970.
  EXPECT_EQ(must_parse("t value=1 -1").readings[0].time_us, -1);
  EXPECT_EQ(must_parse("t value=1 1999").readings[0].time_us, 1);
}

TEST(LineProtocol, TagsAreSortedAndUnitTagBecomesTheUnit) {
  const auto p = must_parse("temp,zone=2,unit=Cel,room=lab value=21.5");
  ASSERT_EQ(p.readings.size(), 1u);
  EXPECT_EQ(p.readings[0].sensor, "temp,room=lab,zone=2");
  EXPECT_EQ(p.readings[0].unit, "Cel");
}

TEST(LineProtocol, EscapesInNamesAndStrings) {
  const auto p = must_parse(R"(my\,meas,tag\=k=v\,1 fi\=eld="say \"hi\" \\ ok")");
  ASSERT_EQ(p.readings.size(), 1u);
  EXPECT_EQ(p.readings[0].sensor, "my,meas,tag=k=v,1.fi=eld");
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
      {"temp\\ room value=1", LineError::kInvalidName},
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
      "temp value=1\nbroken\r\n\n# comment\nwarn: hot\nhum value=2 1000\r\ntemp value=x", kNow);
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
