// Status values: every failure is an Error that says which operation failed,
// with its arguments, the errno it got (0 when it is not a syscall failure),
// and the context it happened in (task, stage, file, entry).
#pragma once

#include <cerrno>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace ro {

struct Error {
  std::string what;     // operation and arguments, or the problem in words
  int err = 0;          // errno, 0 for a logical error
  std::string context;  // "task 12, stage files" / "pstree.img entry 3"

  // "context: what: strerror(err)", each part only when present.
  std::string ToString() const;
  // Adds an outer context: "outer: inner-context".
  Error& Within(std::string_view outer);
};

// A syscall failed: captures errno at the call site.
Error SysError(std::string what);
Error SysError(std::string what, int err);
// A logical failure (bad input, broken invariant); no errno.
Error Fail(std::string what);

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}                 // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}             // NOLINT
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const& { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error error) : error_(std::move(error)) {}  // NOLINT: implicit by design
  static Status Ok() { return {}; }
  bool ok() const { return !error_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Error& error() const& { return *error_; }
  Error&& error() && { return std::move(*error_); }

 private:
  std::optional<Error> error_;
};

}  // namespace ro

// Stops the calling function with the error of a failed Status or Result.
#define RO_TRY(expr)                                   \
  do {                                                 \
    auto ro_try_result_ = (expr);                      \
    if (!ro_try_result_.ok()) {                        \
      return std::move(ro_try_result_).error();        \
    }                                                  \
  } while (0)

#define RO_CONCAT_INNER_(a, b) a##b
#define RO_CONCAT_(a, b) RO_CONCAT_INNER_(a, b)
// `RO_ASSIGN_OR_RETURN(auto fd, OpenSomething());`
#define RO_ASSIGN_OR_RETURN(lhs, expr) \
  RO_ASSIGN_OR_RETURN_IMPL_(RO_CONCAT_(ro_result_, __LINE__), lhs, expr)
#define RO_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return std::move(tmp).error();   \
  lhs = std::move(tmp).value()
