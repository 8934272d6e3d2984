#include "bench/workload_plan.h"

#include <cstring>
#include <optional>
#include <random>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "bench/throughput.h"
#include "common/block_hash.h"

namespace strata::bench {

absl::Status WorkloadPlanOptions::Validate() const {
  if (chains == 0) return absl::InvalidArgumentError("--chains must be > 0");
  if (blocks_per_chain == 0) return absl::InvalidArgumentError("--blocks-per-chain must be > 0");
  if (block_bytes == 0) return absl::InvalidArgumentError("--block-bytes must be > 0");
  if (shared_prefix_blocks > blocks_per_chain) {
    return absl::InvalidArgumentError(absl::StrCat("--shared-prefix-blocks (", shared_prefix_blocks,
                                                   ") exceeds --blocks-per-chain (",
                                                   blocks_per_chain, ")"));
  }
  if (gpu_chains > chains) {
    return absl::InvalidArgumentError(
        absl::StrCat("--gpu-chains (", gpu_chains, ") exceeds --chains (", chains, ")"));
  }
  if (block_tokens == 0) return absl::InvalidArgumentError("block_tokens must be > 0");
  return absl::OkStatus();
}

WorkloadPlan PlanWorkload(common::NamespaceId ns, const WorkloadPlanOptions& o) {
  WorkloadPlan plan;
  plan.block_bytes = o.block_bytes;
  absl::flat_hash_map<common::ChainHash, uint32_t> index_of;
  // Token ids in a realistic vocabulary range; the system prompt's come from their own stream so
  // every sharing chain sees the same ids.
  std::uniform_int_distribution<uint32_t> vocab(0, 128255);
  std::mt19937_64 system_rng(o.seed * 2 + 1);
  std::vector<std::vector<uint32_t>> system_prompt(o.shared_prefix_blocks);
  for (auto& block : system_prompt) {
    block.resize(o.block_tokens);
    for (uint32_t& t : block) t = vocab(system_rng);
  }
  std::mt19937_64 rng(o.seed * 2);
  std::vector<uint32_t> tokens(o.block_tokens);
  for (uint32_t c = 0; c < o.chains; ++c) {
    PlannedChain chain;
    chain.from_gpu = c >= o.chains - o.gpu_chains;
    const bool shares_prefix = c % 2 == 0;
    std::optional<common::ChainHash> parent;
    for (uint32_t p = 0; p < o.blocks_per_chain; ++p) {
      if (shares_prefix && p < o.shared_prefix_blocks) {
        tokens = system_prompt[p];
      } else {
        for (uint32_t& t : tokens) t = vocab(rng);
      }
      const common::ChainHash hash = common::HashBlock(parent, ns, "", tokens);
      parent = hash;
      auto [it, inserted] = index_of.try_emplace(hash, static_cast<uint32_t>(plan.blocks.size()));
      if (inserted) {
        uint64_t h = 0;
        std::memcpy(&h, hash.bytes.data(), sizeof(h));
        plan.blocks.push_back(PlannedBlock{hash, p, h ^ (o.seed * 0x9E3779B97F4A7C15ull)});
      }
      chain.blocks.push_back(it->second);
    }
    plan.chains.push_back(std::move(chain));
  }
  return plan;
}

void FillPayload(const PlannedBlock& b, std::span<std::byte> out) {
  FillRandom(out, b.payload_seed);
}

}  // namespace strata::bench
