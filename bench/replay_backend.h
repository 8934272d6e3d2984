// ReplayBackend: what the replay loop (bench/replay.cc) needs from a cluster: routing, the nodes'
// cache tiers (TierAccess) and the flow of load and events to the router. SimCluster implements it
// in process and in simulated time; LiveCluster over gRPC against real processes.
//
// The loop calls it from one thread, with simulated time non-decreasing.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/engine.h"
#include "bench/replay.h"
#include "router/experiment.h"

namespace strata::bench {

struct RouteCall {
  const std::vector<common::ChainHash>* chain = nullptr;
  uint32_t prompt_tokens = 0;
  uint32_t block_tokens = 0;
  std::string request_id;  // the A/B split key
};

struct RouteAnswer {
  int node = 0;
  uint64_t decision_id = 0;
  std::string policy;  // the arm that decided
  PeerOffer peer;      // the longest peer offer (blocks == 0: none)
};

class ReplayBackend : public TierAccess {
 public:
  // Brings simulated time to `ms` (sim: the router's clock; live: waits for the wall clock).
  virtual void AdvanceTo(double ms) = 0;
  virtual absl::StatusOr<RouteAnswer> Route(const RouteCall& call) = 0;
  virtual void ReportOutcome(const RouteAnswer& answer, const RequestResult& result) = 0;
  // The node's engine load changed.
  virtual void ReportLoad(int node, const EngineLoad& load) = 0;
  // Delivers what the nodes changed since the last call (sim: one event batch per node).
  virtual void Flush() = 0;
  virtual router::ExperimentReportData ExperimentReport() = 0;
  // Mode-specific figures (live); called once at the end.
  virtual void Finish(ReplayResult* result) = 0;
};

}  // namespace strata::bench
