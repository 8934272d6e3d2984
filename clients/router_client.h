// RouterClient: the C++ client of the Strata router (strata-router) for frontends and tools.
//
// It wraps the query side of the Router service of proto/strata/v1/router.proto (Route, Locate,
// ReportOutcome, ListNodes and the experiment calls; node membership and event ingest belong to
// the cache nodes) with plain structs, absl::Status results, a deadline on every call and retries
// on UNAVAILABLE only (rpc_retry.h). The router answers UNAVAILABLE both when it cannot be reached
// and when it knows no live node; both are retried, then surfaced. A retried Route may leave an
// extra decision behind on the router, which is harmless: an unreported decision only expires.
//
// Thread-safety: a RouterClient is thread-safe; concurrent calls share one gRPC channel. Results
// are owned by the caller.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "clients/rpc_retry.h"
#include "common/grpc_security.h"
#include "common/block_key.h"
#include "strata/v1/router.grpc.pb.h"

namespace strata::clients {

struct RouterClientOptions {
  // Bound on each call, retries and backoff included. A route decision is in the request path of
  // a prompt, so this is short: past it, a frontend is better off picking a node itself.
  absl::Duration deadline = absl::Seconds(2);
  // Attempts per call; only UNAVAILABLE is retried (50 ms, 100 ms, ... backoff).
  int max_attempts = 3;
  // TLS (a CA file, or the system roots), a client certificate for mTLS, and a bearer token.
  // Default: plaintext.
  common::ChannelSecurityOptions security;

  // InvalidArgument naming the first bad field.
  absl::Status Validate() const;
};

// A request's chain. Give either `chain_hashes` (32 bytes each, in chain order) or `token_ids`
// (the router hashes them with common/block_hash.h, `block_tokens` per block, `cache_salt` mixed
// into the first block), not both.
struct ChainQuery {
  std::string namespace_name;  // e.g. "llama3-8b/bf16/b16"
  std::vector<common::ChainHash> chain_hashes;
  std::vector<uint32_t> token_ids;
  uint32_t block_tokens = 0;  // 0: the router's cost-model default
  std::string cache_salt;     // token mode only; a tenant secret, never logged
};

// A request to place: its chain plus what the router weighs or records.
struct RouteQuery : ChainQuery {
  uint32_t prompt_tokens = 0;  // 0: the router derives it from the tokens or blocks
  std::string session_key;     // A/B split key; empty: request_id
  std::string request_id;      // empty: the router derives one from the hashes
  std::string policy;          // overrides the experiment's split; empty: the split decides
};

// Blocks counted per tier, each in its best (fastest) tier.
struct TierCounts {
  uint32_t hbm = 0;
  uint32_t dram = 0;
  uint32_t ssd = 0;
};

// Another node holding blocks beyond the chosen node's match, which the chosen node could pull.
struct PeerSource {
  std::string node_id;
  std::string endpoint;
  uint32_t from_block = 0;                               // first block index the peer adds
  uint32_t blocks = 0;                                   // consecutive blocks from there
  strata::v1::Tier tier = strata::v1::TIER_UNSPECIFIED;  // slowest tier among them on the peer
};

// What another policy of the experiment would have chosen (shadow evaluation).
struct ShadowChoice {
  std::string policy;
  std::string node_id;
  uint32_t matched_blocks = 0;
  double predicted_ttft_ms = 0;
};

struct RouteResult {
  std::string node_id;
  std::string endpoint;  // HOST:PORT of the chosen node
  TierCounts matched;
  uint32_t matched_blocks = 0;
  uint32_t total_blocks = 0;
  double predicted_ttft_ms = 0;
  std::string policy;        // the policy that decided
  uint64_t decision_id = 0;  // pass to ReportOutcome
  std::vector<PeerSource> peers;
  std::vector<ShadowChoice> shadow;
};

// A node holding a prefix of a located chain.
struct NodeHolding {
  std::string node_id;
  std::string endpoint;
  uint32_t matched_blocks = 0;  // longest prefix the node holds, counted from block 0
  TierCounts tiers;             // those blocks, each counted in its best tier on the node
};

struct LocateResult {
  uint32_t total_blocks = 0;
  std::vector<NodeHolding> nodes;  // matched_blocks >= 1; longest first, ties by node id
};

// The measured result of a routed request.
struct RouteOutcome {
  uint64_t decision_id = 0;
  double ttft_ms = 0;
  uint32_t prompt_tokens = 0;
  uint32_t cached_tokens = 0;
};

struct NodeLoad {
  uint32_t queued_requests = 0;
  uint32_t running_requests = 0;
  uint64_t prefill_tokens_in_flight = 0;
  uint64_t free_hbm_blocks = 0;
  bool draining = false;  // takes no new requests
};

// A live node as the router sees it.
struct NodeStatus {
  std::string node_id;
  std::string endpoint;
  uint64_t epoch = 0;
  NodeLoad load;
  uint64_t heartbeat_age_ms = 0;
  uint64_t indexed_blocks = 0;
  std::string source;   // "strata" (a cache node) or "vllm" (an engine's event stream)
  bool synced = false;  // false while the router waits for the node's snapshot
};

// One policy's figures in an experiment; fields as in router.proto's PolicyFigures.
struct PolicyFigures {
  std::string policy;
  uint32_t weight = 0;
  uint64_t decisions = 0;
  TierCounts matched;  // summed over live decisions
  uint64_t requested_blocks = 0;
  double mean_predicted_ttft_ms = 0;
  uint64_t outcomes = 0;
  double mean_reported_ttft_ms = 0;
  double p50_reported_ttft_ms = 0;
  double p99_reported_ttft_ms = 0;
  uint64_t shadow_requests = 0;
  double mean_shadow_hit_blocks = 0;
  double mean_shadow_predicted_ttft_ms = 0;
  uint64_t shadow_agreements = 0;
};

struct ExperimentReport {
  std::string spec;  // e.g. "locality=50,round_robin=50"
  uint64_t requests = 0;
  std::vector<PolicyFigures> policies;  // in spec order
};

class RouterClient {
 public:
  // Creates a client with a channel to `target` ("HOST:PORT" or any gRPC target), plaintext or as
  // options.security says. Does not contact the router (the first call does). InvalidArgument for an empty target or options
  // that do not validate.
  static absl::StatusOr<std::unique_ptr<RouterClient>> Connect(
      std::string_view target, const RouterClientOptions& options = {});

