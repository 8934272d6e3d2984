#include "router/global_index.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <numeric>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "router/index_table.h"

namespace strata::router {
namespace {

// A chain of `n` distinct keys; `base` keeps chains apart.
std::vector<IndexKey> Chain(uint64_t base, size_t n) {
  std::vector<IndexKey> keys(n);
  for (size_t i = 0; i < n; ++i) keys[i] = (base << 32) + i + 1;
  return keys;
}

const NodeMatch* MatchOf(const std::vector<NodeMatch>& matches, NodeSlot node) {
  for (const NodeMatch& m : matches) {
    if (m.node == node) return &m;
  }
  return nullptr;
}

// The shard table against a plain map, through growth, Robin Hood displacement and
// backward-shift erases: random adds and removes over a small key space (so runs are long and
// keys come and go), then RemoveNode.
TEST(IndexTableTest, AgreesWithAReferenceMapUnderRandomAddsAndRemoves) {
  using index_internal::IndexTable;
  IndexTable table;
  absl::flat_hash_map<IndexKey, absl::flat_hash_map<NodeSlot, TierMask>> want;
  uint64_t heap = 0;
  uint64_t state = 99;
  const auto next = [&state] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return state >> 33;
  };
  for (int op = 0; op < 200'000; ++op) {
    const IndexKey key = next() % 3000;  // key 0 included: it is an ordinary key
    const NodeSlot node = static_cast<NodeSlot>(next() % 5);
    const TierMask bit = TierBit(static_cast<Tier>(next() % 3));
    const uint64_t hash = IndexTable::Hash(key);
    if (next() % 100 < (op < 100'000 ? 60 : 40)) {  // grow, then shrink
      const bool was_new = (want[key][node] & 0xff) == 0;
      EXPECT_EQ(table.Add(key, hash, node, bit, &heap), was_new);
      want[key][node] |= bit;
    } else {
      auto k = want.find(key);
      const bool held = k != want.end() && k->second.count(node) && k->second[node] != 0;
      const bool drops = held && k->second[node] == bit;
      EXPECT_EQ(table.Remove(key, hash, node, bit, &heap), drops);
      if (held) {
        k->second[node] &= ~bit;
        if (k->second[node] == 0) k->second.erase(node);
        if (k->second.empty()) want.erase(k);
      }
    }
  }
  ASSERT_EQ(table.size(), want.size());
  uint64_t node3 = 0;
  for (const auto& [key, holders] : want) {
    const index_internal::Holders* got = table.Find(key, IndexTable::Hash(key));
    ASSERT_NE(got, nullptr) << key;
    EXPECT_EQ(got->view().size, holders.size()) << key;
    for (const auto& [node, mask] : holders) EXPECT_EQ(got->Get(node), mask) << key;
    node3 += holders.count(3);
  }
  EXPECT_EQ(table.Find(5000, IndexTable::Hash(5000)), nullptr);
  EXPECT_EQ(table.RemoveNode(3, node3, &heap), node3);
  for (const auto& [key, holders] : want) {
    const index_internal::Holders* got = table.Find(key, IndexTable::Hash(key));
    if (holders.size() == 1 && holders.count(3)) {
      EXPECT_EQ(got, nullptr) << key;
    } else {
      ASSERT_NE(got, nullptr) << key;
      EXPECT_EQ(got->Get(3), 0) << key;
    }
  }
}

TEST(GlobalIndexTest, StoreThenMatchCountsEachBlockInItsTier) {
  GlobalIndex index;
  const std::vector<IndexKey> chain = Chain(1, 6);
  index.Store(3, Tier::kHbm, std::span(chain).first(2));
  index.Store(3, Tier::kDram, std::span(chain).subspan(2, 3));
  index.Store(3, Tier::kSsd, std::span(chain).subspan(5, 1));

  std::vector<NodeMatch> out;
  index.Match(chain, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].node, 3u);
  EXPECT_EQ(out[0].matched, 6u);
  EXPECT_EQ(out[0].per_tier[0], 2u);
  EXPECT_EQ(out[0].per_tier[1], 3u);
  EXPECT_EQ(out[0].per_tier[2], 1u);
  EXPECT_EQ(out[0].slowest, Tier::kSsd);
}

TEST(GlobalIndexTest, BlockInTwoTiersCountsInTheFasterOne) {
  GlobalIndex index;
  const std::vector<IndexKey> chain = Chain(2, 3);
  index.Store(1, Tier::kSsd, chain);
  index.Store(1, Tier::kDram, std::span(chain).first(1));
  EXPECT_EQ(index.Get(chain[0], 1), TierBit(Tier::kDram) | TierBit(Tier::kSsd));
  EXPECT_EQ(index.NodeEntries(1), 3u);  // one entry per block, not per tier

  std::vector<NodeMatch> out;
  index.Match(chain, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].per_tier[1], 1u);
  EXPECT_EQ(out[0].per_tier[2], 2u);
  EXPECT_EQ(out[0].slowest, Tier::kSsd);

