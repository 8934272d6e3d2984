#include <cuda_runtime.h>

#include "cachenode/gpu/cuda_check.h"
#include "cachenode/gpu/device_memory.h"
#include "cachenode/gpu/kv_cuda.h"

namespace strata::gpu {

Status DeviceBuffer::Allocate(uint64_t bytes, std::unique_ptr<DeviceBuffer>* out) {
  GpuDevice device;
  if (Status s = CurrentDevice(&device); !s.ok()) return s;
  if (bytes == 0) return InvalidArgument("device buffer of 0 bytes");
  void* base = nullptr;
  STRATA_CUDA_RETURN_IF_ERROR(cudaMalloc(&base, bytes));
  out->reset(new DeviceBuffer(reinterpret_cast<uintptr_t>(base), bytes,
                              "device " + std::to_string(device.ordinal) + " (" + device.name + ")"));
  return Status::Ok();
}

DeviceBuffer::~DeviceBuffer() { cudaFree(reinterpret_cast<void*>(static_cast<uintptr_t>(address_))); }

namespace {

Status Copy(void* dst, const void* src, uint64_t bytes, cudaMemcpyKind kind, const char* what) {
  if (Status s = CudaCheck(cudaMemcpyAsync(dst, src, bytes, kind, cudaStreamPerThread), what);
      !s.ok()) {
    return s;
  }
  return CudaCheck(cudaStreamSynchronize(cudaStreamPerThread), "cudaStreamSynchronize");
}

}  // namespace

Status CopyToDevice(uint64_t device_dst, const void* host_src, uint64_t bytes) {
  return Copy(reinterpret_cast<void*>(static_cast<uintptr_t>(device_dst)), host_src, bytes,
              cudaMemcpyHostToDevice, "cudaMemcpyAsync H2D");
}

Status CopyToHost(void* host_dst, uint64_t device_src, uint64_t bytes) {
  return Copy(host_dst, reinterpret_cast<const void*>(static_cast<uintptr_t>(device_src)), bytes,
              cudaMemcpyDeviceToHost, "cudaMemcpyAsync D2H");
}

}  // namespace strata::gpu
