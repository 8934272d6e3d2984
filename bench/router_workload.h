// The workload of `strata-bench router` (described in router_bench.h): which chain lives on which
// node in which tier with which keys (ChainPlan), and every node's event stream with its sequence
// numbers and steady-state churn (Streams). Deterministic from the seed. Kept apart from the
// measurements so router_bench.cc reads as the list of cases. Thread-compatible.
#pragma once

#include <time.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "bench/router_bench.h"
#include "router/event_ingest.h"

namespace strata::bench::router_workload {

using router::EventIngest;
using router::IndexKey;
using router::IngestEvent;
using router::IngestReply;
using router::NodeSlot;
using router::Tier;
using Clock = std::chrono::steady_clock;

// Every node streams in this epoch.
inline constexpr uint64_t kEpoch = 1;

inline double SecondsBetween(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// CPU time of the calling thread. The development boxes are shared, so wall time includes other
// processes' turns; CPU time tells what one dedicated core would sustain.
inline double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// splitmix64's finalizer: a bijection, so distinct inputs give distinct keys.
inline uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// A small deterministic generator for the request mix.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() { return Mix(state_++); }
  uint64_t Below(uint64_t n) { return n == 0 ? 0 : Next() % n; }

 private:
  uint64_t state_;
};

// Which chain lives where, in which tier, with which keys (see router_bench.h). Pure.
class ChainPlan {
 public:
  explicit ChainPlan(const RouterBenchOptions& o) : o_(o), salt_(Mix(o.seed ^ 0x5752)) {}

  NodeSlot HomeOf(uint64_t chain) const { return static_cast<NodeSlot>(chain % o_.nodes); }
  std::optional<NodeSlot> ReplicaOf(uint64_t chain) const {
    if (o_.nodes < 2) return std::nullopt;
    const uint64_t h = Mix(salt_ ^ (chain * 4 + 1));
    if (h % 8 != 0) return std::nullopt;
    return static_cast<NodeSlot>((HomeOf(chain) + 1 + (h >> 8) % (o_.nodes - 1)) % o_.nodes);
  }
  Tier TierOf(uint64_t chain) const {
    const uint64_t h = Mix(salt_ ^ (chain * 4 + 2)) % 10;
    return h < 5 ? Tier::kHbm : h < 8 ? Tier::kDram : Tier::kSsd;
  }
  uint32_t PromptOf(uint64_t chain) const {
    return static_cast<uint32_t>(Mix(salt_ ^ (chain * 4 + 3)) % o_.shared_prefixes);
  }
  // Key domains kept apart by bit 63 (prompts) and the 11-bit block position (chain <= 1024).
  IndexKey PromptKey(uint32_t prompt, uint32_t block) const {
    return Mix(salt_ ^ ((1ull << 63) | (uint64_t{prompt} << 11) | block));
  }
  IndexKey UniqueKey(uint64_t chain, uint32_t block) const {
    return Mix(salt_ ^ ((chain << 11) | block));
  }
  uint32_t unique_blocks() const { return o_.chain_blocks - o_.shared_blocks; }

  void UniqueKeys(uint64_t chain, std::vector<IndexKey>* out) const {
    out->clear();
    for (uint32_t b = o_.shared_blocks; b < o_.chain_blocks; ++b) {
      out->push_back(UniqueKey(chain, b));
    }
  }
  void RequestKeys(uint64_t chain, std::vector<IndexKey>* out) const {
    out->clear();
    const uint32_t prompt = PromptOf(chain);
    for (uint32_t b = 0; b < o_.shared_blocks; ++b) out->push_back(PromptKey(prompt, b));
    for (uint32_t b = o_.shared_blocks; b < o_.chain_blocks; ++b) {
      out->push_back(UniqueKey(chain, b));
    }
  }

 private:
  const RouterBenchOptions& o_;
  const uint64_t salt_;
};

inline IngestEvent Event(IngestEvent::Kind kind, Tier tier, std::vector<IndexKey> keys) {
  return IngestEvent{kind, tier, std::move(keys)};
}

// Every node's event stream: sequence numbers, and the steady-state churn generator. Chains with
// home node n are n, n + nodes, n + 2 * nodes, ...: the k-th is chain k * nodes + n. A churn step
// retires node n's oldest chain (removed from its home and its replica, each in that node's own
// stream) and adds a new one (stored on its home and, one time in eight, a replica), so blocks
// and entries stay level. Owned by one thread at a time.
class Streams {
 public:
  Streams(const RouterBenchOptions& o, const ChainPlan& plan, EventIngest* ingest)
      : o_(o),
        plan_(plan),
        ingest_(ingest),
        next_seq_(o.nodes, 1),
        oldest_k_(o.nodes, 0),
        next_k_(o.nodes, 0),
        pending_(o.nodes),
        pending_keys_(o.nodes, 0),
        queued_(o.nodes, false) {}

