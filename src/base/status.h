// base/status: the error type of the whole library. No exceptions cross a
// bitlens API; functions that can fail return Status or Result<T>, and callers
// propagate with BL_TRY / BL_ASSIGN_OR_RETURN.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>

namespace bitlens {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,  // bad input from the user or a file: CLI exits 2
  kNotFound,         // a file, tensor or key is missing: CLI exits 2
  kOutOfRange,       // e.g. prompt longer than the context: CLI exits 2
  kUnsupported,      // valid input we cannot handle (yet): CLI exits 2
  kIoError,          // the OS refused a read or write: CLI exits 1
  kInternal,         // a bug: CLI exits 1
  kCancelled,        // interrupted by the user: CLI exits 130
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // Prepends context such as a file name: "model.safetensors: " + message.
  Status WithContext(const std::string& context) const {
    if (ok()) return *this;
    return Status(code_, context + ": " + message_);
  }

  // Exit code the CLI uses for this status (2 = bad input, 1 = internal).
  int ExitCode() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
inline Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status OutOfRange(std::string m) { return {StatusCode::kOutOfRange, std::move(m)}; }
inline Status Unsupported(std::string m) { return {StatusCode::kUnsupported, std::move(m)}; }
inline Status IoError(std::string m) { return {StatusCode::kIoError, std::move(m)}; }
inline Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
inline Status Cancelled(std::string m) { return {StatusCode::kCancelled, std::move(m)}; }

// Result<T>: a value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT
    assert(!status_.ok() && "Result constructed from an OK status without a value");
    if (status_.ok()) status_ = Internal("Result constructed from OK status without a value");
  }

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }

  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace bitlens

#define BL_CONCAT_INNER(a, b) a##b
#define BL_CONCAT(a, b) BL_CONCAT_INNER(a, b)

// Returns early from the enclosing function when `expr` (a Status) is not OK.
#define BL_TRY(expr)                                   \
  do {                                                 \
    ::bitlens::Status bl_status_ = (expr);             \
    if (!bl_status_.ok()) return bl_status_;           \
  } while (0)

// `lhs = value of rexpr` where rexpr is a Result<T>; returns its Status on error.
#define BL_ASSIGN_OR_RETURN(lhs, rexpr) \
  BL_ASSIGN_OR_RETURN_IMPL(BL_CONCAT(bl_result_, __LINE__), lhs, rexpr)
#define BL_ASSIGN_OR_RETURN_IMPL(tmp, lhs, rexpr) \
  auto tmp = (rexpr);                             \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(tmp).value()
