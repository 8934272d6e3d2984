#include "router/global_index.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cassert>
#include <cmath>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "router/index_table.h"

namespace strata::router {

using index_internal::FastestTier;
using index_internal::Holders;
using index_internal::IndexTable;
using index_internal::kAllTierBits;
using index_internal::kShardHashBits;
using index_internal::kSlotLimit;
using index_internal::MaskOf;
using index_internal::SlotOf;

struct alignas(64) GlobalIndex::Shard {
  mutable absl::Mutex mu;
  IndexTable table ABSL_GUARDED_BY(mu);
  // Blocks each node slot holds in this shard (any tier), for NodeEntries and to skip shards in
  // ClearNode.
  std::vector<uint64_t> node_blocks ABSL_GUARDED_BY(mu);
  uint64_t entries ABSL_GUARDED_BY(mu) = 0;
  uint64_t heap_bytes ABSL_GUARDED_BY(mu) = 0;  // HolderList chunks

  void CountAdded(NodeSlot node) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (node >= node_blocks.size()) node_blocks.resize(size_t{node} + 1, 0);
    ++node_blocks[node];
    ++entries;
  }
  void CountRemoved(NodeSlot node) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    --node_blocks[node];
    --entries;
  }
  uint64_t BlocksOf(NodeSlot node) const ABSL_SHARED_LOCKS_REQUIRED(mu) {
    return node < node_blocks.size() ? node_blocks[node] : 0;
  }
};

namespace {

// Keys ahead of the current one whose table line is prefetched. At 10M entries every lookup is a
// cache miss; 16 in flight hide most of the latency (strata-bench router: 8 and 16 measured the
// same for routes, 16 better for ingest; 0 was 1.7x slower).
constexpr size_t kPrefetchAhead = 16;

// Keys Apply updates per hold of a shard lock. With 8 instead of a whole shard's share of a
// batch (~16 keys), routes during ingest had p99 10.5-16 us instead of 12-32 us over three
// interleaved runs each (strata-bench router, 2-core box), at no cost in ingest rate.
constexpr size_t kMaxKeysPerHold = 8;

GlobalIndexOptions Normalized(GlobalIndexOptions options) {
  options.shards = std::clamp<uint32_t>(options.shards, 1, 1024);
  return options;
}

// Shard s gets a share of the keys proportional to 2^(s / shards). Returns the bucket -> shard
// table for the top bits of a hash (64 buckets per shard or more, a power of two in all).
std::vector<uint16_t> StaggeredBuckets(uint32_t shards) {
  const size_t buckets = std::bit_ceil(size_t{shards} * 64);
  std::vector<double> cumulative(shards);
  double total = 0;
  for (uint32_t s = 0; s < shards; ++s) {
    total += std::exp2(static_cast<double>(s) / shards);
    cumulative[s] = total;
  }
  std::vector<uint16_t> table(buckets);
  uint32_t s = 0;
  for (size_t b = 0; b < buckets; ++b) {
    const double at = (static_cast<double>(b) + 0.5) / static_cast<double>(buckets) * total;
    while (s + 1 < shards && cumulative[s] <= at) ++s;
    table[b] = static_cast<uint16_t>(s);
  }
  return table;
}

// The keys of one Apply call grouped by shard: a stable counting sort of (update, key) positions,
// so two updates of one key keep their order. Reused per thread: no allocation in steady state.
struct ShardGroups {
  std::vector<uint64_t> hash;      // per key, in call order
  std::vector<uint32_t> end;       // per shard: end of its run in `order`
  std::vector<uint64_t> order;     // update index << 32 | key index, grouped by shard
  std::vector<uint32_t> order_of;  // position in `order` -> position in call order (for `hash`)
};

// Reader side of a shard lock for routes: retries ReaderTryLock for a few microseconds before
// blocking. absl's ReaderLock queues and sleeps as soon as a writer holds the mutex, and the
// futex wake-up then costs tens of microseconds on a busy box, while an ingest writer holds a
// shard for well under a microsecond (Apply). Without it, routes during ingest had p99 up to
// 88-113 us in strata-bench router; with it, 10-30 us on the 2-core development box.
class ABSL_SCOPED_LOCKABLE SpinReaderLock {
 public:
  explicit SpinReaderLock(absl::Mutex* mu) ABSL_SHARED_LOCK_FUNCTION(mu) : mu_(mu) {
    for (int i = 0; i < kSpins; ++i) {
      if (mu_->ReaderTryLock()) return;
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
    }
    mu_->ReaderLock();
  }
  ~SpinReaderLock() ABSL_UNLOCK_FUNCTION() { mu_->ReaderUnlock(); }
  SpinReaderLock(const SpinReaderLock&) = delete;
  SpinReaderLock& operator=(const SpinReaderLock&) = delete;

