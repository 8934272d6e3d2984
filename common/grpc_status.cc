#include "common/grpc_status.h"

#include <string>

#include "common/string_view_interop.h"

namespace strata::common {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

absl::Status StatusFromCode(int code, std::string_view message_in) {
  const absl::string_view message = ToAbsl(message_in);
  if (code == 0) return absl::OkStatus();
  if (code < 0 || code > 16) return absl::UnknownError(message);
  return absl::Status(static_cast<absl::StatusCode>(code), message);
}

}  // namespace strata::common
