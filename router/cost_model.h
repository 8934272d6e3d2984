// CostModel: expected time to first token (TTFT) of a request on a candidate node (DESIGN section
// 5).
//
//   ttft = queueing delay                      (from the node's load)
//        + load time of each matched block     (block bytes over its tier's bandwidth into HBM)
//        + peer fetch of blocks another node holds beyond this node's match, when that beats
//          recomputing them                    (bytes over the network + round trip + source tier)
//        + recompute time of the rest          (calibrated prefill model that grows with depth)
//
// Parameters come from a JSON file (see CostModelParams; the project ships
// router/cost_model_h100_llama3_8b.json, derived from H100 measurements, with its source named),
// never from constants in code. Immutable after construction; thread-safe. Predict() allocates
// nothing: it runs for every candidate of every policy of every request.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/statusor.h"
#include "router/types.h"

namespace strata::router {

struct CostModelParams {
  std::string source;  // where the figures come from (free text, reported)
  uint64_t kv_bytes_per_token = 131072;
  uint32_t block_tokens = 16;  // default when a request does not say
  // Bandwidth (GB/s, 1e9 bytes/s) at which a block held in a tier reaches HBM. HBM hits cost 0.
  double dram_gbps = 0;
  double ssd_gbps = 0;
  // Peer fetch: network bandwidth, per-fetch round trip; the source tier's read adds its own time.
  double peer_gbps = 0;
  double peer_rtt_ms = 0;
  // Prefill of n new tokens after c cached ones: t0 + a*n + b*n*c + g*n^2 (ms), fitted to
  // measurements (attention over the cached prefix grows with depth).
  double prefill_t0_ms = 0, prefill_a_ms = 0, prefill_b_ms = 0, prefill_g_ms = 0;
  // Queueing: each queued or running request ahead costs this much, plus the prefill tokens already
  // in flight at prefill_a_ms per token.
  double per_request_queue_ms = 0;

  absl::Status Validate() const;  // InvalidArgument naming the bad field
  bool operator==(const CostModelParams&) const = default;
};

struct CostBreakdown {
  double queue_ms = 0;
  double load_ms = 0;
  double peer_ms = 0;
  double recompute_ms = 0;
  double total_ms = 0;
  uint32_t cached_blocks = 0;  // blocks served from this node's tiers
  uint32_t peer_blocks = 0;    // blocks pulled from `peer` (0: no peer fetch)
  NodeSlot peer = kNoSlot;
};

// What the model needs to know about one candidate.
struct CostInput {
  uint32_t prompt_tokens = 0;  // 0: total_blocks * block_tokens
  uint32_t block_tokens = 0;   // 0: params default
  uint32_t total_blocks = 0;   // blocks in the request's chain
  NodeLoad load;
  NodeMatch match;  // this candidate's prefix match
  // Every node's match for the request (draining ones included: they can still serve a peer fetch).
  std::span<const NodeMatch> holders;
  // True when `holders` is sorted by `matched`, longest first: Predict then stops at the first
  // holder not longer than this candidate instead of scanning them all (hot prefixes have a holder
  // per node).
  bool holders_longest_first = false;
};

class CostModel {
 public:
  explicit CostModel(CostModelParams params) : params_(std::move(params)) {}
  // Parses the JSON format of router/cost_model_h100_llama3_8b.json (strata.v1.CostModelConfig in
  // proto/strata/v1/cost_model.proto; unknown fields are errors). InvalidArgument naming the bad
  // field; NotFound when the file is missing.
  static absl::StatusOr<CostModel> FromJson(std::string_view json);
  static absl::StatusOr<CostModel> FromJsonFile(const std::string& path);
  // The shipped default (the same figures as router/cost_model_h100_llama3_8b.json, compiled in).
  static CostModel Default();

  // Expected TTFT on in.match's node. The engine computes at least the last prompt token, so at
  // most prompt_tokens - 1 tokens count as cached. Local matched blocks are loaded unless
  // recomputing everything is faster (a shallow prefix on a slow disk: the hit is then ignored); a
  // peer fetch is taken only when it lowers the total.
  CostBreakdown Predict(const CostInput& in) const;
  // Prefill time of `new_tokens` after `cached_tokens` (0 when new_tokens is 0). The fitted surface
  // is capped at PrefillMs(0, cached + new): computing the prefix too bounds it from above (see the
  // caveat in the JSON file: the H100 fit extrapolates badly for new >> cached without the cap).
  double PrefillMs(uint64_t cached_tokens, uint64_t new_tokens) const;
  // The queueing term alone. Predict(in).total_ms is QueueMs(in.load) plus a part that does not
  // depend on the load, so callers comparing many nodes can reuse that part.
  double QueueMs(const NodeLoad& load) const;

  const CostModelParams& params() const { return params_; }

 private:
  CostModelParams params_;
};

}  // namespace strata::router