  // Removing the SSD copy of block 0 leaves its DRAM copy.
  index.Remove(1, Tier::kSsd, std::span(chain).first(1));
  EXPECT_EQ(index.Get(chain[0], 1), TierBit(Tier::kDram));
  EXPECT_EQ(index.NodeEntries(1), 3u);
}

TEST(GlobalIndexTest, StoreIsIdempotent) {
  GlobalIndex index;
  const std::vector<IndexKey> chain = Chain(3, 10);
  index.Store(0, Tier::kHbm, chain);
  index.Store(0, Tier::kHbm, chain);
  EXPECT_EQ(index.NodeEntries(0), 10u);
  EXPECT_EQ(index.Stats().entries, 10u);
  EXPECT_EQ(index.Stats().blocks, 10u);
}

TEST(GlobalIndexTest, MatchStopsAtEachNodesFirstMiss) {
  GlobalIndex index;
  const std::vector<IndexKey> chain = Chain(4, 8);
  index.Store(1, Tier::kHbm, chain);  // node 1: all 8
  std::vector<IndexKey> with_hole = chain;
  with_hole.erase(with_hole.begin() + 3);
  index.Store(2, Tier::kDram, with_hole);                   // node 2: a hole at block 3
  index.Store(3, Tier::kHbm, std::span(chain).subspan(1));  // node 3: lacks block 0

  std::vector<NodeMatch> out;
  index.Match(chain, &out);
  ASSERT_EQ(out.size(), 2u);  // node 3 does not hold the first block
  ASSERT_NE(MatchOf(out, 1), nullptr);
  ASSERT_NE(MatchOf(out, 2), nullptr);
  EXPECT_EQ(MatchOf(out, 1)->matched, 8u);
  EXPECT_EQ(MatchOf(out, 2)->matched, 3u);  // blocks after the hole do not count
  EXPECT_EQ(MatchOf(out, 2)->per_tier[1], 3u);
  EXPECT_EQ(MatchOf(out, 3), nullptr);
}

TEST(GlobalIndexTest, MatchOfUnknownFirstBlockIsEmpty) {
  GlobalIndex index;
  index.Store(1, Tier::kHbm, Chain(5, 4));
  std::vector<NodeMatch> out = {NodeMatch{}};  // cleared by Match
  index.Match(Chain(6, 4), &out);
  EXPECT_TRUE(out.empty());
  index.Match({}, &out);
  EXPECT_TRUE(out.empty());
}

TEST(GlobalIndexTest, ManyHoldersMoveOutOfLineAndBack) {
  GlobalIndex index;
  const std::vector<IndexKey> head = Chain(7, 4);
  constexpr NodeSlot kNodes = 40;
  for (NodeSlot n = 0; n < kNodes; ++n) {
    // Every node holds the head, except that odd nodes lack block 2.
    for (size_t b = 0; b < head.size(); ++b) {
      if (b == 2 && n % 2 == 1) continue;
      index.Store(n, n % 3 == 0 ? Tier::kSsd : Tier::kHbm, std::span(&head[b], 1));
    }
  }
  std::vector<NodeMatch> out;
  index.Match(head, &out);
  ASSERT_EQ(out.size(), kNodes);
  for (const NodeMatch& m : out) {
    EXPECT_EQ(m.matched, m.node % 2 == 1 ? 2u : 4u) << "node " << m.node;
    EXPECT_EQ(m.slowest, m.node % 3 == 0 ? Tier::kSsd : Tier::kHbm) << "node " << m.node;
  }
  const GlobalIndexStats stats = index.Stats();
  EXPECT_EQ(stats.blocks, 4u);
  EXPECT_EQ(stats.entries, 3 * kNodes + kNodes / 2);

  // Remove all but one holder of block 0: the list shrinks back inline and the rest stays right.
  for (NodeSlot n = 1; n < kNodes; ++n)
    index.Remove(n, n % 3 == 0 ? Tier::kSsd : Tier::kHbm, std::span(&head[0], 1));
  EXPECT_EQ(index.Get(head[0], 0), TierBit(Tier::kSsd));
  EXPECT_EQ(index.Get(head[0], 5), 0);
  EXPECT_EQ(index.Get(head[1], 38), TierBit(Tier::kHbm));
  EXPECT_EQ(index.Get(head[1], 39), TierBit(Tier::kSsd));
  index.Match(head, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].node, 0u);
  EXPECT_EQ(out[0].matched, 4u);
}

