#include <cuda_runtime.h>

#include <string>

#include "cachenode/gpu/cuda_check.h"

namespace strata::gpu {

Status CudaCheck(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return Status::Ok();
  std::string msg =
      std::string(what) + ": " + cudaGetErrorName(err) + ": " + cudaGetErrorString(err);
  switch (err) {
    case cudaErrorMemoryAllocation:
      return Status(Code::kResourceExhausted, std::move(msg));
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
    case cudaErrorDevicesUnavailable:
      return Unavailable(std::move(msg));
    case cudaErrorInvalidValue:
      return InvalidArgument(std::move(msg));
    default:
      return Internal(std::move(msg));
  }
}

}  // namespace strata::gpu