  // Chains 0..chains-1 are stored: each node's next new chain comes after them.
  void SetFilled(uint64_t chains) {
    for (NodeSlot n = 0; n < o_.nodes; ++n) {
      next_k_[n] = chains / o_.nodes + (n < chains % o_.nodes ? 1 : 0);
    }
  }

  // Applies one batch to `node`; adds the wall time (and, if asked, the calling thread's CPU time)
  // of the ApplyBatch call alone to *seconds (*cpu_seconds).
  absl::Status Apply(NodeSlot node, std::span<const IngestEvent> events, double* seconds,
                     double* cpu_seconds = nullptr) {
    const double cpu_start = cpu_seconds != nullptr ? ThreadCpuSeconds() : 0;
    const Clock::time_point start = Clock::now();
    const IngestReply reply = ingest_->ApplyBatch(node, kEpoch, next_seq_[node], events);
    *seconds += SecondsBetween(start, Clock::now());
    if (cpu_seconds != nullptr) *cpu_seconds += ThreadCpuSeconds() - cpu_start;
    if (reply.result != IngestReply::Result::kApplied) {
      return absl::InternalError(
          absl::StrCat("node ", node, " batch ", next_seq_[node], " not applied: ", reply.message));
    }
    ++next_seq_[node];
    return absl::OkStatus();
  }
  uint64_t TakeSequence(NodeSlot node) { return next_seq_[node]++; }

  // Runs churn steps until some node's batch holds batch_keys keys; moves it into *events and
  // returns the node. *keys: the block events in it.
  NodeSlot NextChurnBatch(std::vector<IngestEvent>* events, uint64_t* keys) {
    while (ready_.empty()) Step();
    const NodeSlot node = ready_.front();
    ready_.pop_front();
    queued_[node] = false;
    *events = std::move(pending_[node]);
    pending_[node].clear();
    *keys = pending_keys_[node];
    pending_keys_[node] = 0;
    return node;
  }

  // A chain stored on some node now, uniformly over nodes then over that node's live chains.
  uint64_t LiveChain(Rng& rng) const {
    const NodeSlot node = static_cast<NodeSlot>(rng.Below(o_.nodes));
    const uint64_t k = oldest_k_[node] + rng.Below(next_k_[node] - oldest_k_[node]);
    return k * o_.nodes + node;
  }

 private:
  void Step() {
    const NodeSlot n = cursor_;
    cursor_ = (cursor_ + 1) % o_.nodes;
    const uint64_t old_chain = oldest_k_[n]++ * o_.nodes + n;
    const uint64_t new_chain = next_k_[n]++ * o_.nodes + n;
    std::vector<IndexKey> keys;
    plan_.UniqueKeys(old_chain, &keys);
    Add(n, IngestEvent::Kind::kRemoved, plan_.TierOf(old_chain), keys);
    if (const std::optional<NodeSlot> r = plan_.ReplicaOf(old_chain)) {
      Add(*r, IngestEvent::Kind::kRemoved, plan_.TierOf(old_chain), keys);
    }
    plan_.UniqueKeys(new_chain, &keys);
    Add(n, IngestEvent::Kind::kStored, plan_.TierOf(new_chain), keys);
    if (const std::optional<NodeSlot> r = plan_.ReplicaOf(new_chain)) {
      Add(*r, IngestEvent::Kind::kStored, plan_.TierOf(new_chain), keys);
    }
  }
  void Add(NodeSlot node, IngestEvent::Kind kind, Tier tier, const std::vector<IndexKey>& keys) {
    pending_keys_[node] += keys.size();
    pending_[node].push_back(Event(kind, tier, keys));
    if (pending_keys_[node] >= o_.batch_keys && !queued_[node]) {
      queued_[node] = true;
      ready_.push_back(node);
    }
  }

  const RouterBenchOptions& o_;
  const ChainPlan& plan_;
  EventIngest* ingest_;
  std::vector<uint64_t> next_seq_;
  std::vector<uint64_t> oldest_k_;
  std::vector<uint64_t> next_k_;
  std::vector<std::vector<IngestEvent>> pending_;
  std::vector<uint64_t> pending_keys_;
  std::vector<bool> queued_;
  std::deque<NodeSlot> ready_;
  NodeSlot cursor_ = 0;
};

}  // namespace strata::bench::router_workload
