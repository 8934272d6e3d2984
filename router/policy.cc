#include "router/policy.h"

#include <xxhash.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>

#include "absl/status/status.h"
#include "common/string_view_interop.h"

namespace strata::router {
namespace {

constexpr std::array<std::string_view, 5> kPolicyNames = {"locality", "round_robin", "random",
                                                          "least_loaded", "consistent_hash"};

// Blocks of the chain consistent_hash looks at: enough to separate different system prompts and
// documents, few enough that requests sharing a prefix of that length land together.
constexpr size_t kConsistentHashBlocks = 4;

// Predicted TTFTs closer than this are a tie (then load decides): differences below a nanosecond
// are rounding, not a preference.
constexpr double kTieMs = 1e-6;

// Maps a uniform 64-bit hash onto [0, n) without the bias of `%` (Lemire's multiply-shift).
size_t Reduce(uint64_t hash, size_t n) {
  return static_cast<size_t>((static_cast<unsigned __int128>(hash) * n) >> 64);
}

uint64_t Queue(const NodeLoad& l) { return uint64_t{l.queued_requests} + l.running_requests; }

// Fewest queued+running requests, then fewest prefill tokens in flight, then lowest slot.
bool LessLoaded(const Candidate& x, const Candidate& y) {
  if (Queue(x.load) != Queue(y.load)) return Queue(x.load) < Queue(y.load);
  if (x.load.prefill_tokens_in_flight != y.load.prefill_tokens_in_flight) {
    return x.load.prefill_tokens_in_flight < y.load.prefill_tokens_in_flight;
  }
  return x.node < y.node;
}

class LocalityPolicy final : public Policy {
 public:
  explicit LocalityPolicy(const CostModel* model) : model_(model) {}
  std::string_view name() const override { return kPolicyNames[0]; }
  Choice Select(const RouteContext& ctx) const override {
    // A prediction is the candidate's queueing plus a part that depends only on its match (peers
    // are the holders longer than that match, never the node itself), and most nodes of a
    // cluster share a match (no hit, or only the common system prompt): remember the last few.
    struct Seen {
      NodeMatch match;
      double ms;
    };
    std::array<Seen, 8> seen;
    size_t seen_count = 0;
    const auto predict = [&](const Candidate& c) {
      double base_ms = -1;
      const size_t n = std::min(seen_count, seen.size());
      for (size_t k = 0; k < n; ++k) {
        const Seen& s = seen[k];
        if (s.match.matched == c.match.matched && s.match.per_tier == c.match.per_tier &&
            s.match.slowest == c.match.slowest) {
          base_ms = s.ms;
          break;
        }
      }
      if (base_ms < 0) {
        CostInput in = CostInputOf(ctx, c);
        in.load = NodeLoad{};
        base_ms = model_->Predict(in).total_ms;
        seen[seen_count++ % seen.size()] = Seen{c.match, base_ms};
      }
      return base_ms + model_->QueueMs(c.load);
    };
    size_t best = 0;
    double best_ms = predict(ctx.candidates[0]);
    for (size_t i = 1; i < ctx.candidates.size(); ++i) {
      const double ms = predict(ctx.candidates[i]);
      const bool tie = std::abs(ms - best_ms) <= kTieMs;
      if ((!tie && ms < best_ms) || (tie && LessLoaded(ctx.candidates[i], ctx.candidates[best]))) {
        best = i;
        best_ms = ms;
      }
    }
    return {best};
  }

 private:
  const CostModel* model_;
};

class RoundRobinPolicy final : public Policy {
 public:
  std::string_view name() const override { return kPolicyNames[1]; }
  Choice Select(const RouteContext& ctx) const override {
    return {static_cast<size_t>(next_.load(std::memory_order_relaxed) % ctx.candidates.size())};
  }
  void Commit(const RouteContext& ctx, const Choice& choice) override {
    next_.fetch_add(1, std::memory_order_relaxed);
  }

 private:
  std::atomic<uint64_t> next_{0};
};

class RandomPolicy final : public Policy {
 public:
  explicit RandomPolicy(uint64_t seed) : seed_(seed) {}
  std::string_view name() const override { return kPolicyNames[2]; }
  Choice Select(const RouteContext& ctx) const override {
    const uint64_t h = XXH3_64bits_withSeed(&ctx.request_hash, sizeof(ctx.request_hash), seed_);
    return {Reduce(h, ctx.candidates.size())};
  }

 private:
  const uint64_t seed_;
};

class LeastLoadedPolicy final : public Policy {
 public:
  std::string_view name() const override { return kPolicyNames[3]; }
  Choice Select(const RouteContext& ctx) const override {
    size_t best = 0;
    for (size_t i = 1; i < ctx.candidates.size(); ++i) {
      if (LessLoaded(ctx.candidates[i], ctx.candidates[best])) best = i;
    }
    return {best};
  }
};

// Rendezvous (highest random weight) hashing: every candidate scores hash(prefix, node id) and the
// highest wins, so removing a node moves only the requests it won, and adding one takes only those
// it now wins.
class ConsistentHashPolicy final : public Policy {
 public:
  std::string_view name() const override { return kPolicyNames[4]; }
  Choice Select(const RouteContext& ctx) const override {
    const size_t k = std::min(kConsistentHashBlocks, ctx.keys.size());
    // A request shorter than one block has no keys; its own hash still places it consistently.
    const uint64_t prefix = k > 0 ? XXH3_64bits(ctx.keys.data(), k * sizeof(IndexKey))
                                  : XXH3_64bits(&ctx.request_hash, sizeof(ctx.request_hash));
    size_t best = 0;
    uint64_t best_score = 0;
    for (size_t i = 0; i < ctx.candidates.size(); ++i) {
      const Candidate& c = ctx.candidates[i];
      const uint64_t score = XXH3_64bits_withSeed(c.node_id.data(), c.node_id.size(), prefix);
      if (i == 0 || score > best_score ||
          (score == best_score && c.node < ctx.candidates[best].node)) {
        best = i;
        best_score = score;
      }
    }
    return {best};
  }
};

}  // namespace

std::span<const std::string_view> PolicyNames() { return kPolicyNames; }

absl::StatusOr<std::unique_ptr<Policy>> MakePolicy(std::string_view name, const CostModel* model,
                                                   uint64_t seed) {
  if (name == "locality") {
    if (model == nullptr) {
      return absl::InvalidArgumentError("routing policy 'locality' needs a cost model");
    }
    return std::make_unique<LocalityPolicy>(model);
  }
  if (name == "round_robin") return std::make_unique<RoundRobinPolicy>();
  if (name == "random") return std::make_unique<RandomPolicy>(seed);
  if (name == "least_loaded") return std::make_unique<LeastLoadedPolicy>();
  if (name == "consistent_hash") return std::make_unique<ConsistentHashPolicy>();
  std::string known;
  for (std::string_view n : kPolicyNames) {
    known = common::Concat(known, known.empty() ? "" : ", ", n);
  }
  return absl::InvalidArgumentError(
      common::Concat("unknown routing policy '", name, "'; known: ", known));
}

CostInput CostInputOf(const RouteContext& ctx, const Candidate& c) {
  CostInput in;
  in.prompt_tokens = ctx.prompt_tokens;
  in.block_tokens = ctx.block_tokens;
  in.total_blocks = static_cast<uint32_t>(ctx.keys.size());
  in.load = c.load;
  in.match = c.match;
  in.match.node = c.node;  // a candidate without a match may leave match.node unset
  in.holders = ctx.holders;
  in.holders_longest_first = ctx.holders_longest_first;
  return in;
}

}  // namespace strata::router
