// The deadline and retry rules every Strata gRPC client follows (CacheNodeClient, RouterClient).
//
// One logical call has one deadline that covers all its attempts and the backoff between them.
// Only UNAVAILABLE is retried (after 50 ms, 100 ms, 200 ms, ...): every other code says the same
// server would give the same answer again. A retry is only safe for a call whose repetition is
// harmless; the caller decides that, per call, through `retryable`. Free functions, thread-safe
// as far as the stub and callbacks passed in are.
#pragma once

#include <grpcpp/client_context.h>
#include <grpcpp/support/status.h>

#include <string_view>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/grpc_status.h"

namespace strata::clients {

// The bounds of one logical call, as a client's options give them.
struct RetryBudget {
  absl::Duration deadline;  // covers every attempt and backoff
  int max_attempts = 1;     // attempts in all, the first included

  // InvalidArgument naming the bad field, e.g. "<owner> deadline must be positive, got 0".
  absl::Status Validate(std::string_view owner) const;
};

// Runs `attempt` until it succeeds, fails with a code other than UNAVAILABLE, sets
// *retryable = false, uses max_attempts, or the next backoff would end past the deadline. Returns
// the last attempt's status. `attempt` gets the call's absolute deadline for its context.
absl::Status WithRetries(
    const RetryBudget& budget,
    absl::FunctionRef<absl::Status(absl::Time deadline, bool* retryable)> attempt);

// Sets `deadline` on a fresh context (InfiniteFuture leaves it unset).
void SetDeadline(grpc::ClientContext& context, absl::Time deadline);

// One unary RPC `(stub.*method)(request) -> *response` under WithRetries, with a fresh context
// per attempt; the gRPC status is converted by common::FromGrpcStatus. On error *response is
// unspecified.
template <typename Stub, typename Request, typename Response>
absl::Status CallUnary(const RetryBudget& budget, Stub& stub,
                       grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&,
                                                    Response*),
                       const Request& request, Response* response) {
  return WithRetries(budget, [&](absl::Time deadline, bool*) {
    grpc::ClientContext context;
    SetDeadline(context, deadline);
    return common::FromGrpcStatus((stub.*method)(&context, request, response));
  });
}

}  // namespace strata::clients