 private:
  // About 5 us of pauses on the development boxes' EPYC: several writer holds.
  static constexpr int kSpins = 128;
  absl::Mutex* const mu_;
};

// One candidate node's progress during a Match: blocks matched so far, how many of them count in
// each tier, and the tier of the last block walked (what a run of equal holder sets repeats). The
// slowest tier is the last one with a non-zero count.
struct SlotProgress {
  uint32_t matched = 0;
  std::array<uint32_t, kNumTiers> per_tier{};
  uint32_t last_tier = 0;
};

}  // namespace

GlobalIndex::GlobalIndex(const GlobalIndexOptions& options)
    : options_(Normalized(options)),
      shards_(new Shard[options_.shards]),
      shard_of_bucket_(StaggeredBuckets(options_.shards)),
      bucket_shift_(64 - std::countr_zero(shard_of_bucket_.size())) {
  static_assert(kShardHashBits >= 16, "buckets use up to 16 top bits (1024 shards x 64)");
}

GlobalIndex::~GlobalIndex() = default;

uint32_t GlobalIndex::ShardIndex(size_t hash) const {
  // The top bits of the hash pick the shard; the shard's table places keys by the bits below.
  return shard_of_bucket_[hash >> bucket_shift_];
}

GlobalIndex::Shard& GlobalIndex::ShardOf(IndexKey key) const {
  return shards_[ShardIndex(IndexTable::Hash(key))];
}

void GlobalIndex::Store(NodeSlot node, Tier tier, std::span<const IndexKey> keys) {
  const IndexUpdate update{tier, /*removed=*/false, keys};
  Apply(node, std::span(&update, 1));
}

void GlobalIndex::Remove(NodeSlot node, Tier tier, std::span<const IndexKey> keys) {
  const IndexUpdate update{tier, /*removed=*/true, keys};
  Apply(node, std::span(&update, 1));
}

