// Status and Result<T>: how core code reports failure without exceptions.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace outpost::common {

// A failure with a human-readable message. Core code returns it; adapters turn
// exceptions from third-party libraries into it at the boundary.
struct Error {
  std::string message;
};

// Either a value of type T or an error of type E. Check ok() before value().
// Calling value() on an error (or error() on a value) is a programmer error.
template <typename T, typename E = Error>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(E error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT: implicit by design

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  const E& error() const {
    assert(!ok());
    return std::get<1>(v_);
  }

 private:
  std::variant<T, E> v_;
};

// Success, or an error of type E.
template <typename E = Error>
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(E error) : error_(std::move(error)), ok_(false) {}  // NOLINT: implicit by design

  static Status Ok() { return Status(); }
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const E& error() const {
    assert(!ok_);
    return error_;
  }

 private:
  E error_{};
  bool ok_ = true;
};

}  // namespace outpost::common
