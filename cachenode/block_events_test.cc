#include "cachenode/block_events.h"

#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "cachenode/memory_tier.h"
#include "cachenode/tiered_store.h"
#include "common/checksum.h"
#include "gtest/gtest.h"

namespace strata::cachenode {
namespace {

constexpr common::NamespaceId kNs = 7;

BlockKey KeyOf(common::NamespaceId ns, int i) {
  BlockKey key{ns, {}};
  key.hash.bytes[0] = static_cast<uint8_t>(i);
  key.hash.bytes[1] = static_cast<uint8_t>(i >> 8);
  return key;
}

std::string HashesOf(std::initializer_list<int> ids) {
  std::string out;
  for (int i : ids) out.append(KeyOf(kNs, i).hash.view());
  return out;
}

TEST(BlockEventBufferTest, GroupsConsecutiveEventsOfOneKindTierAndNamespaceIntoRuns) {
  BlockEventBuffer buffer(100);
  buffer.OnBlockEvent(BlockEventKind::kStored, TierKind::kDram, KeyOf(kNs, 1));
  buffer.OnBlockEvent(BlockEventKind::kStored, TierKind::kDram, KeyOf(kNs, 2));
  buffer.OnBlockEvent(BlockEventKind::kStored, TierKind::kDram, KeyOf(kNs + 1, 3));
  buffer.OnBlockEvent(BlockEventKind::kRemoved, TierKind::kDram, KeyOf(kNs + 1, 4));
  buffer.OnBlockEvent(BlockEventKind::kRemoved, TierKind::kSsd, KeyOf(kNs + 1, 5));
  buffer.OnBlockEvent(BlockEventKind::kStored, TierKind::kDram, KeyOf(kNs, 6));
  EXPECT_EQ(buffer.size(), 6u);
  const std::vector<BlockEventRun> runs = buffer.Take(100);
  ASSERT_EQ(runs.size(), 5u);
  EXPECT_EQ(runs[0].kind, BlockEventKind::kStored);
  EXPECT_EQ(runs[0].namespace_id, kNs);
  EXPECT_EQ(runs[0].hashes, HashesOf({1, 2}));  // one run, concatenated hashes
  EXPECT_EQ(runs[1].namespace_id, kNs + 1);
  EXPECT_EQ(runs[2].kind, BlockEventKind::kRemoved);
  EXPECT_EQ(runs[3].tier, TierKind::kSsd);
  EXPECT_EQ(runs[4].hashes, HashesOf({6}));  // same key as run 0, but not adjacent: order kept
  EXPECT_EQ(buffer.size(), 0u);
}

TEST(BlockEventBufferTest, TakeSplitsARunAtTheLimitAndKeepsOrder) {
  BlockEventBuffer buffer(100);
  for (int i = 0; i < 5; ++i) {
    buffer.OnBlockEvent(BlockEventKind::kStored, TierKind::kHbm, KeyOf(kNs, i));
  }
  buffer.OnBlockEvent(BlockEventKind::kRemoved, TierKind::kHbm, KeyOf(kNs, 9));
  std::vector<BlockEventRun> first = buffer.Take(2);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].hashes, HashesOf({0, 1}));
  std::vector<BlockEventRun> second = buffer.Take(4);
  ASSERT_EQ(second.size(), 2u);
  EXPECT_EQ(second[0].hashes, HashesOf({2, 3, 4}));
  EXPECT_EQ(second[0].kind, BlockEventKind::kStored);
  EXPECT_EQ(second[1].hashes, HashesOf({9}));
  EXPECT_EQ(second[1].kind, BlockEventKind::kRemoved);
  EXPECT_TRUE(buffer.Take(4).empty());
}

TEST(BlockEventBufferTest, OverflowDropsEverythingAndAsksForASnapshotUntilTheCut) {
  BlockEventBuffer buffer(3);
  for (int i = 0; i < 3; ++i) {
    buffer.OnBlockEvent(BlockEventKind::kStored, TierKind::kDram, KeyOf(kNs, i));
  }
  EXPECT_FALSE(buffer.snapshot_needed());
  buffer.OnBlockEvent(BlockEventKind::kStored, TierKind::kDram, KeyOf(kNs, 3));
  EXPECT_TRUE(buffer.snapshot_needed());
  EXPECT_EQ(buffer.size(), 0u);
  EXPECT_EQ(buffer.dropped(), 4u);
  // Until the snapshot's cut, later events are superseded by it and not kept either.
  buffer.OnBlockEvent(BlockEventKind::kStored, TierKind::kDram, KeyOf(kNs, 4));
  EXPECT_EQ(buffer.size(), 0u);
  EXPECT_TRUE(buffer.Take(10).empty());
  buffer.DiscardAll();
  EXPECT_FALSE(buffer.snapshot_needed());
  buffer.OnBlockEvent(BlockEventKind::kStored, TierKind::kDram, KeyOf(kNs, 5));
  std::vector<BlockEventRun> runs = buffer.Take(10);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].hashes, HashesOf({5}));
}