void GlobalIndex::Apply(NodeSlot node, std::span<const IndexUpdate> updates) {
  assert(node < kSlotLimit);
  if (node >= kSlotLimit) return;  // would not pack; membership hands out small dense slots
  thread_local ShardGroups g;
  size_t total = 0;
  for (const IndexUpdate& u : updates) total += u.keys.size();
  if (total == 0) return;
  const uint32_t shards = options_.shards;
  g.hash.resize(total);
  g.order.resize(total);
  g.order_of.resize(total);
  g.end.assign(size_t{shards} + 1, 0);
  size_t flat = 0;
  for (const IndexUpdate& u : updates) {
    for (IndexKey key : u.keys) {
      g.hash[flat] = IndexTable::Hash(key);
      ++g.end[ShardIndex(g.hash[flat]) + 1];
      ++flat;
    }
  }
  // end[s] = start of run s; the scatter advances it to the run's end.
  for (uint32_t s = 0; s < shards; ++s) g.end[s + 1] += g.end[s];
  flat = 0;
  for (size_t ui = 0; ui < updates.size(); ++ui) {
    for (size_t k = 0; k < updates[ui].keys.size(); ++k, ++flat) {
      const uint32_t at = g.end[ShardIndex(g.hash[flat])]++;
      g.order[at] = (uint64_t{ui} << 32) | k;
      g.order_of[at] = static_cast<uint32_t>(flat);
    }
  }

  // Prefetches run ahead of the updates across shard boundaries: they need no lock.
  const auto prefetch = [&](size_t at) {
    const uint64_t hash = g.hash[g.order_of[at]];
    shards_[ShardIndex(hash)].table.Prefetch(hash);
  };
  for (size_t at = 0; at < std::min(total, kPrefetchAhead); ++at) prefetch(at);
  size_t at = 0;
  for (uint32_t s = 0; s < shards; ++s) {
    const size_t end = g.end[s];
    if (at == end) continue;
    Shard& shard = shards_[s];
    // The lock is released every kMaxKeysPerHold keys, so a route that meets a shard being
    // written waits well under a microsecond (see SpinReaderLock).
    for (size_t chunk_end = std::min(end, at + kMaxKeysPerHold); at < end;
         chunk_end = std::min(end, at + kMaxKeysPerHold)) {
      absl::MutexLock lock(&shard.mu);
      for (; at < chunk_end; ++at) {
        if (at + kPrefetchAhead < total) prefetch(at + kPrefetchAhead);
        const IndexUpdate& u = updates[g.order[at] >> 32];
        const IndexKey key = u.keys[g.order[at] & 0xffffffffu];
        const uint64_t hash = g.hash[g.order_of[at]];
        const TierMask bit = TierBit(u.tier);
        if (!u.removed) {
          if (shard.table.Add(key, hash, node, bit, &shard.heap_bytes)) shard.CountAdded(node);
        } else if (shard.BlocksOf(node) != 0 &&
                   shard.table.Remove(key, hash, node, bit, &shard.heap_bytes)) {
          shard.CountRemoved(node);
        }
      }
    }
  }
}

uint64_t GlobalIndex::ClearNode(NodeSlot node) {
  uint64_t removed = 0;
  for (uint32_t s = 0; s < options_.shards; ++s) {
    Shard& shard = shards_[s];
    absl::MutexLock lock(&shard.mu);
    const uint64_t held = shard.BlocksOf(node);
    if (held == 0) continue;
    const uint64_t n = shard.table.RemoveNode(node, held, &shard.heap_bytes);
    shard.node_blocks[node] -= n;
    shard.entries -= n;
    removed += n;
  }
  return removed;
}

