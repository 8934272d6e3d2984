// The shared-memory case of `strata-bench tiers`: an in-process node (bench/node_bench.h
// InProcessNode, wired like strata-cachenode) with its local socket on, and a LocalClient in the
// same process talking to it over the real Unix socket and mapping the real memfd arena. Only the
// process boundary is missing; no payload byte crosses the socket either way.
//
//   get   LocalClient::GetInto of a whole chain per call: Get (offsets under a lease), a fused
//         copy + xxh3 verification of every block into the caller's buffers, Release
//   put   LocalClient::Put of a fresh chain per call: Reserve, one memcpy per block into its slot
//         (checksum computed on the way), Commit (the node verifies and adopts the slots)
//
// Both are judged against memcpy of the same block size over the same working set
// (bench/baselines.h MeasureMemcpy), measured in the same run. Not thread-safe: one measurement at
// a time.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "bench/throughput.h"

namespace strata::bench {

struct ShmResult {
  Throughput get;  // the node hands DRAM copies out unverified; the client verifies while copying
  Throughput put;
  // The same get against a node that also verifies every DRAM copy before handing it out (the
  // other integrity design): what that extra pass costs.
  Throughput get_node_verified;
  Throughput memcpy;  // MeasureMemcpy(block_bytes, chain bytes, duration), same run
};

// Puts one chain of `chain_blocks` blocks of `block_bytes` into a DRAM-only node (DRAM twice the
// chain plus 64 MiB), then measures get and put for `duration` each, the node-verified get on a
// second node, and memcpy. An error when a node cannot start or an operation fails.
absl::StatusOr<ShmResult> MeasureShm(uint64_t block_bytes, uint32_t chain_blocks,
                                     absl::Duration duration);

// The KV hand-over over the same socket (cachenode/kv_handover.h): an engine cache in a memfd in
// this process (vLLM's FlashAttention layout, 8 KV heads x 128 dims x bf16 per token, 16-token
// blocks, as many layers as make `block_bytes` payloads, up to 32, then longer blocks), registered
// with the node. Without a GPU this is the emulated path: the node's CPU reference gathers and
// scatters host memory.
//
//   offload  LocalClient::Offload of `chain_blocks` engine blocks under a fresh chain per call
//            (gather into reserved DRAM slots, xxh3 of each, adopted as DRAM copies)
//   onload   LocalClient::Onload of that chain into other engine blocks (verified reads, scatter)
struct HandoverResult {
  Throughput offload;
  Throughput onload;
  bool emulated = true;  // what the node said at registration
  std::string layout;    // "32 layers x 16 tokens x 8 heads x 128 x bf16"
};

absl::StatusOr<HandoverResult> MeasureHandover(uint64_t block_bytes, uint32_t chain_blocks,
                                               absl::Duration duration);

}  // namespace strata::bench