// The router's view of one node, rebuilt the way the router does it: a snapshot replaces it, each
// later event edits it.
using View = absl::flat_hash_map<BlockKey, uint8_t>;

void Apply(View& view, const std::vector<BlockEventRun>& runs) {
  for (const BlockEventRun& run : runs) {
    for (size_t i = 0; i < run.events(); ++i) {
      BlockKey key{run.namespace_id,
                   *common::ChainHash::FromBytes(std::string_view(run.hashes).substr(i * 32, 32))};
      const uint8_t bit = static_cast<uint8_t>(1u << static_cast<int>(run.tier));
      if (run.kind == BlockEventKind::kStored) {
        view[key] |= bit;
      } else if (auto it = view.find(key); it != view.end()) {
        it->second &= static_cast<uint8_t>(~bit);
        if (it->second == 0) view.erase(it);
      }
    }
  }
}

View Listing(const TieredStore& store, BlockEventBuffer* cut_buffer) {
  View view;
  store.VisitBlocks(
      [&] {
        if (cut_buffer != nullptr) cut_buffer->DiscardAll();
      },
      [&](const BlockKey& key, uint8_t tiers) { view[key] = tiers; });
  return view;
}

TEST(BlockEventBufferTest, SnapshotAtTheCutPlusLaterEventsRebuildTheStoreExactly) {
  char tmpl[] = "/tmp/strata-events-test-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  constexpr uint64_t kBlock = 256 << 10;
  {
    StoreTiers tiers;
    tiers.dram = std::make_unique<MemoryTier>(
        MemoryTierOptions{}, std::move(*CreateHostMemory({4 << 20, false, false, "dram"})));
    SsdTierOptions ssd;
    ssd.path = dir + "/ssd";
    ssd.capacity_bytes = 8 << 20;  // small: SSD evictions happen too
    tiers.ssd = std::move(*SsdTier::Open(ssd));
    TieredStoreOptions options;
    options.promote_after_hits = 1;
    auto store = std::move(*TieredStore::Open(options, std::move(tiers)));
    BlockEventBuffer buffer(1 << 20);
    store->SetEventSink(&buffer);

    // A writer puts, reads (promotions), deletes and flushes while the consumer takes batches and
    // now and then takes a snapshot: every interleaving must rebuild the same state.
    std::atomic<bool> done{false};
    std::thread writer([&] {
      std::mt19937 rng(1);
      for (int round = 0; round < 600; ++round) {
        const int id = static_cast<int>(rng() % 64);
        const BlockKey key = KeyOf(kNs, id);
        switch (rng() % 4) {
          case 0:
          case 1: {
            std::string payload(kBlock, static_cast<char>(id));
            BlockInfo info{key, payload.size(), common::Checksum(std::as_bytes(std::span(payload))),
                           0};
            EXPECT_TRUE(store->Put(info, std::as_bytes(std::span(payload)), false).ok());
            break;
          }
          case 2:
            (void)store->GetChain(kNs, std::span(&key.hash, 1), false);
            break;
          case 3:
            if (rng() % 2 == 0) {
              store->Delete(kNs, std::span(&key.hash, 1));
            } else {
              store->FlushWriteBehind();
            }
            break;
        }
      }
      done = true;
    });
    View view;
    int snapshots = 0;
    for (int i = 0; !done.load() || snapshots == 0; ++i) {
      if (i % 97 == 0) {
        view = Listing(*store, &buffer);
        ++snapshots;
      } else {
        Apply(view, buffer.Take(16));
      }
    }
    writer.join();
    Apply(view, buffer.Take(1 << 20));
    EXPECT_FALSE(buffer.snapshot_needed());
    EXPECT_EQ(view, Listing(*store, nullptr));
    store->SetEventSink(nullptr);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace strata::cachenode
