#include "cachenode/tiered_store.h"

#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "cachenode/block_events.h"
#include "cachenode/memory_tier.h"
#include "common/checksum.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace strata::cachenode {
namespace {

constexpr uint64_t kMiB = 1ull << 20;
constexpr common::NamespaceId kNs = 42;

common::ChainHash HashOf(int chain, int pos) {
  common::ChainHash h;
  h.bytes[0] = static_cast<uint8_t>(chain);
  h.bytes[1] = static_cast<uint8_t>(pos);
  return h;
}

std::string PayloadOf(int chain, int pos, uint64_t size) {
  std::string s(size, '\0');
  std::mt19937_64 rng(chain * 1000 + pos);
  for (size_t i = 0; i + 8 <= s.size(); i += 8) {
    const uint64_t v = rng();
    std::memcpy(&s[i], &v, 8);
  }
  return s;
}

std::span<const std::byte> Bytes(const std::string& s) { return std::as_bytes(std::span(s)); }

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/strata-store-test-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct Sizes {
  uint64_t hbm = 0, dram = 0, ssd = 0;
};

class TieredStoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<TieredStore> Open(Sizes sz, uint32_t promote_after_hits = 2) {
    StoreTiers tiers;
    if (sz.hbm > 0) {
      tiers.hbm =
          std::make_unique<MemoryTier>(MemoryTierOptions{TierKind::kHbm, "hbm(emulated)", true},
                                       std::move(*CreateHostMemory({sz.hbm, false, false, "hbm"})));
    }
    if (sz.dram > 0) {
      tiers.dram = std::make_unique<MemoryTier>(
          MemoryTierOptions{}, std::move(*CreateHostMemory({sz.dram, true, false, "dram"})));
    }
    if (sz.ssd > 0) {
      SsdTierOptions o;
      o.path = dir_.path() + "/ssd";
      o.capacity_bytes = sz.ssd;
      auto ssd = SsdTier::Open(o);
      EXPECT_TRUE(ssd.ok()) << ssd.status();
      tiers.ssd = std::move(*ssd);
    }
    TieredStoreOptions options;
    options.promote_after_hits = promote_after_hits;
    auto store = TieredStore::Open(options, std::move(tiers));
    EXPECT_TRUE(store.ok()) << store.status();
    return std::move(*store);
  }

  absl::StatusOr<TierKind> Put(TieredStore& s, int chain, int pos, uint64_t size,
                               bool from_gpu = false) {
    const std::string p = PayloadOf(chain, pos, size);
    BlockInfo info{
        {kNs, HashOf(chain, pos)}, size, common::Checksum(p), static_cast<uint32_t>(pos)};
    return s.Put(info, Bytes(p), from_gpu);
  }

  // Reads one block, asserting byte-exact content when found. Returns its tier or the miss.
  absl::StatusOr<TierKind> Get(TieredStore& s, int chain, int pos) {
    const common::ChainHash h = HashOf(chain, pos);
    std::vector<BlockRead> r = s.GetChain(kNs, std::span(&h, 1), false);
    EXPECT_EQ(r.size(), 1u);
    if (!r[0].status.ok()) return r[0].status;
    const std::string want = PayloadOf(chain, pos, r[0].handle.data().size());
    EXPECT_EQ(std::memcmp(r[0].handle.data().data(), want.data(), want.size()), 0);
    return r[0].tier;
  }

  TempDir dir_;
};

TEST_F(TieredStoreTest, PutsLandInDramAndGpuPutsInHbm) {
  auto s = Open({8 * kMiB, 8 * kMiB, 64 * kMiB});
  EXPECT_EQ(*Put(*s, 1, 0, kMiB), TierKind::kDram);
  EXPECT_EQ(*Put(*s, 2, 0, kMiB, /*from_gpu=*/true), TierKind::kHbm);
  EXPECT_EQ(*Get(*s, 1, 0), TierKind::kDram);
  EXPECT_EQ(*Get(*s, 2, 0), TierKind::kHbm);
}