// Reference: each node's match from Get, block by block.
std::vector<NodeMatch> NaiveMatch(const GlobalIndex& index, std::span<const IndexKey> keys,
                                  NodeSlot nodes) {
  std::vector<NodeMatch> out;
  for (NodeSlot n = 0; n < nodes; ++n) {
    NodeMatch m;
    m.node = n;
    for (IndexKey key : keys) {
      const TierMask mask = index.Get(key, n);
      if (mask == 0) break;
      const int tier = std::countr_zero(static_cast<unsigned>(mask));
      ++m.matched;
      ++m.per_tier[tier];
      m.slowest = std::max(m.slowest, static_cast<Tier>(tier));
    }
    if (m.matched > 0) out.push_back(m);
  }
  return out;
}

// Match skips holder-by-holder walks over runs of blocks with equal holder sets; random layouts
// with many such runs (and runs broken by one node or one tier) must match the plain walk.
TEST(GlobalIndexTest, MatchAgreesWithABlockByBlockWalkOnRandomLayouts) {
  constexpr NodeSlot kNodes = 9;
  uint64_t state = 12345;
  const auto next = [&state] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return state >> 33;
  };
  for (int trial = 0; trial < 300; ++trial) {
    GlobalIndex index(GlobalIndexOptions{.shards = 8});
    const std::vector<IndexKey> keys = Chain(500 + trial, 40);
    // Holder sets come in segments: one layout repeated over several consecutive blocks.
    std::vector<TierMask> layout(kNodes);
    for (size_t b = 0; b < keys.size(); ++b) {
      if (b == 0 || next() % 4 == 0) {
        for (NodeSlot n = 0; n < kNodes; ++n) {
          layout[n] = next() % 5 == 0 ? 0 : static_cast<TierMask>(1 + next() % 7);
        }
      } else if (next() % 6 == 0) {
        layout[next() % kNodes] ^= static_cast<TierMask>(1 + next() % 7);  // one node differs
      }
      for (NodeSlot n = 0; n < kNodes; ++n) {
        for (Tier t : kAllTiers) {
          if (layout[n] & TierBit(t)) index.Store(n, t, std::span(&keys[b], 1));
        }
      }
    }
    std::vector<NodeMatch> got;
    index.Match(keys, &got);
    std::sort(got.begin(), got.end(),
              [](const NodeMatch& a, const NodeMatch& b) { return a.node < b.node; });
    const std::vector<NodeMatch> want = NaiveMatch(index, keys, kNodes);
    ASSERT_EQ(got.size(), want.size()) << "trial " << trial;
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].node, want[i].node) << "trial " << trial;
      EXPECT_EQ(got[i].matched, want[i].matched) << "trial " << trial << " node " << got[i].node;
      EXPECT_EQ(got[i].per_tier, want[i].per_tier) << "trial " << trial << " node " << got[i].node;
      EXPECT_EQ(got[i].slowest, want[i].slowest) << "trial " << trial << " node " << got[i].node;
    }
  }
}

