#include "cachenode/engine_load.h"

#include <limits>

#include "absl/strings/str_cat.h"

namespace strata::cachenode {
namespace {

// a + b, clamped to T's range: a figure pinned at its maximum still reads as "very loaded".
template <typename T>
T SaturatingAdd(T a, T b) {
  return a > std::numeric_limits<T>::max() - b ? std::numeric_limits<T>::max() : a + b;
}

void AddTo(LoadFigures& sum, const LoadFigures& l) {
  sum.queued_requests = SaturatingAdd(sum.queued_requests, l.queued_requests);
  sum.running_requests = SaturatingAdd(sum.running_requests, l.running_requests);
  sum.prefill_tokens_in_flight =
      SaturatingAdd(sum.prefill_tokens_in_flight, l.prefill_tokens_in_flight);
  sum.free_hbm_blocks = SaturatingAdd(sum.free_hbm_blocks, l.free_hbm_blocks);
}

}  // namespace

absl::Status EngineLoadOptions::Validate() const {
  if (ttl <= absl::ZeroDuration()) return absl::InvalidArgumentError("engine_load_ttl must be > 0");
  if (max_engines == 0) return absl::InvalidArgumentError("max_engines must be > 0");
  return absl::OkStatus();
}

EngineLoadTable::EngineLoadTable(const EngineLoadOptions& options, common::Clock* clock)
    : options_(options), clock_(clock) {}

absl::Status EngineLoadTable::Report(const std::string& engine_id, const LoadFigures& load) {
  if (engine_id.empty()) return absl::InvalidArgumentError("engine_id is empty");
  const absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  auto it = engines_.find(engine_id);
  if (it == engines_.end()) {
    if (engines_.size() >= options_.max_engines) {
      // Engines that went quiet make room first; their reports no longer count anyway.
      absl::erase_if(engines_, [&](const auto& e) { return !Fresh(e.second, now); });
    }
    if (engines_.size() >= options_.max_engines) {
      return absl::ResourceExhaustedError(absl::StrCat("the node already tracks ", engines_.size(),
                                                       " engines (at most ", options_.max_engines,
                                                       "); engine '", engine_id, "' is not taken"));
    }
    it = engines_.emplace(engine_id, Entry{}).first;
  }
  it->second = Entry{load, now};
  return absl::OkStatus();
}

EngineLoadSum EngineLoadTable::Sum() const {
  const absl::Time now = clock_->Now();
  EngineLoadSum sum;
  absl::MutexLock lock(&mu_);
  for (const auto& [id, e] : engines_) {
    if (!Fresh(e, now)) continue;
    AddTo(sum.total, e.load);
    ++sum.engines;
  }
  return sum;
}

LoadFigures EngineLoadTable::Merge(const LoadFigures& node) const {
  const EngineLoadSum engines = Sum();
  LoadFigures merged = node;
  merged.free_hbm_blocks = 0;
  AddTo(merged, engines.total);
  if (engines.engines == 0) merged.free_hbm_blocks = node.free_hbm_blocks;
  return merged;
}

}  // namespace strata::cachenode
