// libpq's own parser on a connection string: the syntax --check-config reports.
#include "pg_dsn.h"

#include <libpq-fe.h>

namespace outpost::collector {

std::optional<std::string> dsn_problem(const std::string& dsn) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(dsn.c_str(), &error);
  if (options) {
    PQconninfoFree(options);
    return std::nullopt;
  }
  std::string message = error ? error : "not a libpq connection string";
  PQfreemem(error);
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  return message;
}

}  // namespace outpost::collector
