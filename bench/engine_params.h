// The figures of the simulated GPU engine that `strata-bench replay` runs on every node.
//
// Two files define it, both embedded into the binary at build time so a replay needs no paths:
// router/cost_model_h100_llama3_8b.json (prefill fit, DRAM/PCIe and peer bandwidths: the same
// figures the router's cost model predicts with) and bench/engine_h100_llama3_8b.json (GPU memory,
// weights, decode fit, batching limits, default SSD bandwidth; written by
// bench/fit_engine_model.py). Every figure names its measurement or says it is an assumption.
// Pure; thread-compatible.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "router/cost_model.h"

namespace strata::bench {

struct EngineParams {
  std::string source;  // where the figures come from (reported)
  router::CostModel cost{router::CostModelParams{}};  // prefill fit, tier and peer bandwidths
  uint64_t gpu_memory_bytes = 0;
  uint64_t weights_bytes = 0;
  double memory_utilization = 0.9;
  uint32_t max_batched_tokens = 8192;  // chunked-prefill budget per step (decode tokens count)
  uint32_t max_running_requests = 256;
  double default_ssd_gbps = 0;  // the engine file's SSD figure (a replay may override it)
  // Decode step: d0 + d_seq*B + d_ctx*S ms (d0 only when the step carries no prefill).
  double decode_d0_ms = 0, decode_seq_ms = 0, decode_ctx_ms = 0;

  // KV bytes of HBM left for the KV cache: gpu memory x utilization - weights.
  uint64_t HbmKvBytes() const;
  // Decode part of one step: B sequences holding `context_tokens` tokens in all.
  double DecodeMs(uint32_t sequences, uint64_t context_tokens, bool with_prefill) const;

  absl::Status Validate() const;
};

// Parses the two JSON documents (formats: strata.v1.EngineModelConfig, strata.v1.CostModelConfig).
// InvalidArgument naming the bad field.
absl::StatusOr<EngineParams> ParseEngineParams(std::string_view engine_json,
                                               std::string_view cost_model_json);

// The embedded defaults (H100 80GB, Llama-3-8B shapes). `engine_file` / `cost_model_file`, when
// not empty, replace the embedded documents. NotFound for a missing file.
absl::StatusOr<EngineParams> LoadEngineParams(const std::string& engine_file = "",
                                              const std::string& cost_model_file = "");

}  // namespace strata::bench
