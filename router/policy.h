// Routing policies: given the live candidates of one request, pick one.
//
// Select() has no side effects, so the router can ask every policy of an experiment what it would
// choose (shadow evaluation) at no cost to the live decision. Commit() does the bookkeeping after a
// policy's choice was taken live (round_robin advances). Policies: locality (minimum predicted TTFT
// from the CostModel, ties by load), round_robin, random (deterministic by request hash),
// least_loaded, consistent_hash (rendezvous hashing of the chain's first blocks). Select and Commit
// may be called concurrently.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "router/cost_model.h"
#include "router/types.h"

namespace strata::router {

struct Candidate {
  NodeSlot node = kNoSlot;
  std::string_view node_id;
  NodeLoad load;    // last heartbeat plus requests routed to it since
  NodeMatch match;  // matched == 0 when it holds no prefix of the request
};

struct RouteContext {
  std::span<const IndexKey> keys;  // the request's chain, in order
  uint32_t prompt_tokens = 0;
  uint32_t block_tokens = 0;
  uint64_t request_hash = 0;              // stable hash of the request id
  std::span<const Candidate> candidates;  // live, not draining; never empty
  std::span<const NodeMatch> holders;     // every node's match, draining ones included
  bool holders_longest_first = false;     // holders sorted by matched, descending
};

struct Choice {
  size_t index = 0;  // into RouteContext::candidates
};

class Policy {
 public:
  virtual ~Policy() = default;
  virtual std::string_view name() const = 0;
  virtual Choice Select(const RouteContext& ctx) const = 0;
  virtual void Commit(const RouteContext& ctx, const Choice& choice) {}
};

// The known policy names, in a fixed order.
std::span<const std::string_view> PolicyNames();

// InvalidArgument for an unknown name (the message lists the known ones). `model` must outlive the
// policy; `seed` feeds the random policy.
absl::StatusOr<std::unique_ptr<Policy>> MakePolicy(std::string_view name, const CostModel* model,
                                                   uint64_t seed = 0);

// The CostInput of one candidate (shared by the locality policy and the router's prediction).
CostInput CostInputOf(const RouteContext& ctx, const Candidate& c);

}  // namespace strata::router
