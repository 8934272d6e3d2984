// The one conversion of CUDA runtime errors to gpu::Status, for the .cu files of this folder only.
// Include it after <cuda_runtime.h>.
#pragma once

#include "cachenode/gpu/gpu_status.h"

namespace strata::gpu {

// OK for cudaSuccess; otherwise "what: cudaErrorName: description" with the code that fits
// (ResourceExhausted for allocation failures, Unavailable for no device or driver, InvalidArgument
// for invalid values, Internal for the rest).
Status CudaCheck(cudaError_t err, const char* what);

#define STRATA_CUDA_RETURN_IF_ERROR(expr)                                           \
  do {                                                                              \
    if (::strata::gpu::Status s_ = ::strata::gpu::CudaCheck((expr), #expr); !s_.ok()) \
      return s_;                                                                    \
  } while (0)

}  // namespace strata::gpu
