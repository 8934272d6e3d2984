// `strata-bench replay`: a Mooncake-format trace through N simulated GPU engines (bench/engine.h)
// that route every request through Strata's router and keep their KV in Strata's tiers.
//
// Modes:
//  - sim (default): a deterministic discrete-event simulation in one process. It drives the real
//    router core (router/: index, cost model, policies, A/B split, shadow scoring) and the real
//    cache-node store of each node (cachenode/: TieredStore over a DRAM MemoryTier and a RocksDB
//    SsdTier in a temporary directory, with their capacities, eviction, write-behind and
//    promotion). Payloads are elided: every block is a 64-byte stand-in whose capacity is charged
//    per block, so a 1 TiB DRAM tier of 64 MiB blocks holds 16,384 stand-ins. Same inputs, same
//    output, bit for bit.
//  - live (bench/live_cluster.h): real strata-router and strata-cachenode processes on loopback;
//    the same engines make real Route calls and real Put/Get of scaled-down payloads, paced against
//    the wall clock.
//
// Results (ReplayResult): throughput (input + output tokens of finished requests per simulated
// second, first arrival to last finish), TTFT and end-to-end percentiles, the share of prompt
// blocks served from each tier, the ideal hit ratio (the same requests through one infinite
// cache), and load imbalance (max over mean of prefill tokens per node); per policy arm when the
// router runs an A/B experiment.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/engine.h"
#include "bench/plot.h"
#include "bench/trace.h"

namespace strata::bench {

enum class ReplayMode { kSim, kLive };
enum class TierSet { kHbm, kHbmDram, kHbmDramSsd, kHbmSsd };

// "hbm", "hbm+dram", "hbm+dram+ssd", "hbm+ssd".
std::string TierSetName(TierSet t);
absl::StatusOr<TierSet> ParseTierSet(std::string_view name);

struct LiveOptions {
  // Directory holding strata-router and strata-cachenode; empty: next to strata-bench.
  std::string bin_dir;
  // Simulated milliseconds per wall millisecond: 10 replays 100 s of trace in 10 s of wall time.
  double speedup = 10;
  // Payload bytes of one block on the wire and in the nodes (a 512-token block is 64 MiB).
  uint64_t block_bytes = 64 << 10;
  uint16_t base_port = 0;  // 0: ports chosen by the system
};

struct ReplayOptions {
  std::string trace_path;  // Mooncake JSONL
  TraceOptions trace;
  int nodes = 4;
  // A policy name, or an A/B split "locality=50,round_robin=50" (router/experiment.h).
  std::string experiment = "locality";
  TierSet tiers = TierSet::kHbmDramSsd;
  // Per node. hbm_bytes 0: the GPU model's KV room (memory x utilization - weights).
  uint64_t hbm_bytes = 0;
  uint64_t dram_bytes = 1ull << 40;  // 1 TiB
  uint64_t ssd_bytes = 8ull << 40;   // 8 TiB
  double ssd_gbps = 0;               // 0: the engine file's figure (a datacenter NVMe drive)
  double peer_gbps = 0;              // 0: the cost file's network figure
  LoadPolicy load_policy = LoadPolicy::kWhenFaster;
  ReplayMode mode = ReplayMode::kSim;
  uint64_t seed = 1;  // the router's random policy
  double route_memory_s = 30;  // the router's --route-memory horizon (seconds; 0: off)
  std::string engine_file;      // empty: embedded bench/engine_h100_llama3_8b.json
  std::string cost_model_file;  // empty: embedded router/cost_model_h100_llama3_8b.json
  LiveOptions live;
  // When set and true, the replay stops at the next event (Cancelled) after stopping what it
  // started. strata-bench sets it from SIGINT/SIGTERM.
  const std::atomic<bool>* cancel = nullptr;

  absl::Status Validate() const;
};

struct Percentiles {
  double p50 = 0, p95 = 0, p99 = 0;
};

// Figures over a set of finished requests (all, or one policy arm's).
struct ReplayFigures {
  std::string policy;
  uint64_t requests = 0;
  double throughput_tokens_per_s = 0;
  double output_tokens_per_s = 0;
  Percentiles ttft_ms;
  Percentiles e2e_ms;
  std::array<double, kNumHitTiers> hit_ratio{};  // hbm, dram, ssd, peer: share of prompt blocks
  double total_hit_ratio = 0;
  double load_imbalance = 0;  // max / mean prefill tokens per node
  std::vector<uint64_t> prefill_tokens_per_node;
  // From the router's experiment report (A/B arms only).
  uint64_t shadow_requests = 0;
  double mean_shadow_hit_blocks = 0;
  uint64_t shadow_agreements = 0;
  double mean_predicted_ttft_ms = 0;
};

struct LiveFigures {
  uint64_t block_bytes = 0;
  double payload_scale = 0;  // real block bytes / block_bytes
  Percentiles route_us;      // Route RPC latency, wall microseconds
  Percentiles event_lag_ms;  // a put's ack on the node to its block in the router's index
  uint64_t event_lag_samples = 0;
  std::array<uint64_t, 3> bytes_read{};  // dram, ssd, peer (bytes moved by Get, scaled payloads)
  uint64_t bytes_written = 0;
  double wall_s = 0;
  uint64_t rpc_errors = 0;  // failed RPCs (the replay goes on; the exit status says so)
  std::string first_error;
};

struct ReplayResult {
  ReplayMode mode = ReplayMode::kSim;
  std::string trace;
  std::string experiment;
  int nodes = 0;
  TierSet tiers = TierSet::kHbmDramSsd;
  double ssd_gbps = 0;
  uint64_t hbm_blocks_per_node = 0;
  uint64_t rejected = 0;  // requests larger than a node's HBM pool (never admitted)
  double ideal_hit_ratio = 0;
  double sim_seconds = 0;
  double wall_seconds = 0;
  bool hbm_emulated = true;  // always: no GPU runs in a replay
  ReplayFigures all;
  std::vector<ReplayFigures> policies;  // one per experiment arm (empty for a single policy)
  LiveFigures live;                      // mode live only
};

using ProgressFn = std::function<void(const std::string&)>;

// Runs the replay. InvalidArgument for bad options or trace; Internal/Unavailable when the sim's
// stores or the live processes fail.
absl::StatusOr<ReplayResult> RunReplay(const ReplayOptions& options, const ProgressFn& progress);

// Same, with the trace already parsed (experiments replay one trace many times).
absl::StatusOr<ReplayResult> RunReplayOn(const Trace& trace, const ReplayOptions& options,
                                         const ProgressFn& progress);

// Nearest-rank percentiles of `values` (sorted in place).
Percentiles PercentilesOf(std::vector<double>& values);

// The figures of a set of results; `nodes` sizes prefill_tokens_per_node.
ReplayFigures FiguresOf(const std::vector<RequestResult>& results, int nodes);

std::string FormatReplayText(const ReplayResult& r);

// The plot of `replay --plot`: hit ratio per tier for each policy (bars, labelled with its TTFT
// p50) against the ideal hit ratio (a line).
PlotSpec ReplayPlot(const ReplayResult& r);
// One JSON object: policy, nodes, tiers, requests, throughput_tokens_per_s, output_tokens_per_s,
// ttft_ms {p50,p95,p99}, e2e_ms {p50,p99}, hit_ratio {hbm,dram,ssd,peer,total}, ideal_hit_ratio,
// load_imbalance, and `policies` (one such object per arm) for an experiment, `live` in live mode.
std::string FormatReplayJson(const ReplayResult& r);

}  // namespace strata::bench
