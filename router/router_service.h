// RouterService: the gRPC face of RouterCore (proto/strata/v1/router.proto).
//
// It converts wire messages to the core's types and back, and nothing else: hashing token ids into
// chain hashes, checking hash sizes and limits, resolving a node id + epoch to its slot, and
// turning each PublishEvents message into ingest calls with one reply per batch and per completed
// snapshot. A malformed message gets INVALID_ARGUMENT (unary) or a REJECTED reply (stream) and
// touches no other node's state. Synchronous service; thread-safe (all state lives in the core).
#pragma once

#include <cstdint>
#include <vector>

#include "common/grpc_auth.h"
#include "router/router_core.h"
#include "strata/v1/router.grpc.pb.h"

namespace strata::router {

struct RouterServiceOptions {
  // Largest snapshot chunk or batch accepted, in blocks; bigger ones are rejected (they would hold
  // a node's ingest lock and the message buffer for too long).
  uint32_t max_blocks_per_message = 1 << 17;
  uint32_t max_events_per_message = 1 << 14;
  // Largest token list a route may carry (hashing is the router's CPU time).
  uint32_t max_route_tokens = 1 << 20;
};

// gRPC message limit for the router: a snapshot chunk of max_blocks_per_message hashes plus
// framing.
inline constexpr int kRouterMaxMessageBytes = 8 << 20;

// What a route or locate request is checked against (ValidateRouteRequest). The service fills it
// from RouterCoreOptions::max_request_blocks, RouterServiceOptions::max_route_tokens and the cost
// model's block_tokens.
struct RouteRequestLimits {
  // Most blocks a request may name, by hashes or by tokens (the core's max_request_blocks).
  uint32_t max_blocks = 4096;
  // Most token ids a request may carry (RouterServiceOptions::max_route_tokens).
  uint32_t max_tokens = 1 << 20;
  // Tokens per block when the request gives block_tokens = 0 (the cost model's default). > 0.
  uint32_t default_block_tokens = 16;
};

// The chain a RouteRequest (or LocateRequest: same field names) names, as index keys in its
// namespace: the given chain_hashes, or the chain of its token ids hashed with common::HashChain
// (block_tokens per block, cache_salt in the first). Pure; what the handlers run before the core.
// On success there are 1 to max_blocks keys. InvalidArgument for a bad namespace name, both or
// neither of hashes and tokens, a hash that is not 32 bytes, more than max_blocks hashes, more
// than max_tokens tokens, fewer tokens than one block, or tokens that make more than max_blocks
// blocks (checked before any hashing: the router's CPU time is what the limit protects).
absl::StatusOr<std::vector<IndexKey>> ValidateRouteRequest(const strata::v1::RouteRequest& req,
                                                           const RouteRequestLimits& limits);
absl::StatusOr<std::vector<IndexKey>> ValidateLocateRequest(const strata::v1::LocateRequest& req,
                                                            const RouteRequestLimits& limits);

// Which token roles may call which Router method (common/grpc_auth.h; admin may call all):
// frontends (route) ask for routes and report outcomes, cache agents (node) register, heartbeat and
// publish events, experiments are admin-only.
common::MethodRoles RouterMethodRoles();

class RouterService final : public strata::v1::Router::Service {
 public:
  RouterService(RouterCore* core, const RouterServiceOptions& options = {});

  grpc::Status Route(grpc::ServerContext* ctx, const strata::v1::RouteRequest* req,
                     strata::v1::RouteResponse* resp) override;
  grpc::Status Locate(grpc::ServerContext* ctx, const strata::v1::LocateRequest* req,
                      strata::v1::LocateResponse* resp) override;
  grpc::Status ReportOutcome(grpc::ServerContext* ctx, const strata::v1::ReportOutcomeRequest* req,
                             strata::v1::ReportOutcomeResponse* resp) override;
  grpc::Status RegisterNode(grpc::ServerContext* ctx, const strata::v1::RegisterNodeRequest* req,
                            strata::v1::RegisterNodeResponse* resp) override;
  grpc::Status Heartbeat(grpc::ServerContext* ctx, const strata::v1::HeartbeatRequest* req,
                         strata::v1::HeartbeatResponse* resp) override;
  grpc::Status ListNodes(grpc::ServerContext* ctx, const strata::v1::ListNodesRequest* req,
                         strata::v1::ListNodesResponse* resp) override;
  grpc::Status PublishEvents(grpc::ServerContext* ctx,
                             grpc::ServerReaderWriter<strata::v1::PublishReply,
                                                      strata::v1::PublishRequest>* stream) override;
  grpc::Status SetExperiment(grpc::ServerContext* ctx, const strata::v1::SetExperimentRequest* req,
                             strata::v1::ExperimentReport* resp) override;
  grpc::Status GetExperimentReport(grpc::ServerContext* ctx,
                                   const strata::v1::GetExperimentReportRequest* req,
                                   strata::v1::ExperimentReport* resp) override;

  // The conversion of one route request, exposed for tests and in-process callers.
  absl::StatusOr<RouteQuery> QueryFromRequest(const strata::v1::RouteRequest& req) const;

 private:
  RouteRequestLimits Limits() const;

  RouterCore* const core_;
  const RouterServiceOptions options_;
};

}  // namespace strata::router
