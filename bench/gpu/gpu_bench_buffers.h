// The memory strata-gpu-bench moves and the checks around every CUDA call it makes itself.
//
// Three owners of bytes, each freeing what it allocated (movable, not copyable):
//   - HostBuffer: plain page-aligned host memory (the CPU reference's side of each comparison).
//   - DeviceBuffer: cudaMalloc'd device memory (engine caches, device payloads).
//   - MappedHostBuffer: mmap'd host memory pinned and mapped with gpu::RegisterHostMapped, the path
//     the cache node takes for its DRAM arena; kernels reach it at device_address().
// BENCH_CUDA / BENCH_RETURN_IF_ERROR turn a failed call into a gpu::Status that names the call,
// the file and line, and CUDA's message, so one run on a lent GPU says exactly what failed.
//
// Also the seeded random source of the bench (SplitMix64: fast enough to fill GiBs, and a run is
// reproduced from its printed seed). Everything here is thread-compatible.
// Builds without Abseil (the STRATA_GPU_ONLY build).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>
#include <vector>

#include "cachenode/gpu/gpu_status.h"

namespace strata::bench {

// Internal("<what> failed at file:line: cudaErrorX: message"), or OK for cudaSuccess.
gpu::Status CudaStatus(cudaError_t error, const char* what, const char* file, int line);

// After a Gather()/Scatter() returned OK: the launch error CUDA recorded, if any.
gpu::Status LastLaunchError(const char* what, const char* file, int line);

#define BENCH_CUDA(expr)                                                                \
  do {                                                                                  \
    const cudaError_t bench_cuda_error_ = (expr);                                       \
    if (bench_cuda_error_ != cudaSuccess)                                               \
      return ::strata::bench::CudaStatus(bench_cuda_error_, #expr, __FILE__, __LINE__); \
  } while (0)

#define BENCH_RETURN_IF_ERROR(expr)                \
  do {                                             \
    ::strata::gpu::Status bench_status_ = (expr);  \
    if (!bench_status_.ok()) return bench_status_; \
  } while (0)

// Runs a Gather()/Scatter() call and checks both its Status and CUDA's last error.
#define BENCH_LAUNCH(expr)                                                              \
  do {                                                                                  \
    BENCH_RETURN_IF_ERROR(expr);                                                        \
    BENCH_RETURN_IF_ERROR(::strata::bench::LastLaunchError(#expr, __FILE__, __LINE__)); \
  } while (0)

// SplitMix64. Same seed, same bytes.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next();
  // Uniform in [0, n); n > 0.
  uint64_t Below(uint64_t n) { return Next() % n; }
  // Uniform in [lo, hi].
  uint64_t Between(uint64_t lo, uint64_t hi) { return lo + Below(hi - lo + 1); }
  void Fill(void* data, uint64_t bytes);
  // A random permutation of [0, n).
  std::vector<uint32_t> Permutation(uint32_t n);

 private:
  uint64_t state_;
};

class HostBuffer {
 public:
  HostBuffer() = default;
  // Page-aligned, uninitialised; Internal when the allocation fails.
  static gpu::Status Allocate(uint64_t bytes, HostBuffer* out);
  ~HostBuffer();
  HostBuffer(HostBuffer&& other) noexcept;
  HostBuffer& operator=(HostBuffer&& other) noexcept;
  HostBuffer(const HostBuffer&) = delete;
  HostBuffer& operator=(const HostBuffer&) = delete;

  uint8_t* data() const { return data_; }
  uint64_t address() const { return reinterpret_cast<uintptr_t>(data_); }
  uint64_t size() const { return size_; }

 private:
  uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  // cudaMalloc (256-byte aligned), uninitialised.
  static gpu::Status Allocate(uint64_t bytes, DeviceBuffer* out);
  ~DeviceBuffer();  // cudaFree; a failure is printed, not hidden
  DeviceBuffer(DeviceBuffer&& other) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  uint8_t* data() const { return data_; }
  uint64_t address() const { return reinterpret_cast<uintptr_t>(data_); }
  uint64_t size() const { return size_; }

 private:
  void Release();
  uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

class MappedHostBuffer {
 public:
  MappedHostBuffer() = default;
  // mmap (pre-faulted) + gpu::RegisterHostMapped. Unavailable without a GPU.
  static gpu::Status Allocate(uint64_t bytes, MappedHostBuffer* out);
  ~MappedHostBuffer();  // UnregisterHost + munmap
  MappedHostBuffer(MappedHostBuffer&& other) noexcept;
  MappedHostBuffer& operator=(MappedHostBuffer&& other) noexcept;
  MappedHostBuffer(const MappedHostBuffer&) = delete;
  MappedHostBuffer& operator=(const MappedHostBuffer&) = delete;

  uint8_t* host() const { return host_; }
  uint64_t device_address() const { return device_address_; }
  uint64_t size() const { return size_; }

 private:
  void Release();
  uint8_t* host_ = nullptr;
  uint64_t device_address_ = 0;
  uint64_t size_ = 0;
  bool registered_ = false;
};

// Median of the values (the mean of the middle two for an even count); 0 for none.
double Median(std::vector<double> values);

}  // namespace strata::bench
