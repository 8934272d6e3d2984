// `strata-bench router`: the router's index at cluster scale, in process (DESIGN section 7).
//
// Builds a GlobalIndex fed through EventIngest (the same path node event streams take) with
// `nodes` nodes and about `entries` (block, node) entries, then measures:
//
//   ingest  block events/s through EventIngest::ApplyBatch: filling the index from empty, and
//           steady-state churn (each batch stores new chains and removes old ones); also the
//           service path: protobuf parse of an EventBatch + DecodeEvents + ApplyBatch
//   route   GlobalIndex::Match latency of `chain`-block requests, each call timed on its own
//           (p50/p99/p99.9), alone and with an ingest thread churning the index meanwhile
//   memory  bytes per (block, node) entry from GlobalIndex::Stats() and from the process's
//           resident-memory growth while filling
//
// The workload: conversations are chains of `chain` blocks; the first `shared_blocks` of each are
// one of `shared_prefixes` system prompts (held by every node, so those blocks have `nodes`
// holders), the rest are private to the conversation. Each chain lives on one node (round robin),
// and one in eight also on a second node (a migrated or peer-fetched session). Chains sit in HBM,
// DRAM or SSD with probability 1/2, 3/10, 1/5. Requests pick a stored chain uniformly; half ask for
// exactly that chain, half keep a random-length prefix of it and continue with new blocks. Keys are
// pseudo-random 64-bit values (real keys are hash outputs). Everything follows from `seed`.
//
// Judged against fixed targets (not limits measured in the run: nothing physical bounds an
// in-memory index); see bench/RESULTS.md. Not thread-safe: one run at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace strata::bench {

struct RouterBenchOptions {
  // Nodes in the cluster. 64 is the design's scale for one router.
  uint32_t nodes = 64;
  // (block, node) entries to index (--blocks). 10M is 64 nodes x ~156k blocks each: a node with a
  // few hundred GiB of DRAM+SSD holds that many 2 MiB blocks.
  uint64_t entries = 10'000'000;
  // Blocks per conversation chain, and so per route request (--chain).
  uint32_t chain_blocks = 64;
  // System prompts, and how many leading blocks of a chain they take.
  uint32_t shared_prefixes = 16;
  uint32_t shared_blocks = 16;
  // Block keys per event batch (stored plus removed); the batch closes at the first chain that
  // reaches it.
  uint32_t batch_keys = 1024;
  // Timed route calls in each route case (after 10% as many warm-up calls). 300k gives a p99.9
  // from 300 samples.
  uint64_t routes = 300'000;
  // Block events of the steady-state churn case: about a second at the target rate.
  uint64_t churn_events = 10'000'000;
  // GlobalIndexOptions::shards.
  uint32_t shards = 64;
  uint64_t seed = 1;

  // InvalidArgument naming the first bad field.
  absl::Status Validate() const;
};

// One measured figure next to its target.
struct RouterFigure {
  std::string metric;  // "ingest_fill", "route_p99", "index_bytes_per_entry", ...
  double value = 0;
  std::string unit;  // "events/s", "us", "B", "ms", "blocks"
  std::optional<double> target_min;
  std::optional<double> target_max;
  std::string note;

  // nullopt without a target.
  std::optional<bool> TargetMet() const;
};

struct RouterSummary {
  RouterBenchOptions options;
  uint64_t chains = 0;   // conversation chains indexed
  uint64_t blocks = 0;   // distinct keys in the index after the fill
  uint64_t entries = 0;  // (block, node) entries after the fill
  double seconds = 0;    // wall time of the whole run
  std::vector<RouterFigure> figures;
};

using RouterProgressFn = std::function<void(const std::string& line)>;

// Runs every case in order. An error means the run could not go on (an ingest reply was not
// kApplied, a decode failed, or the index disagreed with what was stored); a missed target is not
// an error.
absl::StatusOr<RouterSummary> RunRouterBench(const RouterBenchOptions& options,
                                             const RouterProgressFn& progress);

// A short setup paragraph, then an aligned table: metric, value, unit, target, met, note.
std::string FormatRouterText(const RouterSummary& summary);
// One JSON object (one line): the setup, then "figures": [{metric, value, unit, target,
// target_met, note}, ...].
std::string FormatRouterJson(const RouterSummary& summary);

}  // namespace strata::bench
