// Agent-mode input lines: every value type, escaping, and log lines with fields.
#include "outpost/sim/line_protocol.h"

#include <gtest/gtest.h>

namespace outpost::sim {
namespace {

TEST(ReadingLine, EachValueTypeUsesTheAgentsSyntaxWithMicrosecondTime) {
  std::string out;
  append_reading_line(out, "temp", "Cel", 21.37, 1'700'000'000'000'000);
  append_reading_line(out, "count", "", int64_t{42}, 5);
  append_reading_line(out, "door", "", true, 6);
  append_reading_line(out, "mode", "", std::string("say \"hi\" \\"), 7);
  EXPECT_EQ(out,
            "temp,unit=Cel value=21.37 1700000000000000\n"
            "count value=42i 5\n"
            "door value=true 6\n"
            "mode value=\"say \\\"hi\\\" \\\\\" 7\n");
}

TEST(ReadingLine, NamesAndUnitsAreEscaped) {
  std::string out;
  append_reading_line(out, "a,b=c d", "%RH", 0.5, 1);
  EXPECT_EQ(out, "a\\,b\\=c\\ d,unit=%RH value=0.5 1\n");
}

TEST(LogLine, SeverityMessageAndFields) {
  std::string out;
  append_log_line(out, {0, common::Severity::kWarning, "disk almost full", {{"free_kb", "12"}}});
  append_log_line(out, {0, common::Severity::kCritical, "hot", {}});
  EXPECT_EQ(out, "warn: disk almost full | free_kb=12\ncrit: hot\n");
}

}  // namespace
}  // namespace outpost::sim
