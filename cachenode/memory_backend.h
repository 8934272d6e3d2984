// Memory regions that slab tiers allocate from: host memory (the DRAM arena, or an emulated HBM
// pool) and GPU device memory (the real HBM pool).
//
// The CUDA calls behind this header live in cachenode/gpu/ (device_memory.h, kv_cuda.h), which
// checks each one; their status becomes absl::Status in gpu_bridge.h. Without CUDA at build time,
// or without a usable GPU at run time, the GPU functions return Unavailable with the reason, and
// callers fall back explicitly (and say so).
//
// A backend is created once and never resized. Write/ReadInto may be called concurrently for
// disjoint ranges.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "absl/status/statusor.h"

namespace strata::cachenode {

class MemoryBackend {
 public:
  virtual ~MemoryBackend() = default;
  virtual uint64_t size() const = 0;
  // Non-null when the region is addressable from the host (readers get spans straight into it).
  virtual std::byte* host_base() = 0;
  // Copies into / out of the region. Range errors are bugs in the caller (checked).
  virtual absl::Status Write(uint64_t offset, std::span<const std::byte> data) = 0;
  virtual absl::Status ReadInto(uint64_t offset, std::span<std::byte> out) = 0;
  // One line for logs: "memfd 1.00 GiB, pinned", "cuda device 0 (H100), 8.00 GiB".
  virtual std::string Describe() const = 0;
  // The memfd behind a shared host region, for handing to co-located processes (which map it
  // themselves); -1 for any other region. Owned by the backend: dup() it to keep it.
  virtual int shared_fd() const { return -1; }
  // The address GPU kernels use for the region: the device address of the HBM pool, or of a host
  // region pinned and mapped for the GPU; 0 when kernels cannot reach it.
  virtual uint64_t device_address() const { return 0; }
};

struct HostMemoryOptions {
  uint64_t bytes = 0;
  // Back the region with a memfd so co-located processes can map it (the same-node shared-memory
  // path); otherwise anonymous private memory.
  bool shared_memfd = true;
  // Register with CUDA as pinned memory when a GPU is usable, so H2D/D2H copies run at PCIe speed.
  bool pin_for_gpu = true;
  std::string name = "strata-dram";
};

// Maps `bytes` of host memory. Pages are touched lazily, so resident memory grows with use.
// ResourceExhausted when the mapping fails.
absl::StatusOr<std::unique_ptr<MemoryBackend>> CreateHostMemory(const HostMemoryOptions& options);

// True when CUDA is compiled in and a device is usable; otherwise false with the reason in *why.
bool GpuUsable(std::string* why);

// cudaMalloc's `bytes` on the current device once. Unavailable when no GPU is usable.
absl::StatusOr<std::unique_ptr<MemoryBackend>> CreateGpuMemory(uint64_t bytes);

// Pins an existing host range and maps it for GPU kernels (cudaHostRegister, mapped); returns the
// device address of `base`. Unavailable without a GPU. UnpinHostMemory undoes it.
absl::StatusOr<uint64_t> PinHostMemory(void* base, uint64_t bytes);
void UnpinHostMemory(void* base);

}  // namespace strata::cachenode
