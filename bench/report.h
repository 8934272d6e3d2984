// Result rows of `strata-bench tiers` and their two renderings: an aligned text table for people
// and one JSON object per line for scripts.
//
// A row is one measured case next to the physical limit it is judged against (measured in the same
// run), the ratio of the two, optional read/write amplification, and the target the design sets for
// it. Baseline rows (the limits themselves) have no baseline of their own. Pure functions over
// plain values; thread-compatible.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace strata::bench {

// What the design asks of a row (bench/RESULTS.md, DESIGN section 9). Any field may be absent.
struct Target {
  std::optional<double> min_ratio;          // gbps / baseline_gbps must be at least this
  std::optional<double> max_ratio;          // ... at most this (resident memory rows)
  std::optional<double> max_amplification;  // disk bytes per payload byte at most this
};

struct Row {
  std::string path;  // "dram", "ssd", "grpc", "node", or "limit" for a baseline row
  std::string op;    // "put", "get", "read", "read_batch", "rss_1gib_dram_full", ...
  uint64_t block_bytes = 0;
  double gbps = 0;                  // payload GB/s (1e9 bytes/s); 0 where unused
  std::optional<double> cpu_cores;  // cores the process kept busy meanwhile (all threads)
  std::string baseline;             // name of the limit it is judged against; empty for none
  double baseline_gbps = 0;
  std::optional<double> amplification;   // disk bytes / payload bytes, where relevant
  std::optional<uint64_t> rss_bytes;     // resident memory rows
  std::optional<double> ratio_override;  // for rows whose ratio is not gbps/baseline (rss)
  std::optional<Target> target;
  std::string note;  // one short remark (e.g. "qd1", "chain of 32")
};

// gbps / baseline_gbps, or the override; nullopt when there is no baseline or it is 0.
std::optional<double> RatioOf(const Row& row);

// True/false when the row has a target, nullopt otherwise. A target on amplification is missed
// when amplification was not measured.
std::optional<bool> TargetMet(const Row& row);

// "ratio>=0.80", "ratio<=1.30 amp<=1.10"; empty without a target.
std::string DescribeTarget(const Target& target);

// An aligned table with a header line; numbers in fixed precision; "-" for absent values.
std::string FormatTable(const std::vector<Row>& rows);

// One JSON object per row, one per line (JSON Lines). Fields: path, op, block_bytes, gbps,
// baseline, baseline_gbps, ratio, and where present cpu_cores, amplification, rss_bytes, target,
// target_met, note.
std::string FormatJsonLines(const std::vector<Row>& rows);

}  // namespace strata::bench
