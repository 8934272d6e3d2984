// RouterService: the gRPC face of RouterCore (proto/strata/v1/router.proto).
//
// It converts wire messages to the core's types and back, and nothing else: hashing token ids into
// chain hashes, checking hash sizes and limits, resolving a node id + epoch to its slot, and
// turning each PublishEvents message into ingest calls with one reply per batch and per completed
// snapshot. A malformed message gets INVALID_ARGUMENT (unary) or a REJECTED reply (stream) and
// touches no other node's state. Synchronous service; thread-safe (all state lives in the core).
#pragma once

#include <cstdint>

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
  RouterCore* const core_;
  const RouterServiceOptions options_;
};

}  // namespace strata::router