TEST(GlobalIndexTest, ApplyKeepsTheOrderOfUpdatesToOneKey) {
  GlobalIndex index;
  const std::vector<IndexKey> a = Chain(60, 50);
  const std::vector<IndexKey> b = Chain(61, 50);
  index.Store(1, Tier::kHbm, a);
  const std::vector<IndexUpdate> updates = {
      {Tier::kHbm, /*removed=*/true, a},  // drop a ...
      {Tier::kDram, /*removed=*/false, b},
      {Tier::kSsd, /*removed=*/false, a},  // ... then store it again in SSD
      {Tier::kDram, /*removed=*/true, std::span(b).first(10)},
  };
  index.Apply(1, updates);
  EXPECT_EQ(index.Get(a[7], 1), TierBit(Tier::kSsd));
  EXPECT_EQ(index.Get(b[3], 1), 0);
  EXPECT_EQ(index.Get(b[30], 1), TierBit(Tier::kDram));
  EXPECT_EQ(index.NodeEntries(1), 90u);
}

TEST(GlobalIndexTest, RemoveDropsEntriesAndIgnoresAbsentKeys) {
  GlobalIndex index;
  const std::vector<IndexKey> chain = Chain(8, 5);
  index.Store(1, Tier::kHbm, chain);
  index.Store(2, Tier::kHbm, chain);
  index.Remove(1, Tier::kHbm, Chain(9, 3));  // never stored
  index.Remove(1, Tier::kDram, chain);       // stored, but in another tier
  EXPECT_EQ(index.NodeEntries(1), 5u);
  index.Remove(1, Tier::kHbm, std::span(chain).subspan(2));
  EXPECT_EQ(index.NodeEntries(1), 2u);
  EXPECT_EQ(index.NodeEntries(2), 5u);
  index.Remove(2, Tier::kHbm, chain);
  const GlobalIndexStats stats = index.Stats();
  EXPECT_EQ(stats.blocks, 2u);  // keys nobody holds leave the table
  EXPECT_EQ(stats.entries, 2u);

  std::vector<NodeMatch> out;
  index.Match(chain, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].matched, 2u);
}

TEST(GlobalIndexTest, ClearNodeRemovesOnlyThatNode) {
  GlobalIndex index;
  for (NodeSlot n = 0; n < 6; ++n) {
    index.Store(n, Tier::kDram, Chain(10, 50));     // shared by all six
    index.Store(n, Tier::kHbm, Chain(20 + n, 30));  // private
  }
  EXPECT_EQ(index.ClearNode(2), 80u);
  EXPECT_EQ(index.ClearNode(2), 0u);
  EXPECT_EQ(index.ClearNode(77), 0u);  // never seen
  EXPECT_EQ(index.NodeEntries(2), 0u);
  EXPECT_EQ(index.NodeEntries(3), 80u);
  const GlobalIndexStats stats = index.Stats();
  EXPECT_EQ(stats.entries, 5u * 80);
  EXPECT_EQ(stats.blocks, 50u + 5 * 30);

  std::vector<NodeMatch> out;
  index.Match(Chain(10, 50), &out);
  EXPECT_EQ(out.size(), 5u);
  EXPECT_EQ(MatchOf(out, 2), nullptr);
  index.Match(Chain(22, 30), &out);
  EXPECT_TRUE(out.empty());
}

TEST(GlobalIndexTest, AnyShardCountWorks) {
  for (uint32_t shards : {0u, 1u, 3u, 100u, 5000u}) {
    GlobalIndex index(GlobalIndexOptions{.shards = shards});
    const std::vector<IndexKey> chain = Chain(30, 100);
    index.Store(1, Tier::kHbm, chain);
    std::vector<NodeMatch> out;
    index.Match(chain, &out);
    ASSERT_EQ(out.size(), 1u) << shards;
    EXPECT_EQ(out[0].matched, 100u) << shards;
    EXPECT_EQ(index.ClearNode(1), 100u) << shards;
  }
}

