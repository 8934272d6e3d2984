// A/B experiments: a traffic split across policies plus per-policy figures.
//
// ExperimentSpec parses "locality=50,round_robin=50" (weights are positive integers; a single name
// without a weight means all traffic to it). Assign() maps a split key hash to a policy
// deterministically: the same session (or request) always lands on the same policy.
//
// ExperimentStats accumulates, per policy: live decisions (matched blocks per tier, predicted
// TTFT), reported outcomes (TTFT distribution), and shadow results (for every request, what the
// policy would have chosen and the hit it would have got). Report() snapshots them. Thread-safe.
//
// Reported TTFT percentiles come from a fixed log-bucket histogram (buckets 2% wide from 0.01 ms to
// 1e6 ms, about 7.5 KiB per policy): within that range a percentile is off by at most 1% of its
// value (the bucket's geometric middle is reported, clamped to the observed min and max, so a
// single sample is exact). Percentiles are nearest-rank.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "router/types.h"

namespace strata::router {

struct ExperimentArm {
  std::string policy;
  uint32_t weight = 0;
};

struct ExperimentSpec {
  std::vector<ExperimentArm> arms;  // in spec order; policy names unique

  // Whitespace around names and weights is ignored. InvalidArgument for an empty spec or arm, a
  // weight that is not an integer in [1, 1000000], a duplicate or an unknown policy name (names
  // are checked against PolicyNames()).
  static absl::StatusOr<ExperimentSpec> Parse(std::string_view spec);
  std::string ToString() const;  // "locality=50,round_robin=50"
  // Index into arms for a split key hash; deterministic, proportional to weights. The hash is
  // mixed first, so sequential keys spread too. Requires a non-empty spec (0 otherwise).
  size_t Assign(uint64_t split_hash) const;
};

struct LiveDecision {
  std::array<uint32_t, kNumTiers> matched_per_tier{};
  uint32_t requested_blocks = 0;
  double predicted_ttft_ms = 0;
};

struct ShadowResult {
  uint32_t matched_blocks = 0;
  double predicted_ttft_ms = 0;
  bool agrees_with_live = false;
};

struct PolicyReport {
  std::string policy;
  uint32_t weight = 0;
  uint64_t decisions = 0;
  std::array<uint64_t, kNumTiers> matched_per_tier{};
  uint64_t requested_blocks = 0;
  double mean_predicted_ttft_ms = 0;
  uint64_t outcomes = 0;
  double mean_reported_ttft_ms = 0, p50_reported_ttft_ms = 0, p99_reported_ttft_ms = 0;
  uint64_t shadow_requests = 0;
  double mean_shadow_hit_blocks = 0;
  double mean_shadow_predicted_ttft_ms = 0;
  uint64_t shadow_agreements = 0;
};

struct ExperimentReportData {
  std::string spec;
  uint64_t requests = 0;
  std::vector<PolicyReport> policies;  // in spec order
};

class ExperimentStats {
 public:
  explicit ExperimentStats(ExperimentSpec spec);
  ~ExperimentStats();
  const ExperimentSpec& spec() const { return spec_; }

  // `arm` indexes spec().arms; an out-of-range arm is ignored. Each live decision counts as one
  // request of the experiment.
  void RecordLive(size_t arm, const LiveDecision& d);
  void RecordShadow(size_t arm, const ShadowResult& r);
  // Reported outcome of a decision made by `arm`; a negative or non-finite TTFT is ignored.
  void RecordOutcome(size_t arm, double ttft_ms);

  ExperimentReportData Report() const;

 private:
  struct Accum;  // per-arm sums and TTFT histogram (experiment.cc)

  const ExperimentSpec spec_;
  mutable absl::Mutex mu_;
  std::vector<Accum> accums_ ABSL_GUARDED_BY(mu_);
  uint64_t requests_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace strata::router
