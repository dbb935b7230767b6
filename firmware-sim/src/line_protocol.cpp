// Agent input lines for agent mode.
#include "outpost/sim/line_protocol.h"

#include <charconv>
#include <variant>

namespace outpost::sim {
namespace {

void append_escaped(std::string& out, std::string_view text) {
  for (char c : text) {
    if (c == ',' || c == '=' || c == ' ' || c == '\\') out += '\\';
    out += c;
  }
}

std::string_view severity_word(common::Severity s) {
  switch (s) {
    case common::Severity::kTrace:
      return "trace";
    case common::Severity::kDebug:
      return "debug";
    case common::Severity::kNotice:
      return "notice";
    case common::Severity::kWarning:
      return "warn";
    case common::Severity::kError:
      return "error";
    case common::Severity::kCritical:
      return "crit";
    default:
      return "info";
  }
}

}  // namespace

void append_reading_line(std::string& out, std::string_view name, std::string_view unit,
                         const common::Value& value, int64_t time_us) {
  append_escaped(out, name);
  if (!unit.empty()) {
    out += ",unit=";
    append_escaped(out, unit);
  }
  out += " value=";
  char buf[32];
  if (const double* d = std::get_if<double>(&value)) {
    auto r = std::to_chars(buf, buf + sizeof buf, *d);
    out.append(buf, r.ptr);
  } else if (const int64_t* i = std::get_if<int64_t>(&value)) {
    auto r = std::to_chars(buf, buf + sizeof buf, *i);
    out.append(buf, r.ptr);
    out += 'i';
  } else if (const bool* b = std::get_if<bool>(&value)) {
    out += *b ? "true" : "false";
  } else {
    out += '"';
    for (char c : std::get<std::string>(value)) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += ' ';
  auto r = std::to_chars(buf, buf + sizeof buf, time_us);
  out.append(buf, r.ptr);
  out += '\n';
}

void append_log_line(std::string& out, const common::LogRecord& record) {
  out += severity_word(record.severity);
  out += ": ";
  out += record.message;
  if (!record.fields.empty()) {
    out += " |";
    for (const auto& f : record.fields) {
      out += ' ';
      out += f.key;
      out += '=';
      out += f.value;
    }
  }
  out += '\n';
}

}  // namespace outpost::sim