TEST_F(TieredStoreTest, PutComputingChecksumStoresTheChecksumOfThePayload) {
  auto s = Open({0, 8 * kMiB, 0});
  const std::string p = PayloadOf(3, 0, kMiB);
  // The given checksum is ignored: the store computes the real one.
  BlockInfo info{{kNs, HashOf(3, 0)}, kMiB, /*checksum=*/12345, 0};
  ASSERT_EQ(*s->PutComputingChecksum(info, Bytes(p), false), TierKind::kDram);
  const common::ChainHash h = HashOf(3, 0);
  std::vector<BlockRead> r = s->GetChain(kNs, std::span(&h, 1), false);
  ASSERT_TRUE(r[0].status.ok()) << r[0].status;  // a read verifies the stored checksum
  EXPECT_EQ(r[0].handle.info().checksum, common::Checksum(p));
  EXPECT_EQ(*Get(*s, 3, 0), TierKind::kDram);
  // The size and limit checks of Put still apply.
  info.size = kMiB + 1;
  EXPECT_TRUE(absl::IsInvalidArgument(s->PutComputingChecksum(info, Bytes(p), false).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(s->PutComputingChecksum(info, {}, false).status()));
}

TEST_F(TieredStoreTest, CommitDramComputingChecksumAdoptsTheSlotWithItsRealChecksum) {
  auto s = Open({0, 8 * kMiB, 0});
  const std::string p = PayloadOf(4, 0, kMiB);
  absl::StatusOr<ReservedSlot> slot = s->ReserveDram(kMiB);
  ASSERT_TRUE(slot.ok()) << slot.status();
  std::memcpy(slot->data().data(), p.data(), p.size());
  BlockInfo info{{kNs, HashOf(4, 0)}, kMiB, /*checksum=*/1, 0};  // ignored
  ASSERT_EQ(*s->CommitDramComputingChecksum(info, std::move(*slot)), TierKind::kDram);
  EXPECT_EQ(*Get(*s, 4, 0), TierKind::kDram);  // the read verifies the computed checksum
  // A slot of another size is refused, and freed.
  absl::StatusOr<ReservedSlot> other = s->ReserveDram(kMiB / 2);
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(
      s->CommitDramComputingChecksum(info, std::move(*other)).status()));
}

TEST_F(TieredStoreTest, WriteBehindPersistsToSsdInBatches) {
  auto s = Open({0, 16 * kMiB, 64 * kMiB});
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(Put(*s, 1, i, kMiB).ok());
  EXPECT_EQ(s->Stats().write_behind_pending, 4u);
  EXPECT_EQ(s->FlushWriteBehind(), 4u);
  EXPECT_EQ(s->Stats().write_behind_pending, 0u);
  EXPECT_EQ(s->Stats().persisted_blocks, 4u);
  EXPECT_EQ(s->FlushWriteBehind(), 0u);
  EXPECT_TRUE(s->tier(TierKind::kSsd)->Contains({kNs, HashOf(1, 2)}));
}

TEST_F(TieredStoreTest, DemotesColdestToSsdWhenDramIsFull) {
  auto s = Open({0, 8 * kMiB, 64 * kMiB});  // DRAM holds four 2 MiB blocks
  for (int chain = 0; chain < 4; ++chain) ASSERT_TRUE(Put(*s, chain, 0, 2 * kMiB).ok());
  ASSERT_TRUE(Get(*s, 0, 0).ok());  // chain 0 is now the most recent; chain 1 the coldest
  ASSERT_EQ(*Put(*s, 9, 0, 2 * kMiB), TierKind::kDram);
  const LookupResult cold = s->Lookup(kNs, std::vector{HashOf(1, 0)});
  ASSERT_EQ(cold.matched_blocks, 1u);
  EXPECT_EQ(cold.tiers[0], TierKind::kSsd);  // demoted, not dropped (no write-behind ran)
  EXPECT_EQ(s->Lookup(kNs, std::vector{HashOf(0, 0)}).tiers[0], TierKind::kDram);
  EXPECT_EQ(s->Stats().demotions, 1u);
  EXPECT_EQ(*Get(*s, 1, 0), TierKind::kSsd);  // still byte-exact from SSD
}

