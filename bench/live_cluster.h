// LiveCluster: the cluster of `strata-bench replay --mode live`: a real strata-router and N real
// strata-cachenode processes on loopback, started here and stopped on exit (and on SIGINT/SIGTERM,
// which the replay turns into an orderly stop).
//
// The simulated engines (bench/engine.h) run in this process in simulated time, paced so that
// simulated time runs `speedup` times faster than the wall clock. Every decision is a real Route
// RPC; every block the engines write through is a real Put of a scaled-down payload (the scale is
// reported); every load from a node's tiers or a peer is a real Get; each engine reports its load
// to its node (ReportEngineLoad), which heartbeats it to the router. The router learns of blocks
// from the nodes' event streams only: the engines' HBM contents are not published in this mode
// (their blocks reach the router as the DRAM copies written through), so locality here sees a
// little less than in sim mode.
//
// Measured besides the sim figures: Route RPC latency, event lag (a Put's ack to the block showing
// in the router's index, sampled with the router's read-only Locate RPC) and bytes moved per tier.
//
// Not thread-safe (one replay loop).
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "bench/engine_params.h"
#include "bench/replay_backend.h"

namespace strata::bench {

class LiveCluster final : public ReplayBackend {
 public:
  // Starts the processes and waits until every node is registered and synced with the router.
  // Unavailable when a process does not start; FailedPrecondition when the binaries are missing.
  static absl::StatusOr<std::unique_ptr<LiveCluster>> Create(const ReplayOptions& options,
                                                             const EngineParams& params,
                                                             uint32_t block_tokens,
                                                             const ProgressFn& progress);
  // Stops the processes (SIGTERM, then SIGKILL after a grace period) and removes their data.
  ~LiveCluster() override;

  std::vector<bool> Match(int node, std::span<const common::ChainHash> chain) override;
  void Read(int node, std::span<const common::ChainHash> chain) override;
  void ReadPeer(int peer, std::span<const common::ChainHash> chain) override;
  void Write(int node, std::span<const common::ChainHash> chain, uint32_t first_position) override;
  void HbmStored(int node, std::span<const common::ChainHash> chain) override;
  void HbmRemoved(int node, std::span<const common::ChainHash> chain) override;

  void AdvanceTo(double ms) override;
  absl::StatusOr<RouteAnswer> Route(const RouteCall& call) override;
  void ReportOutcome(const RouteAnswer& answer, const RequestResult& result) override;
  void ReportLoad(int node, const EngineLoad& load) override;
  void Flush() override;
  router::ExperimentReportData ExperimentReport() override;
  void Finish(ReplayResult* result) override;

 private:
  struct Impl;
  explicit LiveCluster(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace strata::bench
