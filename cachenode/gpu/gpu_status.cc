#include "cachenode/gpu/gpu_status.h"

namespace strata::gpu {

std::string Status::ToString() const {
  const char* name = "UNKNOWN";
  switch (code_) {
    case Code::kOk:
      return "OK";
    case Code::kInvalidArgument:
      name = "INVALID_ARGUMENT";
      break;
    case Code::kOutOfRange:
      name = "OUT_OF_RANGE";
      break;
    case Code::kResourceExhausted:
      name = "RESOURCE_EXHAUSTED";
      break;
    case Code::kFailedPrecondition:
      name = "FAILED_PRECONDITION";
      break;
    case Code::kInternal:
      name = "INTERNAL";
      break;
    case Code::kUnavailable:
      name = "UNAVAILABLE";
      break;
  }
  return std::string(name) + ": " + message_;
}

}  // namespace strata::gpu