TEST_F(TieredStoreTest, EvictsAChainsTailBeforeItsHead) {
  auto s = Open({0, 8 * kMiB, 0});  // no SSD: evicted blocks are dropped
  for (int pos = 0; pos < 4; ++pos) ASSERT_TRUE(Put(*s, 1, pos, 2 * kMiB).ok());
  // Reading the whole chain gives every block the same recency; the tail must still go first.
  std::vector<common::ChainHash> chain;
  for (int pos = 0; pos < 4; ++pos) chain.push_back(HashOf(1, pos));
  ASSERT_EQ(s->GetChain(kNs, chain, true).size(), 4u);
  ASSERT_TRUE(Put(*s, 2, 0, 2 * kMiB).ok());
  ASSERT_TRUE(Put(*s, 3, 0, 2 * kMiB).ok());
  const LookupResult r = s->Lookup(kNs, chain);
  EXPECT_EQ(r.matched_blocks, 2u);  // head and second block kept, positions 3 then 2 evicted
  EXPECT_TRUE(absl::IsNotFound(Get(*s, 1, 3).status()));
  EXPECT_TRUE(absl::IsNotFound(Get(*s, 1, 2).status()));
}

TEST_F(TieredStoreTest, PinnedBlocksAreNotFreedUnderAReader) {
  auto s = Open({0, 4 * kMiB, 0});
  ASSERT_TRUE(Put(*s, 1, 0, 4 * kMiB).ok());
  const common::ChainHash h = HashOf(1, 0);
  std::vector<BlockRead> held = s->GetChain(kNs, std::span(&h, 1), false);
  ASSERT_TRUE(held[0].status.ok());
  // A new put evicts the block from the index, but its memory stays pinned: the put cannot land.
  EXPECT_EQ(Put(*s, 2, 0, 4 * kMiB).status().code(), absl::StatusCode::kResourceExhausted);
  const std::string want = PayloadOf(1, 0, 4 * kMiB);
  EXPECT_EQ(std::memcmp(held[0].handle.data().data(), want.data(), want.size()), 0);
  held.clear();
  EXPECT_EQ(*Put(*s, 2, 0, 4 * kMiB), TierKind::kDram);
}

TEST_F(TieredStoreTest, PromotesFromSsdToDramOnTheSecondHit) {
  auto s = Open({0, 4 * kMiB, 64 * kMiB}, /*promote_after_hits=*/2);
  ASSERT_TRUE(Put(*s, 1, 0, 4 * kMiB).ok());
  ASSERT_TRUE(Put(*s, 2, 0, 4 * kMiB).ok());  // demotes block 1 to SSD
  EXPECT_EQ(*Get(*s, 1, 0), TierKind::kSsd);
  EXPECT_EQ(s->Stats().promotions, 0u);
  EXPECT_EQ(*Get(*s, 1, 0), TierKind::kSsd);  // second hit: served, then copied up
  EXPECT_EQ(s->Stats().promotions, 1u);
  EXPECT_EQ(*Get(*s, 1, 0), TierKind::kDram);
  // The SSD copy stays, so the block is still persisted.
  EXPECT_TRUE(s->tier(TierKind::kSsd)->Contains({kNs, HashOf(1, 0)}));
}

TEST_F(TieredStoreTest, ChecksumMismatchIsAMissPlusACounterNeverData) {
  auto s = Open({0, 8 * kMiB, 0});
  ASSERT_TRUE(Put(*s, 1, 0, kMiB).ok());
  const common::ChainHash h = HashOf(1, 0);
  {
    std::vector<BlockRead> r = s->GetChain(kNs, std::span(&h, 1), false);
    ASSERT_TRUE(r[0].status.ok());
    // Corrupt the arena memory the handle points into (it is the tier's own slot).
    const_cast<std::byte*>(r[0].handle.data().data())[777] ^= std::byte{0x40};
  }
  std::vector<BlockRead> r = s->GetChain(kNs, std::span(&h, 1), false);
  EXPECT_EQ(r[0].status.code(), absl::StatusCode::kDataLoss);
  EXPECT_FALSE(r[0].handle.valid());
  EXPECT_EQ(s->Stats().tiers[0].counters.checksum_failures, 1u);
  EXPECT_EQ(s->Lookup(kNs, std::vector{h}).matched_blocks, 0u);  // bad copy removed
}

