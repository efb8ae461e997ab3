// Early-return helpers for absl::Status and absl::StatusOr.
//
//   RETURN_IF_ERROR(DoThing());
//   ASSIGN_OR_RETURN(auto value, ComputeValue());
//
// absl does not ship these publicly, so every room uses this one header.
#ifndef RNNSERVE_SERVER_COMMON_STATUS_MACROS_H_
#define RNNSERVE_SERVER_COMMON_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define RNNSERVE_CONCAT_INNER_(a, b) a##b
#define RNNSERVE_CONCAT_(a, b) RNNSERVE_CONCAT_INNER_(a, b)

// Evaluates `expr` (an absl::Status) and returns it from the enclosing
// function when it is not OK.
#define RETURN_IF_ERROR(expr)                                               \
  do {                                                                      \
    if (::absl::Status rnnserve_status_ = (expr); !rnnserve_status_.ok()) { \
      return rnnserve_status_;                                              \
    }                                                                       \
  } while (false)

// Evaluates `rexpr` (an absl::StatusOr<T>); returns its status when it is not
// OK, otherwise moves the value into `lhs`, which may declare a variable.
#define ASSIGN_OR_RETURN(lhs, rexpr) \
  RNNSERVE_ASSIGN_OR_RETURN_IMPL_(   \
      RNNSERVE_CONCAT_(rnnserve_statusor_, __LINE__), lhs, rexpr)

#define RNNSERVE_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                    \
  if (!statusor.ok()) return std::move(statusor).status();    \
  lhs = std::move(statusor).value()

#endif  // RNNSERVE_SERVER_COMMON_STATUS_MACROS_H_
