#include "router/experiment.h"

#include <xxhash.h>

#include <algorithm>
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/string_view_interop.h"
#include "router/policy.h"

namespace strata::router {
namespace {

// Largest weight an arm may carry; finer splits than one in a million mean nothing at router rates.
constexpr uint32_t kMaxWeight = 1000000;

std::string_view Trim(std::string_view s) {
  const auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

absl::StatusOr<uint32_t> ParseWeight(std::string_view text, std::string_view arm) {
  uint64_t v = 0;
  bool ok = !text.empty() && text.size() <= 7;
  for (char c : text) {
    if (c < '0' || c > '9') ok = false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (!ok || v == 0 || v > kMaxWeight) {
    return absl::InvalidArgumentError(common::Concat("experiment arm '", arm, "': weight '", text,
                                                     "' is not an integer in [1, ", kMaxWeight,
                                                     "]"));
  }
  return static_cast<uint32_t>(v);
}

// TTFT distribution: counts in log-spaced buckets, each kRatio wide, from kMinMs to kMaxMs; values
// outside go to the end buckets. Reporting a bucket's geometric middle is off by at most
// sqrt(kRatio) - 1 (under 1%); clamping to the observed extremes makes end buckets no worse.
class LogHistogram {
 public:
  static constexpr double kMinMs = 0.01;
  static constexpr double kMaxMs = 1e6;
  static constexpr double kRatio = 1.02;

  LogHistogram() : counts_(Buckets(), 0) {}

  void Add(double v) {
    ++counts_[Index(v)];
    min_ = count_ == 0 ? v : std::min(min_, v);
    max_ = count_ == 0 ? v : std::max(max_, v);
    ++count_;
  }

  // Nearest-rank percentile, q in (0, 1]; 0 when empty.
  double Percentile(double q) const {
    if (count_ == 0) return 0;
    const uint64_t rank =
        std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_))));
    uint64_t seen = 0;
    for (size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= rank) {
        return std::clamp(kMinMs * std::pow(kRatio, static_cast<double>(i) + 0.5), min_, max_);
      }
    }
    return max_;
  }

 private:
  static size_t Buckets() {
    return static_cast<size_t>(std::ceil(std::log(kMaxMs / kMinMs) / std::log(kRatio)));
  }
  size_t Index(double v) const {
    if (!(v > kMinMs)) return 0;
    const auto i = static_cast<size_t>(std::log(v / kMinMs) / std::log(kRatio));
    return std::min(i, counts_.size() - 1);
  }

  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  double min_ = 0, max_ = 0;
};

double Mean(double sum, uint64_t n) { return n == 0 ? 0 : sum / static_cast<double>(n); }

}  // namespace

absl::StatusOr<ExperimentSpec> ExperimentSpec::Parse(std::string_view spec) {
  if (Trim(spec).empty()) return absl::InvalidArgumentError("experiment spec is empty");
  ExperimentSpec out;
  while (true) {
    const size_t comma = spec.find(',');
    const std::string_view arm = Trim(spec.substr(0, comma));
    if (arm.empty()) {
      return absl::InvalidArgumentError("experiment spec has an empty arm (stray comma?)");
    }
    const size_t eq = arm.find('=');
    const std::string_view name = Trim(arm.substr(0, eq));
    uint32_t weight = 1;
    if (eq != std::string_view::npos) {
      auto parsed = ParseWeight(Trim(arm.substr(eq + 1)), arm);
      if (!parsed.ok()) return parsed.status();
      weight = *parsed;
    }
    const auto names = PolicyNames();
    if (std::find(names.begin(), names.end(), name) == names.end()) {
      std::string known;
      for (std::string_view n : names) known = common::Concat(known, known.empty() ? "" : ", ", n);
      return absl::InvalidArgumentError(
          common::Concat("experiment spec: unknown policy '", name, "'; known: ", known));
    }
    for (const ExperimentArm& a : out.arms) {
      if (a.policy == name) {
        return absl::InvalidArgumentError(
            common::Concat("experiment spec: policy '", name, "' appears twice"));
      }
    }
    out.arms.push_back({std::string(name), weight});
    if (comma == std::string_view::npos) break;
    spec.remove_prefix(comma + 1);
  }
  return out;
}

