#include "clients/rpc_retry.h"

#include "absl/time/clock.h"
#include "common/string_view_interop.h"

namespace strata::clients {

absl::Status RetryBudget::Validate(std::string_view owner) const {
  if (deadline <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        common::Concat(owner, " deadline must be positive, got ", absl::FormatDuration(deadline)));
  }
  if (max_attempts < 1) {
    return absl::InvalidArgumentError(
        common::Concat(owner, " max_attempts must be at least 1, got ", max_attempts));
  }
  return absl::OkStatus();
}

absl::Status WithRetries(
    const RetryBudget& budget,
    absl::FunctionRef<absl::Status(absl::Time deadline, bool* retryable)> attempt) {
  const absl::Time deadline = absl::Now() + budget.deadline;
  absl::Duration backoff = absl::Milliseconds(50);
  for (int n = 1;; ++n) {
    bool retryable = true;
    absl::Status status = attempt(deadline, &retryable);
    if (!absl::IsUnavailable(status) || !retryable || n >= budget.max_attempts ||
        absl::Now() + backoff >= deadline) {
      return status;
    }
    absl::SleepFor(backoff);
    backoff *= 2;
  }
}

void SetDeadline(grpc::ClientContext& context, absl::Time deadline) {
  if (deadline != absl::InfiniteFuture()) context.set_deadline(absl::ToChronoTime(deadline));
}

}  // namespace strata::clients
