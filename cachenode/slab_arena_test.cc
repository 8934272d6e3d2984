#include "cachenode/slab_arena.h"

#include <set>
#include <vector>

#include "gtest/gtest.h"

namespace strata::cachenode {
namespace {

constexpr uint64_t kMiB = 1ull << 20;

TEST(SlabArenaTest, SlotsOfOneClassTileSlabsWithoutOverlap) {
  SlabArena arena({/*capacity_bytes=*/16 * kMiB, /*slab_bytes=*/4 * kMiB});
  std::set<uint64_t> offsets;
  std::vector<SlabAllocation> all;
  for (int i = 0; i < 8; ++i) {  // 2 MiB slots: two per slab, four slabs
    auto a = arena.Allocate(2 * kMiB);
    ASSERT_TRUE(a.ok()) << i;
    EXPECT_EQ(a->bytes, 2 * kMiB);
    EXPECT_TRUE(offsets.insert(a->offset).second);
    EXPECT_LE(a->offset + a->bytes, 16 * kMiB);
    all.push_back(*a);
  }
  EXPECT_EQ(arena.used_bytes(), 16 * kMiB);
  EXPECT_EQ(arena.Allocate(2 * kMiB).status().code(), absl::StatusCode::kResourceExhausted);
  arena.Free(all[3]);
  EXPECT_TRUE(arena.Allocate(2 * kMiB).ok());
}

TEST(SlabArenaTest, RoundsUpToAClassWastingAtMostAQuarter) {
  SlabArena arena({64 * kMiB, 4 * kMiB});
  for (uint64_t size : std::vector<uint64_t>{1, 4097, 100000, 1500000, 2 * kMiB + 1, 3 * kMiB}) {
    const uint64_t charge = arena.ChargeFor(size);
    EXPECT_GE(charge, size);
    EXPECT_LE(charge, std::max<uint64_t>(4096, size + size / 4 + 4096)) << size;
  }
  EXPECT_EQ(arena.ChargeFor(0), 0u);
  EXPECT_EQ(arena.ChargeFor(65 * kMiB), 0u);
}

TEST(SlabArenaTest, LargeBlocksTakeContiguousSlabRunsAndReturnThem) {
  SlabArena arena({32 * kMiB, 4 * kMiB});
  auto big = arena.Allocate(9 * kMiB);  // three slabs
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(big->bytes, 12 * kMiB);
  EXPECT_EQ(arena.free_slabs(), 5u);
  arena.Free(*big);
  EXPECT_EQ(arena.free_slabs(), 8u);
  EXPECT_EQ(arena.used_bytes(), 0u);
}

TEST(SlabArenaTest, EmptiedSlabReturnsToThePoolForAnotherClass) {
  SlabArena arena({8 * kMiB, 4 * kMiB});
  auto a = arena.Allocate(64 << 10);
  auto b = arena.Allocate(64 << 10);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(arena.free_slabs(), 1u);
  EXPECT_EQ(arena.Allocate(8 * kMiB).status().code(), absl::StatusCode::kResourceExhausted);
  arena.Free(*a);
  arena.Free(*b);
  EXPECT_EQ(arena.free_slabs(), 2u);
  EXPECT_TRUE(arena.Allocate(8 * kMiB).ok());
}

TEST(SlabArenaTest, FragmentedFreeSlabsDoNotFormARun) {
  SlabArena arena({12 * kMiB, 4 * kMiB});
  auto s0 = arena.Allocate(4 * kMiB);
  auto s1 = arena.Allocate(4 * kMiB);
  auto s2 = arena.Allocate(4 * kMiB);
  ASSERT_TRUE(s0.ok() && s1.ok() && s2.ok());
  arena.Free(*s0);
  arena.Free(*s2);
  EXPECT_EQ(arena.Allocate(8 * kMiB).status().code(), absl::StatusCode::kResourceExhausted);
  arena.Free(*s1);
  EXPECT_TRUE(arena.Allocate(8 * kMiB).ok());
}

}  // namespace
}  // namespace strata::cachenode
