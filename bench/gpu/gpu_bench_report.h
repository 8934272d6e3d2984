// What strata-gpu-bench found, and its two renderings: one JSON object (gpu-bench.json) for
// scripts and a short table (at most 25 lines) printed last for people.
//
// Targets are reported, never asserted: a row carries its target and whether it was met, and the
// exit status depends only on correctness and errors. Pure functions over plain values;
// thread-compatible.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cachenode/gpu/gpu_status.h"

namespace strata::bench {

struct GpuDeviceInfo {
  bool usable = false;
  std::string why_unusable;  // CudaUsable's reason when !usable
  int ordinal = 0;
  std::string name;
  std::string pci_bus_id;
  int multiprocessors = 0;
  uint64_t total_memory_bytes = 0;
  int compute_major = 0;
  int compute_minor = 0;
  int driver_version = 0;   // cudaDriverGetVersion, e.g. 13000
  int runtime_version = 0;  // cudaRuntimeGetVersion
};

// One comparison of one layout case against the CPU reference.
struct CorrectnessCase {
  std::string layout_case;  // "dense vllm-flash-attention dtype 2", "padded 3", ...
  std::string shape;        // "L3 B10 T16 H2 D64 x2B, head_stride 144, ..."
  std::string check;        // "gather->device", "scatter<-mapped", "cpu-plan-gather", ...
  uint32_t vec_bytes = 0;   // the plan's access width for these addresses (host-side plan)
  uint32_t blocks = 0;      // blocks copied
  uint64_t bytes_compared = 0;
  uint64_t mismatched_bytes = 0;
  std::string error;   // non-empty when the check could not run to its comparison
  std::string detail;  // the first mismatches

  bool passed() const { return error.empty() && mismatched_bytes == 0; }
};

enum class TargetKind { kNone, kAtLeast, kAtMost };

struct ThroughputRow {
  // offload, onload, both, offload-loop, onload-loop, memcpy-d2h, memcpy-h2d, memcpy-both; the
  // Llama-shaped case: llama-offload, llama-onload, llama-overhead(-onload), llama-memcpy-d2h/h2d.
  std::string name;
  std::string layout;        // EngineLayoutName, or "one buffer" for the memcpy baselines
  uint64_t piece_bytes = 0;  // bytes of one (layer, K/V) piece of one block; 0 for memcpy
  uint64_t bytes = 0;        // payload bytes moved per rep (both directions summed for "both")
  double ms = 0;             // median per rep
  double gbps = 0;           // bytes / ms (1e9 bytes/s)
  std::string baseline;      // what ratio compares against; empty for none
  double baseline_gbps = 0;
  double ratio = 0;  // gbps / baseline_gbps; for overhead rows 1 - kernel_ms / ms
  TargetKind target_kind = TargetKind::kNone;
  double target = 0;
  double kernel_ms = -1;  // overhead rows only (>= 0 marks one): median last_kernel_ms()
  bool in_table = false;  // one of the lines of the short table
  std::string note;

  bool has_target() const { return target_kind != TargetKind::kNone; }
  bool met() const;
};

struct GpuBenchReport {
  GpuDeviceInfo device;
  uint64_t seed = 0;
  bool quick = false;
  bool check_only = false;
  int reps = 0;
  std::vector<CorrectnessCase> cases;
  std::vector<ThroughputRow> rows;
  std::vector<std::string> errors;  // CUDA/setup errors outside the comparisons

  uint64_t MismatchedBytes() const;
  int FailedCases() const;
};

// Fills ratio from gbps and baseline_gbps (0 when the baseline is 0).
void SetRatio(ThroughputRow* row);

// The whole report as one JSON object (device, seed, options, correctness, throughput, errors).
std::string ReportJson(const GpuBenchReport& report);

// At most 25 lines: a header, one line per in_table row with its ratio and target met/missed,
// then "correctness: N cases, 0 mismatched bytes" or the failures, and errors if any.
std::string ShortTable(const GpuBenchReport& report);

// "16KiB", "2MiB", "1000B".
std::string FormatBytes(uint64_t bytes);

// Creates `dir` (and its parents) and writes `content` to dir/name. Internal on failure.
gpu::Status WriteFileIn(const std::string& dir, const std::string& name,
                        const std::string& content);

}  // namespace strata::bench
