// The correctness half of strata-gpu-bench: every engine layout the kernels must handle, each
// gathered and scattered on the GPU and compared byte for byte with the CPU reference
// (kv_reference.h), and the kernels' index math (kv_plan.h, RunCopyOnCpu) cross-checked against
// the same reference on the host.
//
// Layout cases (MakeLayoutCases): the three dense engine layouts for dtype 1, 2 and 4; payloads
// offset by 8, 4, 2 and 1 bytes so the kernels take their 8/4/2/1-byte paths, not only 16; random
// padded/strided layouts built by hand; a Llama-shaped case with more segments than one grid.
// Every buffer a check writes is poisoned first (0xA5) and compared whole, gaps included, so a
// stray write is a mismatch too. Data is fresh random bytes from the run's seed.
//
// Not thread-safe (one caller; the GPU checks use the current device).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bench/gpu/gpu_bench_buffers.h"
#include "bench/gpu/gpu_bench_report.h"
#include "cachenode/gpu/kv_layout.h"

namespace strata::bench {

inline constexpr uint8_t kPoison = 0xA5;

// A layout described relative to the start of its engine region, so the same case is built at a
// host address (reference) and at a device address (kernels).
struct LayoutCase {
  std::string name;
  gpu::KvShape shape;
  bool dense = true;
  gpu::EngineLayoutKind kind = gpu::EngineLayoutKind::kVllmFlashAttention;  // when dense
  // Hand-built strides (when !dense).
  uint64_t block_stride = 0;
  uint64_t kv_stride = 0;
  uint64_t token_stride = 0;
  uint64_t head_stride = 0;
  uint64_t layer_bytes = 0;
  std::vector<uint64_t> layer_offsets;  // from the region's start; one for dense cross-layer
  uint64_t region_bytes = 0;            // bytes of the engine allocation
  uint64_t payload_offset = 0;          // added to every payload address (vector width tests)

  // "L3 B10 T16 H2 D64 x2B" plus the strides of a hand-built layout.
  std::string Describe() const;
};

// The cases of one run, shapes partly drawn from `rng`. quick: fewer and smaller.
std::vector<LayoutCase> MakeLayoutCases(Rng& rng, bool quick);

// The case's layout with its region at `base`; InvalidArgument from MakeDenseLayout or
// ValidateKvLayout (a hand-built layout that does not validate is a failure of the case).
gpu::Status LayoutAt(const LayoutCase& c, uint64_t base, gpu::KvLayout* out);

// RunCopyOnCpu against GatherReference/ScatterReference for every case, on the host only (runs
// without a GPU). Appends one CorrectnessCase per check.
void RunCpuCrossChecks(const std::vector<LayoutCase>& cases, Rng& rng,
                       std::vector<CorrectnessCase>* out);

// The kernels (KvTransferStream) against the reference for every case: gather into device and into
// mapped pinned payloads, scatter from both, plus the contract's rejections. Appends one
// CorrectnessCase per check; setup errors that stop everything go to *errors. Needs a usable GPU.
void RunGpuChecks(const std::vector<LayoutCase>& cases, Rng& rng, std::vector<CorrectnessCase>* out,
                  std::vector<std::string>* errors);

}  // namespace strata::bench