std::string ExperimentSpec::ToString() const {
  std::string out;
  for (const ExperimentArm& a : arms) {
    absl::StrAppend(&out, out.empty() ? "" : ",", a.policy, "=", a.weight);
  }
  return out;
}

size_t ExperimentSpec::Assign(uint64_t split_hash) const {
  uint64_t total = 0;
  for (const ExperimentArm& a : arms) total += a.weight;
  if (total == 0) return 0;
  // Mixed so that sequential or low-entropy keys spread over the arms.
  uint64_t r = XXH3_64bits(&split_hash, sizeof(split_hash)) % total;
  for (size_t i = 0; i < arms.size(); ++i) {
    if (r < arms[i].weight) return i;
    r -= arms[i].weight;
  }
  return arms.size() - 1;  // not reached
}

struct ExperimentStats::Accum {
  uint64_t decisions = 0;
  std::array<uint64_t, kNumTiers> matched_per_tier{};
  uint64_t requested_blocks = 0;
  double predicted_sum = 0;
  uint64_t outcomes = 0;
  double ttft_sum = 0;
  LogHistogram ttft;
  uint64_t shadow_requests = 0;
  double shadow_hit_sum = 0;
  double shadow_predicted_sum = 0;
  uint64_t shadow_agreements = 0;
};

ExperimentStats::ExperimentStats(ExperimentSpec spec)
    : spec_(std::move(spec)), accums_(spec_.arms.size()) {}

ExperimentStats::~ExperimentStats() = default;

void ExperimentStats::RecordLive(size_t arm, const LiveDecision& d) {
  absl::MutexLock lock(&mu_);
  if (arm >= accums_.size()) return;
  Accum& a = accums_[arm];
  ++requests_;
  ++a.decisions;
  for (int t = 0; t < kNumTiers; ++t) a.matched_per_tier[t] += d.matched_per_tier[t];
  a.requested_blocks += d.requested_blocks;
  a.predicted_sum += d.predicted_ttft_ms;
}

void ExperimentStats::RecordShadow(size_t arm, const ShadowResult& r) {
  absl::MutexLock lock(&mu_);
  if (arm >= accums_.size()) return;
  Accum& a = accums_[arm];
  ++a.shadow_requests;
  a.shadow_hit_sum += r.matched_blocks;
  a.shadow_predicted_sum += r.predicted_ttft_ms;
  if (r.agrees_with_live) ++a.shadow_agreements;
}

void ExperimentStats::RecordOutcome(size_t arm, double ttft_ms) {
  if (!std::isfinite(ttft_ms) || ttft_ms < 0) return;
  absl::MutexLock lock(&mu_);
  if (arm >= accums_.size()) return;
  Accum& a = accums_[arm];
  ++a.outcomes;
  a.ttft_sum += ttft_ms;
  a.ttft.Add(ttft_ms);
}

ExperimentReportData ExperimentStats::Report() const {
  ExperimentReportData out;
  out.spec = spec_.ToString();
  absl::MutexLock lock(&mu_);
  out.requests = requests_;
  out.policies.reserve(accums_.size());
  for (size_t i = 0; i < accums_.size(); ++i) {
    const Accum& a = accums_[i];
    PolicyReport r;
    r.policy = spec_.arms[i].policy;
    r.weight = spec_.arms[i].weight;
    r.decisions = a.decisions;
    r.matched_per_tier = a.matched_per_tier;
    r.requested_blocks = a.requested_blocks;
    r.mean_predicted_ttft_ms = Mean(a.predicted_sum, a.decisions);
    r.outcomes = a.outcomes;
    r.mean_reported_ttft_ms = Mean(a.ttft_sum, a.outcomes);
    r.p50_reported_ttft_ms = a.ttft.Percentile(0.50);
    r.p99_reported_ttft_ms = a.ttft.Percentile(0.99);
    r.shadow_requests = a.shadow_requests;
    r.mean_shadow_hit_blocks = Mean(a.shadow_hit_sum, a.shadow_requests);
    r.mean_shadow_predicted_ttft_ms = Mean(a.shadow_predicted_sum, a.shadow_requests);
    r.shadow_agreements = a.shadow_agreements;
    out.policies.push_back(std::move(r));
  }
  return out;
}

}  // namespace strata::router