  RouterClient(const RouterClient&) = delete;
  RouterClient& operator=(const RouterClient&) = delete;
  ~RouterClient();

  // Picks a node for `query`. InvalidArgument before any RPC for a bad namespace name or a query
  // with neither or both of hashes and tokens; from the router, InvalidArgument (e.g. an unknown
  // policy) or Unavailable (no live node).
  absl::StatusOr<RouteResult> Route(const RouteQuery& query);

  // Which live nodes hold a prefix of `chain`, and in which tiers, without routing: no decision,
  // no pending load, no experiment figures. InvalidArgument as Route; no node holding block 0 is
  // an empty result, not an error.
  absl::StatusOr<LocateResult> Locate(const ChainQuery& chain);

  // Reports what a routed request measured. NotFound for an unknown or expired decision id.
  absl::Status ReportOutcome(const RouteOutcome& outcome);

  // The live nodes and their load, in the router's order.
  absl::StatusOr<std::vector<NodeStatus>> ListNodes();

  // Replaces the experiment's traffic split ("locality=50,round_robin=50", or one policy name) and
  // returns the new experiment's report. InvalidArgument for a spec the router rejects.
  absl::StatusOr<ExperimentReport> SetExperiment(std::string_view spec);
  absl::StatusOr<ExperimentReport> GetExperimentReport();

  const std::string& target() const { return target_; }

 private:
  RouterClient(std::string target, RouterClientOptions options,
               std::unique_ptr<strata::v1::Router::StubInterface> stub);

  RetryBudget budget() const { return {options_.deadline, options_.max_attempts}; }

  const std::string target_;
  const RouterClientOptions options_;
  const std::unique_ptr<strata::v1::Router::StubInterface> stub_;
};

}  // namespace strata::clients
