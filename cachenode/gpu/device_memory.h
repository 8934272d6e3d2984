// Device memory for the HBM tier: one cudaMalloc'ed region allocated once (DeviceBuffer) and
// blocking copies in and out of it that run on the calling thread's own CUDA stream
// (cudaStreamPerThread), so copies made by different serving threads overlap each other instead
// of queueing on the legacy default stream. Copies from or to pinned host memory (the DRAM arena
// once RegisterHostMapped) run at DMA speed; pageable memory goes through the driver's staging.
//
// Builds without Abseil; without CUDA every function returns Unavailable. Thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "cachenode/gpu/gpu_status.h"

namespace strata::gpu {

class DeviceBuffer {
 public:
  // cudaMalloc's `bytes` on the current device. Unavailable without a usable GPU,
  // ResourceExhausted when the device has not that much free.
  static Status Allocate(uint64_t bytes, std::unique_ptr<DeviceBuffer>* out);
  ~DeviceBuffer();  // cudaFree
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  uint64_t address() const { return address_; }
  uint64_t size() const { return bytes_; }
  // "device 0 (NVIDIA H100 80GB HBM3)".
  const std::string& device() const { return device_; }

 private:
  DeviceBuffer(uint64_t address, uint64_t bytes, std::string device)
      : address_(address), bytes_(bytes), device_(std::move(device)) {}
  uint64_t address_;
  uint64_t bytes_;
  std::string device_;
};

// Blocking copies on the calling thread's stream; the first CUDA error.
Status CopyToDevice(uint64_t device_dst, const void* host_src, uint64_t bytes);
Status CopyToHost(void* host_dst, uint64_t device_src, uint64_t bytes);

}  // namespace strata::gpu
