// The GPU side of the KV hand-over: gather/scatter kernels on a CUDA stream, host memory pinned and
// mapped for the kernels, and CUDA IPC for device allocations shared across processes. Every CUDA
// call of cachenode/gpu/ is checked in kv_cuda.cu and converted to gpu::Status there.
//
// Built from kv_cuda.cu where the CUDA toolkit is (sm_90 machine code plus portable PTX); without it
// kv_cuda_none.cc makes every function return Unavailable, so callers fall back to the CPU reference
// (kv_reference.h) and report the path as emulated.
//
// Kernels: one launch moves many blocks (KvCopyArgs, kv_plan.h), 256 threads per CUDA block, a grid
// sized from the device's multiprocessor count, 16-byte accesses when every address allows.
// Destinations of a gather (and sources of a scatter) may be device memory (the HBM pool) or pinned
// mapped host memory (the DRAM arena, through RegisterHostMapped): the kernel then moves the bytes
// over PCIe itself, which is what reaches the link's limit for 16-32 KiB pieces.
//
// Ordering: a KvTransferStream's stream is non-blocking, so it does not wait for work on the legacy
// default stream (cudaMemcpy, cudaMemset, kernels launched without a stream): finish such work
// (cudaDeviceSynchronize, or a stream/event sync) before a Gather reads what it wrote. Host writes
// to mapped memory made before a launch are visible to it; the kernel's writes to mapped memory are
// visible to the host after Synchronize().
//
// Builds without Abseil. A KvTransferStream is thread-compatible (one thread at a time); use one per
// thread. The free functions are thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "cachenode/gpu/gpu_status.h"
#include "cachenode/gpu/kv_layout.h"

namespace strata::gpu {

struct GpuDevice {
  int ordinal = 0;
  std::string name;
  int multiprocessors = 0;
  int max_threads_per_multiprocessor = 0;
  uint64_t total_memory_bytes = 0;
  int compute_major = 0;
  int compute_minor = 0;
};

// True when the build has CUDA and a device is usable; otherwise false with the reason in *why.
bool CudaUsable(std::string* why);

// The current device's properties. Unavailable without a usable GPU.
Status CurrentDevice(GpuDevice* out);

class KvTransferStream {
 public:
  // A non-blocking CUDA stream on the current device with scratch for up to `max_blocks` blocks per
  // launch and `max_layers` layers. Unavailable without a usable GPU.
  static Status Create(uint32_t max_blocks, uint32_t max_layers,
                       std::unique_ptr<KvTransferStream>* out);
  ~KvTransferStream();
  KvTransferStream(const KvTransferStream&) = delete;
  KvTransferStream& operator=(const KvTransferStream&) = delete;

  // Enqueues one launch that copies engine block ids[i] of `layout` (its layer_bases are device
  // addresses) into the payload at device address payloads[i], for i < count. Returns once
  // enqueued: the bytes are there after Synchronize(). InvalidArgument for an invalid layout, ids
  // out of range, or count over max_blocks; the launch's own errors come from Synchronize().
  Status Gather(const KvLayout& layout, const uint32_t* ids, const uint64_t* payloads,
                uint32_t count);
  // The reverse: payloads[i] -> engine block ids[i]. Also InvalidArgument for a repeated id.
  Status Scatter(const KvLayout& layout, const uint32_t* ids, const uint64_t* payloads,
                 uint32_t count);

  // Waits, without spinning a core, for everything enqueued on the stream; the first CUDA error.
  Status Synchronize();

  // Device milliseconds of the most recent launch's kernel alone (events around the kernel), valid
  // after Synchronize(). Lets a caller separate kernel time from launch and bookkeeping overhead.
  float last_kernel_ms() const { return last_kernel_ms_; }

  // The cudaStream_t, for callers that enqueue their own work (benchmarks' baselines).
  void* native_stream() const;

 private:
  struct Impl;
  explicit KvTransferStream(std::unique_ptr<Impl> impl);
  Status Launch(const KvLayout& layout, const uint32_t* ids, const uint64_t* payloads,
                uint32_t count, bool gather);
  std::unique_ptr<Impl> impl_;
  float last_kernel_ms_ = 0;
};

// Pins [base, base + bytes) (cudaHostRegister, portable and mapped) and stores the address kernels
// use for `base` in *device_address. Unavailable without a GPU.
Status RegisterHostMapped(void* base, uint64_t bytes, uint64_t* device_address);
void UnregisterHost(void* base);

// CUDA IPC handles are this many opaque bytes (cudaIpcMemHandle_t).
inline constexpr size_t kIpcHandleBytes = 64;

// The IPC handle of the allocation that starts at `device_address` (an address cudaMalloc
// returned), for another process on the node to open. InvalidArgument for another address.
Status ExportIpcHandle(uint64_t device_address, std::string* handle);
// Maps another process's allocation into this one; *device_address is its base here. Close with
// CloseIpcHandle. InvalidArgument for a handle of the wrong size; Unavailable without a GPU.
Status OpenIpcHandle(const std::string& handle, uint64_t* device_address);
void CloseIpcHandle(uint64_t device_address);

}  // namespace strata::gpu
