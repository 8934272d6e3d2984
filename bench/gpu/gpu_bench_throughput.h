// The throughput half of strata-gpu-bench: offload (gather into mapped pinned host memory) and
// onload (scatter from it) of paged KV, each next to pinned cudaMemcpyAsync of one large buffer of
// the same bytes measured in the same run, the naive loop of one cudaMemcpyAsync per piece, and
// both directions at once.
//
// Sections:
//   - pieces of 16 KiB, 32 KiB, 128 KiB and 2 MiB (vLLM FlashAttention layout, 8 KV heads x 128
//     dims x bf16, block_tokens 8/16/64/1024), ~512 MiB moved per rep between random distinct
//     blocks of an engine cache twice that size;
//   - a Llama-3-8B-shaped cache (32 layers, block_tokens 16: 2 MiB payloads) of 2,000 blocks,
//     1,000 random blocks offloaded and onloaded, for the vLLM, FlashInfer and cross-layer layouts,
//     with the launch and bookkeeping overhead of the offload (host wall time of Gather() +
//     Synchronize() against the kernel's own time, last_kernel_ms()).
// Times are medians of cudaEvent intervals on the streams after warm-up. Rows carry their targets
// (reported, never asserted). Not thread-safe; needs a usable GPU.
#pragma once

#include <string>
#include <vector>

#include "bench/gpu/gpu_bench_buffers.h"
#include "bench/gpu/gpu_bench_options.h"
#include "bench/gpu/gpu_bench_report.h"

namespace strata::bench {

// Appends the rows of every section; a section that fails appends what it has, its error goes to
// *errors, and the next section still runs.
void RunThroughput(const GpuBenchOptions& options, Rng& rng, std::vector<ThroughputRow>* rows,
                   std::vector<std::string>* errors);

}  // namespace strata::bench
