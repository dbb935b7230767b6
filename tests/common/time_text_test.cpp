// Tests of the command-line times: RFC 3339 with offsets and fractions, dates, Unix seconds,
// durations before now, and the text the tools print read back to the same instant.
#include "outpost/common/time_text.h"

#include <gtest/gtest.h>

namespace outpost::common {
namespace {

// 2026-12-01T20:31:05.123Z
constexpr int64_t kT = 1'796'157'065'123'000;
constexpr int64_t kNow = 1'796'160'000'000'000;

TEST(ParseTime, Rfc3339WithMillisecondsAndZ) {
  EXPECT_EQ(parse_time_us("2026-12-01T20:31:05.123Z", kNow), kT);
  EXPECT_EQ(parse_time_us("2026-12-01t20:31:05.123z", kNow), kT);
}

TEST(ParseTime, OffsetsAreSubtractedToGiveUtc) {
  EXPECT_EQ(parse_time_us("2026-12-01T21:31:05.123+01:00", kNow), kT);
  EXPECT_EQ(parse_time_us("2026-12-01T15:01:05.123-05:30", kNow), kT);
  EXPECT_EQ(parse_time_us("2026-12-01T21:31:05.123+0100", kNow), kT);
  EXPECT_EQ(parse_time_us("2026-12-01T20:31:05.123+00:00", kNow), kT);
  // An offset that carries the instant into the previous day and year.
  EXPECT_EQ(parse_time_us("2027-01-01T01:00:00+02:00", kNow),
            parse_time_us("2026-12-31T23:00:00Z", kNow));
}

TEST(ParseTime, WithoutFractionOrOffset) {
  EXPECT_EQ(parse_time_us("2026-12-01T20:31:05Z", kNow), kT - 123'000);
  EXPECT_EQ(parse_time_us("2026-12-01T20:31:05", kNow), kT - 123'000);  // UTC
  EXPECT_EQ(parse_time_us("2026-12-01 20:31:05", kNow), kT - 123'000);
  EXPECT_EQ(parse_time_us("2026-12-01", kNow),
            kT - (20 * 3600 + 31 * 60 + 5) * 1'000'000LL - 123'000);
}

TEST(ParseTime, FractionOfOneToNineDigitsKeepsMicroseconds) {
  const int64_t base = kT - 123'000;
  EXPECT_EQ(parse_time_us("2026-12-01T20:31:05.1Z", kNow), base + 100'000);
  EXPECT_EQ(parse_time_us("2026-12-01T20:31:05.123456Z", kNow), base + 123'456);
  EXPECT_EQ(parse_time_us("2026-12-01T20:31:05.123456789Z", kNow), base + 123'456);
  EXPECT_EQ(parse_time_us("2026-12-01T20:31:05,5Z", kNow), base + 500'000);
  EXPECT_EQ(parse_time_us("2026-12-01T20:31:05.Z", kNow), std::nullopt);
  EXPECT_EQ(parse_time_us("2026-12-01T20:31:05.1234567890Z", kNow), std::nullopt);
}

TEST(ParseTime, LeapYears) {
  EXPECT_EQ(parse_time_us("2028-02-29", kNow), 1'835'395'200'000'000);
  EXPECT_EQ(parse_time_us("2000-02-29", kNow), 951'782'400'000'000);
  EXPECT_EQ(parse_time_us("2026-02-29", kNow), std::nullopt);
  EXPECT_EQ(parse_time_us("1900-02-29", kNow), std::nullopt);
  EXPECT_EQ(parse_time_us("2028-03-01", kNow), *parse_time_us("2028-02-29", kNow) + 86'400'000'000);
}

TEST(ParseTime, DatesAndTimesThatDoNotExistAreRefused) {
  for (const char* bad : {"2026-13-01", "2026-00-10", "2026-04-31", "2026-12-00",
                          "2026-12-01T24:00:00Z", "2026-12-01T23:60:00Z", "2026-12-01T23:59:60Z",
                          "2026-12-01T20:31:05+24:00", "2026-12-01T20:31:05+01:60"}) {
    EXPECT_EQ(parse_time_us(bad, kNow), std::nullopt) << bad;
  }
}

TEST(ParseTime, JunkIsRefused) {
  for (const char* bad : {"",
                          "yesterday",
                          "Now",
                          "1 h",
                          "1x",
                          "h",
                          "-",
                          "--1h",
                          "1h1h",
                          "30m1h",
                          "1.5h",
                          "2026-1-1",
                          "2026-12-01T20:31",
                          "2026-12-01T20:31:05Q",
                          "2026-12-01T20:31:05Z ",
                          " 2026-12-01",
                          "2026-12-01T20:31:05+1",
                          "2026-12-01T20:31:05+01:00:00",
                          "12abc",
                          "1764621065.",
                          "99999999999999999999h"}) {
    EXPECT_EQ(parse_time_us(bad, kNow), std::nullopt) << "'" << bad << "'";
  }
}

TEST(ParseTime, UnixSeconds) {
  EXPECT_EQ(parse_time_us("1796157065", kNow), kT - 123'000);
  EXPECT_EQ(parse_time_us("1796157065.123", kNow), kT);
  EXPECT_EQ(parse_time_us("0", kNow), 0);
}

TEST(ParseTime, DurationsMeanThatLongBeforeNow) {
  EXPECT_EQ(parse_time_us("1h", kNow), kNow - 3'600'000'000);
  EXPECT_EQ(parse_time_us("30m", kNow), kNow - 1'800'000'000);
  EXPECT_EQ(parse_time_us("90s", kNow), kNow - 90'000'000);
  EXPECT_EQ(parse_time_us("2d", kNow), kNow - 172'800'000'000);
  EXPECT_EQ(parse_time_us("1h30m", kNow), kNow - 5'400'000'000);
  EXPECT_EQ(parse_time_us("1d2h3m4s500ms", kNow),
            kNow - (((26 * 60 + 3) * 60 + 4) * 1'000'000LL + 500'000));
  EXPECT_EQ(parse_time_us("-1h", kNow), kNow - 3'600'000'000);  // the older spelling
  EXPECT_EQ(parse_time_us("0s", kNow), kNow);
  EXPECT_EQ(parse_time_us("now", kNow), kNow);
}

TEST(ParseTime, WhatTheToolsPrintReadsBackToTheSameInstant) {
  for (int64_t t : {kT, int64_t{951'782'400'000'000}, int64_t{1'000}, kT + 86'400'000'000 * 60}) {
    const std::string text = format_time_us(t);
    EXPECT_EQ(parse_time_us(text, kNow), t) << text;
  }
}

TEST(FormatTime, Rfc3339UtcWithMilliseconds) {
  EXPECT_EQ(format_time_us(kT), "2026-12-01T20:31:05.123Z");
  EXPECT_EQ(format_time_us(kT + 999), "2026-12-01T20:31:05.123Z");  // cut, not rounded
  EXPECT_EQ(format_time_us(951'782'400'000'000), "2000-02-29T00:00:00.000Z");
  EXPECT_EQ(format_time_us(-1'000'000), "1969-12-31T23:59:59.000Z");
  EXPECT_EQ(format_time_us(0), "-");
}

TEST(CompoundDuration, UnitsLargestFirstEachOnce) {
  EXPECT_EQ(parse_compound_duration_us("2d12h"), 216'000'000'000);
  EXPECT_EQ(parse_compound_duration_us("250us"), 250);
  EXPECT_EQ(parse_compound_duration_us("1m500ms"), 60'500'000);
  EXPECT_EQ(parse_compound_duration_us("1s1m"), std::nullopt);
  EXPECT_EQ(parse_compound_duration_us("10"), std::nullopt);
  EXPECT_EQ(parse_compound_duration_us("106751992d"), std::nullopt);  // past int64 microseconds
}

TEST(TimeError, NamesTheFlagTheTextAndTheAcceptedForms) {
  const std::string e = time_error("--since", "yesterday");
  EXPECT_NE(e.find("--since: cannot read 'yesterday'"), std::string::npos) << e;
  EXPECT_NE(e.find("2026-12-01T20:31:05.123Z"), std::string::npos) << e;
  EXPECT_NE(e.find("1h30m"), std::string::npos) << e;
}

}  // namespace
}  // namespace outpost::common
