// Status values returned by numeric code and parsers (STYLE.md 2.8): the CLI
// maps any non-ok status to one line on stderr and exit code 2.
#pragma once

#include <string>
#include <utility>

namespace mdnstab {

enum class Code {
  kOk = 0,
  kGateOutOfRange,   // a gate outside its closed range, or not finite
  kInvalidArgument,  // malformed option, axis, metric, shape
  kIoError,          // unreadable input, unwritable output
  kTooLarge,         // would exceed memory, disk or a sane size
  kNoConvergence,    // an iterative solver did not converge
  kNumericalIssue,   // NaN or inf met during a computation
  kUnavailable,      // e.g. no GPU present
};

// A status dropped on the floor is how failures turn into silent zeros: the compiler
// warns (g++ only: nvcc warns on the implicit assignment operators of such a type).
#if defined(__CUDACC__)
#define MDNSTAB_NODISCARD
#else
#define MDNSTAB_NODISCARD [[nodiscard]]
#endif

struct MDNSTAB_NODISCARD Status {
  Code code = Code::kOk;
  std::string message;

  static Status ok() { return {}; }
  bool is_ok() const { return code == Code::kOk; }
};

inline Status error(Code code, std::string message) { return Status{code, std::move(message)}; }

// A value or the status explaining why there is none.
template <class T>
struct MDNSTAB_NODISCARD Result {
  Status status;
  T value{};

  Result(T v) : value(std::move(v)) {}  // NOLINT: implicit by design
  Result(Status s) : status(std::move(s)) {}  // NOLINT
  bool is_ok() const { return status.is_ok(); }
};

}  // namespace mdnstab
