// `strata-bench workload`: drives a running cache node with the planned prefix-chain workload
// (workload_plan.h) through the C++ client and checks every byte.
//
//   1. put    each chain with one Put call (from_gpu for the last chains)
//   2. read   each chain with one batched Get call; every byte compared with what was written
//   3. hot    the first `hot_chains` chains re-read `hot_rereads` times, so lower-tier hits
//             reach the node's promote_after_hits and are copied up
//   4. stats  the node's Stats (tiers, hits, evictions, demotions, promotions)
//
// Tier hits come from the Get headers. Not thread-safe: one run at a time.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "bench/workload_plan.h"
#include "strata/v1/cachenode.pb.h"

namespace strata::bench {

struct WorkloadOptions {
  std::string node;  // HOST:PORT of a running strata-cachenode
  std::string namespace_name = "default";
  WorkloadPlanOptions plan;
  uint32_t hot_chains = 2;
  // Re-reads per hot chain. 3 covers the node's default promote_after_hits (2) with one more read
  // that shows the promoted copy being hit.
  uint32_t hot_rereads = 3;

  absl::Status Validate() const;
};

// Blocks and bytes of one phase, with hits by tier (indexed by strata::v1::Tier).
struct PhaseStats {
  uint64_t calls = 0;
  uint64_t blocks = 0;
  uint64_t bytes = 0;
  double seconds = 0;
  std::array<uint64_t, 4> by_tier{};  // TIER_UNSPECIFIED unused; HBM, DRAM, SSD
  uint64_t misses = 0;
  double gbps() const { return seconds > 0 ? static_cast<double>(bytes) / seconds / 1e9 : 0; }
};

struct WorkloadSummary {
  uint64_t distinct_blocks = 0;
  uint64_t block_bytes = 0;
  PhaseStats put;   // by_tier: where the node says each block landed
  PhaseStats read;  // first read of every chain
  PhaseStats hot;   // re-reads of the hot chains
  uint64_t bytes_verified = 0;
  uint64_t mismatched_blocks = 0;  // blocks whose bytes differ from what was written
  uint64_t refused_puts = 0;       // blocks the node refused (their status went to progress)
  strata::v1::StatsResponse node_stats;

  // True when every byte read matched and every put was accepted.
  bool ok() const { return mismatched_blocks == 0 && refused_puts == 0; }
};

// Runs the workload. An error means an RPC failed (or the node could not be reached); byte
// mismatches and refused puts are counted in the summary instead, so the report still prints.
absl::StatusOr<WorkloadSummary> RunWorkload(
    const WorkloadOptions& options, const std::function<void(const std::string&)>& progress);

std::string FormatWorkloadText(const WorkloadSummary& summary);
// One JSON object (one line).
std::string FormatWorkloadJson(const WorkloadSummary& summary);

}  // namespace strata::bench