// Tables double when 3/4 full; if every shard doubled at the same size, bytes per entry would
// swing between about 21 and 43. Staggered shard shares keep it near the average at any size.
TEST(GlobalIndexTest, MemoryPerEntryStaysNearItsAverageAsTheIndexGrows) {
  GlobalIndex index;
  double lowest = 1e9, highest = 0;
  for (uint64_t base = 1; base <= 24; ++base) {
    index.Store(0, Tier::kHbm, Chain(base, 20'000));
    const GlobalIndexStats stats = index.Stats();
    const double per_entry = static_cast<double>(stats.memory_bytes) / stats.entries;
    lowest = std::min(lowest, per_entry);
    highest = std::max(highest, per_entry);
  }
  EXPECT_LT(highest, 34.0);
  EXPECT_GT(lowest, 17.0);
}

TEST(GlobalIndexTest, StatsMemoryIsWithinSaneBoundsPerEntry) {
  GlobalIndex index;
  EXPECT_EQ(index.Stats().entries, 0u);
  // 100k private entries on 10 nodes, plus 100 blocks all of them hold (out-of-line lists).
  for (NodeSlot n = 0; n < 10; ++n) {
    index.Store(n, Tier::kHbm, Chain(100 + n, 10'000));
    index.Store(n, Tier::kHbm, Chain(99, 100));
  }
  const GlobalIndexStats stats = index.Stats();
  EXPECT_EQ(stats.entries, 10u * 10'100);
  EXPECT_EQ(stats.blocks, 100'100u);
  // A 16-byte slot at load factor 3/8..3/4: 21-43 bytes per single-holder block, plus the fixed
  // shard overhead; well under the 64 bytes of a published hash-table index.
  const double per_entry = static_cast<double>(stats.memory_bytes) / stats.entries;
  EXPECT_GT(per_entry, 16.0);
  EXPECT_LT(per_entry, 48.0);
}

// A writer grows 20 chains of node 1 block by block, in chain order, while storing and removing
// unrelated blocks of node 3 (so shard tables rehash under the reader). A reader matches every
// chain meanwhile. What it may see at any time: only node 1, a match never shorter than the one it
// saw before (blocks are only added), tiers that sum to the match and alternate as stored.
TEST(GlobalIndexTest, ConcurrentMatchSeesConsistentGrowingPrefixes) {
  GlobalIndex index(GlobalIndexOptions{.shards = 4});
  constexpr int kChains = 20;
  std::vector<std::vector<IndexKey>> chains;
  for (int c = 0; c < kChains; ++c) {
    chains.push_back(Chain(40 + c, 64));
    index.Store(2, Tier::kSsd, std::span(chains[c]).subspan(1));  // lacks the head: never matches
  }
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (int c = 0; c < kChains; ++c) {
      for (size_t i = 0; i < 64; ++i) {
        index.Store(1, i % 2 ? Tier::kDram : Tier::kHbm, std::span(&chains[c][i], 1));
        const std::vector<IndexKey> noise = Chain(1000 + c * 64 + i, 200);
        index.Store(3, Tier::kHbm, noise);
        if (i % 2) index.Remove(3, Tier::kHbm, noise);
      }
    }
    done.store(true, std::memory_order_release);
  });
  struct Joiner {  // joins even when an ASSERT below returns early
    std::thread& t;
    ~Joiner() { t.join(); }
  } joiner{writer};

  std::vector<uint32_t> seen(kChains, 0);
  uint64_t observations = 0;
  bool finished = false;
  std::vector<NodeMatch> out;
  while (!finished) {
    finished = done.load(std::memory_order_acquire);  // one more full pass after the writer ends
    for (int c = 0; c < kChains; ++c) {
      index.Match(chains[c], &out);
      ++observations;
      ASSERT_LE(out.size(), 1u);
      const uint32_t matched = out.empty() ? 0 : out[0].matched;
      if (!out.empty()) {
        ASSERT_EQ(out[0].node, 1u);
        ASSERT_EQ(out[0].per_tier[0] + out[0].per_tier[1] + out[0].per_tier[2], matched);
        ASSERT_EQ(out[0].per_tier[0], (matched + 1) / 2);  // even blocks are in HBM
        ASSERT_EQ(out[0].slowest, matched > 1 ? Tier::kDram : Tier::kHbm);
      }
      ASSERT_GE(matched, seen[c]) << "chain " << c << " shrank";
      seen[c] = matched;
    }
  }
  for (int c = 0; c < kChains; ++c) EXPECT_EQ(seen[c], 64u) << "chain " << c;
  EXPECT_GE(observations, uint64_t{kChains});
  EXPECT_EQ(index.NodeEntries(1), uint64_t{kChains} * 64);
}

}  // namespace
}  // namespace strata::router