TEST_F(TieredStoreTest, CorruptDramCopyFallsBackToTheVerifiedSsdCopy) {
  auto s = Open({0, 8 * kMiB, 64 * kMiB});
  ASSERT_TRUE(Put(*s, 1, 0, kMiB).ok());
  ASSERT_EQ(s->FlushWriteBehind(), 1u);
  const common::ChainHash h = HashOf(1, 0);
  {
    std::vector<BlockRead> r = s->GetChain(kNs, std::span(&h, 1), false);
    ASSERT_EQ(r[0].tier, TierKind::kDram);
    const_cast<std::byte*>(r[0].handle.data().data())[5] ^= std::byte{1};
  }
  EXPECT_EQ(*Get(*s, 1, 0), TierKind::kSsd);
  EXPECT_EQ(s->Stats().tiers[0].counters.checksum_failures, 1u);
}

TEST_F(TieredStoreTest, PutWithWrongChecksumIsRefusedAndStoresNothing) {
  auto s = Open({0, 8 * kMiB, 0});
  const std::string p = PayloadOf(1, 0, 4096);
  BlockInfo info{{kNs, HashOf(1, 0)}, p.size(), common::Checksum(p) ^ 1, 0};
  EXPECT_EQ(s->Put(info, Bytes(p), false).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(s->Stats().blocks, 0u);
}

TEST_F(TieredStoreTest, OversizedBlockIsResourceExhausted) {
  auto s = Open({0, 8 * kMiB, 0});
  EXPECT_EQ(s->LargestBlockBytes(), 8 * kMiB);
  EXPECT_EQ(Put(*s, 1, 0, 9 * kMiB).status().code(), absl::StatusCode::kResourceExhausted);
}

TEST_F(TieredStoreTest, IndexIsRebuiltFromSsdAfterReopen) {
  {
    auto s = Open({0, 8 * kMiB, 64 * kMiB});
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(Put(*s, 1, i, kMiB).ok());
    ASSERT_TRUE(s->Drain().ok());
  }
  auto s = Open({0, 8 * kMiB, 64 * kMiB});
  EXPECT_EQ(s->Stats().blocks, 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(*Get(*s, 1, i), TierKind::kSsd);
}

TEST_F(TieredStoreTest, StopAtFirstMissEndsTheChainAndLookupCountsTiers) {
  auto s = Open({4 * kMiB, 8 * kMiB, 64 * kMiB});
  ASSERT_TRUE(Put(*s, 1, 0, kMiB, true).ok());
  ASSERT_TRUE(Put(*s, 1, 1, kMiB).ok());
  std::vector<common::ChainHash> chain = {HashOf(1, 0), HashOf(1, 1), HashOf(1, 2), HashOf(1, 3)};
  ASSERT_TRUE(Put(*s, 1, 3, kMiB).ok());
  std::vector<BlockRead> r = s->GetChain(kNs, chain, /*stop_at_first_miss=*/true);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_TRUE(absl::IsNotFound(r[2].status));
  const LookupResult l = s->Lookup(kNs, chain);
  EXPECT_EQ(l.matched_blocks, 2u);
  EXPECT_EQ(l.blocks_per_tier[static_cast<int>(TierKind::kHbm)], 1u);
  EXPECT_EQ(l.blocks_per_tier[static_cast<int>(TierKind::kDram)], 1u);
  // Without stop_at_first_miss every block gets a result, the miss included.
  std::vector<BlockRead> all = s->GetChain(kNs, chain, false);
  ASSERT_EQ(all.size(), 4u);
  EXPECT_TRUE(absl::IsNotFound(all[2].status));
  EXPECT_TRUE(all[3].status.ok());
}

TEST_F(TieredStoreTest, DeleteRemovesEveryCopy) {
  auto s = Open({0, 8 * kMiB, 64 * kMiB});
  ASSERT_TRUE(Put(*s, 1, 0, kMiB).ok());
  ASSERT_EQ(s->FlushWriteBehind(), 1u);
  EXPECT_EQ(s->Delete(kNs, std::vector{HashOf(1, 0), HashOf(5, 5)}), 1u);
  EXPECT_TRUE(absl::IsNotFound(Get(*s, 1, 0).status()));
  EXPECT_FALSE(s->tier(TierKind::kSsd)->Contains({kNs, HashOf(1, 0)}));
  EXPECT_FALSE(s->tier(TierKind::kDram)->Contains({kNs, HashOf(1, 0)}));
}

TEST_F(TieredStoreTest, RePutReplacesStaleCopiesInOtherTiers) {
  auto s = Open({0, 8 * kMiB, 64 * kMiB});
  ASSERT_TRUE(Put(*s, 1, 0, kMiB).ok());
  ASSERT_EQ(s->FlushWriteBehind(), 1u);
  const std::string other(kMiB, 'z');
  BlockInfo info{{kNs, HashOf(1, 0)}, other.size(), common::Checksum(other), 0};
  ASSERT_TRUE(s->Put(info, Bytes(other), false).ok());
  EXPECT_FALSE(s->tier(TierKind::kSsd)->Contains(info.key));  // old bytes gone from SSD
  const common::ChainHash h = HashOf(1, 0);
  auto r = s->GetChain(kNs, std::span(&h, 1), false);
  ASSERT_TRUE(r[0].status.ok());
  EXPECT_EQ(static_cast<char>(r[0].handle.data()[100]), 'z');
}

TEST_F(TieredStoreTest, RePutsRacingWriteBehindLeaveNothingUnpersistedAfterDrain) {
  auto s = Open({0, 32 * kMiB, 256 * kMiB});
  constexpr int kKeys = 8;
  constexpr int kRounds = 200;
  // One thread keeps re-putting the same keys (a shared system prompt) while another runs
  // write-behind batches, so re-puts land while their key's older bytes are being written.
  std::thread writer([&] {
    for (int round = 0; round < kRounds; ++round) {
      for (int k = 0; k < kKeys; ++k) ASSERT_TRUE(Put(*s, 1, k, 256 << 10).ok());
    }
  });
  std::atomic<bool> done{false};
  std::thread flusher([&] {
    while (!done.load()) s->FlushWriteBehind();
  });
  writer.join();
  done = true;
  flusher.join();
  ASSERT_TRUE(s->Drain().ok());
  const StoreStats stats = s->Stats();
  EXPECT_EQ(stats.write_behind_pending, 0u);
  EXPECT_EQ(stats.persisted_blocks, static_cast<uint64_t>(kKeys));
  for (int k = 0; k < kKeys; ++k) {
    EXPECT_TRUE(s->tier(TierKind::kSsd)->Contains({kNs, HashOf(1, k)})) << k;
  }
}

// Records the store's events as "+dram 1.0" (stored, tier, chain.pos) / "-ssd 1.0" (removed).
class RecordingSink final : public BlockEventSink {
 public:
  void OnBlockEvent(BlockEventKind kind, TierKind tier, const BlockKey& key) override {
    absl::MutexLock lock(&mu_);
    events_.push_back(std::string(kind == BlockEventKind::kStored ? "+" : "-") +
                      std::string(TierKindName(tier)) + " " + std::to_string(key.hash.bytes[0]) +
                      "." + std::to_string(key.hash.bytes[1]));
  }
  // The events since the last call, in order.
  std::vector<std::string> Take() {
    absl::MutexLock lock(&mu_);
    return std::exchange(events_, {});
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> events_ ABSL_GUARDED_BY(mu_);
};

using ::testing::ElementsAre;

TEST_F(TieredStoreTest, EmitsStoredOnPutAndWriteBehindAndRemovedForEveryCopyOnDelete) {
  auto s = Open({0, 8 * kMiB, 64 * kMiB});
  RecordingSink sink;
  s->SetEventSink(&sink);
  ASSERT_TRUE(Put(*s, 1, 0, kMiB).ok());
  EXPECT_THAT(sink.Take(), ElementsAre("+dram 1.0"));
  ASSERT_EQ(s->FlushWriteBehind(), 1u);
  EXPECT_THAT(sink.Take(), ElementsAre("+ssd 1.0"));
  EXPECT_EQ(s->Delete(kNs, std::vector{HashOf(1, 0)}), 1u);
  EXPECT_THAT(sink.Take(), ElementsAre("-dram 1.0", "-ssd 1.0"));
}

TEST_F(TieredStoreTest, DemotionEmitsStoredInTheLowerTierBeforeRemovedInTheUpper) {
  auto s = Open({0, 4 * kMiB, 64 * kMiB});
  RecordingSink sink;
  s->SetEventSink(&sink);
  ASSERT_TRUE(Put(*s, 1, 0, 4 * kMiB).ok());
  ASSERT_TRUE(Put(*s, 2, 0, 4 * kMiB).ok());  // no room: block 1 goes down to SSD
  // Stored below first, so the router never believes the block is gone while it is not.
  EXPECT_THAT(sink.Take(), ElementsAre("+dram 1.0", "+ssd 1.0", "-dram 1.0", "+dram 2.0"));
}

TEST_F(TieredStoreTest, PromotionEmitsStoredInTheUpperTierAndKeepsTheLowerCopy) {
  auto s = Open({0, 4 * kMiB, 64 * kMiB}, /*promote_after_hits=*/1);
  ASSERT_TRUE(Put(*s, 1, 0, 4 * kMiB).ok());
  ASSERT_TRUE(Put(*s, 2, 0, 4 * kMiB).ok());  // block 1 now only on SSD
  RecordingSink sink;
  s->SetEventSink(&sink);
  EXPECT_EQ(*Get(*s, 1, 0), TierKind::kSsd);  // first hit promotes (block 2 makes way)
  EXPECT_THAT(sink.Take(), ElementsAre("+ssd 2.0", "-dram 2.0", "+dram 1.0"));
}

TEST_F(TieredStoreTest, EvictionWithoutALowerTierEmitsRemoved) {
  auto s = Open({0, 4 * kMiB, 0});
  RecordingSink sink;
  s->SetEventSink(&sink);
  ASSERT_TRUE(Put(*s, 1, 0, 4 * kMiB).ok());
  ASSERT_TRUE(Put(*s, 2, 0, 4 * kMiB).ok());
  EXPECT_THAT(sink.Take(), ElementsAre("+dram 1.0", "-dram 1.0", "+dram 2.0"));
}

TEST_F(TieredStoreTest, RePutOfOtherBytesRemovesStaleCopiesButEmitsNothingForTheTierThatKeepsIt) {
  auto s = Open({0, 8 * kMiB, 64 * kMiB});
  ASSERT_TRUE(Put(*s, 1, 0, kMiB).ok());
  ASSERT_EQ(s->FlushWriteBehind(), 1u);
  RecordingSink sink;
  s->SetEventSink(&sink);
  ASSERT_TRUE(Put(*s, 1, 0, kMiB / 2).ok());  // other size, other checksum
  EXPECT_THAT(sink.Take(), ElementsAre("-ssd 1.0"));  // DRAM held it before and after
  EXPECT_EQ(s->Stats().persisted_blocks, 0u);
}

TEST_F(TieredStoreTest, RePutOfTheSameBytesKeepsThePersistedCopy) {
  // A retry, or a second engine storing the same prefix: the SSD copy (perhaps made durable by a
  // Sync) must not be erased, or a crash before the next flush would lose a durable block.
  auto s = Open({0, 8 * kMiB, 64 * kMiB});
  ASSERT_TRUE(Put(*s, 1, 0, kMiB).ok());
  ASSERT_EQ(s->FlushWriteBehind(), 1u);
  RecordingSink sink;
  s->SetEventSink(&sink);
  ASSERT_TRUE(Put(*s, 1, 0, kMiB).ok());
  EXPECT_TRUE(sink.Take().empty());
  EXPECT_EQ(s->Stats().persisted_blocks, 1u);
  EXPECT_EQ(s->Stats().write_behind_pending, 0u);
  EXPECT_EQ(s->FlushWriteBehind(), 0u);  // nothing to write again
  EXPECT_EQ(Get(*s, 1, 0).value(), TierKind::kDram);
}

TEST_F(TieredStoreTest, ChecksumFailureEmitsRemovedForTheBadCopy) {
  auto s = Open({0, 8 * kMiB, 0});
  ASSERT_TRUE(Put(*s, 1, 0, kMiB).ok());
  const common::ChainHash h = HashOf(1, 0);
  {
    std::vector<BlockRead> r = s->GetChain(kNs, std::span(&h, 1), false);
    ASSERT_TRUE(r[0].status.ok());
    const_cast<std::byte*>(r[0].handle.data().data())[3] ^= std::byte{1};
  }
  RecordingSink sink;
  s->SetEventSink(&sink);
  EXPECT_EQ(Get(*s, 1, 0).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(sink.Take(), ElementsAre("-dram 1.0"));
}

TEST_F(TieredStoreTest, DetachedSinkHearsNothing) {
  auto s = Open({0, 8 * kMiB, 0});
  RecordingSink sink;
  s->SetEventSink(&sink);
  s->SetEventSink(nullptr);
  ASSERT_TRUE(Put(*s, 1, 0, kMiB).ok());
  EXPECT_TRUE(sink.Take().empty());
}

TEST_F(TieredStoreTest, VisitBlocksListsEveryBlockWithItsTiersIncludingRecoveredSsdBlocks) {
  {
    auto s = Open({0, 8 * kMiB, 64 * kMiB});
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(Put(*s, 1, i, kMiB).ok());
    ASSERT_TRUE(s->Drain().ok());
  }
  auto s = Open({0, 8 * kMiB, 64 * kMiB});  // a restart: the index comes back from SSD
  ASSERT_TRUE(Put(*s, 2, 0, kMiB).ok());
  int cuts = 0;
  std::vector<std::string> seen;
  s->VisitBlocks([&] { ++cuts; },
                 [&](const BlockKey& key, uint8_t tiers) {
                   seen.push_back(std::to_string(key.hash.bytes[0]) + "." +
                                  std::to_string(key.hash.bytes[1]) + "=" + std::to_string(tiers));
                 });
  EXPECT_EQ(cuts, 1);
  const std::string ssd = std::to_string(1 << static_cast<int>(TierKind::kSsd));
  const std::string dram = std::to_string(1 << static_cast<int>(TierKind::kDram));
  EXPECT_THAT(seen, ::testing::UnorderedElementsAre("1.0=" + ssd, "1.1=" + ssd, "1.2=" + ssd,
                                                    "2.0=" + dram));
}

TEST_F(TieredStoreTest, CommittedDramSlotIsTheBlocksCopyWithoutACopy) {
  auto store = Open({.dram = 16 * kMiB});
  const std::string p = PayloadOf(5, 0, kMiB);
  auto slot = store->ReserveDram(p.size());
  ASSERT_TRUE(slot.ok()) << slot.status();
  std::memcpy(slot->data().data(), p.data(), p.size());
  const std::byte* where = slot->data().data();
  BlockInfo info{{kNs, HashOf(5, 0)}, p.size(), common::Checksum(p), 0};
  auto tier = store->CommitDram(info, std::move(*slot));
  ASSERT_TRUE(tier.ok()) << tier.status();
  EXPECT_EQ(*tier, TierKind::kDram);
  const common::ChainHash h = HashOf(5, 0);
  std::vector<BlockRead> r = store->GetChain(kNs, std::span(&h, 1), false);
  ASSERT_TRUE(r[0].status.ok());
  EXPECT_EQ(r[0].handle.data().data(), where);
  EXPECT_EQ(Get(*store, 5, 0).value(), TierKind::kDram);
}

TEST_F(TieredStoreTest, CommitWithWrongChecksumStoresNothingAndFreesTheSlot) {
  auto store = Open({.dram = 16 * kMiB});
  const std::string p = PayloadOf(6, 0, kMiB);
  auto slot = store->ReserveDram(p.size());
  ASSERT_TRUE(slot.ok());
  std::memcpy(slot->data().data(), p.data(), p.size());
  BlockInfo info{{kNs, HashOf(6, 0)}, p.size(), common::Checksum(p) ^ 1, 0};
  auto tier = store->CommitDram(info, std::move(*slot));
  EXPECT_TRUE(absl::IsDataLoss(tier.status())) << tier.status();
  EXPECT_EQ(store->Lookup(kNs, std::vector{HashOf(6, 0)}).matched_blocks, 0u);
  EXPECT_EQ(store->Stats().tiers[0].usage.used_bytes, 0u);
}

TEST_F(TieredStoreTest, EvictionNeverHandsOutAReservedSlot) {
  auto store = Open({.dram = 8 * kMiB});  // two 4 MiB slabs
  auto slot = store->ReserveDram(4 * kMiB);
  ASSERT_TRUE(slot.ok());
  std::memset(slot->data().data(), 0x5a, slot->data().size());
  // Puts keep evicting each other in the other slab; the reserved one is never touched.
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(Put(*store, 7, i, 2 * kMiB).ok());
  for (std::byte b : slot->data()) ASSERT_EQ(b, std::byte{0x5a});
  // With every slab reserved, a put has nowhere to go.
  auto second = store->ReserveDram(4 * kMiB);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE(absl::IsResourceExhausted(Put(*store, 7, 9, kMiB).status()));
}

TEST_F(TieredStoreTest, ReserveDramNeedsAHostDramTier) {
  auto store = Open({.hbm = 8 * kMiB});
  EXPECT_TRUE(absl::IsFailedPrecondition(store->ReserveDram(kMiB).status()));
}

TEST_F(TieredStoreTest, UnverifiedDramReadSkipsOnlyTheDramCheck) {
  auto store = Open({.dram = 16 * kMiB});
  ASSERT_TRUE(Put(*store, 8, 0, kMiB).ok());
  const common::ChainHash h = HashOf(8, 0);
  std::vector<BlockRead> r = store->GetChain(kNs, std::span(&h, 1), false);
  ASSERT_TRUE(r[0].status.ok());
  EXPECT_TRUE(r[0].verified);
  // Scribble on the DRAM copy: an unverified read hands it out (the reader verifies), a verifying
  // read refuses it.
  auto* bytes = const_cast<std::byte*>(r[0].handle.data().data());
  bytes[100] ^= std::byte{1};
  ReadOptions unverified;
  unverified.verify_dram = false;
  std::vector<BlockRead> u = store->GetChain(kNs, std::span(&h, 1), false, unverified);
  ASSERT_TRUE(u[0].status.ok());
  EXPECT_FALSE(u[0].verified);
  u.clear();
  r.clear();
  std::vector<BlockRead> v = store->GetChain(kNs, std::span(&h, 1), false);
  EXPECT_TRUE(absl::IsDataLoss(v[0].status)) << v[0].status;
}

TEST_F(TieredStoreTest, ReportedCorruptCopyIsDroppedOnlyWhenTheStoreConfirmsIt) {
  auto store = Open({.dram = 16 * kMiB});
  ASSERT_TRUE(Put(*store, 9, 0, kMiB).ok());
  const BlockKey key{kNs, HashOf(9, 0)};
  const uint64_t checksum = common::Checksum(PayloadOf(9, 0, kMiB));
  // A report about a good copy changes nothing.
  EXPECT_FALSE(store->ReportCorruptCopy(key, TierKind::kDram, checksum));
  EXPECT_EQ(Get(*store, 9, 0).value(), TierKind::kDram);
  {
    const common::ChainHash h = HashOf(9, 0);
    std::vector<BlockRead> r = store->GetChain(kNs, std::span(&h, 1), false);
    const_cast<std::byte*>(r[0].handle.data().data())[7] ^= std::byte{0xff};
  }
  EXPECT_TRUE(store->ReportCorruptCopy(key, TierKind::kDram, checksum));
  EXPECT_EQ(store->Lookup(kNs, std::vector{HashOf(9, 0)}).matched_blocks, 0u);
  EXPECT_EQ(store->Stats().tiers[0].counters.checksum_failures, 1u);
}

TEST_F(TieredStoreTest, PreferDramReadsTheDramCopyOfABlockAlsoInHbm) {
  auto store = Open({.hbm = 16 * kMiB, .dram = 16 * kMiB}, /*promote_after_hits=*/1);
  ASSERT_TRUE(Put(*store, 10, 0, kMiB).ok());           // lands in DRAM
  ASSERT_EQ(Get(*store, 10, 0).value(), TierKind::kDram);  // first hit promotes to HBM
  ASSERT_EQ(Get(*store, 10, 0).value(), TierKind::kHbm);
  ReadOptions prefer;
  prefer.prefer_dram = true;
  const common::ChainHash h = HashOf(10, 0);
  std::vector<BlockRead> r = store->GetChain(kNs, std::span(&h, 1), false, prefer);
  ASSERT_TRUE(r[0].status.ok());
  EXPECT_EQ(r[0].tier, TierKind::kDram);
}

}  // namespace
}  // namespace strata::cachenode
