// The one place where absl::Status and grpc::Status convert into each other.
//
// Both use the google.rpc.Code numbering, so codes map one to one; messages are kept. Pure
// functions, thread-safe.
#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace strata::common {

// Converts an absl status to the gRPC status a handler returns.
grpc::Status ToGrpcStatus(const absl::Status& status);

// Converts a status a stub returned into an absl status.
absl::Status FromGrpcStatus(const grpc::Status& status);

// Converts a bare google.rpc.Code number plus message (as carried in per-block results).
absl::Status StatusFromCode(int code, std::string_view message);

}  // namespace strata::common
