// SimCluster: the in-process cluster of `strata-bench replay --mode sim`.
//
// One RouterCore on a ManualClock that follows simulated time, and per node one cache-node
// TieredStore over the real tiers (a DRAM MemoryTier and a RocksDB SsdTier in a temporary
// directory, as the replay's tier set asks) holding 64-byte stand-in payloads; capacities are
// counted in blocks of the trace's size (DRAM 1 TiB = 16,384 blocks of 64 MiB). Each node's store
// changes (TieredStore's event sink) and its engine's HBM changes are batched per node and applied
// to the router's index through the same ordered-batch ingest a live node's stream uses, once per
// event of the replay loop. Write-behind to SSD runs right after each write-through.
//
// Deterministic. Not thread-safe (one replay loop).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/engine_params.h"
#include "bench/replay_backend.h"

namespace strata::bench {

class SimCluster final : public ReplayBackend {
 public:
  // Stores live under `scratch_dir` (created; removed by the destructor).
  static absl::StatusOr<std::unique_ptr<SimCluster>> Create(const ReplayOptions& options,
                                                            const EngineParams& params,
                                                            uint32_t block_tokens,
                                                            const std::string& scratch_dir);
  ~SimCluster() override;

  // TierAccess
  std::vector<bool> Match(int node, std::span<const common::ChainHash> chain) override;
  void Read(int node, std::span<const common::ChainHash> chain) override;
  void ReadPeer(int peer, std::span<const common::ChainHash> chain) override;
  void Write(int node, std::span<const common::ChainHash> chain, uint32_t first_position) override;
  void HbmStored(int node, std::span<const common::ChainHash> chain) override;
  void HbmRemoved(int node, std::span<const common::ChainHash> chain) override;

  // ReplayBackend
  void AdvanceTo(double ms) override;
  absl::StatusOr<RouteAnswer> Route(const RouteCall& call) override;
  void ReportOutcome(const RouteAnswer& answer, const RequestResult& result) override;
  void ReportLoad(int node, const EngineLoad& load) override;
  void Flush() override;
  router::ExperimentReportData ExperimentReport() override;
  void Finish(ReplayResult* result) override;

 private:
  struct Impl;
  explicit SimCluster(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The namespace replayed blocks live in.
inline constexpr const char* kReplayNamespace = "strata-bench/replay/b512";

}  // namespace strata::bench