void GlobalIndex::Match(std::span<const IndexKey> keys, std::vector<NodeMatch>* out) const {
  out->clear();
  if (keys.empty()) return;
  // Indexed by slot; every entry has matched == 0 between calls (only the candidates are touched
  // and reset), so a call costs O(keys + holders), not O(nodes).
  thread_local std::vector<SlotProgress> progress;
  thread_local std::vector<uint64_t> hashes;

  const size_t n = keys.size();
  hashes.resize(n);
  for (size_t i = 0; i < n; ++i) hashes[i] = IndexTable::Hash(keys[i]);
  const auto prefetch = [&](size_t i) { shards_[ShardIndex(hashes[i])].table.Prefetch(hashes[i]); };
  // A route usually gives up at its first miss: fetch less far ahead than ingest does.
  constexpr size_t kAhead = 8;
  for (size_t i = 0; i < std::min(n, kAhead); ++i) prefetch(i);

  // Blocks after `walked` whose holder set equals walked's (same print and size) are not walked
  // holder by holder: every candidate that advanced at `walked` advances at each of them in the
  // same tier, which `flush` applies at once. A system prompt held by all 64 nodes then costs one
  // walk of its first block instead of 64 holders per block.
  uint32_t walked = 0;  // last block walked holder by holder
  uint32_t run = 0;     // blocks after it with the same holders
  uint64_t walked_print = 0;
  uint32_t walked_size = 0;
  const auto flush = [&] {
    if (run == 0) return;
    for (const NodeMatch& m : *out) {
      SlotProgress& p = progress[m.node];
      if (p.matched != walked + 1) continue;  // dropped out before `walked`
      p.matched += run;
      p.per_tier[p.last_tier] += run;
    }
    run = 0;
  };

  for (size_t i = 0; i < n; ++i) {
    if (i + kAhead < n) prefetch(i + kAhead);
    Shard& shard = shards_[ShardIndex(hashes[i])];
    SpinReaderLock lock(&shard.mu);
    const Holders* found = shard.table.Find(keys[i], hashes[i]);
    if (found == nullptr) break;
    const Holders::View holders = found->view();
    const uint64_t print = found->Print();
    const uint32_t at = static_cast<uint32_t>(i);
    if (i == 0) {
      // Sized first and filled in place: pushing a NodeMatch built on the stack stalled on
      // store-to-load forwarding (18% of Match in a profile).
      out->resize(holders.size);
      for (uint32_t h = 0; h < holders.size; ++h) {
        const uint32_t entry = holders.data[h];
        const NodeSlot slot = SlotOf(entry);
        if (slot >= progress.size()) progress.resize(size_t{slot} + 1);
        SlotProgress& p = progress[slot];
        p = SlotProgress{};
        p.matched = 1;
        p.last_tier = FastestTier(MaskOf(entry));
        p.per_tier[p.last_tier] = 1;
        (*out)[h].node = slot;
      }
    } else if (print == walked_print && holders.size == walked_size) {
      ++run;
      continue;
    } else {
      flush();
      const size_t known = progress.size();
      uint32_t advanced = 0;
      for (uint32_t h = 0; h < holders.size; ++h) {
        const uint32_t entry = holders.data[h];
        const NodeSlot slot = SlotOf(entry);
        if (slot >= known) continue;
        SlotProgress& p = progress[slot];
        if (p.matched != at) continue;  // not a candidate, or it missed an earlier block
        p.matched = at + 1;
        p.last_tier = FastestTier(MaskOf(entry));
        ++p.per_tier[p.last_tier];
        ++advanced;
      }
      if (advanced == 0) break;
    }
    walked = at;
    walked_print = print;
    walked_size = holders.size;
  }
  flush();
  for (NodeMatch& m : *out) {
    SlotProgress& p = progress[m.node];
    m.matched = p.matched;
    m.per_tier = p.per_tier;
    for (int t = kNumTiers - 1; t >= 0; --t) {
      if (p.per_tier[t] != 0) {
        m.slowest = static_cast<Tier>(t);
        break;
      }
    }
    p.matched = 0;
  }
}

TierMask GlobalIndex::Get(IndexKey key, NodeSlot node) const {
  const uint64_t hash = IndexTable::Hash(key);
  Shard& shard = shards_[ShardIndex(hash)];
  absl::ReaderMutexLock lock(&shard.mu);
  const Holders* found = shard.table.Find(key, hash);
  return found == nullptr ? 0 : found->Get(node);
}

uint64_t GlobalIndex::NodeEntries(NodeSlot node) const {
  uint64_t total = 0;
  for (uint32_t s = 0; s < options_.shards; ++s) {
    absl::ReaderMutexLock lock(&shards_[s].mu);
    total += shards_[s].BlocksOf(node);
  }
  return total;
}

GlobalIndexStats GlobalIndex::Stats() const {
  GlobalIndexStats stats;
  for (uint32_t s = 0; s < options_.shards; ++s) {
    const Shard& shard = shards_[s];
    absl::ReaderMutexLock lock(&shard.mu);
    stats.blocks += shard.table.size();
    stats.entries += shard.entries;
    stats.memory_bytes +=
        shard.table.bytes() + shard.heap_bytes + shard.node_blocks.capacity() * sizeof(uint64_t);
  }
  stats.memory_bytes +=
      sizeof(Shard) * options_.shards + shard_of_bucket_.capacity() * sizeof(shard_of_bucket_[0]);
  return stats;
}

}  // namespace strata::router
