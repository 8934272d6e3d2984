// `strata-bench experiments`: the four experiments behind Strata, replayed in sim mode on one trace,
// written as a bench/RESULTS.md section with tables, PNG plots (gnuplot) and the command of every
// row.
//
//  (a) tiers: HBM only vs +DRAM vs +DRAM+SSD, on 1 and on 4 nodes;
//  (b) scale: 1, 2, 4, 8 nodes sharing their tiers (peer fetch) under locality routing;
//  (c) routing: locality, round_robin, random, least_loaded, consistent_hash at 2, 4 and 8 nodes,
//      plus one A/B run with shadow evaluation;
//  (d) SSD bandwidth: SSD-backed reuse (hbm+ssd, always loading) vs DRAM-backed reuse vs recompute
//      (HBM only) as SSD bandwidth varies: where SSD reuse stops paying.
//
// Throughput is measured saturated: arrivals compressed (`saturated_time_scale`) so every node has
// work queued and finished tokens per second measure capacity, not the trace's offered load.
// Latency (TTFT) is measured at the trace's own pace (time scale 1). The section also checks the
// targets of the replay design and says, with the figure, where one is missed.
//
// Not thread-safe; runs replays one after another (progress on `progress`).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "bench/replay.h"

namespace strata::bench {

struct ExperimentsOptions {
  std::string trace_path;
  uint64_t max_requests = 0;           // 0: the whole trace
  double saturated_time_scale = 0.05;  // arrivals for the throughput runs (0.05: 20x faster)
  std::string results_path = "bench/RESULTS.md";  // section replaced or appended
  std::string plot_dir = "bench/plots";           // PNGs, referenced from the section
  std::string only = "abcd";                      // which experiments to run

  absl::Status Validate() const;
};

// Runs the experiments and rewrites the section between "<!-- experiments:begin -->" and
// "<!-- experiments:end -->" in results_path (appending it when absent). Returns the section's
// markdown. Errors from replays, plots or files.
absl::StatusOr<std::string> RunExperiments(const ExperimentsOptions& options,
                                           const ProgressFn& progress);

// Replaces the marked section of `document` with `section` (markers included in `section`), or
// appends it. Pure.
std::string ReplaceSection(const std::string& document, const std::string& section);

}  // namespace strata::bench
