// The deterministic workload of `strata-bench workload`: prefix chains as an inference engine would
// offload them, planned without I/O so it is testable.
//
// Every block covers `block_tokens` synthetic token ids drawn from the seed and is named by its
// real chained hash (common::HashBlock over the namespace and the tokens), so a block's hash covers
// its whole prefix. Even-numbered chains start with the same `shared_prefix_blocks` blocks (a
// system prompt): those blocks get equal hashes and are stored once. A block's payload is
// pseudo-random bytes derived from the seed and its hash, so equal hashes always mean equal bytes
// and a reader can regenerate what was written. The last `gpu_chains` chains are put with
// from_gpu=true (they land in HBM when the node has it). Pure; thread-compatible.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/block_key.h"

namespace strata::bench {

struct WorkloadPlanOptions {
  uint32_t chains = 8;
  uint32_t blocks_per_chain = 8;
  uint64_t block_bytes = 2ull << 20;
  uint64_t seed = 1;
  // Leading blocks shared by the even-numbered chains (a system prompt); 0: no sharing.
  uint32_t shared_prefix_blocks = 2;
  // Chains put with from_gpu=true, the last ones written. With the demo's 32 MiB HBM tier and
  // 8 x 2 MiB chains, 2 chains fill HBM exactly, so both HBM hits and HBM demotions show.
  uint32_t gpu_chains = 2;
  uint32_t block_tokens = 16;  // a vLLM page

  // InvalidArgument naming the first bad field.
  absl::Status Validate() const;
};

struct PlannedBlock {
  common::ChainHash hash;
  uint32_t chain_position = 0;
  uint64_t payload_seed = 0;
};

struct PlannedChain {
  std::vector<uint32_t> blocks;  // indices into WorkloadPlan::blocks, in chain order
  bool from_gpu = false;
};

struct WorkloadPlan {
  std::vector<PlannedBlock> blocks;  // distinct blocks, in first-written order
  std::vector<PlannedChain> chains;  // in write order
  uint64_t block_bytes = 0;
};

// Plans the chains for namespace `ns`. Call Validate first.
WorkloadPlan PlanWorkload(common::NamespaceId ns, const WorkloadPlanOptions& options);

// Writes block `b`'s payload (plan.block_bytes) into `out`.
void FillPayload(const PlannedBlock& b, std::span<std::byte> out);

}  // namespace strata::bench
