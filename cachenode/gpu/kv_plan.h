// KvCopyPlan: the index arithmetic of the gather/scatter kernels, written once for both the GPU
// and the CPU. The CUDA kernels (kv_cuda.cu) are thin loops over CopySegment(); the CPU tests run
// the very same function for every (segment, thread) and compare against the naive reference
// (kv_reference.h), so the kernels' addressing is checked on machines without a GPU.
//
// A plan merges the innermost dimensions the engine keeps contiguous exactly as the payload does
// (heads, then tokens, then K/V) into one run: 256 bytes per run for a padded layout, a 32 KiB
// piece for vLLM's FlashAttention layout (16 tokens x 8 heads x 128 dims x bf16), both K and V
// (64 KiB) for FlashInfer's. Work is cut into segments of kSegmentUnits vectors of one block's
// payload; a CUDA thread block takes one segment at a time, and each of its threads moves
// kUnroll vectors, all loads issued before the stores so that several are in flight.
//
// Header-only and free of Abseil; functions are __host__ __device__ under nvcc.
#pragma once

#include <cstdint>
#include <cstring>

#include "cachenode/gpu/kv_layout.h"

#if defined(__CUDACC__)
#define STRATA_HD __host__ __device__ __forceinline__
#else
#define STRATA_HD inline
#endif

namespace strata::gpu {

inline constexpr uint32_t kCopyThreads = 256;  // threads per CUDA block
inline constexpr uint32_t kUnroll = 4;          // vectors in flight per thread
inline constexpr uint32_t kSegmentUnits = kCopyThreads * kUnroll;

struct KvCopyPlan {
  uint32_t payload_bytes = 0;
  uint32_t run_bytes = 0;  // contiguous in the engine and in the payload
  uint32_t vec_bytes = 1;  // 16, 8, 4, 2 or 1: bytes one access moves
  // Runs of one block, outermost first: layer, kv, token, head. A merged dimension has extent 1.
  uint32_t extent[4] = {1, 1, 1, 1};
  uint64_t stride[4] = {0, 0, 0, 0};  // engine bytes; [0] unused (each layer has its own base)
  uint64_t block_stride = 0;
  uint32_t units_per_block = 0;     // payload_bytes / vec_bytes
  uint32_t segments_per_block = 0;  // ceil(units_per_block / kSegmentUnits)
};

// Everything one launch needs, passed to the kernel by value. Addresses must be reachable from
// where CopySegment runs (device or mapped pinned memory for the kernels).
struct KvCopyArgs {
  KvCopyPlan plan;
  const uint64_t* layer_bases = nullptr;  // [num_layers]
  const uint32_t* block_ids = nullptr;    // engine block of each copied block [count]
  const uint64_t* payloads = nullptr;     // payload address of each copied block [count]
  uint32_t count = 0;
  bool gather = true;  // true: engine -> payload (offload); false: payload -> engine (onload)

  STRATA_HD uint64_t total_segments() const {
    return static_cast<uint64_t>(count) * plan.segments_per_block;
  }
};

// The plan of a validated layout for payloads (and layer bases) whose addresses are all multiples
// of `address_alignment` (a power of two; pass the gcd of the actual addresses, or 1 when unknown).
// InvalidArgument when the payload is 4 GiB or more (offsets are 32-bit in the kernels).
Status MakeCopyPlan(const KvLayout& layout, uint64_t address_alignment, KvCopyPlan* out);

// Largest power of two (at most 16) dividing every address in [first, first + n).
uint64_t AddressAlignment(const uint64_t* first, uint64_t n);

namespace internal {

template <uint32_t V>
struct alignas(V) Vec {
  uint8_t b[V];
};

// On the device both ends are global memory (device memory or mapped pinned host memory); the
// source is not written during a launch, so 16-byte loads take the read-only path and 16-byte
// stores are marked streaming (the payloads are not read again by this kernel).
template <uint32_t V>
STRATA_HD Vec<V> Load(const uint8_t* p) {
#if defined(__CUDA_ARCH__)
  if constexpr (V == 16) {
    Vec<16> v;
    *reinterpret_cast<uint4*>(&v) = __ldg(reinterpret_cast<const uint4*>(p));
    return v;
  }
  return *reinterpret_cast<const Vec<V>*>(p);
#else
  Vec<V> v;
  std::memcpy(v.b, p, V);
  return v;
#endif
}

template <uint32_t V>
STRATA_HD void Store(uint8_t* p, const Vec<V>& v) {
#if defined(__CUDA_ARCH__)
  if constexpr (V == 16) {
    __stcs(reinterpret_cast<uint4*>(p), *reinterpret_cast<const uint4*>(&v));
    return;
  }
  *reinterpret_cast<Vec<V>*>(p) = v;
#else
  std::memcpy(p, v.b, V);
#endif
}

}  // namespace internal

// Engine address of byte `offset` (a multiple of vec_bytes) of engine block `block`'s payload.
STRATA_HD uint64_t EngineAddress(const KvCopyPlan& p, const uint64_t* layer_bases, uint32_t block,
                                 uint32_t offset) {
  const uint32_t run = offset / p.run_bytes;
  const uint32_t in_run = offset - run * p.run_bytes;
  uint32_t r = run;
  const uint32_t head = r % p.extent[3];
  r /= p.extent[3];
  const uint32_t token = r % p.extent[2];
  r /= p.extent[2];
  const uint32_t kv = r % p.extent[1];
  const uint32_t layer = r / p.extent[1];
  return layer_bases[layer] + static_cast<uint64_t>(block) * p.block_stride +
         kv * p.stride[1] + token * p.stride[2] + head * p.stride[3] + in_run;
}

// Moves thread `tid`'s share (of kCopyThreads) of segment `segment` (< args.total_segments()).
template <uint32_t V>
STRATA_HD void CopySegment(const KvCopyArgs& a, uint64_t segment, uint32_t tid) {
  const KvCopyPlan& p = a.plan;
  const uint32_t i = static_cast<uint32_t>(segment / p.segments_per_block);
  const uint32_t seg = static_cast<uint32_t>(segment - static_cast<uint64_t>(i) * p.segments_per_block);
  const uint32_t block = a.block_ids[i];
  uint8_t* payload = reinterpret_cast<uint8_t*>(static_cast<uintptr_t>(a.payloads[i]));
  const uint32_t first = seg * kSegmentUnits + tid;
  internal::Vec<V> v[kUnroll] = {};
  uint8_t* src[kUnroll] = {};
  uint8_t* dst[kUnroll] = {};
  bool live[kUnroll] = {};
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (uint32_t k = 0; k < kUnroll; ++k) {
    const uint32_t unit = first + k * kCopyThreads;
    live[k] = unit < p.units_per_block;
    if (!live[k]) continue;
    const uint32_t offset = unit * V;
    uint8_t* engine = reinterpret_cast<uint8_t*>(
        static_cast<uintptr_t>(EngineAddress(p, a.layer_bases, block, offset)));
    src[k] = a.gather ? engine : payload + offset;
    dst[k] = a.gather ? payload + offset : engine;
  }
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (uint32_t k = 0; k < kUnroll; ++k) {
    if (live[k]) v[k] = internal::Load<V>(src[k]);
  }
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (uint32_t k = 0; k < kUnroll; ++k) {
    if (live[k]) internal::Store<V>(dst[k], v[k]);
  }
}

// Runs CopySegment on the CPU for every segment and thread, in order: how the tests check the
// kernels' addressing without a GPU. Addresses must be host addresses.
void RunCopyOnCpu(const KvCopyArgs& args);

}  // namespace strata::gpu
