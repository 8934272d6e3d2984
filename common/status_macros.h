// Early-return helpers for absl::Status / absl::StatusOr<T>.
//
// Debian 12's Abseil (20220623) ships no status macros, so Strata keeps these two. Both evaluate
// their expression exactly once.
//
//   STRATA_RETURN_IF_ERROR(DoThing());                 // returns the status when it is not OK
//   STRATA_ASSIGN_OR_RETURN(auto fd, OpenFile(path));  // declares/assigns on OK, returns otherwise
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define STRATA_STATUS_CONCAT_INNER_(a, b) a##b
#define STRATA_STATUS_CONCAT_(a, b) STRATA_STATUS_CONCAT_INNER_(a, b)

#define STRATA_RETURN_IF_ERROR(expr)                 \
  do {                                               \
    ::absl::Status strata_status_ = (expr);          \
    if (!strata_status_.ok()) return strata_status_; \
  } while (false)

#define STRATA_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return std::move(tmp).status();      \
  lhs = std::move(tmp).value()

#define STRATA_ASSIGN_OR_RETURN(lhs, expr) \
  STRATA_ASSIGN_OR_RETURN_IMPL_(STRATA_STATUS_CONCAT_(strata_statusor_, __LINE__), lhs, expr)
