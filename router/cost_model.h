// CostModel: expected time to first token (TTFT) of a request on a candidate node (DESIGN section 5).
//
//   ttft = queueing delay                      (from the node's load)
//        + load time of each matched block     (block bytes over its tier's bandwidth into HBM)
//        + peer fetch of blocks another node holds beyond this node's match, when that beats
//          recomputing them                    (bytes over the network + round trip + source tier)
//        + recompute time of the rest          (calibrated prefill model that grows with depth)
//
// Parameters come from a JSON file (see CostModelParams; the project ships
// router/cost_model_h100_llama3_8b.json, derived from H100 measurements, with its source named),
// never from constants in code. Immutable after construction; thread-safe.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "router/types.h"

namespace strata::router {

struct CostModelParams {
  std::string source;           // where the figures come from (free text, reported)
  uint64_t kv_bytes_per_token = 131072;
  uint32_t block_tokens = 16;   // default when a request does not say
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
};

struct CostBreakdown {
  double queue_ms = 0;
  double load_ms = 0;
  double peer_ms = 0;
  double recompute_ms = 0;
  double total_ms = 0;
  uint32_t cached_blocks = 0;     // blocks served from this node's tiers
  uint32_t peer_blocks = 0;       // blocks pulled from `peer` (0: no peer fetch)
  NodeSlot peer = kNoSlot;
};

// What the model needs to know about one candidate.
struct CostInput {
  uint32_t prompt_tokens = 0;
  uint32_t block_tokens = 0;     // 0: params default
  uint32_t total_blocks = 0;     // blocks in the request's chain
  NodeLoad load;
  NodeMatch match;               // this candidate's prefix match
  // Every node's match for the request (draining ones included: they can still serve a peer fetch).
  std::span<const NodeMatch> holders;
};

class CostModel {
 public:
  explicit CostModel(CostModelParams params) : params_(std::move(params)) {}
  // Parses the JSON format of router/cost_model_h100_llama3_8b.json. InvalidArgument naming the bad
  // field; NotFound when the file is missing.
  static absl::StatusOr<CostModel> FromJson(std::string_view json);
  static absl::StatusOr<CostModel> FromJsonFile(const std::string& path);
  // The shipped default (the same figures as router/cost_model_h100_llama3_8b.json, compiled in).
  static CostModel Default();

  CostBreakdown Predict(const CostInput& in) const;
  double PrefillMs(uint64_t cached_tokens, uint64_t new_tokens) const;

  const CostModelParams& params() const { return params_; }

 private:
  CostModelParams params_;
};

}  // namespace strata::router
