// The syntax of a libpq connection string, checked without connecting (--check-config).
#pragma once

#include <optional>
#include <string>

namespace outpost::collector {

// What libpq finds wrong with `dsn` (key=value or postgresql:// form), nullopt if it parses.
// Never connects. The message never contains the dsn's password.
std::optional<std::string> dsn_problem(const std::string& dsn);

}  // namespace outpost::collector
